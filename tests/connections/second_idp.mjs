// A second SAML 2.0 identity provider for interop tests, built on npm `samlify` (its IdP
// side: no code of idp's, nor of the tests' pysaml2 IdP). samlify parses and checks the
// AuthnRequest (XML schema validation with xmllint-wasm, the SP's signature when the SP signs
// its requests), and builds, signs and optionally encrypts the Response. This file is only the
// HTTP glue a product has around it: a login form, the answer page, an admin endpoint.
//
//   node tests/connections/second_idp.mjs --key idp.key --cert idp.crt
//
// Listens on a free loopback port and prints one JSON line: {"base": "http://127.0.0.1:PORT"}.
//
//   GET  /metadata              the IdP's metadata (entity ID = this URL, SSO over
//                               HTTP-Redirect and HTTP-POST, the signing certificate)
//   POST /admin/sp?options      the IdP administrator loads an SP's metadata (the body);
//                               options: sign_response=1 (the whole Response signed too),
//                               encrypt=1 (the assertion encrypted to the SP's certificate),
//                               signed_requests=1 (AuthnRequests must be signed)
//   GET  /sso, POST /sso        the SSO service: the AuthnRequest parsed by samlify, then the
//                               login form (a username, no password)
//   POST /login                 the answer page: a form posting SAMLResponse and RelayState
//                               to the SP's ACS, with a button (no script)
//   GET  /requests              the AuthnRequests accepted so far (JSON), for the tests
//
// Users derive from the username: NameID the username (persistent), email
// <username>@second-idp.test unless the username has an @, given name the local part,
// family name "Second".
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const samlify = require('samlify');
const validator = require('@authenio/samlify-xmllint-wasm');

samlify.setSchemaValidator(validator);

const { values: args } = parseArgs({
  options: { key: { type: 'string' }, cert: { type: 'string' }, port: { type: 'string', default: '0' } },
});
const PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';
const BASIC = 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic';
const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
const PASSWORD_CONTEXT = 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport';

// samlify's default response, with an AuthnStatement (SAML 2.0 Profiles §4.1.4.2 wants one)
const TEMPLATE = samlify.SamlLib.defaultLoginResponseTemplate.context.replace(
  '{AuthnStatement}',
  '<saml:AuthnStatement AuthnInstant="{IssueInstant}" SessionIndex="{SessionIndex}">' +
    `<saml:AuthnContext><saml:AuthnContextClassRef>${PASSWORD_CONTEXT}</saml:AuthnContextClassRef>` +
    '</saml:AuthnContext></saml:AuthnStatement>',
);
const ATTRIBUTES = [
  ['mail', 'email'],
  ['givenName', 'givenName'],
  ['sn', 'surname'],
].map(([name, valueTag]) => ({
  name, valueTag, nameFormat: BASIC, valueXsiType: 'xs:string',
}));

function makeIdp(base, options = {}) {
  return samlify.IdentityProvider({
    entityID: `${base}/metadata`,
    privateKey: readFileSync(args.key, 'utf8'),
    signingCert: readFileSync(args.cert, 'utf8'),
    nameIDFormat: [PERSISTENT],
    singleSignOnService: [
      { Binding: REDIRECT, Location: `${base}/sso` },
      { Binding: POST, Location: `${base}/sso` },
    ],
    requestSignatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    wantAuthnRequestsSigned: Boolean(options.signed_requests),
    isAssertionEncrypted: Boolean(options.encrypt),
    loginResponseTemplate: { context: TEMPLATE, attributes: ATTRIBUTES },
  });
}

const sps = []; // {sp, idp, entityID, options}, newest first
const pending = new Map(); // login ticket -> {sp, idp, info, relayState}
const accepted = [];

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function body(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function parseRequest(binding, request) {
  let last = new Error('no SP is registered');
  for (const entry of sps) {
    try {
      const info = await entry.idp.parseLoginRequest(entry.sp, binding, request);
      if (info.extract?.issuer !== entry.entityID) throw new Error('issuer is another SP');
      return { entry, info };
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

function user(username) {
  const email = username.includes('@') ? username : `${username}@second-idp.test`;
  const local = email.split('@')[0];
  return { nameID: username, email, givenName: local.charAt(0).toUpperCase() + local.slice(1), surname: 'Second' };
}

// samlify's documented way to fill a response template: every tag, attributes included
function filler(idp, sp, info, person) {
  return (template) => {
    const id = idp.entitySetting.generateID();
    const now = new Date();
    const later = new Date(now.getTime() + 5 * 60 * 1000).toISOString();
    const acs = sp.entityMeta.getAssertionConsumerService('post');
    const values = {
      ID: id,
      AssertionID: idp.entitySetting.generateID(),
      Destination: acs,
      Audience: sp.entityMeta.getEntityID(),
      SubjectRecipient: acs,
      NameIDFormat: PERSISTENT,
      NameID: person.nameID,
      Issuer: idp.entityMeta.getEntityID(),
      IssueInstant: now.toISOString(),
      ConditionsNotBefore: now.toISOString(),
      ConditionsNotOnOrAfter: later,
      SubjectConfirmationDataNotOnOrAfter: later,
      AssertionConsumerServiceURL: acs,
      EntityID: sp.entityMeta.getEntityID(),
      InResponseTo: info.extract.request.id,
      StatusCode: 'urn:oasis:names:tc:SAML:2.0:status:Success',
      SessionIndex: `_${randomUUID()}`,
      attrEmail: person.email,
      attrGivenName: person.givenName,
      attrSurname: person.surname,
    };
    return { id, context: samlify.SamlLib.replaceTagsByValue(template, values) };
  };
}

function loginPage(ticket) {
  return '<!doctype html><title>Second IdP</title><h1>Sign in to the second IdP</h1>' +
    '<form method="post" action="/login">' +
    `<input type="hidden" name="ticket" value="${escape(ticket)}">` +
    '<label>Username <input name="username" autofocus></label>' +
    '<button type="submit">Sign in</button></form>';
}

async function sso(req, res, binding, request) {
  let parsed;
  try {
    parsed = await parseRequest(binding, request);
  } catch (err) {
    return send(res, 400, `refused: ${escape(err?.message ?? err)}`.slice(0, 300));
  }
  const { entry, info } = parsed;
  const relayState = binding === 'redirect' ? request.query.RelayState : request.body.RelayState;
  const signed = binding === 'redirect' ? Boolean(request.query.Signature)
    : info.samlContent.includes('Signature');
  accepted.push({
    id: info.extract.request.id, binding, signed, issuer: entry.entityID,
    force_authn: /ForceAuthn="(true|1)"/.test(info.samlContent),
  });
  const ticket = randomUUID();
  pending.set(ticket, { entry, info, relayState });
  send(res, 200, loginPage(ticket));
}

async function login(res, form) {
  const ticket = form.get('ticket');
  const username = form.get('username');
  const found = pending.get(ticket);
  if (!found || !username) return send(res, 400, 'unknown ticket');
  pending.delete(ticket);
  const { entry, info, relayState } = found;
  const answer = await entry.idp.createLoginResponse(entry.sp, info, 'post', user(username), {
    relayState,
    customTagReplacement: filler(entry.idp, entry.sp, info, user(username)),
    // a Response signature over the EncryptedAssertion (samlify otherwise signs the Response
    // before encrypting, which leaves a signature over content that is no longer there)
    encryptThenSign: Boolean(entry.options.encrypt),
  });
  const fields = { SAMLResponse: answer.context };
  if (relayState !== undefined) fields.RelayState = relayState;
  const inputs = Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${k}" value="${escape(v)}">`).join('');
  send(res, 200, '<!doctype html><title>Second IdP</title><h1>Signed in</h1>' +
    `<form method="post" action="${escape(answer.entityEndpoint)}">${inputs}` +
    '<button type="submit">Continue</button></form>');
}

function rawQuery(url) {
  const i = url.indexOf('?');
  return i < 0 ? '' : url.slice(i + 1);
}

// Bindings §3.4.4.1: the signed octets are the query's own encoding, in this order
function octetString(raw) {
  const parts = Object.fromEntries(raw.split('&').map((p) => [p.split('=')[0], p]));
  return ['SAMLRequest', 'RelayState', 'SigAlg'].filter((k) => parts[k]).map((k) => parts[k]).join('&');
}

let base = '';
const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, base);
    if (req.method === 'GET' && url.pathname === '/metadata') {
      return send(res, 200, makeIdp(base).getMetadata(), 'application/samlmetadata+xml');
    }
    if (req.method === 'GET' && url.pathname === '/requests') {
      return send(res, 200, JSON.stringify(accepted), 'application/json');
    }
    if (req.method === 'POST' && url.pathname === '/admin/sp') {
      const options = Object.fromEntries(url.searchParams);
      const metadata = await body(req);
      const sp = samlify.ServiceProvider({ metadata, wantMessageSigned: Boolean(options.sign_response) });
      const entityID = sp.entityMeta.getEntityID();
      const at = sps.findIndex((e) => e.entityID === entityID);
      if (at >= 0) sps.splice(at, 1);
      sps.unshift({ sp, idp: makeIdp(base, options), entityID, options });
      res.writeHead(204);
      return res.end();
    }
    if (url.pathname === '/sso' && req.method === 'GET') {
      const raw = rawQuery(req.url);
      const query = Object.fromEntries(url.searchParams);
      return await sso(req, res, 'redirect', { query, octetString: octetString(raw) });
    }
    if (url.pathname === '/sso' && req.method === 'POST') {
      const form = Object.fromEntries(new URLSearchParams(await body(req)));
      return await sso(req, res, 'post', { body: form });
    }
    if (url.pathname === '/login' && req.method === 'POST') {
      return await login(res, new URLSearchParams(await body(req)));
    }
    send(res, 404, 'not found');
  } catch (err) {
    console.error(err);
    send(res, 500, 'error');
  }
});

server.listen(Number(args.port), '127.0.0.1', () => {
  base = `http://127.0.0.1:${server.address().port}`;
  process.stdout.write(`${JSON.stringify({ base })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
