// The real node `auth0` SDK's ManagementClient (v7) managing a user's login sessions in Tessera:
// `users.sessions.list` (paged by checkpoint, the SDK following `next` itself), `sessions.get`,
// `sessions.update` (the session's metadata),
// `sessions.revoke`, `sessions.delete` and `users.sessions.delete`, each checked against what the
// browsers' cookies then do at /authorize with `prompt=none`. The "browsers" are cookie jars
// driving the hosted login over HTTP (lib/login.mjs).
//
// The client is lib/management.mjs's (an application granted the resource's scopes).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';

import { cli, startServer, tempDir, AUDIENCE } from './lib/tessera.mjs';
import { managementClient } from './lib/management.mjs';
import { cookieClient, signIn } from './lib/login.mjs';

const require = createRequire(import.meta.url);
const SDK_VERSION = require('auth0/package.json').version;
const PASSWORD = 'correct horse battery staple';
// Never contacted: the flow stops at the redirect to it.
const CALLBACK = 'http://127.0.0.1:9/callback';

describe(`auth0 ${SDK_VERSION} ManagementClient: a user's login sessions in Tessera`, () => {
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
      '--scopes', 'read:messages']);
    app = await cli(databaseUrl, ['apps', 'create', '--name', 'SPA', '--type', 'spa',
      '--callbacks', CALLBACK]);
    const user = await cli(databaseUrl, ['users', 'create', '--email', email, '--password-stdin'],
      { input: `${PASSWORD}\n` });
    userId = user.user_id;
    server = await startServer({ databaseUrl });
    mgmt = await managementClient(server, databaseUrl, 'read:sessions,delete:sessions,update:sessions');
  });
  after(async () => {
    await server?.stop();
    await dir?.remove();
  });

  const authorizeUrl = (extra = {}) => {
    const verifier = randomBytes(32).toString('base64url');
    const url = new URL('/authorize', server.baseUrl);
    url.search = new URLSearchParams({
      response_type: 'code', client_id: app.client_id, redirect_uri: CALLBACK, scope: 'openid',
      state: randomBytes(8).toString('hex'),
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256', ...extra,
    });
    return url.href;
  };
  const newBrowser = async () => {
    const browser = cookieClient();
    const back = await signIn(browser, authorizeUrl(), { email, password: PASSWORD });
    assert.ok(back.searchParams.get('code'), back.href);
    return browser;
  };
  // Whether the browser's session still signs it in without a page.
  const signedIn = async (browser) => {
    const response = await browser.request(authorizeUrl({ prompt: 'none' }));
    assert.equal(response.status, 302);
    const back = new URL(response.headers.get('location'));
    if (back.searchParams.get('code')) return true;
    assert.equal(back.searchParams.get('error'), 'login_required', back.href);
    return false;
  };
  const listAll = async (take) => {
    const sessions = [];
    const page = await mgmt.users.sessions.list(userId, { take });
    for await (const item of page) sessions.push(item);
    return sessions;
  };

  it('lists and shows them, revokes and deletes one by one, then all of them', async () => {
    const laptop = await newBrowser();
    const phone = await newBrowser();
    // The SDK follows `next` itself: one session per page here.
    const listed = await listAll(1);
    assert.equal(listed.length, 2, JSON.stringify(listed));
    for (const session of listed) {
      assert.equal(session.user_id, userId);
      assert.equal(session.device.initial_ip, '127.0.0.1');
      assert.equal(session.authentication.methods[0].name, 'pwd');
      assert.ok(Date.parse(session.expires_at) > Date.now(), session.expires_at);
      assert.ok(Date.parse(session.idle_expires_at) <= Date.parse(session.expires_at));
      for (const value of laptop.cookies.values()) assert.ok(!JSON.stringify(session).includes(value));
    }
    assert.deepEqual([...listed].map((s) => s.id).sort(), listed.map((s) => s.id), 'in id order');
    const shown = await mgmt.sessions.get(listed[0].id);
    assert.equal(shown.id, listed[0].id);
    assert.equal(shown.user_id, userId);

    // Revoke one: exactly one browser must sign in again.
    await mgmt.sessions.revoke(listed[0].id);
    const after = [await signedIn(laptop), await signedIn(phone)];
    assert.deepEqual([...after].sort(), [false, true], JSON.stringify(after));
    await assert.rejects(mgmt.sessions.get(listed[0].id), (error) => error.statusCode === 404);
    assert.deepEqual((await listAll(50)).map((s) => s.id), [listed[1].id]);

    // Delete the other: neither browser is signed in.
    await mgmt.sessions.delete(listed[1].id);
    assert.deepEqual([await signedIn(laptop), await signedIn(phone)], [false, false]);
    assert.deepEqual(await listAll(50), []);

    // Every session of the user at once.
    const again = [await newBrowser(), await newBrowser()];
    assert.equal((await listAll(50)).length, 2);
    await mgmt.users.sessions.delete(userId);
    assert.deepEqual(await listAll(50), []);
    for (const browser of again) assert.equal(await signedIn(browser), false);
  });

  it('replaces a session\'s metadata with sessions.update, and refuses what Auth0 refuses', async () => {
    const browser = await newBrowser();
    const [session] = await listAll(50);
    assert.deepEqual(session.session_metadata, {});
    const updated = await mgmt.sessions.update(session.id, { session_metadata: { device: 'laptop', org: 'acme' } });
    assert.equal(updated.id, session.id);
    assert.deepEqual(updated.session_metadata, { device: 'laptop', org: 'acme' });
    // The whole is replaced, as Auth0 does.
    await mgmt.sessions.update(session.id, { session_metadata: { device: 'phone' } });
    assert.deepEqual((await mgmt.sessions.get(session.id)).session_metadata, { device: 'phone' });
    assert.deepEqual((await listAll(50))[0].session_metadata, { device: 'phone' });
    // Values are strings of at most 255 characters; nothing is written when one is not.
    await assert.rejects(
      mgmt.sessions.update(session.id, { session_metadata: { device: 'x'.repeat(256) } }),
      (error) => error.statusCode === 400,
    );
    await assert.rejects(
      mgmt.sessions.update(session.id, { session_metadata: { count: 3 } }),
      (error) => error.statusCode === 400,
    );
    assert.deepEqual((await mgmt.sessions.get(session.id)).session_metadata, { device: 'phone' });
    // An empty object clears it; the browser is still signed in.
    await mgmt.sessions.update(session.id, { session_metadata: {} });
    assert.deepEqual((await mgmt.sessions.get(session.id)).session_metadata, {});
    assert.equal(await signedIn(browser), true);
    await mgmt.sessions.delete(session.id);
    await assert.rejects(
      mgmt.sessions.update(session.id, { session_metadata: { device: 'laptop' } }),
      (error) => error.statusCode === 404,
    );
  });
});
