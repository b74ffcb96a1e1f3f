// `tessera dev --tls` in a real (headless Debian) Chromium: Tessera, the jQuery sample and the
// sample API on https://localhost:… with a certificate from the local CA tessera dev made, the
// sample configured with the domain alone — no `overrides` — as against Auth0.
//
// Chromium trusts the CA for real: it is added with certutil (Debian libnss3-tools) to the NSS
// database of a temporary HOME, the command tessera dev prints. No certificate error is ignored
// (no --ignore-certificate-errors, no ignoreHTTPSErrors); a second Chromium without that
// database is refused, which shows the trust is what makes the first one work.
//
// Why the SPA is https too: http://localhost:S and https://localhost:P would be different sites
// (schemeful same-site), the silent renewal's hidden iframe a third-party context, and this
// Chromium withholds the session cookie there (blocked reason "UserPreferences": third-party
// cookies are blocked), so checkSession would answer login_required. https://localhost:S and
// https://localhost:P are one site. The session cookie is still `SameSite=None; Secure`, as
// Auth0's, for applications on other sites in browsers that allow third-party cookies.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { startDev, DEMO_EMAIL } from './lib/dev.mjs';
import { launchChromium, withPage, waitForText, pageLog } from './lib/browser.mjs';
import { decodeJwt } from './lib/tokens.mjs';
import { delay, tempDir, waitFor } from './lib/tessera.mjs';
import { httpsRequest, homeTrustingCa } from './lib/tls.mjs';

const AUDIENCE = 'https://quickstarts/api';
const LOGGED_IN = 'You are logged in!';
const LOGGED_OUT = 'You are not logged in! Please log in to continue.';
const TEST_TIMEOUT_MS = 90000;

describe('tessera dev --tls: the jQuery sample with only the https domain, in Chromium trusting the dev CA', () => {
  let dev;
  let browser;
  let home;
  after(async () => {
    await browser?.close().catch(() => {});
    await dev?.stop();
    await home?.remove();
  });

  const port = () => new URL(dev.server).port;

  // Setup as tests (not hooks), so that a failure to start is counted.
  it('tessera dev --tls serves https://localhost:P (issuer https://localhost:P/) with a certificate only its CA vouches for', { timeout: 180000 }, async () => {
    dev = await startDev({ tls: true });
    for (const url of [dev.server, dev.spa, dev.api]) assert.match(url, /^https:\/\/localhost:\d+$/);
    const ready = `tessera dev ready: server=${dev.server} spa=${dev.spa} api=${dev.api}`;
    await waitFor('the readiness line', () => dev.output.stdout.includes(ready), { timeoutMs: 5000 })
      .catch(() => assert.fail(`no line "${ready}" in:\n${dev.output.stdout}\n${dev.output.stderr}`));
    // The trust instructions name the CA file and how to use it.
    for (const line of [`CA certificate   ${dev.caFile}`, `NODE_EXTRA_CA_CERTS=${dev.caFile}`,
      `curl --cacert ${dev.caFile}`, `-i ${dev.caFile}`, 'update-ca-certificates']) {
      assert.ok(dev.output.stdout.includes(line), `"${line}" in the output:\n${dev.output.stdout}`);
    }
    const discovery = await httpsRequest(`${dev.server}/.well-known/openid-configuration`, { caFile: dev.caFile });
    assert.equal(discovery.status, 200);
    assert.equal(discovery.body.issuer, `https://localhost:${port()}/`);
    assert.equal(discovery.body.jwks_uri, `https://localhost:${port()}/.well-known/jwks.json`);
    // Node's own roots do not know the dev CA: the TLS is real.
    await assert.rejects(httpsRequest(`${dev.server}/healthz`), (error) => {
      assert.match(error.code ?? error.message, /CERT|SIGNATURE|ISSUER/);
      return true;
    });
  });

  it('/auth_config.json gives the https domain alone: no tokenIssuer, so no overrides', { timeout: 30000 }, async () => {
    assert.ok(dev, 'tessera dev is running (see the first test)');
    const { body: config } = await httpsRequest(`${dev.spa}/auth_config.json`, { caFile: dev.caFile });
    assert.deepEqual(Object.keys(config).sort(), ['apiUrl', 'audience', 'clientId', 'domain']);
    assert.equal(config.domain, `localhost:${port()}`);
    assert.equal(config.audience, AUDIENCE);
    assert.equal(config.apiUrl, dev.api);
  });

  it('Chromium trusts the dev CA through the NSS database of its HOME (certutil), and only then', { timeout: 120000 }, async () => {
    assert.ok(dev, 'tessera dev is running (see the first test)');
    home = await tempDir('tessera-chromium-home-');
    const listed = await homeTrustingCa(path.join(home.dir, 'trusting'), dev.caFile);
    assert.match(listed, /Tessera Development CA\s+C,,/);
    browser = await launchChromium({ env: { HOME: path.join(home.dir, 'trusting') } });
    await withPage(browser, 'dev CA trusted', async ({ page }) => {
      const response = await page.goto(`${dev.server}/healthz`);
      assert.equal(response.status(), 200);
      const security = await response.securityDetails();
      assert.equal(security?.subjectName, 'localhost');
      assert.match(security?.issuer ?? '', /Tessera Development CA/);
      // No HSTS for localhost: it would hold for every port, other local http servers too.
      assert.equal(response.headers()['strict-transport-security'], undefined);
    });
    // Control: a browser whose HOME has no such database refuses the certificate.
    const untrusting = await launchChromium({ env: { HOME: path.join(home.dir, 'empty') } });
    try {
      await withPage(untrusting, 'dev CA not trusted', async ({ page }) => {
        await assert.rejects(page.goto(`${dev.server}/healthz`), /ERR_CERT_AUTHORITY_INVALID/);
      });
    } finally {
      await untrusting.close().catch(() => {});
    }
  });

  const browserTest = (name, fn) =>
    it(name, { timeout: TEST_TIMEOUT_MS }, () => {
      assert.ok(dev, 'tessera dev is running (see the first test)');
      assert.ok(browser, 'Chromium is running (see the third test)');
      return withPage(browser, name, async (args) => {
        await recordWebAuthOptions(args.context);
        return fn(args);
      });
    });

  // ---- steps --------------------------------------------------------------------------------

  /**
   * Before any script of the page runs: wraps auth0.WebAuth as auth0.min.js defines it, so
   * every `new auth0.WebAuth(options)` the page makes is recorded in window.__webAuthOptions.
   */
  async function recordWebAuthOptions(context) {
    await context.addInitScript(() => {
      window.__webAuthOptions = [];
      let sdk;
      // auth0.min.js (UMD) sets `globalThis.auth0 = {}`, then `auth0.WebAuth = …` on it.
      Object.defineProperty(window, 'auth0', {
        configurable: true,
        get: () => sdk,
        set: (exports) => {
          let recording;
          Object.defineProperty(exports, 'WebAuth', {
            configurable: true,
            enumerable: true,
            get: () => recording,
            set: (Original) => {
              recording = function WebAuth(options) {
                window.__webAuthOptions.push(JSON.parse(JSON.stringify(options)));
                return new Original(options);
              };
              recording.prototype = Original.prototype;
            },
          });
          sdk = exports;
        },
      });
    });
  }

  /** Opens the SPA logged out and waits until it is wired (auth_config loaded, webAuth made). */
  async function openSpa(page) {
    await page.goto(dev.spa);
    await page.waitForFunction(() => typeof window.webAuth === 'object' && window.webAuth !== null);
    await waitForText(page, '#login-status', LOGGED_OUT);
  }

  async function submitHostedLogin(page, password, email = DEMO_EMAIL) {
    await page.waitForURL((url) => url.origin === dev.server && url.pathname === '/u/login');
    await page.fill('#username', email);
    await page.fill('#password', password);
    const response = page.waitForResponse((r) =>
      r.request().method() === 'POST' && new URL(r.url()).pathname === '/u/login');
    await page.click('button[type=submit]');
    return response;
  }

  async function loginAsDemo(page) {
    await openSpa(page);
    await page.click('#qsLoginBtn');
    const response = await submitHostedLogin(page, dev.password);
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

  const stored = (page) => page.evaluate(() => ({
    accessToken: localStorage.getItem('access_token'),
    idToken: localStorage.getItem('id_token'),
  }));

  /**
   * Clicks a ping button; returns the status the browser got and the text the page then shows.
   * The page keeps the previous answer on screen until the new one arrives, so the wait is for
   * text other than what was there before the click.
   */
  async function ping(page, which) {
    await page.click('#btn-ping-view');
    const before = ((await page.locator('#ping-message').first().textContent().catch(() => '')) ?? '').trim();
    const pathname = { public: '/api/public', private: '/api/private', 'private-scoped': '/api/private-scoped' }[which];
    const responsePromise = page.waitForResponse((r) => new URL(r.url()).pathname === pathname);
    await page.click(`#btn-ping-${which}`);
    const response = await responsePromise;
    const text = await waitForText(page, '#ping-message', (shown) => /\S/.test(shown) && shown !== before);
    return { status: response.status(), text, request: response.request() };
  }

  // ---- tests --------------------------------------------------------------------------------

  browserTest('the page makes its WebAuth with the domain alone; auth0-js derives https://localhost:P/ as the issuer', async ({ page }) => {
    await openSpa(page);
    const options = await page.evaluate(() => window.__webAuthOptions);
    assert.equal(options.length, 1, `one WebAuth: ${JSON.stringify(options)}`);
    assert.equal(options[0].domain, `localhost:${port()}`);
    assert.equal(options[0].overrides, undefined, 'no overrides (no __token_issuer)');
    const derived = await page.evaluate(() => ({
      issuer: window.webAuth.baseOptions.token_issuer,
      rootUrl: window.webAuth.baseOptions.rootUrl,
      overrides: window.webAuth.baseOptions.overrides,
    }));
    assert.deepEqual(derived, { issuer: `https://localhost:${port()}/`, rootUrl: `https://localhost:${port()}`, overrides: undefined });
  });

  browserTest('login as the demo user on the https hosted page, then the profile shows "demo"', async ({ page, context }) => {
    await loginAsDemo(page);
    const tokens = await stored(page);
    const idClaims = decodeJwt(tokens.idToken);
    assert.equal(idClaims.iss, `https://localhost:${port()}/`);
    assert.equal(idClaims.nickname, 'demo');
    const access = decodeJwt(tokens.accessToken);
    assert.equal(access.iss, `https://localhost:${port()}/`);
    assert.ok([access.aud].flat().includes(AUDIENCE), `aud ${JSON.stringify(access.aud)}`);

    await page.click('#btn-profile-view');
    await page.locator('#profile-view').waitFor({ state: 'visible' });
    await waitForText(page, '#profile-view .nickname', 'demo');

    // The session cookie a cross-site iframe can carry, only over https.
    const cookies = await context.cookies(dev.server);
    const session = cookies.find((c) => c.name === '__Host-tessera_session');
    assert.ok(session, `a __Host-tessera_session cookie: ${JSON.stringify(cookies.map((c) => c.name))}`);
    assert.deepEqual(
      { sameSite: session.sameSite, secure: session.secure, httpOnly: session.httpOnly, path: session.path },
      { sameSite: 'None', secure: true, httpOnly: true, path: '/' },
    );
  });

  browserTest('/api/private and /api/private-scoped answer 200 through the sample API (its guard fetches the JWKS over https)', async ({ page }) => {
    await loginAsDemo(page);
    const { accessToken } = await stored(page);
    const priv = await ping(page, 'private');
    assert.equal(priv.status, 200, priv.text);
    assert.equal(await priv.request.headerValue('authorization'), `Bearer ${accessToken}`);
    const scoped = await ping(page, 'private-scoped');
    assert.equal(scoped.status, 200, scoped.text);
    assert.notEqual(scoped.text, priv.text);
  });

  browserTest('silent renewal (checkSession in a hidden iframe, response_mode=web_message) yields a new token without a visible login', async ({ page }) => {
    await loginAsDemo(page);
    const before = await stored(page);
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
        silentAuthorizeRequests.push(request);
      }
    });
    await page.click('#btn-renew');
    await waitForText(page, '#renew-status', 'Tokens renewed');

    const after = await stored(page);
    assert.notEqual(after.accessToken, before.accessToken, 'the access token changed');
    assert.ok(decodeJwt(after.accessToken).iat > iat, 'the new token was issued later');
    assert.equal(decodeJwt(after.idToken).iss, `https://localhost:${port()}/`);
    assert.deepEqual(mainFrameNavigations, [], 'no main-frame navigation (no visible login)');
    const silent = silentAuthorizeRequests.find((r) => new URL(r.url()).searchParams.get('prompt') === 'none');
    assert.ok(silent, 'a prompt=none /authorize in a hidden frame');
    assert.equal(new URL(silent.url()).searchParams.get('response_mode'), 'web_message');
    // The iframe's request carried the session cookie.
    assert.match(await silent.headerValue('cookie') ?? '', /__Host-tessera_session=/);
    const scoped = await ping(page, 'private-scoped');
    assert.equal(scoped.status, 200);
    assert.equal(await scoped.request.headerValue('authorization'), `Bearer ${after.accessToken}`);
  });

  browserTest('the spa-js sample (/spa-js/, iframe mode) with the same domain-only config: login, API 200, silent renewal', async ({ page }) => {
    await page.goto(`${dev.spa}/spa-js/?mode=iframe`);
    await page.waitForFunction(() => document.body.dataset.ready === 'true' && typeof window.auth0Client === 'object');
    await waitForText(page, '#status', 'Logged out');
    await page.click('#login');
    const response = await submitHostedLogin(page, dev.password);
    assert.equal(response.status(), 303);
    await page.waitForURL((url) => url.origin === dev.spa && url.pathname === '/spa-js/');
    await waitForText(page, '#status', 'Logged in');
    await waitForText(page, '#user-name', 'demo');
    const call = async () => {
      const answer = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/private-scoped');
      await page.click('#call-scoped');
      return (await answer).status();
    };
    assert.equal(await call(), 200);
    const before = await page.textContent('#token-fingerprint');
    await delay(1100); // a token of another second
    const silent = page.waitForRequest((r) => r.url().startsWith(`${dev.server}/authorize`) && r.frame() !== page.mainFrame());
    await page.click('#renew-token');
    assert.equal(new URL((await silent).url()).searchParams.get('prompt'), 'none');
    await page.waitForFunction((old) => document.getElementById('token-fingerprint').textContent !== old, before);
    assert.equal(await page.textContent('#error'), '');
    assert.equal(await call(), 200);
  });

  browserTest('auth0-js checks the ID token issuer itself: the same server under another name (127.0.0.1) is refused', async ({ page, context }) => {
    // The certificate is valid for 127.0.0.1 too, so only the issuer differs from https://DOMAIN/.
    const { body: config } = await httpsRequest(`${dev.spa}/auth_config.json`, { caFile: dev.caFile });
    await context.route(`${dev.spa}/auth_config.json`, (route) =>
      route.fulfill({ json: { ...config, domain: `127.0.0.1:${port()}` } }));
    await openSpa(page);
    await page.click('#qsLoginBtn');
    await page.waitForURL((url) => url.host === `127.0.0.1:${port()}` && url.pathname === '/u/login');
    await page.fill('#username', DEMO_EMAIL);
    await page.fill('#password', dev.password);
    await page.click('button[type=submit]');
    await page.waitForURL((url) => url.origin === dev.spa);
    await waitForText(page, '#auth-error', /^Login failed: .*[Ii]ssuer/);
    assert.deepEqual(await stored(page), { accessToken: null, idToken: null });
    await waitForText(page, '#login-status', LOGGED_OUT);
  });
});
