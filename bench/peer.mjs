// Benchmark peer: npm oidc-provider configured like idp for the client_credentials path.
//
//   node bench/peer.mjs --port 5601 [--workers 2] [--audience https://api.bench.test]
//
// One confidential client (client_secret_basic), RFC 9068 JWT access tokens for one API
// (resource indicator), RS256 with an RSA-2048 key generated at start and shared by all
// workers, served by node's cluster module on 127.0.0.1. The client id and secret come from
// PEER_CLIENT_ID / PEER_CLIENT_SECRET (defaults below); with PEER_CLIENT_JWKS (a JWK Set) the
// client authenticates with private_key_jwt instead (bench/pkj.py). Prints one "peer ready" line once
// every worker listens.
import cluster from 'node:cluster';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: '5601' },
    host: { type: 'string', default: '127.0.0.1' },
    workers: { type: 'string', default: '2' },
    audience: { type: 'string', default: 'https://api.bench.test' },
    scope: { type: 'string', default: 'read:things' },
    // RFC 9449 proofs accepted (no nonces), as idp's defaults: bench/dpop.py
    dpop: { type: 'boolean', default: false },
  },
});

const PORT = Number(opts.port);
const WORKERS = Number(opts.workers);
const CLIENT_ID = process.env.PEER_CLIENT_ID || 'bench';
const CLIENT_SECRET = process.env.PEER_CLIENT_SECRET || 'bench-secret-0123456789abcdef0123456789abcdef';
const CLIENT_JWKS = process.env.PEER_CLIENT_JWKS ? JSON.parse(process.env.PEER_CLIENT_JWKS) : null;

if (!['127.0.0.1', 'localhost', '::1'].includes(opts.host)) {
  throw new Error('the benchmark peer listens on loopback only');
}

function generateSigningJwk() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
}

// oidc-provider prints development notices through console.warn / console.info. The
// configuration below removes their causes (own keys, own adapter, no devInteractions, explicit
// TTLs); this filter only drops the ones that cannot be configured away, such as the Node 20
// "Unsupported runtime" warning printed at import time.
function silenceProviderNotices() {
  for (const level of ['warn', 'info']) {
    const original = console[level].bind(console);
    console[level] = (...args) => {
      const text = typeof args[0] === 'string' ? args[0] : '';
      if (/oidc-provider (WARNING|NOTICE)/.test(text)) return;
      original(...args);
    };
  }
}

// Minimal in-memory adapter: JWT access tokens are never stored, so nothing is persisted on
// this path. Supplying our own adapter also avoids the quick-start adapter warning.
class MemoryAdapter {
  static store = new Map();

  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const exp = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
    MemoryAdapter.store.set(this.key(id), { payload, exp });
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

  async findByUserCode() { return undefined; }

  async findByUid() { return undefined; }

  async consume(id) {
    const payload = await this.find(id);
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    MemoryAdapter.store.delete(this.key(id));
  }

  async revokeByGrantId() {}
}

function providerConfig(jwk) {
  const resourceServer = {
    scope: opts.scope,
    audience: opts.audience,
    accessTokenFormat: 'jwt',
    accessTokenTTL: 3600,
    jwt: { sign: { alg: 'RS256' } },
  };
  return {
    adapter: MemoryAdapter,
    clients: [{
      client_id: CLIENT_ID,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: opts.scope,
      // bench/pkj.py: private_key_jwt (RFC 7523) with the client's public keys by value
      ...(CLIENT_JWKS
        ? { token_endpoint_auth_method: 'private_key_jwt', jwks: CLIENT_JWKS,
          token_endpoint_auth_signing_alg: 'RS256' }
        : { token_endpoint_auth_method: 'client_secret_basic', client_secret: CLIENT_SECRET }),
    }],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    scopes: [opts.scope],
    features: {
      devInteractions: { enabled: false },
      dPoP: { enabled: opts.dpop },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: async () => false,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          if (resourceIndicator !== opts.audience) throw new errors.InvalidTarget();
          return resourceServer;
        },
      },
    },
    ttl: {
      AccessToken: 3600,
      ClientCredentials: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      Session: 86400,
      Grant: 86400,
    },
    clientBasedCORS: () => false,
  };
}

let errors;

async function runWorker() {
  silenceProviderNotices();
  const mod = await import('oidc-provider');
  const Provider = mod.default;
  ({ errors } = mod);
  const jwk = JSON.parse(process.env.PEER_SIGNING_JWK);
  const provider = new Provider(`http://${opts.host}:${PORT}`, providerConfig(jwk));
  provider.proxy = false;
  provider.on('server_error', (_ctx, err) => console.error('peer server_error:', err));
  provider.listen(PORT, opts.host);
}

function runPrimary() {
  const jwk = generateSigningJwk();
  let listening = 0;
  let shuttingDown = false;
  cluster.setupPrimary({ silent: false });
  for (let i = 0; i < WORKERS; i += 1) {
    cluster.fork({ PEER_SIGNING_JWK: JSON.stringify(jwk) });
  }
  cluster.on('listening', () => {
    listening += 1;
    if (listening === WORKERS) {
      console.log(`peer ready: oidc-provider on http://${opts.host}:${PORT} `
        + `(${WORKERS} workers, node ${process.version})`);
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    if (!shuttingDown) {
      console.error(`peer worker ${worker.process.pid} exited (code ${code}, signal ${signal})`);
      process.exitCode = 1;
    }
  });
  const stop = () => {
    shuttingDown = true;
    for (const worker of Object.values(cluster.workers)) worker.kill('SIGTERM');
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (cluster.isPrimary) {
  runPrimary();
} else {
  await runWorker();
}
