// The real node `auth0` SDK's ManagementClient (v7) administering Tessera's brute-force
// protection: `attackProtection.bruteForceProtection.get` / `update` (a lower threshold, an
// allowlist), and the blocks it puts in force — `userBlocks.listByIdentifier`, `list`,
// `delete` and `deleteByIdentifier` — each checked against what the hosted login then answers
// (lib/login.mjs drives it over HTTP from 127.0.0.1).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';

import { cli, startServer, tempDir } from './lib/tessera.mjs';
import { managementClient } from './lib/management.mjs';
import { cookieClient, signIn } from './lib/login.mjs';

const require = createRequire(import.meta.url);
const SDK_VERSION = require('auth0/package.json').version;
const PASSWORD = 'correct horse battery staple';
// Never contacted: the flow stops at the redirect to it.
const CALLBACK = 'http://127.0.0.1:9/callback';

describe(`auth0 ${SDK_VERSION} ManagementClient: brute-force protection in Tessera`, () => {
  let dir;
  let server;
  let mgmt;
  let app;
  let userId;
  const email = 'robin@example.com';

  before(async () => {
    dir = await tempDir();
    const databaseUrl = `sqlite://${dir.dir}/tessera.db`;
    app = await cli(databaseUrl, ['apps', 'create', '--name', 'SPA', '--type', 'spa',
      '--callbacks', CALLBACK]);
    const user = await cli(databaseUrl, ['users', 'create', '--email', email, '--password-stdin'],
      { input: `${PASSWORD}\n` });
    userId = user.user_id;
    server = await startServer({ databaseUrl });
    mgmt = await managementClient(server, databaseUrl,
      'read:attack_protection,update:attack_protection,read:users,update:users');
  });
  after(async () => {
    await server?.stop();
    await dir?.remove();
  });

  const authorizeUrl = () => {
    const verifier = randomBytes(32).toString('base64url');
    const url = new URL('/authorize', server.baseUrl);
    url.search = new URLSearchParams({
      response_type: 'code', client_id: app.client_id, redirect_uri: CALLBACK, scope: 'openid',
      state: randomBytes(8).toString('hex'),
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    });
    return url.href;
  };
  // What the hosted login answers the password: 'signed in', or the refusal's status.
  const login = async (password) => {
    try {
      const back = await signIn(cookieClient(), authorizeUrl(), { email, password });
      assert.ok(back.searchParams.get('code'), back.href);
      return 'signed in';
    } catch (error) {
      const status = /login POST answered (\d+)/.exec(error.message);
      if (!status) throw error;
      return Number(status[1]);
    }
  };

  it('reads the defaults and sets a lower threshold that the login enforces at once', async () => {
    const defaults = await mgmt.attackProtection.bruteForceProtection.get();
    assert.deepEqual(defaults, {
      enabled: true, shields: ['block'], allowlist: [], mode: 'count_per_identifier_and_ip',
      max_attempts: 10,
    });
    const updated = await mgmt.attackProtection.bruteForceProtection.update({
      max_attempts: 2, allowlist: ['192.0.2.0/24'],
    });
    assert.equal(updated.max_attempts, 2);
    assert.deepEqual(updated.allowlist, ['192.0.2.0/24']);
    assert.equal(await login('wrong once'), 401);
    assert.equal(await login('wrong twice'), 401);
    assert.equal(await login(PASSWORD), 429, 'locked after the tenant\'s two attempts');
  });

  it('lists the block by identifier and by user id, and lifts it by user id', async () => {
    const expected = { blocked_for: [{ identifier: email, ip: '127.0.0.1' }] };
    assert.deepEqual(await mgmt.userBlocks.listByIdentifier({
      identifier: email.toUpperCase(), consider_brute_force_enablement: true,
    }), expected);
    assert.deepEqual(await mgmt.userBlocks.list(userId), expected);
    await mgmt.userBlocks.delete(userId);
    assert.deepEqual(await mgmt.userBlocks.list(userId), { blocked_for: [] });
    assert.equal(await login(PASSWORD), 'signed in');
  });

  it('lifts a block by identifier', async () => {
    assert.equal(await login('wrong once'), 401);
    assert.equal(await login('wrong twice'), 401);
    assert.equal(await login(PASSWORD), 429);
    await mgmt.userBlocks.deleteByIdentifier({ identifier: email });
    assert.deepEqual(await mgmt.userBlocks.listByIdentifier({ identifier: email }),
      { blocked_for: [] });
    assert.equal(await login(PASSWORD), 'signed in');
  });

  it('takes Auth0\'s default shields and refuses one Tessera does not have', async () => {
    const both = await mgmt.attackProtection.bruteForceProtection.update({
      shields: ['block', 'user_notification'],
    });
    assert.deepEqual(both.shields, ['block', 'user_notification']);
    await assert.rejects(
      mgmt.attackProtection.bruteForceProtection.update({ shields: ['block', 'captcha'] }),
      (error) => error.statusCode === 400 && /Unknown shield/.test(error.message),
    );
    const now = await mgmt.attackProtection.bruteForceProtection.get();
    assert.deepEqual(now.shields, ['block', 'user_notification'], 'unchanged by the refusal');
    assert.equal(now.max_attempts, 2);
  });
});
