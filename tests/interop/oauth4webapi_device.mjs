// The device authorization grant (RFC 8628) from a strict third-party client: npm
// oauth4webapi 3.8.9 (panva), unmodified, as a device would use it.
//
//   node oauth4webapi_device.mjs <issuer> <client_id> <scope>
//
// Discovery, then deviceAuthorizationRequest / processDeviceAuthorizationResponse; the
// answer is printed as one JSON line ({"step": "authorize", ...}) for the test to act as the
// person at the verification page. Then it polls with deviceCodeGrantRequest /
// processDeviceCodeResponse as the library's documentation says: a second poll at once
// (provoking slow_down, which the library reports as a ResponseBodyError), then at the
// interval, +5 s after each slow_down, until tokens or a refusal. Prints one last JSON line:
// {"ok": true, ...} or {"ok": false, "error": ...}.

import * as oauth from 'oauth4webapi';

const [issuer, clientId, scope] = process.argv.slice(2);
const insecure = { [oauth.allowInsecureRequests]: true }; // a loopback test server on http

const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

async function main() {
  const issuerUrl = new URL(issuer);
  const as = await oauth.processDiscoveryResponse(
    issuerUrl,
    await oauth.discoveryRequest(issuerUrl, insecure),
  );
  const client = { client_id: clientId };
  const auth = oauth.None();

  const started = await oauth.processDeviceAuthorizationResponse(
    as,
    client,
    await oauth.deviceAuthorizationRequest(as, client, auth, { scope }, insecure),
  );
  console.log(JSON.stringify({ step: 'authorize', ...started, device_code: undefined }));

  let interval = started.interval ?? 5;
  const seen = { authorization_pending: 0, slow_down: 0 };
  let wait = 0; // the first two polls at once: the second must be slow_down
  for (let attempt = 0; attempt < 40; attempt += 1) {
    await sleep(wait);
    wait = interval;
    try {
      const tokens = await oauth.processDeviceCodeResponse(
        as,
        client,
        await oauth.deviceCodeGrantRequest(as, client, auth, started.device_code, insecure),
      );
      const claims = oauth.getValidatedIdTokenClaims(tokens);
      return {
        ok: true,
        seen,
        sub: claims?.sub,
        aud: claims?.aud,
        token_type: tokens.token_type,
        scope: tokens.scope ?? null,
        refresh: typeof tokens.refresh_token === 'string',
      };
    } catch (err) {
      if (!(err instanceof oauth.ResponseBodyError)) throw err;
      if (err.error === 'authorization_pending') {
        seen.authorization_pending += 1;
        if (seen.authorization_pending === 1 && seen.slow_down === 0) wait = 0;
        continue;
      }
      if (err.error === 'slow_down') {
        seen.slow_down += 1;
        interval += 5; // RFC 8628 §3.5
        wait = interval;
        continue;
      }
      return { ok: false, seen, error: err.error, status: err.status };
    }
  }
  return { ok: false, seen, error: 'gave up' };
}

main().then(
  (result) => {
    console.log(JSON.stringify(result));
    process.exit(0);
  },
  (err) => {
    console.log(JSON.stringify({ ok: false, error: String(err), code: err?.code }));
    process.exit(1);
  },
);
