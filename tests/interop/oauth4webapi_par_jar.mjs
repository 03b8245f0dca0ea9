// A strict third-party client against idp: npm oauth4webapi 3.8.9 (panva), unmodified, doing
// PAR (RFC 9126) with a signed request object (RFC 9101, issueRequestObject) and private_key_jwt
// client authentication (RFC 7523, PrivateKeyJwt) at the PAR and token endpoints.
//
//   node oauth4webapi_par_jar.mjs <issuer> <client_id> <private_jwk_json> <redirect_uri> <email> <password> <mode>
//
// mode "flow": discovery, PAR (request object inside), the browser leg (idp's login form, driven
// with fetch and a cookie jar), validateAuthResponse (RFC 9207 iss), the code exchange with
// private_key_jwt (oauth4webapi validates the ID token: signature, iss, aud, exp, nonce).
// mode "reuse": the same, then the request_uri presented again: idp must refuse it (a page, as
// no redirect_uri can be trusted for it).
// mode "wrong-key": <private_jwk_json> is a key idp does not know: PAR must be refused.
// Prints one JSON line; on failure {"ok": false, "error": ..., "code": ...} and exits 1.

import * as oauth from 'oauth4webapi';

const [issuer, clientId, privateJwk, redirectUri, email, password, mode = 'flow'] =
  process.argv.slice(2);
const insecure = { [oauth.allowInsecureRequests]: true };

class CookieJar {
  constructor() {
    this.cookies = new Map();
  }

  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const value = pair.slice(eq + 1).trim();
      const name = pair.slice(0, eq).trim();
      if (value === '' || value === '""') this.cookies.delete(name);
      else this.cookies.set(name, value);
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

// idp's redirects with a cookie jar, the login form filled once, until the browser would leave
// for the redirect_uri; returns that Location.
async function browse(startUrl, jar = new CookieJar()) {
  let url = startUrl;
  let method = 'GET';
  let body;
  let loginPosted = false;
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
    if (res.status === 200 && action && !loginPosted) {
      body = new URLSearchParams({ csrf_token: hiddenInput(html, 'csrf_token'), email, password })
        .toString();
      method = 'POST';
      url = new URL(action[1], url).href;
      loginPosted = true;
      continue;
    }
    throw new Error(`unexpected ${res.status} at ${url}: ${html.slice(0, 200)}`);
  }
  throw new Error('too many redirects');
}

async function main() {
  const jwk = JSON.parse(privateJwk);
  const key = await crypto.subtle.importKey(
    'jwk', jwk, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign'],
  );
  const privateKey = { key, kid: jwk.kid };
  const as = await oauth.processDiscoveryResponse(
    new URL(issuer),
    await oauth.discoveryRequest(new URL(issuer), { algorithm: 'oidc', ...insecure }),
  );
  const client = { client_id: clientId, token_endpoint_auth_signing_alg: 'RS256' };
  const clientAuth = oauth.PrivateKeyJwt(privateKey);

  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const params = {
    client_id: clientId,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid email',
    code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  };
  const request = await oauth.issueRequestObject(as, client, params, privateKey);
  const parResponse = await oauth.pushedAuthorizationRequest(
    as, client, clientAuth, { client_id: clientId, request }, insecure,
  );
  const par = await oauth.processPushedAuthorizationResponse(as, client, parResponse);

  const authUrl = new URL(as.authorization_endpoint);
  authUrl.searchParams.set('client_id', clientId);
  authUrl.searchParams.set('request_uri', par.request_uri);
  const callback = await browse(authUrl.href);
  const callbackParams = oauth.validateAuthResponse(as, client, new URL(callback), state);
  const tokenResponse = await oauth.authorizationCodeGrantRequest(
    as, client, clientAuth, callbackParams, redirectUri, codeVerifier, insecure,
  );
  const tokens = await oauth.processAuthorizationCodeResponse(as, client, tokenResponse, {
    expectedNonce: nonce,
    requireIdToken: true,
  });
  const claims = oauth.getValidatedIdTokenClaims(tokens);
  const result = {
    ok: true,
    par_endpoint: as.pushed_authorization_request_endpoint,
    expires_in: par.expires_in,
    sub: claims.sub,
    aud: claims.aud,
    nonce_ok: claims.nonce === nonce,
    token_type: tokens.token_type,
  };
  if (mode === 'reuse') {
    // no redirect_uri can be trusted for a spent request_uri: idp answers with its error page
    const again = await fetch(authUrl.href, { redirect: 'manual' });
    result.reuse_status = again.status;
    result.reuse_page_says_used = (await again.text()).includes('unknown, expired or used');
  }
  console.log(JSON.stringify(result));
}

main().catch((err) => {
  console.log(
    JSON.stringify({
      ok: false,
      error: err?.error ?? String(err?.message ?? err),
      code: err?.code ?? null,
      status: err?.status ?? null,
      message: String(err?.message ?? err),
    }),
  );
  process.exit(1);
});
