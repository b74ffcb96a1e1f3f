// The consent page of a third-party application in a real (headless Debian) Chromium: from
// /authorize, through /u/login and /u/consent, back to the application's registered callback.
// Accept and Decline are form POSTs answered with a redirect to the application (or, with
// response_mode=form_post, a page that posts to it): the browser applies the consent page's CSP
// `form-action` to those redirects, which HTTP-client tests cannot see.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';

import { createRemoteJWKSet, jwtVerify } from 'jose';

import { cli, startServer, tempDir, freePort, AUDIENCE } from './lib/tessera.mjs';
import { launchChromium, withPage, pageLog } from './lib/browser.mjs';

const EMAIL = 'carol@example.com';
const PASSWORD = `consent-${randomBytes(9).toString('base64url')}`;
const APP_NAME = 'Partner Dashboard';

describe('consent page in Chromium (third-party application, tessera serve)', () => {
  let tmp;
  let databaseUrl;
  let server;
  let browser;
  let callback; // {origin, url, posts: [URLSearchParams], close()}
  let clientId;
  let JWKS;

  before(async () => {
    tmp = await tempDir();
    databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
    // The application's callback: a page to land on, and a receiver for form_post answers.
    const callbackPort = await freePort();
    const posts = [];
    const callbackServer = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk) => { body += chunk; });
      req.on('end', () => {
        if (req.method === 'POST') posts.push(new URLSearchParams(body));
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<!doctype html><title>callback</title><p id="callback">callback reached</p>');
      });
    });
    await new Promise((resolve, reject) => {
      callbackServer.on('error', reject);
      callbackServer.listen(callbackPort, '127.0.0.1', resolve);
    });
    callback = {
      origin: `http://localhost:${callbackPort}`,
      url: `http://localhost:${callbackPort}/callback`,
      posts,
      close: () => new Promise((resolve) => { callbackServer.closeAllConnections(); callbackServer.close(resolve); }),
    };
    await cli(databaseUrl, ['apis', 'create', '--name', 'Quickstart API', '--identifier', AUDIENCE,
      '--scopes', 'read:messages,write:messages', '--allow-offline-access']);
    const app = await cli(databaseUrl, ['apps', 'create', '--name', APP_NAME, '--type', 'spa',
      '--callbacks', callback.url, '--origins', callback.origin, '--logout-urls', callback.origin,
      '--third-party']);
    assert.equal(app.is_first_party, false);
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

  function authorizeUrl({ scope, state, challenge, responseMode }) {
    const url = new URL(`${server.baseUrl}/authorize`);
    url.search = new URLSearchParams({
      response_type: 'code', client_id: clientId, redirect_uri: callback.url, audience: AUDIENCE,
      scope, state, code_challenge: challenge, code_challenge_method: 'S256',
      ...(responseMode ? { response_mode: responseMode } : {}),
    });
    return url.href;
  }

  function pkce() {
    const verifier = randomBytes(48).toString('base64url');
    return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
  }

  /** Signs in on /u/login and waits for the consent page. */
  async function signInToConsent(page) {
    await page.waitForURL((url) => url.pathname === '/u/login');
    await page.fill('#username', EMAIL);
    await page.fill('#password', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL((url) => url.pathname === '/u/consent');
  }

  /** Clicks a consent button and waits until the browser reaches the callback. */
  async function answerAndReachCallback(page, button) {
    const post = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/u/consent');
    await page.click(button);
    const answered = await post;
    try {
      await page.waitForURL((url) => url.origin === callback.origin, { timeout: 15000 });
    } catch {
      const errors = pageLog(page).filter((line) => /console\.error|requestfailed/.test(line));
      assert.fail(`after the consent POST (${answered.status()}) the browser stayed at ${page.url()} instead of `
        + `reaching ${callback.url}; browser said: ${JSON.stringify(errors)}`);
    }
    return answered;
  }

  async function redeem(code, verifier) {
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
    return tokens;
  }

  const browserTest = (name, fn) => it(name, { timeout: 90000 }, () => withPage(browser, name, fn));

  browserTest('Accept: the page lists the scopes, Chromium follows the hand-back to the callback, the code redeems for the consented scopes; the next authorization skips the page', async ({ page }) => {
    const { verifier, challenge } = pkce();
    const state = `st-${randomBytes(6).toString('base64url')}`;
    await page.goto(authorizeUrl({ scope: 'openid profile read:messages', state, challenge }));
    await signInToConsent(page);

    await assert.doesNotReject(page.waitForSelector(`h1:has-text("Authorize ${APP_NAME}")`));
    const listed = await page.locator('#scopes li').allTextContents();
    assert.deepEqual(listed.map((line) => line.trim().split(/\s+/).at(-1)), ['openid', 'profile', 'read:messages']);
    assert.match(listed[1], /Your profile/);

    const answered = await answerAndReachCallback(page, '#accept');
    // The answer hands back to /authorize/resume (303, as login does); that issues the code.
    assert.equal(answered.status(), 303);
    assert.equal(new URL(answered.headers().location, server.baseUrl).pathname, '/authorize/resume');
    const landed = new URL(page.url());
    assert.equal(`${landed.origin}${landed.pathname}`, callback.url);
    assert.equal(landed.searchParams.get('state'), state);
    const tokens = await redeem(landed.searchParams.get('code'), verifier);
    assert.equal(tokens.scope, 'openid profile read:messages');
    const access = await jwtVerify(tokens.access_token, JWKS, { issuer: server.issuer, audience: AUDIENCE });
    assert.equal(access.payload.azp, clientId);

    // Remembered: straight back to the application, no page.
    const again = pkce();
    await page.goto(authorizeUrl({ scope: 'openid read:messages', state, challenge: again.challenge }));
    await page.waitForURL((url) => url.origin === callback.origin);
    assert.ok(new URL(page.url()).searchParams.get('code'), 'a code without the consent page');

    const consents = await cli(databaseUrl, ['users', 'consents', 'list', EMAIL]);
    assert.deepEqual(consents.map((c) => [c.clientID, c.audience, c.scope]),
      [[clientId, AUDIENCE, ['openid', 'profile', 'read:messages']]]);
  });

  browserTest('Decline: Chromium follows the redirect to the callback with error=access_denied and the state', async ({ page }) => {
    const { challenge } = pkce();
    const state = `st-${randomBytes(6).toString('base64url')}`;
    // write:messages was never consented to: the page shows.
    await page.goto(authorizeUrl({ scope: 'openid write:messages', state, challenge }));
    await signInToConsent(page);
    const listed = await page.locator('#scopes li').allTextContents();
    assert.ok(listed.some((line) => line.includes('write:messages')), JSON.stringify(listed));

    await answerAndReachCallback(page, '#deny');
    const landed = new URL(page.url());
    assert.equal(`${landed.origin}${landed.pathname}`, callback.url);
    assert.equal(landed.searchParams.get('error'), 'access_denied');
    assert.equal(landed.searchParams.get('error_description'), 'User did not authorize the request');
    assert.equal(landed.searchParams.get('state'), state);
    assert.equal(landed.searchParams.get('code'), null);
  });

  browserTest('Accept with response_mode=form_post: the answer page posts the code to the callback', async ({ page }) => {
    const { verifier, challenge } = pkce();
    const state = `st-${randomBytes(6).toString('base64url')}`;
    const before = callback.posts.length;
    await page.goto(authorizeUrl({ scope: 'openid offline_access read:messages', state, challenge, responseMode: 'form_post' }));
    await signInToConsent(page);
    await answerAndReachCallback(page, '#accept');
    await page.waitForSelector('#callback');
    assert.equal(callback.posts.length, before + 1, 'one POST reached the callback');
    const posted = callback.posts.at(-1);
    assert.equal(posted.get('state'), state);
    const tokens = await redeem(posted.get('code'), verifier);
    assert.equal(tokens.scope, 'openid offline_access read:messages');
    assert.ok(tokens.refresh_token, 'offline_access consented: a refresh token');
  });
});
