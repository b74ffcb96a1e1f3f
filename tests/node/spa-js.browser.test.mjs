// End to end in a real (headless Debian) Chromium: the @auth0/auth0-spa-js sample
// (examples/spa-js, the real SDK from npm) served by `tessera dev` at /spa-js/ on the SPA's
// origin: loginWithRedirect (code + PKCE) → hosted login → handleRedirectCallback → getUser;
// the sample API; getTokenSilently with refresh tokens and with the hidden iframe (prompt=none,
// response_mode=web_message); logout, after which the refresh token is refused.
//
// "After the access token expires": the seeded API issues 24 h tokens, so the silent path is
// forced (a) with getTokenSilently({cacheMode: 'off'}) and (b) by moving the expiry of spa-js's
// cached entry into the past, so that its ordinary getTokenSilently() finds the token expired.
// Contract with the page: element ids listed in tests/node/README.md.
// On failure each test leaves tests/artifacts/<test name>.png and .log.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import { startDev, DEMO_EMAIL } from './lib/dev.mjs';
import { launchChromium, withPage, waitForText, pageLog, CHROMIUM } from './lib/browser.mjs';
import { decodeJwt } from './lib/tokens.mjs';
import { delay } from './lib/tessera.mjs';

const AUDIENCE = 'https://quickstarts/api';
const TEST_TIMEOUT_MS = 90000;
const BUNDLE = '/spa-js/node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.js';

/** What the page shows as #token-fingerprint: base64url(SHA-256(token)), 16 characters. */
const fingerprint = (token) => createHash('sha256').update(token).digest('base64url').slice(0, 16);

describe('auth0-spa-js sample in Chromium against tessera dev', () => {
  let dev;
  let browser;
  let clientId;
  after(async () => {
    await browser?.close().catch(() => {});
    await dev?.stop();
  });

  it('tessera dev serves the spa-js sample at /spa-js/ with the SDK bundle from npm', { timeout: 180000 }, async () => {
    dev = await startDev();
    const config = await (await fetch(`${dev.spa}/auth_config.json`, { signal: AbortSignal.timeout(10000) })).json();
    assert.equal(config.audience, AUDIENCE);
    assert.equal(config.domain, dev.server);
    clientId = config.clientId;
    const page = await fetch(`${dev.spa}/spa-js/`, { signal: AbortSignal.timeout(10000) });
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.ok(html.includes(BUNDLE) && html.includes('/spa-js/app.js'), html);
    const bundle = await fetch(`${dev.spa}${BUNDLE}`, { signal: AbortSignal.timeout(10000) });
    assert.equal(bundle.status, 200);
    assert.match(bundle.headers.get('content-type'), /^text\/javascript/);
    assert.match(await bundle.text(), /createAuth0Client/);
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

  const spaJs = () => `${dev.spa}/spa-js/`;
  const isSpaJs = (url) => url.origin === dev.spa && url.pathname === '/spa-js/';

  /** Every request the page (any frame) makes, with its frame and form body. */
  function recordRequests(page) {
    const requests = [];
    page.on('request', (request) => {
      let frame = null;
      try { frame = request.frame(); } catch { /* service worker or gone */ }
      const url = new URL(request.url());
      let form = null;
      if (request.method() === 'POST') {
        try { form = Object.fromEntries(new URLSearchParams(request.postData() ?? '')); } catch { form = null; }
      }
      requests.push({
        method: request.method(), url, form, request,
        mainFrame: frame === page.mainFrame(),
        navigation: request.isNavigationRequest(),
      });
    });
    return requests;
  }

  const tokenRequests = (requests, grantType) => requests.filter((r) =>
    r.method === 'POST' && r.url.origin === dev.server && r.url.pathname === '/oauth/token'
    && r.form?.grant_type === grantType);

  async function openSpaJs(page, mode) {
    await page.goto(`${spaJs()}?mode=${mode}`);
    await page.waitForFunction(() => document.body.dataset.ready === 'true' && typeof window.auth0Client === 'object');
    await waitForText(page, '#status', 'Logged out');
    await waitForText(page, '#mode', mode);
  }

  /** Clicks #login, signs in on the hosted page and waits for the logged-in sample. */
  async function login(page, mode) {
    await openSpaJs(page, mode);
    await page.click('#login');
    await page.waitForURL((url) => url.origin === dev.server && url.pathname === '/u/login');
    await page.fill('#username', DEMO_EMAIL);
    await page.fill('#password', dev.password);
    const response = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/u/login');
    await page.click('button[type=submit]');
    assert.equal((await response).status(), 303, 'the login POST answers 303');
    try {
      await page.waitForURL(isSpaJs, { timeout: 15000 });
    } catch {
      const errors = pageLog(page).filter((line) => /console\.error|requestfailed|pageerror|HTTP 4/.test(line));
      assert.fail(`after the login POST the browser stayed at ${page.url()}; browser said: ${JSON.stringify(errors)}`);
    }
    await waitForText(page, '#status', 'Logged in');
    await waitForText(page, '#user-name', 'demo');
    assert.equal(await page.textContent('#error'), '', 'no error shown');
  }

  /** spa-js's localStorage cache entry for the quickstart API: {body: {access_token, …}, expiresAt}. */
  async function cacheEntry(page) {
    const entries = await page.evaluate(() => Object.keys(localStorage)
      .filter((key) => key.startsWith('@@auth0spajs@@::'))
      .map((key) => ({ key, value: JSON.parse(localStorage.getItem(key)) })));
    return entries.find((e) => e.value?.body?.audience === AUDIENCE && e.value.body.access_token) ?? null;
  }

  /** Lets the clock pass the second of `token`'s iat (RS256 tokens of the same second are identical). */
  async function afterIatOf(token) {
    const { iat } = decodeJwt(token);
    const waitMs = (iat + 1) * 1000 + 100 - Date.now();
    if (waitMs > 0) await delay(Math.min(waitMs, 2000));
    return iat;
  }

  async function callApi(page, button, path, expectedStatus) {
    const response = page.waitForResponse((r) => r.request().method() === 'GET' && new URL(r.url()).pathname === path);
    await page.click(button);
    const got = await response;
    assert.equal(got.status(), expectedStatus, `GET ${got.url()} from the page`);
    await waitForText(page, '#api-status', String(expectedStatus));
    return got.request();
  }

  async function refreshFromNode(refreshToken) {
    const response = await fetch(`${dev.server}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', client_id: clientId, refresh_token: refreshToken }),
      signal: AbortSignal.timeout(10000),
    });
    return { status: response.status, body: await response.json() };
  }

  // ---- tests --------------------------------------------------------------------------------

  browserTest('loginWithRedirect (code + PKCE) → hosted login → handleRedirectCallback → getUser shows "demo"', async ({ page }) => {
    const requests = recordRequests(page);
    await login(page, 'refresh');
    const authorize = requests.find((r) => r.mainFrame && r.navigation && r.url.origin === dev.server && r.url.pathname === '/authorize');
    assert.ok(authorize, 'a main-frame /authorize navigation');
    const params = authorize.url.searchParams;
    assert.equal(params.get('response_type'), 'code');
    assert.equal(params.get('code_challenge_method'), 'S256');
    assert.ok(params.get('code_challenge'), 'a PKCE challenge');
    assert.equal(params.get('redirect_uri'), spaJs());
    assert.equal(params.get('audience'), AUDIENCE);
    assert.ok(params.get('auth0Client'), 'spa-js identifies itself');
    const [exchange] = tokenRequests(requests, 'authorization_code');
    assert.ok(exchange, 'the code was redeemed at /oauth/token');
    assert.ok(exchange.form.code_verifier, 'with the PKCE verifier');
    assert.equal(exchange.form.client_id, clientId);
    assert.equal((await exchange.request.response()).status(), 200);
    assert.equal(page.url(), spaJs(), 'the code and state were removed from the address bar');

    const user = await page.evaluate(() => window.auth0Client.getUser());
    assert.equal(user.nickname, 'demo');
    assert.match(user.sub, /^auth0\|/);
    const entry = await cacheEntry(page);
    assert.ok(entry, 'spa-js cached the tokens in localStorage');
    const claims = decodeJwt(entry.value.body.access_token);
    assert.ok([claims.aud].flat().includes(AUDIENCE), `aud ${JSON.stringify(claims.aud)}`);
    assert.ok(claims.scope.split(' ').includes('read:messages'), `scope ${claims.scope}`);
    assert.ok(entry.value.body.refresh_token, 'offline_access gave a refresh token');
    await waitForText(page, '#token-fingerprint', fingerprint(entry.value.body.access_token));
  });

  browserTest('the sample API: public, private and private-scoped answer 200 with the cached access token', async ({ page }) => {
    await login(page, 'refresh');
    const { access_token: accessToken } = (await cacheEntry(page)).value.body;
    const pub = await callApi(page, '#call-public', '/api/public', 200);
    assert.equal(await pub.headerValue('authorization'), null);
    const messages = new Set([await page.textContent('#api-result')]);
    for (const [button, path] of [['#call-private', '/api/private'], ['#call-scoped', '/api/private-scoped']]) {
      const request = await callApi(page, button, path, 200);
      assert.equal(await request.headerValue('authorization'), `Bearer ${accessToken}`);
      const again = await fetch(request.url(), { headers: { authorization: `Bearer ${accessToken}` }, signal: AbortSignal.timeout(10000) });
      const { message } = await again.json();
      await waitForText(page, '#api-result', message);
      messages.add(message);
    }
    assert.equal(messages.size, 3, 'three different messages');
  });

  browserTest('refresh tokens: getTokenSilently() serves the cache; after expiry (cacheMode off, then an expired cache entry) it uses grant_type=refresh_token', async ({ page }) => {
    await login(page, 'refresh');
    const requests = recordRequests(page);
    const first = (await cacheEntry(page)).value.body;

    // From the cache: no request at all.
    await page.click('#get-token');
    await waitForText(page, '#token-fingerprint', fingerprint(first.access_token));
    assert.equal(tokenRequests(requests, 'refresh_token').length, 0, 'a fresh cached token needs no request');

    // cacheMode 'off': the refresh grant, a new access token, a rotated refresh token.
    const iat = await afterIatOf(first.access_token);
    await page.click('#renew-token');
    await page.waitForFunction((old) => document.getElementById('token-fingerprint').textContent !== old, fingerprint(first.access_token));
    const refreshes = tokenRequests(requests, 'refresh_token');
    assert.equal(refreshes.length, 1, 'one POST /oauth/token grant_type=refresh_token');
    assert.equal(refreshes[0].form.refresh_token, first.refresh_token, 'with the cached refresh token');
    const refreshed = await refreshes[0].request.response();
    assert.equal(refreshed.status(), 200);
    const refreshBody = await refreshed.json();
    assert.equal(decodeJwt(refreshBody.id_token).nickname, 'demo', 'the refresh returned an ID token');
    const second = (await cacheEntry(page)).value.body;
    assert.notEqual(second.access_token, first.access_token);
    assert.ok(decodeJwt(second.access_token).iat > iat, 'issued later');
    assert.ok(second.refresh_token && second.refresh_token !== first.refresh_token, 'the refresh token was rotated');
    assert.equal(second.access_token, refreshBody.access_token, 'spa-js cached what the refresh returned');
    await waitForText(page, '#token-fingerprint', fingerprint(second.access_token));
    assert.equal(await page.textContent('#error'), '');

    // The cached access token expires: the ordinary getTokenSilently() refreshes by itself.
    await afterIatOf(second.access_token);
    await page.evaluate(() => {
      for (const key of Object.keys(localStorage).filter((k) => k.startsWith('@@auth0spajs@@::'))) {
        const entry = JSON.parse(localStorage.getItem(key));
        if (entry?.body?.access_token) {
          entry.expiresAt = Math.floor(Date.now() / 1000) - 1;
          localStorage.setItem(key, JSON.stringify(entry));
        }
      }
    });
    await page.click('#get-token');
    await page.waitForFunction((old) => document.getElementById('token-fingerprint').textContent !== old, fingerprint(second.access_token));
    assert.equal(tokenRequests(requests, 'refresh_token').length, 2, 'the expired token was renewed with the refresh grant');
    const third = (await cacheEntry(page)).value.body;
    assert.ok(third.refresh_token !== second.refresh_token, 'rotated again');
    await waitForText(page, '#token-fingerprint', fingerprint(third.access_token));
    assert.equal(requests.filter((r) => r.url.pathname === '/authorize').length, 0, 'no /authorize at all (no iframe)');
    assert.equal(requests.filter((r) => r.mainFrame && r.navigation).length, 0, 'no main-frame navigation');

    // The renewed token works.
    const scoped = await callApi(page, '#call-scoped', '/api/private-scoped', 200);
    assert.equal(await scoped.headerValue('authorization'), `Bearer ${third.access_token}`);
  });

  browserTest('iframe mode: getTokenSilently({cacheMode: "off"}) renews through a hidden /authorize?prompt=none&response_mode=web_message, no navigation', async ({ page }) => {
    await login(page, 'iframe');
    const first = (await cacheEntry(page)).value.body;
    assert.equal(first.refresh_token, undefined, 'no refresh token in iframe mode');
    const requests = recordRequests(page);
    await afterIatOf(first.access_token);
    await page.click('#renew-token');
    await page.waitForFunction((old) => document.getElementById('token-fingerprint').textContent !== old, fingerprint(first.access_token));
    assert.equal(await page.textContent('#error'), '');

    const silent = requests.filter((r) => r.url.origin === dev.server && r.url.pathname === '/authorize');
    assert.equal(silent.length, 1, `one /authorize (saw ${silent.map((r) => r.url.href)})`);
    assert.equal(silent[0].mainFrame, false, 'in a frame, not the main frame');
    assert.equal(silent[0].url.searchParams.get('prompt'), 'none');
    assert.equal(silent[0].url.searchParams.get('response_mode'), 'web_message');
    assert.equal(silent[0].url.searchParams.get('response_type'), 'code');
    assert.ok(silent[0].url.searchParams.get('code_challenge'));
    const response = await silent[0].request.response();
    assert.equal(response.status(), 200, 'the web_message page');
    assert.equal(tokenRequests(requests, 'refresh_token').length, 0, 'no refresh grant');
    const exchanges = tokenRequests(requests, 'authorization_code');
    assert.equal(exchanges.length, 1, 'the code from the iframe was redeemed');
    assert.ok(exchanges[0].form.code_verifier);
    assert.equal((await exchanges[0].request.response()).status(), 200);
    assert.equal(requests.filter((r) => r.mainFrame && r.navigation).length, 0, 'no main-frame navigation');
    assert.equal(page.url(), spaJs());

    const second = (await cacheEntry(page)).value.body;
    assert.notEqual(second.access_token, first.access_token);
    await waitForText(page, '#token-fingerprint', fingerprint(second.access_token));
    await waitForText(page, '#status', 'Logged in');
    const scoped = await callApi(page, '#call-scoped', '/api/private-scoped', 200);
    assert.equal(await scoped.headerValue('authorization'), `Bearer ${second.access_token}`);
  });

  browserTest('logout revokes the refresh token (POST /oauth/revoke, then /v2/logout): refused from Node with invalid_grant; the page is logged out', async ({ page }) => {
    await login(page, 'refresh');
    const { refresh_token: refreshToken } = (await cacheEntry(page)).value.body;
    assert.ok(refreshToken);
    const requests = recordRequests(page);
    await page.click('#logout');
    await page.waitForURL((url) => isSpaJs(url) && requests.some((r) => r.url.pathname === '/v2/logout'));
    await page.waitForFunction(() => document.body.dataset.ready === 'true');
    await waitForText(page, '#status', 'Logged out');
    await waitForText(page, '#user-name', '—');

    const revoke = requests.find((r) => r.method === 'POST' && r.url.origin === dev.server && r.url.pathname === '/oauth/revoke');
    assert.ok(revoke, 'POST /oauth/revoke');
    assert.equal(revoke.form.token, refreshToken);
    assert.equal(revoke.form.client_id, clientId);
    assert.equal((await revoke.request.response()).status(), 200);
    const logout = requests.find((r) => r.mainFrame && r.url.pathname === '/v2/logout');
    assert.equal(logout.url.searchParams.get('returnTo'), spaJs());
    assert.equal(await cacheEntry(page), null, 'no cached tokens left');

    const refused = await refreshFromNode(refreshToken);
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.error, 'invalid_grant');

    const priv = await callApi(page, '#call-private', '/api/private', 401);
    assert.equal(await priv.headerValue('authorization'), null, 'no Bearer token sent');
    // Tessera's session ended: logging in again shows the form.
    await page.click('#login');
    await page.waitForURL((url) => url.origin === dev.server && url.pathname === '/u/login');
    await page.locator('#password').waitFor({ state: 'visible' });
  });

  browserTest('logout() alone (no explicit revocation): /v2/logout revokes the session\'s refresh token', async ({ page }) => {
    await login(page, 'refresh');
    const { refresh_token: refreshToken } = (await cacheEntry(page)).value.body;
    const requests = recordRequests(page);
    await page.evaluate(() => { setTimeout(() => window.auth0Client.logout({ logoutParams: { returnTo: `${window.location.origin}/spa-js/` } }), 0); });
    await page.waitForURL((url) => isSpaJs(url) && requests.some((r) => r.url.pathname === '/v2/logout'));
    await waitForText(page, '#status', 'Logged out');
    assert.equal(requests.filter((r) => r.url.pathname === '/oauth/revoke').length, 0, 'spa-js logout() does not call /oauth/revoke');
    const refused = await refreshFromNode(refreshToken);
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.error, 'invalid_grant');
  });
});
