// DPoP (RFC 9449) end to end in Chromium: the @auth0/auth0-spa-js sample (examples/spa-js)
// with `useDpop: true` (/spa-js/?mode=dpop) against `tessera dev`. The SDK keeps a key in
// IndexedDB and sends a proof with every /oauth/token request; Tessera answers DPoP-bound
// tokens (`token_type: DPoP`, `cnf.jkt`), a refresh token usable only with that key, and the
// sample API (tessera-guard) admits the SDK's fetcher (`createFetcher`), which sends
// `Authorization: DPoP …` and a proof. Run twice: as Auth0 does by default, and with
// `--dpop-nonces`, where the first proof to the token endpoint and to the API is answered
// `use_dpop_nonce` and the SDK retries with the nonce it was given. On failure: tests/artifacts/<test name>.png and .log.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';

import { startDev, DEMO_EMAIL } from './lib/dev.mjs';
import { launchChromium, withPage, waitForText, pageLog } from './lib/browser.mjs';
import { decodeJwt } from './lib/tokens.mjs';
import { delay } from './lib/tessera.mjs';

const AUDIENCE = 'https://quickstarts/api';

for (const nonces of [false, true]) describe(`auth0-spa-js with useDpop: true in Chromium against tessera dev${nonces ? ' --dpop-nonces' : ''}`, () => {
  let dev;
  let browser;
  let clientId;
  after(async () => {
    await browser?.close().catch(() => {});
    await dev?.stop();
  });

  it('tessera dev and Chromium start', { timeout: 180000 }, async () => {
    dev = await startDev({ args: nonces ? ['--dpop-nonces'] : [] });
    clientId = (await (await fetch(`${dev.spa}/auth_config.json`, { signal: AbortSignal.timeout(10000) })).json()).clientId;
    browser = await launchChromium();
  });

  const spaJs = () => `${dev.spa}/spa-js/`;
  const isSpaJs = (url) => url.origin === dev.spa && url.pathname === '/spa-js/';

  function recordTokenRequests(page) {
    const requests = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (request.method() !== 'POST' || url.origin !== dev.server || url.pathname !== '/oauth/token') return;
      const form = Object.fromEntries(new URLSearchParams(request.postData() ?? ''));
      requests.push({ form, request });
    });
    return requests;
  }

  async function login(page) {
    await page.goto(`${spaJs()}?mode=dpop`);
    await page.waitForFunction(() => document.body.dataset.ready === 'true' && typeof window.auth0Client === 'object');
    await waitForText(page, '#status', 'Logged out');
    await waitForText(page, '#mode', 'dpop');
    await page.click('#login');
    await page.waitForURL((url) => url.origin === dev.server && url.pathname === '/u/login');
    await page.fill('#username', DEMO_EMAIL);
    await page.fill('#password', dev.password);
    await page.click('button[type=submit]');
    try {
      await page.waitForURL(isSpaJs, { timeout: 15000 });
    } catch {
      assert.fail(`the browser stayed at ${page.url()}: ${JSON.stringify(pageLog(page))}`);
    }
    await waitForText(page, '#status', 'Logged in');
    assert.equal(await page.textContent('#error'), '', 'no error shown');
  }

  async function cached(page) {
    const entries = await page.evaluate(() => Object.keys(localStorage)
      .filter((key) => key.startsWith('@@auth0spajs@@::'))
      .map((key) => JSON.parse(localStorage.getItem(key))));
    return entries.find((e) => e?.body?.audience === AUDIENCE && e.body.access_token)?.body ?? null;
  }

  it('logs in, refreshes with the bound refresh token and calls the API with proofs', { timeout: 120000 }, () => {
    assert.ok(dev && browser, 'tessera dev and Chromium are running');
    return withPage(browser, `spa-js dpop${nonces ? ' nonces' : ''}`, async ({ page }) => {
      const requests = recordTokenRequests(page);
      await login(page);

      const exchanges = requests.filter((r) => r.form.grant_type === 'authorization_code');
      const exchange = exchanges.at(-1);
      assert.ok(exchange, 'the code was redeemed');
      assert.ok(await exchange.request.headerValue('dpop'), 'with a DPoP proof');
      if (nonces) {
        // The first proof had no nonce: 400 use_dpop_nonce with one to use, which the SDK put
        // in its next proof; that one redeemed the code.
        assert.equal(exchanges.length, 2, 'one refusal, one retry');
        const refusal = await exchanges[0].request.response();
        assert.equal(refusal.status(), 400);
        assert.equal((await refusal.json()).error, 'use_dpop_nonce');
        const given = await refusal.headerValue('dpop-nonce');
        assert.ok(given, 'the refusal carries DPoP-Nonce');
        assert.equal(decodeJwt(await exchange.request.headerValue('dpop')).nonce, given);
      } else {
        assert.equal(exchanges.length, 1);
        assert.equal(decodeJwt(await exchange.request.headerValue('dpop')).nonce, undefined);
      }
      const exchanged = await (await exchange.request.response()).json();
      assert.equal(exchanged.token_type, 'DPoP');
      const first = await cached(page);
      const jkt = decodeJwt(first.access_token).cnf?.jkt;
      assert.ok(jkt, 'the access token is bound (cnf.jkt)');
      assert.ok(first.refresh_token, 'a refresh token');

      // The refresh token is bound: without a proof it is refused, and that costs it nothing.
      const stolen = await fetch(`${dev.server}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', client_id: clientId, refresh_token: first.refresh_token }),
        signal: AbortSignal.timeout(10000),
      });
      assert.equal(stolen.status, 400);
      assert.equal((await stolen.json()).error, 'invalid_dpop_proof');

      // The SDK refreshes with its key (cacheMode off), after the first token's second.
      const wait = (decodeJwt(first.access_token).iat + 1) * 1000 + 100 - Date.now();
      if (wait > 0) await delay(Math.min(wait, 2000));
      const before = await page.textContent('#token-fingerprint');
      await page.click('#renew-token');
      await page.waitForFunction((old) => document.getElementById('token-fingerprint').textContent !== old, before);
      const refresh = requests.find((r) => r.form.grant_type === 'refresh_token');
      assert.ok(refresh, 'a refresh_token grant');
      assert.equal(refresh.form.refresh_token, first.refresh_token);
      assert.ok(await refresh.request.headerValue('dpop'), 'with a DPoP proof');
      assert.equal((await refresh.request.response()).status(), 200);
      const second = await cached(page);
      assert.notEqual(second.access_token, first.access_token);
      assert.equal(decodeJwt(second.access_token).cnf?.jkt, jkt, 'bound to the same key');
      assert.equal(await page.textContent('#error'), '');

      // The API through the SDK's fetcher: `DPoP` scheme and a proof, admitted by the guard.
      // With --dpop-nonces the sample API asks for a nonce first (401 use_dpop_nonce and
      // DPoP-Nonce), and the fetcher retries with it.
      const apiResponses = [];
      page.on('response', (r) => {
        if (new URL(r.url()).pathname === '/api/private-scoped' && r.request().method() === 'GET') apiResponses.push(r);
      });
      const response = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/private-scoped' && r.request().method() === 'GET' && r.status() === 200);
      await page.click('#call-scoped');
      const got = await response;
      if (nonces) {
        const first = apiResponses[0];
        assert.equal(first.status(), 401, 'the first call is asked for a nonce');
        assert.match(await first.headerValue('www-authenticate'), /error="use_dpop_nonce"/);
        const given = await first.headerValue('dpop-nonce');
        assert.ok(given, 'with DPoP-Nonce');
        assert.equal(decodeJwt(await got.request().headerValue('dpop')).nonce, given);
      } else {
        assert.equal(apiResponses.length, 1, 'one call');
      }
      assert.equal(got.status(), 200, await got.text().catch(() => ''));
      assert.equal(await got.request().headerValue('authorization'), `DPoP ${second.access_token}`);
      assert.ok(await got.request().headerValue('dpop'), 'a proof for the API request');
      await waitForText(page, '#api-status', '200');
      // The same token as a bearer token is refused.
      const asBearer = await fetch(got.url(), { headers: { authorization: `Bearer ${second.access_token}` }, signal: AbortSignal.timeout(10000) });
      assert.equal(asBearer.status, 401);
    });
  });
});
