// Auth0's node SDK (the `auth0` package's v4 AuthenticationClient, shipped as `auth0/legacy`)
// signs a user in with the password grants against Tessera: `oauth.passwordGrant` without a
// realm (grant_type=password) and with one (Auth0's password-realm), for an application that
// enabled them with the CLI; a wrong password reaches the SDK as Auth0's error. The access
// token is verified against Tessera's JWKS with `jose`.
//
// The SDK builds https://DOMAIN/oauth/token; its documented `fetch` option sends the same
// request to http:// (as management-client.test.mjs does). No `openid` scope: the SDK checks
// an ID token's issuer against https://DOMAIN/, which a plain-http Tessera is not.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { AuthenticationClient } from 'auth0/legacy';
import { createRemoteJWKSet, jwtVerify } from 'jose';

import { cli, startServer, tempDir, AUDIENCE } from './lib/tessera.mjs';

// The legacy entry point is `auth0-legacy` (npm:auth0@4), which exports no package.json.
const SDK_VERSION = JSON.parse(
  readFileSync(new URL('./node_modules/auth0-legacy/package.json', import.meta.url), 'utf8'),
).version;
const PASSWORD = 'correct horse battery staple';

describe(`auth0 ${SDK_VERSION} AuthenticationClient password grants against Tessera`, () => {
  let dir;
  let server;
  let auth;
  let email;
  before(async () => {
    dir = await tempDir();
    const databaseUrl = `sqlite://${dir.dir}/tessera.db`;
    await cli(databaseUrl, ['apis', 'create', '--name', 'Quickstart API', '--identifier', AUDIENCE,
      '--scopes', 'read:messages,write:messages', '--allow-offline-access']);
    const app = await cli(databaseUrl, ['apps', 'create', '--name', 'Backend', '--type', 'regular',
      '--grant-types', 'password,http://auth0.com/oauth/grant-type/password-realm,refresh_token']);
    email = 'pat@example.com';
    await cli(databaseUrl, ['users', 'create', '--email', email, '--password-stdin'], { input: `${PASSWORD}\n` });
    server = await startServer({ databaseUrl });
    auth = new AuthenticationClient({
      domain: new URL(server.baseUrl).host,
      clientId: app.client_id,
      clientSecret: app.client_secret,
      fetch: (url, init) => fetch(String(url).replace(/^https:\/\//, 'http://'), init),
    });
  });
  after(async () => {
    await server?.stop();
    await dir?.remove();
  });

  const verified = async (accessToken) => {
    const jwks = createRemoteJWKSet(new URL(`${server.baseUrl}/.well-known/jwks.json`));
    const { payload } = await jwtVerify(accessToken, jwks, { issuer: server.issuer, audience: AUDIENCE });
    return payload;
  };

  it('passwordGrant without a realm: an access token for the API, for the user', async () => {
    const { data } = await auth.oauth.passwordGrant({
      username: email, password: PASSWORD, audience: AUDIENCE, scope: 'read:messages',
    });
    assert.equal(data.token_type, 'Bearer');
    const claims = await verified(data.access_token);
    assert.match(claims.sub, /^auth0\|/);
    assert.ok(claims.scope.split(' ').includes('read:messages'), claims.scope);
  });

  it('passwordGrant with realm = the database connection (password-realm)', async () => {
    const { data } = await auth.oauth.passwordGrant({
      username: email, password: PASSWORD, realm: 'Username-Password-Authentication',
      audience: AUDIENCE, scope: 'offline_access',
    });
    await verified(data.access_token);
    assert.equal(typeof data.refresh_token, 'string', 'offline_access gives a refresh token');
  });

  it('a wrong password reaches the SDK as Auth0 answers it', async () => {
    await assert.rejects(
      auth.oauth.passwordGrant({ username: email, password: 'not it', audience: AUDIENCE }),
      (error) => {
        assert.equal(error.statusCode, 403, String(error));
        assert.equal(error.error, 'invalid_grant');
        assert.equal(error.error_description, 'Wrong email or password.');
        return true;
      },
    );
  });
});
