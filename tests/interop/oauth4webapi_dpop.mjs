// DPoP (RFC 9449) with a strict third-party client: npm oauth4webapi (panva), unmodified.
//
//   node oauth4webapi_dpop.mjs <issuer> <client_id> <redirect_uri> <email> <password> [par]
//
// A public client (PKCE, no secret) with an ES256 DPoP key (oauth4webapi's DPoP() handle):
// discovery, the authorization code flow (idp's login form driven with fetch and a cookie jar),
// the code bound to the key (dpop_jkt), its exchange with a proof, userinfo with the
// DPoP-bound token, a refresh with the same key and userinfo again. Every request is retried
// once when the server answers use_dpop_nonce (isDPoPNonceError), as the library's
// documentation prescribes; the retries are counted.
// Then the refusals: the refresh token with another key, the DPoP token presented as Bearer.
// With "par": the authorization request is pushed (RFC 9126) with the DPoP handle, whose proof
// at the PAR endpoint binds the code to the key (RFC 9449 §10.1, no dpop_jkt sent); the code is
// exchanged with that key and userinfo called, then a second pushed request's code is offered
// with another key and refused.
// Prints one JSON line; on any failure {"ok": false, ...} and exit 1.

import * as oauth from 'oauth4webapi';

const [issuerUrl, clientId, redirectUri, email, password, mode] = process.argv.slice(2);
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

// Follow idp's redirects, filling the login form once, until the browser would leave for the
// redirect_uri; returns that Location.
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

let nonceRetries = 0;

// The documented pattern: run the request, and once more if the answer asks for a nonce (the
// handle has then learnt it from the DPoP-Nonce header).
async function withNonceRetry(send) {
  try {
    return await send();
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    nonceRetries += 1;
    return send();
  }
}

async function refused(promise) {
  try {
    await promise;
  } catch (err) {
    const challenge = err instanceof oauth.WWWAuthenticateChallengeError ? err.cause[0] : undefined;
    return {
      status: err.status ?? null,
      error: err.error ?? challenge?.parameters?.error ?? null,
      scheme: challenge?.scheme ?? null,
    };
  }
  throw new Error('expected a refusal');
}

// PAR with the DPoP handle, then the login; no dpop_jkt: the proof at PAR binds the code.
async function pushAndLogIn(as, client, auth, DPoP) {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const parameters = new URLSearchParams({
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid email',
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const pushed = await withNonceRetry(async () => oauth.processPushedAuthorizationResponse(
    as, client,
    await oauth.pushedAuthorizationRequest(as, client, auth, parameters, { DPoP, ...insecure }),
  ));
  const authUrl = new URL(as.authorization_endpoint);
  authUrl.searchParams.set('client_id', client.client_id);
  authUrl.searchParams.set('request_uri', pushed.request_uri);
  const callback = new URL(await browse(authUrl.href));
  return { params: oauth.validateAuthResponse(as, client, callback, state), verifier, nonce };
}

async function redeem(as, client, auth, pushed, DPoP) {
  return withNonceRetry(async () => oauth.processAuthorizationCodeResponse(
    as, client,
    await oauth.authorizationCodeGrantRequest(
      as, client, auth, pushed.params, redirectUri, pushed.verifier, { DPoP, ...insecure },
    ),
    { expectedNonce: pushed.nonce, requireIdToken: true },
  ));
}

async function parFlow(as, client, auth) {
  const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
  const tokens = await redeem(as, client, auth, await pushAndLogIn(as, client, auth, DPoP), DPoP);
  const sub = oauth.getValidatedIdTokenClaims(tokens).sub;
  const userinfo = await withNonceRetry(async () => oauth.processUserInfoResponse(
    as, client, sub,
    await oauth.userInfoRequest(as, client, tokens.access_token, { DPoP, ...insecure }),
  ));
  const second = await pushAndLogIn(as, client, auth, DPoP);
  const other = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
  const otherKey = await refused(redeem(as, client, auth, second, other));
  return {
    ok: true,
    mode: 'par',
    jkt: await DPoP.calculateThumbprint(),
    token_type: tokens.token_type,
    access_token: tokens.access_token,
    sub,
    userinfo,
    other_key_code: otherKey,
    nonce_retries: nonceRetries,
  };
}

async function main() {
  const issuer = new URL(issuerUrl);
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, insecure),
  );
  const client = { client_id: clientId };
  const auth = oauth.None();
  if (mode === 'par') {
    console.log(JSON.stringify(await parFlow(as, client, auth)));
    return;
  }
  const keyPair = await oauth.generateKeyPair('ES256');
  const DPoP = oauth.DPoP(client, keyPair);

  const verifier = oauth.generateRandomCodeVerifier();
  const authUrl = new URL(as.authorization_endpoint);
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  for (const [k, v] of Object.entries({
    client_id: clientId,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid email offline_access',
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    dpop_jkt: await DPoP.calculateThumbprint(), // RFC 9449 §10: the code bound to the key
  })) authUrl.searchParams.set(k, v);

  const callback = new URL(await browse(authUrl.href));
  const params = oauth.validateAuthResponse(as, client, callback, state);
  const tokens = await withNonceRetry(async () => oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirectUri, verifier, {
      DPoP, ...insecure,
    }),
    { expectedNonce: nonce, requireIdToken: true },
  ));
  const sub = oauth.getValidatedIdTokenClaims(tokens).sub;
  const userinfo = await withNonceRetry(async () => oauth.processUserInfoResponse(
    as, client, sub,
    await oauth.userInfoRequest(as, client, tokens.access_token, { DPoP, ...insecure }),
  ));
  const refreshed = await withNonceRetry(async () => oauth.processRefreshTokenResponse(
    as, client,
    await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, {
      DPoP, ...insecure,
    }),
  ));
  const userinfo2 = await withNonceRetry(async () => oauth.processUserInfoResponse(
    as, client, sub,
    await oauth.userInfoRequest(as, client, refreshed.access_token, { DPoP, ...insecure }),
  ));

  // Refusals: the refresh token with another key (§5), the bound token as Bearer (§7.2).
  const other = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
  const otherKey = await refused(withNonceRetry(async () => oauth.processRefreshTokenResponse(
    as, client,
    await oauth.refreshTokenGrantRequest(as, client, auth, refreshed.refresh_token, {
      DPoP: other, ...insecure,
    }),
  )));
  const asBearer = await refused((async () => oauth.processUserInfoResponse(
    as, client, sub, await oauth.userInfoRequest(as, client, refreshed.access_token, insecure),
  ))());
  // The refused refresh rotated nothing: the right key still refreshes.
  const again = await withNonceRetry(async () => oauth.processRefreshTokenResponse(
    as, client,
    await oauth.refreshTokenGrantRequest(as, client, auth, refreshed.refresh_token, {
      DPoP, ...insecure,
    }),
  ));

  console.log(JSON.stringify({
    ok: true,
    dpop_algs: as.dpop_signing_alg_values_supported ?? null,
    jkt: await DPoP.calculateThumbprint(),
    token_type: tokens.token_type,
    access_token: tokens.access_token,
    sub,
    userinfo,
    refreshed_token_type: refreshed.token_type,
    refreshed_access_token: refreshed.access_token,
    userinfo_after_refresh: userinfo2,
    other_key_refresh: otherKey,
    bearer_userinfo: asBearer,
    refreshed_again: again.token_type,
    nonce_retries: nonceRetries,
  }));
}

main().catch((err) => {
  console.log(JSON.stringify({
    ok: false,
    error: String(err?.message ?? err),
    code: err?.code ?? null,
    cause: err?.cause ? JSON.stringify(err.cause).slice(0, 500) : null,
  }));
  process.exit(1);
});
