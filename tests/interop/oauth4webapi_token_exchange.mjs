// RFC 8693 token exchange against idp with a strict third-party client: npm oauth4webapi
// (panva), unmodified.
//
//   node oauth4webapi_token_exchange.mjs <issuer> <client_id> <client_secret> <subject_token> <audience> <scope> [actor_token]
//
// Discovery (the library checks the issuer), then genericTokenEndpointRequest with the
// token-exchange grant and processGenericTokenEndpointResponse (which checks the response's
// shape: token_type, expires_in, scope), then two refusals the library must surface as
// ResponseBodyError: a subject token idp's action rejects, and a requested_token_type idp does
// not issue. Prints one JSON line; on an unexpected failure {"ok": false, "error": ...}, exit 1.

import * as oauth from 'oauth4webapi';

const [issuer, clientId, clientSecret, subjectToken, audience, scope, actorToken] =
  process.argv.slice(2);
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const AT = 'urn:ietf:params:oauth:token-type:access_token';
const insecure = { [oauth.allowInsecureRequests]: true }; // loopback http in the tests

async function refusal(as, client, auth, parameters) {
  const response = await oauth.genericTokenEndpointRequest(as, client, auth, GRANT, parameters, insecure);
  try {
    await oauth.processGenericTokenEndpointResponse(as, client, response);
  } catch (err) {
    if (err instanceof oauth.ResponseBodyError) {
      return { error: err.error, status: err.status, description: err.error_description };
    }
    throw err;
  }
  throw new Error('the refusal was answered with tokens');
}

try {
  const issuerUrl = new URL(issuer);
  const as = await oauth.processDiscoveryResponse(
    issuerUrl,
    await oauth.discoveryRequest(issuerUrl, { algorithm: 'oauth2', ...insecure }),
  );
  const client = { client_id: clientId };
  const auth = oauth.ClientSecretBasic(clientSecret);
  const parameters = { subject_token: subjectToken, subject_token_type: AT, audience, scope };
  if (actorToken) Object.assign(parameters, { actor_token: actorToken, actor_token_type: AT });
  const response = await oauth.genericTokenEndpointRequest(as, client, auth, GRANT, parameters, insecure);
  const result = await oauth.processGenericTokenEndpointResponse(as, client, response);
  const rejected = await refusal(as, client, auth, { ...parameters, subject_token: 'not-a-token' });
  const unsupported = await refusal(as, client, auth, {
    ...parameters, requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token',
  });
  console.log(JSON.stringify({
    ok: true,
    advertised: (as.grant_types_supported ?? []).includes(GRANT),
    access_token: result.access_token,
    issued_token_type: result.issued_token_type,
    token_type: result.token_type,
    scope: result.scope,
    expires_in: result.expires_in,
    refresh_token: result.refresh_token ?? null,
    rejected,
    unsupported,
  }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err?.message ?? err), code: err?.code ?? null }));
  process.exit(1);
}
