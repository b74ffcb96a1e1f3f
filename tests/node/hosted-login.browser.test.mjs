// The hosted login page in a real (headless Debian) Chromium, without the sample SPA: from
// /authorize, through /u/login, back to the application's registered callback — the browser
// behaviours (CSP, cookies, redirects) an HTTP client does not reproduce. Then the code is
// redeemed from Node and the tokens verified with jose.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';

import { createRemoteJWKSet, jwtVerify } from 'jose';

import { cli, startServer, tempDir, freePort, AUDIENCE } from './lib/tessera.mjs';
import { launchChromium, withPage, pageLog } from './lib/browser.mjs';

const EMAIL = 'alice@example.com';
const PASSWORD = `hosted-${randomBytes(9).toString('base64url')}`;

describe('hosted login in Chromium (tessera serve, no SPA)', () => {
  let tmp;
  let server;
  let browser;
  let callback; // {origin, url, close()}
  let clientId;
  let JWKS;

  before(async () => {
    tmp = await tempDir();
    const databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
    // A tiny page to land on: the registered callback of the application.
    const callbackPort = await freePort();
    const callbackServer = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>callback</title><p id="callback">callback reached</p>');
    });
    await new Promise((resolve, reject) => {
      callbackServer.on('error', reject);
      callbackServer.listen(callbackPort, '127.0.0.1', resolve);
    });
    callback = {
      origin: `http://localhost:${callbackPort}`,
      url: `http://localhost:${callbackPort}/callback`,
      close: () => new Promise((resolve) => { callbackServer.closeAllConnections(); callbackServer.close(resolve); }),
    };
    await cli(databaseUrl, ['apis', 'create', '--name', 'Quickstart API', '--identifier', AUDIENCE,
      '--scopes', 'read:messages,write:messages']);
    const app = await cli(databaseUrl, ['apps', 'create', '--name', 'Browser SPA', '--type', 'spa',
      '--callbacks', callback.url, '--origins', callback.origin, '--logout-urls', callback.origin,
      '--grant-types', 'authorization_code,implicit,refresh_token']);
    clientId = app.client_id;
    await cli(databaseUrl, ['users', 'create', '--email', EMAIL, '--password-stdin'], { input: `${PASSWORD}\n` });
    server = await startServer({ databaseUrl });
    JWKS = createRemoteJWKSet(new URL(`${server.baseUrl}/.well-known/jwks.json`), { timeoutDuration: 5000 });
    browser = await launchChromium();
  }, { timeout: 120000 });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.stop();
    await callback?.close();
    await tmp?.remove();
  });

  /** Signs in on /u/login and waits until the browser reaches the callback. */
  async function signInAndReachCallback(page) {
    await page.waitForURL((url) => url.pathname === '/u/login');
    await page.fill('#username', EMAIL);
    await page.fill('#password', PASSWORD);
    const post = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/u/login');
    await page.click('button[type=submit]');
    assert.equal((await post).status(), 303, 'the login POST answers 303');
    try {
      await page.waitForURL((url) => url.origin === callback.origin, { timeout: 15000 });
    } catch {
      const consoleErrors = pageLog(page).filter((line) => /console\.error|requestfailed/.test(line));
      assert.fail(`after the login POST the browser stayed at ${page.url()} instead of reaching ${callback.url}; `
        + `browser said: ${JSON.stringify(consoleErrors)}`);
    }
  }

  const browserTest = (name, fn) => it(name, { timeout: 90000 }, () => withPage(browser, name, fn));

  browserTest('code + PKCE: after the login POST Chromium follows the redirect to the registered callback (code, state, iss); the code redeems for tokens', async ({ page }) => {
    const verifier = randomBytes(48).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const state = `st-${randomBytes(6).toString('base64url')}`;
    const authorize = new URL(`${server.baseUrl}/authorize`);
    authorize.search = new URLSearchParams({
      response_type: 'code', client_id: clientId, redirect_uri: callback.url, audience: AUDIENCE,
      scope: 'openid profile read:messages', state, code_challenge: challenge, code_challenge_method: 'S256',
    });
    await page.goto(authorize.href);
    await signInAndReachCallback(page);

    const landed = new URL(page.url());
    assert.equal(`${landed.origin}${landed.pathname}`, callback.url);
    assert.equal(landed.searchParams.get('state'), state);
    assert.equal(landed.searchParams.get('iss'), server.issuer);
    const code = landed.searchParams.get('code');
    assert.ok(code, 'a code');

    const response = await fetch(`${server.baseUrl}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code', client_id: clientId, code, redirect_uri: callback.url, code_verifier: verifier,
      }),
      signal: AbortSignal.timeout(10000),
    });
    const tokens = await response.json();
    assert.equal(response.status, 200, JSON.stringify(tokens));
    const access = await jwtVerify(tokens.access_token, JWKS, { issuer: server.issuer, audience: AUDIENCE });
    assert.ok(access.payload.scope.split(' ').includes('read:messages'));
    const id = await jwtVerify(tokens.id_token, JWKS, { issuer: server.issuer, audience: clientId });
    assert.equal(id.payload.nickname, 'alice');
  });

  browserTest('implicit (token id_token): Chromium lands on the callback with access_token and id_token in the fragment, nonce echoed', async ({ page }) => {
    const state = `st-${randomBytes(6).toString('base64url')}`;
    const nonce = `n-${randomBytes(9).toString('base64url')}`;
    const authorize = new URL(`${server.baseUrl}/authorize`);
    authorize.search = new URLSearchParams({
      response_type: 'token id_token', client_id: clientId, redirect_uri: callback.url, audience: AUDIENCE,
      scope: 'openid profile read:messages', state, nonce,
    });
    await page.goto(authorize.href);
    await signInAndReachCallback(page);

    const fragment = new URLSearchParams(new URL(page.url()).hash.slice(1));
    assert.equal(fragment.get('state'), state);
    assert.equal(fragment.get('token_type'), 'Bearer');
    await jwtVerify(fragment.get('access_token'), JWKS, { issuer: server.issuer, audience: AUDIENCE });
    const id = await jwtVerify(fragment.get('id_token'), JWKS, { issuer: server.issuer, audience: clientId });
    assert.equal(id.payload.nonce, nonce);
  });
});
