// The real node `auth0` SDK's ManagementClient (v7) managing a user's refresh tokens in Tessera:
// `users.refreshToken.list` (paged by checkpoint, the SDK following `next` itself),
// `refreshTokens.get`, `refreshTokens.update` (the token's metadata), `refreshTokens.delete` and
// `users.refreshToken.delete`, each checked
// against what the tokens then do at /oauth/token. The user's refresh tokens come from plain
// password-grant requests (offline_access), one per "device".
//
// The client is lib/management.mjs's (an application granted the resource's scopes).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

import { cli, startServer, tempDir, AUDIENCE } from './lib/tessera.mjs';
import { managementClient } from './lib/management.mjs';

const require = createRequire(import.meta.url);
const SDK_VERSION = require('auth0/package.json').version;
const PASSWORD = 'correct horse battery staple';

describe(`auth0 ${SDK_VERSION} ManagementClient: a user's refresh tokens in Tessera`, () => {
  let dir;
  let server;
  let mgmt;
  let app;
  let userId;
  const email = 'sam@example.com';

  before(async () => {
    dir = await tempDir();
    const databaseUrl = `sqlite://${dir.dir}/tessera.db`;
    await cli(databaseUrl, ['apis', 'create', '--name', 'Quickstart API', '--identifier', AUDIENCE,
      '--scopes', 'read:messages', '--allow-offline-access']);
    app = await cli(databaseUrl, ['apps', 'create', '--name', 'Backend', '--type', 'regular',
      '--grant-types', 'password,refresh_token']);
    const user = await cli(databaseUrl, ['users', 'create', '--email', email, '--password-stdin'],
      { input: `${PASSWORD}\n` });
    userId = user.user_id;
    server = await startServer({ databaseUrl });
    mgmt = await managementClient(server, databaseUrl, 'read:refresh_tokens,delete:refresh_tokens,update:refresh_tokens');
  });
  after(async () => {
    await server?.stop();
    await dir?.remove();
  });

  const token = async (form) => {
    const response = await fetch(`${server.baseUrl}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: app.client_id, client_secret: app.client_secret, ...form }),
    });
    return { status: response.status, body: await response.json() };
  };
  const signIn = async () => {
    const { status, body } = await token({
      grant_type: 'password', username: email, password: PASSWORD, audience: AUDIENCE,
      scope: 'offline_access read:messages',
    });
    assert.equal(status, 200, JSON.stringify(body));
    return body.refresh_token;
  };
  const refresh = (refreshToken) => token({ grant_type: 'refresh_token', refresh_token: refreshToken });
  const listAll = async (take) => {
    const ids = [];
    const page = await mgmt.users.refreshToken.list(userId, { take });
    for await (const item of page) ids.push(item);
    return ids;
  };

  it('lists, shows and revokes them one by one, then all of them', async () => {
    const devices = [await signIn(), await signIn(), await signIn()];
    // The SDK follows `next` itself: one token per page here.
    const listed = await listAll(1);
    assert.equal(listed.length, 3, JSON.stringify(listed));
    for (const item of listed) {
      assert.equal(item.user_id, userId);
      assert.equal(item.client_id, app.client_id);
      assert.equal(item.rotating, true);
      assert.deepEqual(item.resource_servers, [{ audience: AUDIENCE, scopes: 'offline_access read:messages' }]);
      assert.ok(Date.parse(item.expires_at) > Date.now(), item.expires_at);
      for (const value of devices) assert.ok(!JSON.stringify(item).includes(value));
    }
    assert.deepEqual([...listed].map((t) => t.id).sort(), listed.map((t) => t.id), 'in id order');

    const shown = await mgmt.refreshTokens.get(listed[0].id);
    assert.equal(shown.id, listed[0].id);
    assert.equal(shown.user_id, userId);

    // Revoke one: exactly one device's token stops working.
    await mgmt.refreshTokens.delete(listed[0].id);
    const statuses = [];
    for (const device of devices) statuses.push((await refresh(device)).status);
    assert.deepEqual([...statuses].sort(), [200, 200, 400], JSON.stringify(statuses));
    await assert.rejects(mgmt.refreshTokens.get(listed[0].id), (error) => error.statusCode === 404);
    assert.equal((await listAll(50)).length, 2);

    // Revoke the rest: no device refreshes any more.
    await mgmt.users.refreshToken.delete(userId);
    assert.deepEqual(await listAll(50), []);
    const fresh = await signIn();
    assert.equal((await listAll(50)).length, 1, 'a new sign-in starts a new token');
    assert.equal((await refresh(fresh)).status, 200);
  });

  it('replaces a token\'s metadata with refreshTokens.update; it follows the token through rotation', async () => {
    await mgmt.users.refreshToken.delete(userId);
    const device = await signIn();
    const [item] = await listAll(50);
    assert.deepEqual(item.refresh_token_metadata, {});
    const updated = await mgmt.refreshTokens.update(item.id, { refresh_token_metadata: { device: 'laptop' } });
    assert.equal(updated.id, item.id);
    assert.deepEqual(updated.refresh_token_metadata, { device: 'laptop' });
    // Rotated: the new token is the same family, with the same metadata.
    const { status, body } = await refresh(device);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual((await mgmt.refreshTokens.get(item.id)).refresh_token_metadata, { device: 'laptop' });
    // Refused as Auth0 refuses: nothing written.
    await assert.rejects(
      mgmt.refreshTokens.update(item.id, { refresh_token_metadata: { device: 'x'.repeat(256) } }),
      (error) => error.statusCode === 400,
    );
    const many = Object.fromEntries(Array.from({ length: 26 }, (_, i) => [`k${i}`, 'v']));
    await assert.rejects(
      mgmt.refreshTokens.update(item.id, { refresh_token_metadata: many }),
      (error) => error.statusCode === 400,
    );
    assert.deepEqual((await mgmt.refreshTokens.get(item.id)).refresh_token_metadata, { device: 'laptop' });
    await mgmt.refreshTokens.update(item.id, { refresh_token_metadata: {} });
    assert.deepEqual((await listAll(50))[0].refresh_token_metadata, {});
    // Revoked: not found.
    await mgmt.refreshTokens.delete(item.id);
    await assert.rejects(
      mgmt.refreshTokens.update(item.id, { refresh_token_metadata: { device: 'phone' } }),
      (error) => error.statusCode === 404,
    );
  });
});
