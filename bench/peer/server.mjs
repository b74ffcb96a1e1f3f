// Peer OAuth server for Tessera's benchmark: node `oidc-provider` configured
// for the same job Tessera does in the benchmark — the `client_credentials`
// grant issuing RS256-signed JWT access tokens for the resource
// `https://bench/api`.
//
// Environment:
//   PEER_PORT        port to listen on (127.0.0.1 only); required
//   PEER_ISSUER      issuer URL (default http://127.0.0.1:$PEER_PORT)
//   PEER_KEY_FILE    optional path of a private RSA JWK: loaded when it exists,
//                    generated (RSA-2048) and written when it does not — the
//                    peer's counterpart of Tessera's "existing database".
//                    Without it a fresh key is generated on every start.
//   PEER_WORKERS     number of processes (node:cluster); default 1, the plain
//                    single-process deployment.
//   PEER_CLIENT_ID / PEER_CLIENT_SECRET  the one client (defaults below).
import cluster from 'node:cluster';
import { generateKeyPairSync, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const port = Number.parseInt(process.env.PEER_PORT ?? process.argv[2] ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('peer: set PEER_PORT (or pass the port as the first argument)');
  process.exit(2);
}
const issuer = process.env.PEER_ISSUER ?? `http://127.0.0.1:${port}`;
const workers = Math.max(1, Number.parseInt(process.env.PEER_WORKERS ?? '1', 10) || 1);
const clientId = process.env.PEER_CLIENT_ID ?? 'bench-peer-client';
const clientSecret = process.env.PEER_CLIENT_SECRET ?? 'bench-peer-secret-0123456789abcdef0123456789abcdef';
const RESOURCE = 'https://bench/api';

function loadOrCreateKey() {
  const file = process.env.PEER_KEY_FILE;
  if (file && existsSync(file)) {
    return JSON.parse(readFileSync(file, 'utf8'));
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', alg: 'RS256', use: 'sig' };
  if (file) writeFileSync(file, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}

async function serve(jwk) {
  // Imported here so that a cluster primary never loads the provider.
  const { default: Provider } = await import('oidc-provider');
  // Fail early on a malformed key rather than on the first request.
  createPrivateKey({ key: jwk, format: 'jwk' });

  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      // Credentials in the form body, as the benchmark sends them to Tessera.
      token_endpoint_auth_method: 'client_secret_post',
    }],
    jwks: { keys: [jwk] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resourceIndicator) => {
          if (resourceIndicator !== RESOURCE) {
            throw new Provider.errors.InvalidTarget();
          }
          return {
            scope: 'read:bench',
            audience: RESOURCE,
            accessTokenTTL: 3600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    ttl: { ClientCredentials: 3600 },
  });
  provider.on('server_error', (_ctx, err) => console.error('peer: server_error', err));

  const server = provider.listen(port, '127.0.0.1');
  server.keepAliveTimeout = 65_000;
  server.on('listening', () => console.error(`peer: pid ${process.pid} listening on ${issuer}`));
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (workers > 1 && cluster.isPrimary) {
  const jwk = loadOrCreateKey();
  for (let i = 0; i < workers; i += 1) {
    cluster.fork({ PEER_JWK: JSON.stringify(jwk) });
  }
  let stopping = false;
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      console.error(`peer: worker ${worker.process.pid} exited (${signal ?? code})`);
      stopping = true;
      for (const w of Object.values(cluster.workers)) w.kill();
      process.exitCode = 1;
    }
  });
  const stopAll = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
  };
  process.on('SIGTERM', stopAll);
  process.on('SIGINT', stopAll);
} else {
  const jwk = process.env.PEER_JWK ? JSON.parse(process.env.PEER_JWK) : loadOrCreateKey();
  await serve(jwk);
}
