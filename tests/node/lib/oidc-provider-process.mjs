// A real OpenID Connect provider nobody here wrote, npm `oidc-provider` (panva's), as an upstream
// for Tessera's connections. Run by oidc-provider.browser.test.mjs with the Node 22 binary of
// npm's `node` package (oidc-provider 9 needs Node >= 22); not a test file itself.
//
// Environment:
//   OP_CLIENTS        JSON array of client metadata (client_id, client_secret, redirect_uris, …)
//   OP_ACCOUNTS_FILE  a JSON file {sub: {email, email_verified, name, …}}, read at each lookup,
//                     so the test can change what the provider says between two sign-ins
//
// Listens on 127.0.0.1, on a port the system picks, with the built-in development login and
// consent pages (any login is accepted and becomes the `sub`; the password is not checked, so
// only accounts listed in the file can finish), PKCE required for every client, a fresh RSA
// signing key, and OpenID Connect Back-Channel Logout (a client with a
// `backchannel_logout_uri` is posted a logout token when a session it was used in ends at
// `/session/end`). Prints `oidc-provider listening at <issuer>` once it accepts connections.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const clients = JSON.parse(process.env.OP_CLIENTS ?? '[]');
const accountsFile = process.env.OP_ACCOUNTS_FILE;
if (!clients.length || !accountsFile) {
  process.stderr.write('OP_CLIENTS and OP_ACCOUNTS_FILE must be set\n');
  process.exit(2);
}

const signingKey = {
  ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  kid: `op-${randomBytes(6).toString('hex')}`,
  use: 'sig',
};

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true }, backchannelLogout: { enabled: true } },
    // Its outgoing requests (logout tokens) refuse special-use addresses such as loopback,
    // a guard against server-side request forgery; here Tessera is on loopback, so the
    // guard's dispatcher is left out.
    fetch: (url, options) => {
      const { dispatcher: _loopbackRefused, ...rest } = options;
      return globalThis.fetch(url, rest);
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'nickname', 'picture'],
    },
    async findAccount(_ctx, sub) {
      const accounts = JSON.parse(readFileSync(accountsFile, 'utf8'));
      if (!Object.hasOwn(accounts, sub)) return undefined;
      return {
        accountId: sub,
        async claims() {
          // Read again: the profile as the file says it when the claims are asked for.
          const now = JSON.parse(readFileSync(accountsFile, 'utf8'));
          return { ...now[sub], sub };
        },
      };
    },
  });
  provider.on('server_error', (_ctx, error) => process.stderr.write(`server_error: ${error.stack}\n`));
  provider.on('backchannel.success', (_ctx, client) => process.stdout.write(`backchannel.success: ${client.clientId}\n`));
  for (const event of ['grant.error', 'userinfo.error', 'authorization.error', 'backchannel.error']) {
    provider.on(event, (_ctx, error) => process.stderr.write(`${event}: ${error.name} ${error.message} ${error.error_description ?? ''}\n`));
  }
  server.on('request', provider.callback());
  process.stdout.write(`oidc-provider listening at ${issuer}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
