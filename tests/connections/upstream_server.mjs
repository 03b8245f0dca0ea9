// A real upstream OpenID provider for the connection tests: npm oidc-provider, unmodified.
//
//   node tests/connections/upstream_server.mjs [--port 0] [--redirect-uri URI]...
//
// Prints one JSON line {"ready": true, "issuer": ..., "kid": ...} once it listens on 127.0.0.1.
// Configuration comes from the environment (tests/connections/upstream.py sets it):
//   UPSTREAM_CLIENTS   JSON list of static clients ({client_id, client_secret?,
//                      token_endpoint_auth_method, jwks?}); redirect_uris come from --redirect-uri
//                      and POST /test/redirect-uris.
//
// The dev interactions are on: the login form accepts any login and any password. The account
// is the login: sub = login, email = login (or login@upstream.test), email_verified is true only
// for a login starting with "verified-"; userinfo adds locale and picture (absent from the ID
// token, so a test can see userinfo merged). Code flow only, PKCE required for every client.
//
// Test routes (not part of any spec):
//   POST /test/rotate          replace the signing key (the JWKS then holds only the new key)
//   POST /test/redirect-uris   body: one URI; registers it for every client
//   GET  /gh/user              GitHub-shaped profile (Bearer: an access token this server issued)
//   GET  /gh/user/emails       GitHub-shaped [{email, primary, verified}]
//
// Rotation and new redirect URIs build a new Provider over the same in-memory store and the
// same cookie keys, so sessions, codes and tokens issued before survive them.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'redirect-uri': { type: 'string', multiple: true, default: [] },
  },
});

// oidc-provider warns about development features on purpose; this test server uses them.
for (const level of ['warn', 'info']) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    const text = typeof args[0] === 'string' ? args[0] : '';
    if (/oidc-provider (WARNING|NOTICE)/.test(text)) return;
    original(...args);
  };
}

const { default: Provider } = await import('oidc-provider');

class MemoryAdapter {
  static store = new Map();

  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const exp = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
    MemoryAdapter.store.set(this.key(id), { payload, exp });
    if (payload.uid) MemoryAdapter.store.set(`${this.model}:uid:${payload.uid}`, { payload: id });
  }

  async find(id) {
    const entry = MemoryAdapter.store.get(this.key(id));
    if (!entry) return undefined;
    if (entry.exp && entry.exp < Date.now()) {
      MemoryAdapter.store.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }

  async findByUid(uid) {
    const ref = MemoryAdapter.store.get(`${this.model}:uid:${uid}`);
    return ref ? this.find(ref.payload) : undefined;
  }

  async findByUserCode() { return undefined; }

  async consume(id) {
    const entry = MemoryAdapter.store.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { MemoryAdapter.store.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    for (const [key, entry] of MemoryAdapter.store) {
      if (entry.payload && entry.payload.grantId === grantId) MemoryAdapter.store.delete(key);
    }
  }
}

function newSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
}

function capitalise(word) { return word.charAt(0).toUpperCase() + word.slice(1); }

// The account a login names. Everything derives from the login, so tests can predict it.
function account(login) {
  const email = login.includes('@') ? login : `${login}@upstream.test`;
  const local = email.split('@')[0].replace(/^verified-/, '');
  const given = capitalise(local.split(/[._+-]/)[0] || 'user');
  const profile = {
    sub: login,
    email,
    email_verified: login.startsWith('verified-'),
    name: `${given} Upstream`,
    given_name: given,
    family_name: 'Upstream',
    nickname: local,
  };
  const extra = { locale: 'fr-FR', picture: `https://pictures.upstream.test/${encodeURIComponent(local)}.png` };
  return { profile, extra };
}

const clients = JSON.parse(process.env.UPSTREAM_CLIENTS || '[]');
const redirectUris = [...opts['redirect-uri']];
const cookieKeys = [randomBytes(32).toString('hex')];
let signingKey = newSigningKey();
let provider;
let issuer;

function configuration() {
  return {
    adapter: MemoryAdapter,
    clients: clients.map((c) => ({
      grant_types: ['authorization_code'],
      response_types: ['code'],
      ...c,
      redirect_uris: redirectUris,
    })),
    jwks: { keys: [signingKey] },
    cookies: { keys: cookieKeys },
    responseTypes: ['code'],
    pkce: { required: () => true },
    // Scope claims go to the ID token as well (not only userinfo): the tests see both sources.
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'nickname', 'locale', 'picture'],
    },
    // GitHub's scopes too, so the github preset's unchanged scopes are granted here.
    scopes: ['openid', 'email', 'profile', 'offline_access', 'read:user', 'user:email'],
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims(use) {
          const { profile, extra } = account(id);
          return use === 'userinfo' ? { ...profile, ...extra } : profile;
        },
      };
    },
    // First-party client: consent is implied, so one login form is the whole interaction.
    async loadExistingGrant(ctx) {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope(ctx.oidc.requestParamScopes ? [...ctx.oidc.requestParamScopes].join(' ') : 'openid');
      grant.addOIDCClaims(['sub', 'email', 'email_verified', 'name', 'given_name', 'family_name',
        'nickname', 'locale', 'picture']);
      await grant.save();
      return grant;
    },
    ttl: {
      AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, Interaction: 3600,
      Session: 86400, Grant: 86400, RefreshToken: 86400,
    },
    clientBasedCORS: () => false,
  };
}

function build() {
  const next = new Provider(issuer, configuration());
  next.proxy = false;
  next.on('server_error', (_ctx, err) => console.error('upstream server_error:', err));
  provider = next;
  handler = next.callback();
}

let handler;

function send(res, status, body, type = 'application/json') {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

// GitHub's shapes (docs.github.com/rest/users): a numeric id, login, name, avatar_url; emails
// as [{email, primary, verified, visibility}]. Found by the opaque access token we issued.
async function githubAccount(req) {
  const auth = req.headers.authorization || '';
  const match = /^Bearer (.+)$/i.exec(auth);
  if (!match) return undefined;
  const token = await provider.AccessToken.find(match[1]);
  return token && !token.isExpired ? token.accountId : undefined;
}

function githubId(login) {
  return parseInt(createHash('sha256').update(login).digest('hex').slice(0, 8), 16);
}

async function testRoutes(req, res, url) {
  if (req.method === 'POST' && url.pathname === '/test/rotate') {
    signingKey = newSigningKey();
    build();
    return send(res, 200, { kid: signingKey.kid });
  }
  if (req.method === 'POST' && url.pathname === '/test/redirect-uris') {
    const uri = (await readBody(req)).trim();
    if (!redirectUris.includes(uri)) redirectUris.push(uri);
    build();
    return send(res, 200, { redirect_uris: redirectUris });
  }
  if (req.method === 'GET' && (url.pathname === '/gh/user' || url.pathname === '/gh/user/emails')) {
    const login = await githubAccount(req);
    if (!login) return send(res, 401, { message: 'Bad credentials' });
    const { profile } = account(login);
    if (url.pathname === '/gh/user/emails') {
      return send(res, 200, [
        { email: `other-${profile.nickname}@elsewhere.test`, primary: false, verified: true, visibility: null },
        { email: profile.email, primary: true, verified: profile.email_verified, visibility: 'private' },
      ]);
    }
    return send(res, 200, {
      id: githubId(login), login: profile.nickname, name: profile.name, email: null,
      avatar_url: `https://avatars.upstream.test/u/${githubId(login)}`, type: 'User',
    });
  }
  return undefined;
}

const server = createServer((req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname.startsWith('/test/') || url.pathname.startsWith('/gh/')) {
    testRoutes(req, res, url).then((done) => {
      if (done === undefined && !res.headersSent) send(res, 404, { error: 'not_found' });
    }).catch((err) => {
      console.error(err);
      if (!res.headersSent) send(res, 500, { error: 'server_error' });
    });
    return;
  }
  handler(req, res);
});

server.listen(Number(opts.port), '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  build();
  console.log(JSON.stringify({ ready: true, issuer, kid: signingKey.kid }));
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
