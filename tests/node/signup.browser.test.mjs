// auth0-js 9's webAuth.signup() from a page on the application's origin, in a real Chromium,
// against the real `tessera serve` (POST /dbconnections/signup, CORS): the account is created
// with what was given, Auth0's errors reach the callback, and the new user then signs in on
// the hosted login page.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';

import { cli, startServer, tempDir, freePort } from './lib/tessera.mjs';
import { launchChromium, withPage, waitForText } from './lib/browser.mjs';

const require = createRequire(import.meta.url);
const AUTH0_JS = require.resolve('auth0-js/dist/auth0.min.js');
const CONNECTION = 'Username-Password-Authentication';

describe('sign-up with auth0-js in Chromium (tessera serve)', () => {
  let tmp;
  let databaseUrl;
  let server;
  let browser;
  let app; // {origin, url, close()}
  let clientId;

  before(async () => {
    tmp = await tempDir();
    databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
    const auth0js = await readFile(AUTH0_JS);
    const appPort = await freePort();
    const appServer = http.createServer((req, res) => {
      if (req.url === '/auth0.min.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' });
        res.end(auth0js);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(req.url.startsWith('/sdk')
        ? '<!doctype html><title>sdk</title><script src="/auth0.min.js"></script><p id="ready">ready</p>'
        : '<!doctype html><title>callback</title><p id="callback">callback reached</p>');
    });
    await new Promise((resolve, reject) => {
      appServer.on('error', reject);
      appServer.listen(appPort, '127.0.0.1', resolve);
    });
    app = {
      origin: `http://localhost:${appPort}`,
      url: `http://localhost:${appPort}/callback`,
      close: () => new Promise((resolve) => { appServer.closeAllConnections(); appServer.close(resolve); }),
    };
    const created = await cli(databaseUrl, ['apps', 'create', '--name', 'Sign-up SPA', '--type', 'spa',
      '--callbacks', app.url, '--origins', app.origin]);
    clientId = created.client_id;
    server = await startServer({ databaseUrl });
    browser = await launchChromium();
  }, { timeout: 120000 });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.stop();
    await app?.close();
    await tmp?.remove();
  });

  const browserTest = (name, fn) => it(name, { timeout: 90000 }, () => withPage(browser, name, fn));

  /** webAuth.signup(options) in the page: {err, response}, each as plain data. */
  const signup = (page, options) => page.evaluate(({ domain, clientID, options }) => new Promise((resolve) => {
    // Over http auth0-js is given the full URL as its domain, as the quickstart does.
    new window.auth0.WebAuth({ domain, clientID }).signup(options, (err, response) => resolve({
      err: err && { statusCode: err.statusCode, code: err.code, name: err.name, description: err.description },
      response,
    }));
  }), { domain: server.baseUrl, clientID: clientId, options });

  browserTest('webAuth.signup creates the account with its profile; the user signs in with it on the hosted page', async ({ page }) => {
    const email = `new-${randomBytes(4).toString('hex')}@example.com`;
    const password = `pw-${randomBytes(9).toString('base64url')}`;
    await page.goto(`${app.origin}/sdk`);
    await waitForText(page, '#ready', 'ready');
    const { err, response } = await signup(page, {
      connection: CONNECTION, email, password, name: 'New Person', userMetadata: { plan: 'free' },
    });
    assert.equal(err, null);
    // auth0-js hands the answer over in camelCase.
    assert.deepEqual(Object.keys(response).sort(), ['Id', 'email', 'emailVerified', 'name', 'userMetadata'], JSON.stringify(response));
    assert.equal(response.email, email);
    assert.equal(response.emailVerified, false);
    assert.deepEqual(response.userMetadata, { plan: 'free' });
    assert.equal(response.name, 'New Person');
    assert.match(response.Id, /^[0-9a-f]{24}$/);

    const stored = await cli(databaseUrl, ['users', 'show', email]);
    assert.equal(stored.user_id, `auth0|${response.Id}`);
    assert.equal(stored.name, 'New Person');
    assert.deepEqual(stored.user_metadata, { plan: 'free' });

    // Signed up, not signed in: the hosted page takes the new password.
    const authorize = new URL(`${server.baseUrl}/authorize`);
    authorize.search = new URLSearchParams({
      response_type: 'token id_token', client_id: clientId, redirect_uri: app.url,
      scope: 'openid', state: 'st', nonce: randomBytes(9).toString('base64url'),
    });
    await page.goto(authorize.href);
    await page.waitForURL((url) => url.pathname === '/u/login');
    await page.fill('#username', email);
    await page.fill('#password', password);
    await page.click('button[type=submit]');
    await page.waitForURL((url) => url.origin === app.origin, { timeout: 15000 });
    assert.ok(new URLSearchParams(new URL(page.url()).hash.slice(1)).get('id_token'), 'signed in');
  });

  browserTest('Auth0\'s errors reach auth0-js: the user exists, a weak password, a common one', async ({ page }) => {
    const email = `twice-${randomBytes(4).toString('hex')}@example.com`;
    await page.goto(`${app.origin}/sdk`);
    await waitForText(page, '#ready', 'ready');
    const first = await signup(page, { connection: CONNECTION, email, password: `pw-${randomBytes(9).toString('base64url')}` });
    assert.equal(first.err, null);

    const again = await signup(page, { connection: CONNECTION, email, password: `pw-${randomBytes(9).toString('base64url')}` });
    assert.deepEqual([again.err?.statusCode, again.err?.code], [400, 'user_exists']);

    const weak = await signup(page, { connection: CONNECTION, email: `weak-${email}`, password: 'short' });
    assert.deepEqual([weak.err?.statusCode, weak.err?.code, weak.err?.name], [400, 'invalid_password', 'PasswordStrengthError']);
    assert.equal(weak.err.description.rules[0].code, 'lengthAtLeast');
    assert.equal(weak.err.description.rules[0].verified, false);

    const common = await signup(page, { connection: CONNECTION, email: `common-${email}`, password: 'password123' });
    assert.deepEqual([common.err?.code, common.err?.name], ['invalid_password', 'PasswordDictionaryError']);

    for (const refused of [`weak-${email}`, `common-${email}`]) {
      await assert.rejects(cli(databaseUrl, ['users', 'show', refused]), /not found|no user/i, `${refused} was not created`);
    }
  });
});
