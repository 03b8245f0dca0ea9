// A strict third-party relying party against idp: npm openid-client v6 (panva), unmodified.
//
//   node openid_client_flow.mjs <issuer> <client_id> <client_secret> <redirect_uri> <email> <password> [post|basic]
//
// Discovery, authorization code + PKCE (S256) with state and nonce, idp's login form driven with
// fetch and a small cookie jar, the code exchange (openid-client validates the ID token, the
// nonce and the RFC 9207 `iss` parameter), userinfo and a refresh. Prints one JSON line; on any
// failure prints {"ok": false, "error": ..., "code": ...} and exits 1.

import * as client from 'openid-client';

const [issuer, clientId, clientSecret, redirectUri, email, password, authMode = 'post'] =
  process.argv.slice(2);

class CookieJar {
  constructor() {
    this.cookies = new Map();
  }

  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => {
        const [k, v = ''] = a.trim().split('=');
        if (k.toLowerCase() === 'max-age') return Number(v) <= 0;
        if (k.toLowerCase() === 'expires') return Date.parse(v) <= Date.now();
        return false;
      });
      if (expired || value === '' || value === '""') this.cookies.delete(name);
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

// Follow idp's redirects with our cookie jar, filling the login form once, until the browser
// would leave for the redirect_uri. Returns that final Location.
async function browse(startUrl) {
  const jar = new CookieJar();
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
    // the login form: shown by /authorize itself, or again by /interaction/<uid>/login
    const action = html.match(/<form method="post" action="(\/interaction\/[^/"]+\/login)"/);
    if (res.status === 200 && action) {
      if (loginPosted) throw new Error('login form shown again after posting credentials');
      const form = new URLSearchParams({
        csrf_token: hiddenInput(html, 'csrf_token'),
        email,
        password,
      });
      method = 'POST';
      body = form.toString();
      url = new URL(action[1], url).href;
      loginPosted = true;
      continue;
    }
    throw new Error(`unexpected ${res.status} at ${url}: ${html.slice(0, 200)}`);
  }
  throw new Error('too many redirects');
}

async function main() {
  const auth = authMode === 'basic' ? client.ClientSecretBasic(clientSecret) : undefined;
  const config = await client.discovery(new URL(issuer), clientId, clientSecret, auth, {
    execute: [client.allowInsecureRequests],
  });
  const meta = config.serverMetadata();

  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(pkceCodeVerifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email offline_access',
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state,
    nonce,
  });

  const callback = await browse(authUrl.href);
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  const refreshedClaims = refreshed.claims();
  const userinfo2 = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);

  console.log(
    JSON.stringify({
      ok: true,
      issuer: meta.issuer,
      callback_iss: new URL(callback).searchParams.get('iss'),
      sub: claims.sub,
      aud: claims.aud,
      nonce_ok: claims.nonce === nonce,
      auth_time: claims.auth_time ?? null,
      token_type: tokens.token_type,
      scope: tokens.scope ?? null,
      has_refresh_token: typeof tokens.refresh_token === 'string',
      userinfo,
      refreshed: {
        sub: refreshedClaims?.sub ?? null,
        auth_time: refreshedClaims?.auth_time ?? null,
        new_refresh_token:
          typeof refreshed.refresh_token === 'string' &&
          refreshed.refresh_token !== tokens.refresh_token,
        access_token_changed: refreshed.access_token !== tokens.access_token,
      },
      userinfo_after_refresh: userinfo2,
    }),
  );
}

main().catch((err) => {
  console.log(
    JSON.stringify({
      ok: false,
      error: String(err?.message ?? err),
      code: err?.code ?? null,
      cause: err?.cause ? JSON.stringify(err.cause).slice(0, 500) : null,
    }),
  );
  process.exit(1);
});
