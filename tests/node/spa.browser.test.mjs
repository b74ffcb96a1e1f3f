// End to end in a real (headless Debian) Chromium: the jQuery quickstart SPA served by
// `tessera dev`, signing in on Tessera's hosted login page, calling the sample API.
// Contract with the SPA (examples/jquery-spa): element ids listed in tests/node/README.md.
// On failure each test leaves tests/artifacts/<test name>.png and .log.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';

import { startDev, DEMO_EMAIL } from './lib/dev.mjs';
import { launchChromium, withPage, waitForText, pageLog, CHROMIUM } from './lib/browser.mjs';
import { decodeJwt } from './lib/tokens.mjs';
import { delay, waitFor } from './lib/tessera.mjs';

const AUDIENCE = 'https://quickstarts/api';
const LOGGED_IN = 'You are logged in!';
const LOGGED_OUT = 'You are not logged in! Please log in to continue.';
const TEST_TIMEOUT_MS = 90000;

describe('quickstart SPA in Chromium against tessera dev', () => {
  let dev;
  let browser;
  after(async () => {
    await browser?.close().catch(() => {});
    await dev?.stop();
  });

  // Setup as tests (not hooks), so that a missing SPA or browser is counted as a failure.
  it('tessera dev serves the server (/healthz), the SPA (/auth_config.json) and the sample API (/api/public)', { timeout: 180000 }, async () => {
    dev = await startDev();
    const config = await (await fetch(`${dev.spa}/auth_config.json`, { signal: AbortSignal.timeout(10000) })).json();
    assert.equal(config.audience, AUDIENCE);
    // The readiness line of crates/cli/src/commands/dev.rs (stdout or stderr).
    const ready = `tessera dev ready: server=${dev.server} spa=${dev.spa} api=${dev.api}`;
    await waitFor('the readiness line', () => `${dev.output.stdout}\n${dev.output.stderr}`.includes(ready), { timeoutMs: 5000 })
      .catch(() => assert.fail(`no line "${ready}" in the output of tessera dev:\n${dev.output.stdout}\n${dev.output.stderr}`));
  });

  it(`headless Chromium starts (${CHROMIUM})`, { timeout: 90000 }, async () => {
    browser = await launchChromium();
    assert.ok(browser.version());
  });

  const browserTest = (name, fn) =>
    it(name, { timeout: TEST_TIMEOUT_MS }, () => {
      assert.ok(dev, 'tessera dev is running (see the first test)');
      assert.ok(browser, 'Chromium is running (see the second test)');
      return withPage(browser, name, fn);
    });

  // ---- steps --------------------------------------------------------------------------------

  const origin = (url) => new URL(url).origin;

  /** Opens the SPA logged out and waits until it is wired (auth_config loaded, webAuth made). */
  async function openSpa(page) {
    await page.goto(dev.spa);
    await page.waitForFunction(() => typeof window.webAuth === 'object' && window.webAuth !== null);
    await waitForText(page, '#login-status', LOGGED_OUT);
  }

  /** On the hosted login page (reached from the SPA), types the credentials and submits. */
  async function submitHostedLogin(page, password, email = DEMO_EMAIL) {
    await page.waitForURL((url) => url.origin === dev.server && url.pathname === '/u/login');
    await page.fill('#username', email);
    await page.fill('#password', password);
    const response = page.waitForResponse((r) =>
      r.request().method() === 'POST' && new URL(r.url()).pathname === '/u/login');
    await page.click('button[type=submit]');
    return response;
  }

  async function signInAndReturn(page, email = DEMO_EMAIL) {
    const response = await submitHostedLogin(page, dev.password, email);
    assert.equal(response.status(), 303, 'the login POST answers 303');
    try {
      await page.waitForURL((url) => url.origin === dev.spa, { timeout: 15000 });
    } catch {
      const browserErrors = pageLog(page).filter((line) => /console\.error|requestfailed|pageerror/.test(line));
      assert.fail(`after the login POST the browser stayed at ${page.url()} instead of returning to the SPA ${dev.spa}; `
        + `browser said: ${JSON.stringify(browserErrors)}`);
    }
    await waitForText(page, '#login-status', LOGGED_IN);
  }

  async function loginAsDemo(page) {
    await openSpa(page);
    await page.click('#qsLoginBtn');
    await signInAndReturn(page);
  }

  const stored = (page) => page.evaluate(() => ({
    accessToken: localStorage.getItem('access_token'),
    idToken: localStorage.getItem('id_token'),
    expiresAt: localStorage.getItem('expires_at'),
  }));

  /**
   * Clicks a ping button and returns {status, text}: the status the browser got from the
   * sample API and the text #ping-message then shows. The text must be the API's own message
   * (fetched again here with the same Authorization) or "Request failed: <statusText>".
   */
  async function ping(page, which, expectedStatus) {
    await page.click('#btn-ping-view');
    const path = { public: '/api/public', private: '/api/private', 'private-scoped': '/api/private-scoped' }[which];
    const responsePromise = page.waitForResponse((r) =>
      r.request().method() === 'GET' && new URL(r.url()).pathname === path);
    await page.click(`#btn-ping-${which}`);
    const response = await responsePromise;
    assert.equal(response.status(), expectedStatus, `GET ${response.url()} from the SPA`);
    let expectedText;
    if (expectedStatus === 200) {
      const authorization = await response.request().headerValue('authorization');
      const again = await fetch(response.url(), {
        headers: authorization ? { authorization } : {}, signal: AbortSignal.timeout(10000),
      });
      assert.equal(again.status, 200, `GET ${response.url()} from Node with the SPA's Authorization`);
      expectedText = (await again.json()).message;
      assert.ok(expectedText, 'the API answers {message}');
    } else {
      expectedText = `Request failed: ${{ 401: 'Unauthorized', 403: 'Forbidden' }[expectedStatus]}`;
    }
    const text = await waitForText(page, '#ping-message', expectedText);
    return { status: response.status(), text, request: response.request() };
  }

  // ---- tests --------------------------------------------------------------------------------

  browserTest('login as the demo user on the hosted page, then the profile shows nickname "demo" and an avatar', async ({ page }) => {
    await loginAsDemo(page);
    const tokens = await stored(page);
    assert.ok(tokens.accessToken, 'access_token in localStorage');
    assert.ok(tokens.idToken, 'id_token in localStorage');
    assert.ok(Number(tokens.expiresAt) > Date.now(), `expires_at ${tokens.expiresAt} is in the future`);
    const claims = decodeJwt(tokens.accessToken);
    assert.ok([claims.aud].flat().includes(AUDIENCE), `aud ${JSON.stringify(claims.aud)}`);
    assert.ok(claims.scope.split(' ').includes('read:messages'), `scope ${claims.scope}`);
    const idClaims = decodeJwt(tokens.idToken);
    assert.equal(idClaims.nickname, 'demo', 'the ID token is the demo user\'s');
    assert.match(idClaims.sub, /^auth0\|/);
    // #token-expiry shows the access token's expiry as an ISO date.
    const expiry = await waitForText(page, '#token-expiry', /^\d{4}-\d\d-\d\dT/);
    assert.ok(!Number.isNaN(Date.parse(expiry)), `#token-expiry ${expiry}`);

    await page.click('#btn-profile-view');
    await page.locator('#profile-view').waitFor({ state: 'visible' });
    await waitForText(page, '#profile-view .nickname', 'demo');
    const avatar = page.locator('#profile-view img.avatar');
    await avatar.waitFor({ state: 'visible' });
    const src = await avatar.getAttribute('src');
    assert.ok(src && /^(https?:|data:)/.test(src), `avatar src ${src}`);
  });

  browserTest('logged in: ping public, private and private-scoped show the API\'s messages (200 each)', async ({ page }) => {
    await loginAsDemo(page);
    const { accessToken } = await stored(page);
    const pub = await ping(page, 'public', 200);
    const priv = await ping(page, 'private', 200);
    const scoped = await ping(page, 'private-scoped', 200);
    assert.equal(await priv.request.headerValue('authorization'), `Bearer ${accessToken}`);
    assert.equal(await scoped.request.headerValue('authorization'), `Bearer ${accessToken}`);
    assert.equal(new Set([pub.text, priv.text, scoped.text]).size, 3, 'three different messages');
  });

  browserTest('a token without read:messages: private works (200), private-scoped shows "Request failed: Forbidden" (403)', async ({ page }) => {
    await openSpa(page);
    // Sign in asking only for "openid profile" (the WebAuth's audience stays the quickstart API).
    await page.evaluate(() => { setTimeout(() => window.webAuth.authorize({ scope: 'openid profile' }), 0); });
    await signInAndReturn(page);
    const { accessToken } = await stored(page);
    const claims = decodeJwt(accessToken);
    assert.ok([claims.aud].flat().includes(AUDIENCE), `aud ${JSON.stringify(claims.aud)}`);
    assert.ok(!(claims.scope ?? '').split(' ').includes('read:messages'), `scope "${claims.scope}" lacks read:messages`);
    await ping(page, 'private', 200);
    await ping(page, 'private-scoped', 403);
  });

  browserTest('logout: back to logged out, public 200, private shows "Request failed: Unauthorized" (401), the next login asks for the password', async ({ page }) => {
    await loginAsDemo(page);
    await page.click('#qsLogoutBtn');
    await page.waitForURL((url) => url.origin === dev.spa);
    await waitForText(page, '#login-status', LOGGED_OUT);
    const tokens = await stored(page);
    assert.equal(tokens.accessToken, null, 'no access_token left in localStorage');
    assert.equal(tokens.idToken, null, 'no id_token left in localStorage');
    await ping(page, 'public', 200);
    const priv = await ping(page, 'private', 401);
    assert.equal(await priv.request.headerValue('authorization'), null, 'no Bearer token sent');
    // The Tessera session ended too: logging in again shows the login form, not an instant SSO.
    await page.click('#qsLoginBtn');
    await page.waitForURL((url) => url.origin === dev.server && url.pathname === '/u/login');
    await page.locator('#password').waitFor({ state: 'visible' });
  });

  browserTest('a wrong password shows "Wrong email or password." (401) on the hosted page and stores no token', async ({ page }) => {
    await openSpa(page);
    await page.click('#qsLoginBtn');
    const response = await submitHostedLogin(page, `${dev.password}-wrong`);
    assert.equal(response.status(), 401);
    await waitForText(page, 'p.error', 'Wrong email or password.');
    assert.equal(origin(page.url()), dev.server, 'still on the hosted login page');
    await page.goto(dev.spa);
    await waitForText(page, '#login-status', LOGGED_OUT);
    const tokens = await stored(page);
    assert.deepEqual(tokens, { accessToken: null, idToken: null, expiresAt: null });
  });

  browserTest('silent renewal (#btn-renew, checkSession) yields a new access token without a visible login', async ({ page }) => {
    await loginAsDemo(page);
    const before = await stored(page);
    const expiryBefore = await waitForText(page, '#token-expiry', /^\d{4}-\d\d-\d\dT/);
    // RS256 is deterministic: a token minted in the same second with the same claims would be
    // byte-identical. Let the clock move past the first token's iat.
    const { iat } = decodeJwt(before.accessToken);
    const waitMs = (iat + 1) * 1000 + 100 - Date.now();
    if (waitMs > 0) await delay(Math.min(waitMs, 2000));

    const mainFrameNavigations = [];
    const silentAuthorizeRequests = [];
    page.on('request', (request) => {
      let frame;
      try { frame = request.frame(); } catch { return; }
      if (request.isNavigationRequest() && frame === page.mainFrame()) mainFrameNavigations.push(request.url());
      if (request.url().startsWith(`${dev.server}/authorize`) && frame !== page.mainFrame()) {
        silentAuthorizeRequests.push(request.url());
      }
    });
    await page.click('#btn-renew');
    await waitForText(page, '#renew-status', 'Tokens renewed');

    const after = await stored(page);
    assert.ok(after.accessToken, 'an access token after renewal');
    assert.notEqual(after.accessToken, before.accessToken, 'the access token in localStorage changed');
    assert.ok(decodeJwt(after.accessToken).iat > iat, 'the new token was issued later');
    assert.deepEqual(mainFrameNavigations, [], 'no main-frame navigation (no visible login)');
    assert.equal(origin(page.url()), dev.spa);
    assert.ok(silentAuthorizeRequests.some((url) => new URL(url).searchParams.get('prompt') === 'none'),
      `a prompt=none /authorize in a hidden frame (saw ${JSON.stringify(silentAuthorizeRequests)})`);
    await waitForText(page, '#login-status', LOGGED_IN);
    const expiryAfter = await waitForText(page, '#token-expiry', /^\d{4}-\d\d-\d\dT/);
    assert.notEqual(expiryAfter, expiryBefore, '#token-expiry moved');
    // The renewed token works.
    const scoped = await ping(page, 'private-scoped', 200);
    assert.equal(await scoped.request.headerValue('authorization'), `Bearer ${after.accessToken}`);
  });

  // ---- 04-Authorization: RBAC decides who sees the admin view ----------------------------------

  /** Clicks the admin button in the admin view; returns the POST's status and what the view shows. */
  async function callAdmin(page) {
    const responsePromise = page.waitForResponse((r) =>
      r.request().method() === 'POST' && new URL(r.url()).pathname === '/api/admin');
    await page.evaluate(() => callAPI('/api/admin', true, 'POST', '#admin-message'));
    const response = await responsePromise;
    await page.waitForFunction(() => document.querySelector('#admin-message').textContent.length > 0);
    return { status: response.status(), text: await page.textContent('#admin-message') };
  }

  browserTest('the admin (role admin) sees the admin view and POST /api/admin answers 200', async ({ page }) => {
    await openSpa(page);
    await page.click('#qsLoginBtn');
    await signInAndReturn(page, DEMO_EMAIL);
    const scope = decodeJwt((await stored(page)).accessToken).scope.split(' ');
    assert.ok(scope.includes('write:messages'), `granted: ${scope}`);
    await page.waitForSelector('#btn-admin-view:not([hidden])');
    await page.click('#btn-admin-view');
    await page.click('#btn-ping-admin');
    await page.waitForFunction(() => document.querySelector('#admin-message').textContent.length > 0);
    assert.match(await page.textContent('#admin-message'), /^Hello from an admin endpoint/);
    const again = await callAdmin(page);
    assert.equal(again.status, 200);
  });

  browserTest('the reader (role reader) does not see the admin view and POST /api/admin answers 403', async ({ page }) => {
    await openSpa(page);
    await page.click('#qsLoginBtn');
    await signInAndReturn(page, 'reader@example.com');
    const scope = decodeJwt((await stored(page)).accessToken).scope.split(' ');
    assert.ok(scope.includes('read:messages') && !scope.includes('write:messages'), `granted: ${scope}`);
    assert.equal(await page.isHidden('#btn-admin-view'), true, 'no admin button');
    const result = await callAdmin(page);
    assert.equal(result.status, 403);
    assert.equal(result.text, 'Request failed: Forbidden');
  });
});
