// The authorization request's finer parameters with a strict third-party client: npm
// oauth4webapi (panva), unmodified.
//
//   node oauth4webapi_request_params.mjs <issuer> <client_id> <client_secret> <redirect_uri> <email> <password>
//
// Discovery (claims_parameter_supported, response_modes_supported, acr_values_supported), then
// code + PKCE with response_mode=form_post, max_age=0 and a claims request (email essential in
// the ID token, the single-factor acr, name at userinfo): idp's login form driven with fetch and
// a cookie jar, the form_post page read as the redirect URI's POST body would be, checked by
// validateAuthResponse (iss, state), the code exchange (processAuthorizationCodeResponse checks
// the ID token, nonce and auth_time against maxAge 0), userinfo. Then max_age=0 again with the
// session: the login form again. The refusal: an essential acr idp cannot meet, by form_post,
// which validateAuthResponse turns into an AuthorizationResponseError (access_denied).
// Prints one JSON line; on any failure {"ok": false, ...} and exit 1.

import * as oauth from 'oauth4webapi';

const [issuerUrl, clientId, clientSecret, redirectUri, email, password] = process.argv.slice(2);
const insecure = { [oauth.allowInsecureRequests]: true }; // the live test server is loopback http
const SINGLE_FACTOR = 'urn:idp:acr:single-factor';

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

const unescape = (v) =>
  v.replace(/&#34;|&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

function hiddenInputs(html) {
  const out = new URLSearchParams();
  for (const tag of html.match(/<input[^>]+>/g) ?? []) {
    const name = tag.match(/name="([^"]+)"/);
    const value = tag.match(/value="([^"]*)"/);
    if (name && tag.includes('type="hidden"')) out.append(name[1], value ? unescape(value[1]) : '');
  }
  return out;
}

// Follow idp's redirects with `jar`, filling the login form (counted), until idp answers with
// its form_post page. Returns what the redirect URI would receive: the form's action and body.
async function browse(jar, startUrl) {
  let url = startUrl;
  let method = 'GET';
  let body;
  let logins = 0;
  for (let hop = 0; hop < 12; hop += 1) {
    const headers = { cookie: jar.header() };
    if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, { method, headers, body, redirect: 'manual' });
    jar.store(res);
    method = 'GET';
    body = undefined;
    if ([301, 302, 303, 307, 308].includes(res.status)) {
      const location = new URL(res.headers.get('location'), url).href;
      if (location.startsWith(redirectUri)) throw new Error(`a redirect, not form_post: ${location}`);
      url = location;
      continue;
    }
    const html = await res.text();
    const login = html.match(/<form method="post" action="(\/interaction\/[^/"]+\/login)"/);
    if (res.status === 200 && login) {
      const fields = hiddenInputs(html);
      fields.set('email', email);
      fields.set('password', password);
      body = fields.toString();
      method = 'POST';
      url = new URL(login[1], url).href;
      logins += 1;
      continue;
    }
    const post = html.match(/<form id="form-post" method="post" action="([^"]+)"/);
    if (res.status === 200 && post) {
      return {
        action: unescape(post[1]),
        params: hiddenInputs(html),
        csp: res.headers.get('content-security-policy'),
        inlineScript: /<script(?![^>]*\bsrc=)[^>]*>/.test(html),
        logins,
      };
    }
    throw new Error(`unexpected ${res.status} at ${url}: ${html.slice(0, 200)}`);
  }
  throw new Error('too many redirects');
}

async function authorizationUrl(as, extra) {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const url = new URL(as.authorization_endpoint);
  const params = {
    client_id: clientId,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid',
    state,
    nonce,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    response_mode: 'form_post',
    ...extra,
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return { url: url.href, verifier, state, nonce };
}

async function main() {
  const issuer = new URL(issuerUrl);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
  const client = { client_id: clientId };
  const auth = oauth.ClientSecretBasic(clientSecret);
  const jar = new CookieJar();

  const claims = JSON.stringify({
    id_token: { email: { essential: true }, acr: { values: [SINGLE_FACTOR] } },
    userinfo: { name: null },
  });
  const first = await authorizationUrl(as, { max_age: '0', claims });
  const posted = await browse(jar, first.url);
  if (posted.action !== redirectUri) throw new Error(`form action ${posted.action}`);
  const callback = oauth.validateAuthResponse(as, client, posted.params, first.state);
  const response = await oauth.authorizationCodeGrantRequest(
    as, client, auth, callback, redirectUri, first.verifier, insecure,
  );
  const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, {
    expectedNonce: first.nonce,
    maxAge: 0,
    requireIdToken: true,
  });
  const idClaims = oauth.getValidatedIdTokenClaims(tokens);
  const info = await oauth.processUserInfoResponse(
    as, client, idClaims.sub,
    await oauth.userInfoRequest(as, client, tokens.access_token, insecure),
  );

  // max_age=0 again, this browser has a session: the login form all the same
  const again = await authorizationUrl(as, { max_age: '0' });
  const second = await browse(jar, again.url);
  const secondCallback = oauth.validateAuthResponse(as, client, second.params, again.state);

  // the refusal: an essential acr idp cannot meet, answered by form_post
  const refused = await authorizationUrl(as, {
    claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['urn:example:loa:4'] } } }),
  });
  const denied = await browse(new CookieJar(), refused.url);
  let refusal = null;
  try {
    oauth.validateAuthResponse(as, client, denied.params, refused.state);
  } catch (err) {
    if (!(err instanceof oauth.AuthorizationResponseError)) throw err;
    refusal = err.error;
  }

  console.log(JSON.stringify({
    ok: true,
    metadata: {
      claims_parameter_supported: as.claims_parameter_supported,
      response_modes_supported: as.response_modes_supported,
      acr_values_supported: as.acr_values_supported,
    },
    form_post: { csp: posted.csp, inline_script: posted.inlineScript, fields: [...posted.params.keys()].sort() },
    logins_first: posted.logins,
    id_token: { sub: idClaims.sub, email: idClaims.email, acr: idClaims.acr, auth_time: idClaims.auth_time, name: idClaims.name ?? null },
    userinfo: info,
    logins_with_session_and_max_age_0: second.logins,
    second_code: Boolean(secondCallback.get('code')),
    refusal,
    refusal_logins: denied.logins,
  }));
}

main().catch((err) => {
  console.log(JSON.stringify({ ok: false, error: String(err?.message ?? err), code: err?.code ?? null }));
  process.exit(1);
});
