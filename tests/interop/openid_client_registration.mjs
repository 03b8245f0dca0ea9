// Dynamic client registration (RFC 7591) with npm openid-client v6 (panva), unmodified: its
// dynamicClientRegistration() (oauth4webapi's request and strict response processing)
// registers a client with an initial access token, then the same Configuration runs the
// authorization code flow with PKCE, state and nonce (the library validates the ID token), and
// userinfo; RFC 7592 is then exercised with fetch on the registration_client_uri (read, delete).
//
//   node openid_client_registration.mjs <issuer> <initial_access_token> <email> <password> [refusal]
//
// With "refusal" it registers with an http redirect URI and prints the library's error.
// Prints one JSON line.

import * as client from 'openid-client';

const [issuer, initialAccessToken, email, password, mode] = process.argv.slice(2);
const redirectUri = 'https://rp.example/cb';

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

function csrf(html) {
  const m = html.match(/name="csrf_token" value="([^"]*)"/);
  if (!m) throw new Error('no csrf_token in the page');
  return m[1];
}

// idp's login form, then its consent page (a registered client is third-party), until the
// browser would leave for the redirect URI.
async function browse(startUrl) {
  const jar = new CookieJar();
  let url = startUrl;
  let method = 'GET';
  let body;
  for (let hop = 0; hop < 15; hop += 1) {
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
    const login = html.match(/<form method="post" action="(\/interaction\/[^/"]+\/login)"/);
    const consent = html.match(/<form method="post" action="(\/interaction\/[^/"]+\/consent)"/);
    if (res.status === 200 && (login || consent)) {
      const fields = login
        ? { csrf_token: csrf(html), email, password }
        : { csrf_token: csrf(html), decision: 'allow' };
      method = 'POST';
      body = new URLSearchParams(fields).toString();
      url = new URL((login || consent)[1], url).href;
      continue;
    }
    throw new Error(`unexpected ${res.status} at ${url}: ${html.slice(0, 200)}`);
  }
  throw new Error('too many redirects');
}

const options = { initialAccessToken, execute: [client.allowInsecureRequests] };

async function refusal() {
  try {
    await client.dynamicClientRegistration(
      new URL(issuer),
      { redirect_uris: ['http://rp.example/cb'], client_name: 'Plain http' },
      undefined,
      options,
    );
    return { ok: true };
  } catch (err) {
    // a 401 is a WWW-Authenticate challenge error: its parameters carry the error code
    const challenge = Array.isArray(err.cause) ? err.cause[0] : undefined;
    return {
      ok: false,
      name: err.name,
      error: err.error ?? challenge?.parameters?.error ?? null,
      status: err.status ?? null,
      description: err.error_description ?? null,
    };
  }
}

async function main() {
  if (mode === 'refusal') return refusal();
  const config = await client.dynamicClientRegistration(
    new URL(issuer),
    {
      redirect_uris: [redirectUri],
      client_name: 'openid-client RP',
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_post',
      contacts: ['ops@rp.example'],
    },
    undefined,
    options,
  );
  const registered = config.clientMetadata();
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email',
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const tokens = await client.authorizationCodeGrant(config, new URL(await browse(authUrl.href)), {
    pkceCodeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  const bearer = { authorization: `Bearer ${registered.registration_access_token}` };
  const read = await fetch(registered.registration_client_uri, { headers: bearer });
  const readBody = await read.json();
  const deleted = await fetch(registered.registration_client_uri, { method: 'DELETE', headers: bearer });
  const after = await fetch(registered.registration_client_uri, { headers: bearer });
  return {
    ok: true,
    client_id: config.clientMetadata().client_id,
    has_secret: typeof registered.client_secret === 'string',
    contacts: registered.contacts ?? null,
    aud: claims.aud,
    sub: claims.sub,
    nonce_ok: claims.nonce === nonce,
    userinfo_sub: userinfo.sub,
    read_status: read.status,
    read_client_id: readBody.client_id,
    delete_status: deleted.status,
    after_delete_status: after.status,
  };
}

main().then(
  (out) => console.log(JSON.stringify(out)),
  (err) => {
    console.log(JSON.stringify({ ok: false, crashed: true, error: String(err), code: err.code ?? null }));
    process.exit(1);
  },
);
