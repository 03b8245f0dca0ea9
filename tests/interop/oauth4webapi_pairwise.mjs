// Pairwise subject identifiers (OIDC Core §8) with a strict third-party client: npm oauth4webapi
// (panva), unmodified.
//
//   node oauth4webapi_pairwise.mjs <issuer> <client_id> <redirect_uri> <email> <password> <local_user_id>
//
// Discovery (subject_types_supported), the authorization code flow with PKCE, state and nonce
// for a public client registered pairwise (idp's login form driven with fetch and a cookie jar),
// the ID token validated by the library, userinfo checked against the ID token's sub (OIDC Core
// §5.3.2: the library compares them). The refusal: the same userinfo answer checked against the
// user's local id, which a pairwise client never sees, must fail in the library.
// Prints one JSON line; on any failure {"ok": false, ...} and exit 1.

import * as oauth from 'oauth4webapi';

const [issuerUrl, clientId, redirectUri, email, password, localId] = process.argv.slice(2);
const insecure = { [oauth.allowInsecureRequests]: true }; // the live test server is loopback http

class CookieJar {
  constructor() {
    this.cookies = new Map();
  }

  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const value = pair.slice(eq + 1).trim();
      if (value === '' || value === '""') this.cookies.delete(pair.slice(0, eq).trim());
      else this.cookies.set(pair.slice(0, eq).trim(), value);
    }
  }

  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

function hiddenInput(html, name) {
  for (const tag of html.match(/<input[^>]+>/g) ?? []) {
    if (tag.includes(`name="${name}"`)) {
      const m = tag.match(/value="([^"]*)"/);
      if (m) return m[1].replace(/&#34;|&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
    }
  }
  throw new Error(`no ${name} input in the login page`);
}

async function browse(startUrl) {
  const jar = new CookieJar();
  let url = startUrl;
  let method = 'GET';
  let body;
  for (let hop = 0; hop < 12; hop += 1) {
    const headers = { cookie: jar.header() };
    if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, { method, headers, body, redirect: 'manual' });
    jar.store(res);
    method = 'GET';
    body = undefined;
    if ([301, 302, 303, 307, 308].includes(res.status)) {
      const location = new URL(res.headers.get('location'), url).href;
      if (location.startsWith(redirectUri)) return location;
      url = location;
      continue;
    }
    const html = await res.text();
    const action = html.match(/<form method="post" action="(\/interaction\/[^/"]+\/login)"/);
    if (res.status === 200 && action) {
      body = new URLSearchParams({ csrf_token: hiddenInput(html, 'csrf_token'), email, password }).toString();
      method = 'POST';
      url = new URL(action[1], url).href;
      continue;
    }
    throw new Error(`unexpected ${res.status} at ${url}: ${html.slice(0, 200)}`);
  }
  throw new Error('too many redirects');
}

async function main() {
  const issuer = new URL(issuerUrl);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
  const client = { client_id: clientId };
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const authUrl = new URL(as.authorization_endpoint);
  for (const [k, v] of Object.entries({
    client_id: clientId,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid email',
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  })) authUrl.searchParams.set(k, v);
  const params = oauth.validateAuthResponse(as, client, new URL(await browse(authUrl.href)), state);
  const response = await oauth.authorizationCodeGrantRequest(
    as, client, oauth.None(), params, redirectUri, verifier, insecure,
  );
  const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, {
    expectedNonce: nonce,
    requireIdToken: true,
  });
  const sub = oauth.getValidatedIdTokenClaims(tokens).sub;
  const userinfo = await oauth.processUserInfoResponse(
    as, client, sub, await oauth.userInfoRequest(as, client, tokens.access_token, insecure),
  );
  let refusal = null;
  try {
    await oauth.processUserInfoResponse(
      as, client, localId, await oauth.userInfoRequest(as, client, tokens.access_token, insecure),
    );
  } catch (err) {
    refusal = { code: err.code ?? null, message: String(err.message) };
  }
  console.log(JSON.stringify({
    ok: true,
    subject_types_supported: as.subject_types_supported,
    sub,
    userinfo,
    refusal,
  }));
}

main().catch((err) => {
  console.log(JSON.stringify({ ok: false, error: String(err?.message ?? err), code: err?.code ?? null }));
  process.exit(1);
});
