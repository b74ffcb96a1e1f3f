// A second factor at the hosted login in a real (headless Debian) Chromium, with JavaScript on
// and off, against the real `tessera serve`: the tenant's policy and factors turned on through
// the Management API, a user enrolling an authenticator app (the key read from the page, codes
// computed here as an app does, RFC 6238), the recovery code shown once, a code accepted once, a
// recovery code used once, the ID token's `amr` and `acr` through a real authorization code flow
// with PKCE, step-up with `acr_values`, and wrong codes locking the user out for a while. The QR
// code is an inline SVG: no request leaves for another origin. No page breaks its CSP (the
// code form's `form-action` must allow the redirects on to the application, which only a
// browser enforces).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';

import { cli, clientCredentialsToken, startServer, tempDir, freePort } from './lib/tessera.mjs';
import { launchChromium, withPage } from './lib/browser.mjs';
import { watchCsp } from './lib/page-audit.mjs';
import { base32Decode, stepNow, totp, wrongCode } from './lib/totp.mjs';

const MFA_ACR = 'http://schemas.openid.net/pape/policies/2007/06/multi-factor';
const decodeJwt = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());

describe('a second factor at the hosted login in Chromium (tessera serve)', () => {
  let tmp;
  let databaseUrl;
  let server;
  let browser;
  let callback; // the application's redirect_uri
  let clientId;
  let management; // (method, path, body) => {status, body}

  before(async () => {
    tmp = await tempDir();
    databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
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
    const app = await cli(databaseUrl, ['apps', 'create', '--name', 'MFA SPA', '--type', 'spa',
      '--callbacks', callback.url, '--origins', callback.origin]);
    clientId = app.client_id;
    server = await startServer({ databaseUrl });

    // An automation client for the Management API (registered by the server when it starts).
    const audience = `${server.issuer}api/v2/`;
    const automation = await cli(databaseUrl, ['apps', 'create', '--name', 'Automation', '--type', 'm2m']);
    await cli(databaseUrl, ['grants', 'create', '--app', automation.client_id, '--api', audience,
      '--scopes', 'update:guardian_factors,update:mfa_policies,read:authentication_methods']);
    const { access_token: token } = await clientCredentialsToken(server.baseUrl, {
      clientId: automation.client_id, clientSecret: automation.client_secret, audience,
    });
    management = async (method, pathAndQuery, body) => {
      const response = await fetch(`${server.baseUrl}/api/v2${pathAndQuery}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10000),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : null };
    };
    for (const factor of ['otp', 'recovery-code']) {
      assert.deepEqual(await management('PUT', `/guardian/factors/${factor}`, { enabled: true }),
        { status: 200, body: { enabled: true } });
    }
    browser = await launchChromium();
  }, { timeout: 120000 });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.stop();
    await callback?.close();
    await tmp?.remove();
  });

  /** Every login needs a second factor (`all`), or only those that ask for one. */
  async function policy(all) {
    const policies = all ? ['all-applications'] : [];
    assert.deepEqual(await management('PUT', '/guardian/policies', policies), { status: 200, body: policies });
  }

  async function newUser() {
    const email = `mfa-${randomBytes(5).toString('hex')}@example.com`;
    const password = `pw-${randomBytes(12).toString('base64url')}`;
    await cli(databaseUrl, ['users', 'create', '--email', email, '--password-stdin'], { input: `${password}\n` });
    return { email, password };
  }

  /** Goes to /authorize as the application does (code flow, PKCE); returns what redeems it. */
  async function authorize(page, extra = {}) {
    const verifier = randomBytes(48).toString('base64url');
    const state = `st-${randomBytes(6).toString('base64url')}`;
    const url = new URL(`${server.baseUrl}/authorize`);
    url.search = new URLSearchParams({
      response_type: 'code', client_id: clientId, redirect_uri: callback.url, scope: 'openid profile',
      state, nonce: randomBytes(9).toString('base64url'),
      code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
      ...extra,
    });
    await page.goto(url.href);
    return { verifier, state };
  }

  /** The password on /u/login; ends where the server sends the browser next. */
  async function password(page, user, next) {
    await page.waitForURL((url) => url.pathname === '/u/login');
    await page.fill('#username', user.email);
    await page.fill('#password', user.password);
    await Promise.all([page.waitForURL(next), page.click('button[type=submit]')]);
  }

  const onMfa = (url) => url.pathname === '/u/mfa';
  const onCallback = (url) => url.origin === callback.origin;

  /** Posts the page's form (a code or a recovery code); returns the answer's status. */
  async function answer(page, field, value) {
    await page.fill(field, value);
    // The answer is a page (a refusal, the recovery code) or a redirect onwards: either way a
    // navigation, which is waited for so that the next look is at the new page.
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/u/mfa'),
      page.waitForNavigation(),
      page.click('button[type=submit]'),
    ]);
    return response.status();
  }

  /** At the callback: the code redeemed at /oauth/token, the ID token's claims. */
  async function idTokenAtCallback(page, { verifier, state }) {
    await page.waitForURL(onCallback);
    const landed = new URL(page.url());
    assert.equal(`${landed.origin}${landed.pathname}`, callback.url);
    assert.equal(landed.searchParams.get('state'), state);
    const response = await fetch(`${server.baseUrl}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code', client_id: clientId, code: landed.searchParams.get('code'),
        redirect_uri: callback.url, code_verifier: verifier,
      }),
      signal: AbortSignal.timeout(10000),
    });
    const tokens = await response.json();
    assert.equal(response.status, 200, JSON.stringify(tokens));
    return decodeJwt(tokens.id_token);
  }

  const errorText = async (page) => (await page.locator('#error').textContent()).trim();

  /**
   * Enrolls `user` on the enrollment page the browser is on: checks the page (inline SVG, the
   * key as text), a wrong code refused with the same key shown again, then the right one. Ends
   * on the recovery-code page; returns {seed, step (the step used), recoveryCode}.
   */
  async function enroll(page) {
    assert.equal((await page.locator('h1').textContent()).trim(), 'Secure your account');
    assert.equal(await page.locator('.qr svg').count(), 1, 'an inline SVG QR code');
    assert.equal(await page.locator('img, object, iframe, embed').count(), 0, 'nothing fetched to draw it');
    const keyText = (await page.locator('#secret').textContent()).trim();
    assert.match(keyText, /^[A-Z2-7]{32}$/, 'a 160-bit key as base32');
    const seed = base32Decode(keyText);

    assert.equal(await answer(page, '#code', wrongCode(seed)), 401);
    assert.equal(await errorText(page), 'That code is not right. Try again.');
    assert.equal((await page.locator('#secret').textContent()).trim(), keyText, 'the same key after a wrong code');

    const step = stepNow();
    assert.equal(await answer(page, '#code', totp(seed, step)), 200);
    assert.equal((await page.locator('h1').textContent()).trim(), 'Save your recovery code');
    const recoveryCode = (await page.locator('#recovery-code').textContent()).trim();
    assert.match(recoveryCode, /^[A-Z0-9]{24}$/);
    return { seed, step, recoveryCode };
  }

  /**
   * A code for the next login: the current step's, or — if that step was already used — the
   * next one (the server accepts one step either side of now, never a step used before).
   */
  function nextCode(seed, lastStep) {
    const step = Math.max(stepNow(), lastStep + 1);
    assert.ok(step <= stepNow() + 1, 'a step the server accepts');
    return { step, code: totp(seed, step) };
  }

  for (const javaScriptEnabled of [true, false]) {
    const mode = javaScriptEnabled ? 'JavaScript on' : 'JavaScript off';
    /** `fn` in a fresh browser (no session); no page may break its CSP (as a form_action would). */
    const otherBrowser = (name, fn) => withPage(browser, `mfa-${name}-${mode}`, async (args) => {
      const csp = await watchCsp(args.context);
      await fn(args);
      assert.deepEqual(csp.violations, [], 'no CSP violation');
    }, { contextOptions: { javaScriptEnabled } });
    const browserTest = (name, fn) => it(`${name} (${mode})`, { timeout: 120000 }, () => otherBrowser(name, fn));

    browserTest('enrollment, the recovery code shown once, a code once, a recovery code once', async ({ page, context }) => {
      await policy(true);
      const user = await newUser();

      // Every request of the enrollment stays on the server's origin, until the callback.
      const requests = [];
      context.on('request', (request) => requests.push(request.url()));
      const first = await authorize(page);
      await password(page, user, onMfa);
      const { seed, step: enrolledStep, recoveryCode } = await enroll(page);
      const offOrigin = requests.filter((url) => new URL(url).origin !== new URL(server.baseUrl).origin);
      assert.deepEqual(offOrigin, [], 'no request left for another origin');
      // The continue link resumes the authorization: the application gets its code.
      await Promise.all([page.waitForURL(onCallback), page.click('#continue')]);
      const enrolled = await idTokenAtCallback(page, first);
      assert.deepEqual(enrolled.amr, ['pwd', 'mfa', 'otp']);
      assert.equal(enrolled.acr, undefined, 'no acr when the application did not ask');
      // The page that showed the recovery code does not show it again.
      const shownAgain = await page.goto(`${server.baseUrl}/u/mfa?state=${new URL(requests.find((u) => new URL(u).pathname === '/u/mfa')).searchParams.get('state')}`);
      assert.equal(shownAgain.status(), 400);
      assert.equal(await page.locator('#recovery-code').count(), 0, 'the recovery code is shown once');

      // Another browser: the code is asked (no enrollment, no key, no recovery code shown).
      let used;
      await otherBrowser('second-login', async ({ page: second }) => {
        const login = await authorize(second);
        await password(second, user, onMfa);
        assert.equal((await second.locator('h1').textContent()).trim(), 'Verify your identity');
        assert.equal(await second.locator('svg, #secret, #recovery-code').count(), 0);
        used = nextCode(seed, enrolledStep);
        assert.equal(await answer(second, '#code', used.code), 303);
        const claims = await idTokenAtCallback(second, login);
        assert.deepEqual(claims.amr, ['pwd', 'mfa', 'otp']);
      });

      // A third browser: the same code again, within its window, is refused (replay); the
      // recovery code works, and a new one is shown.
      let nextRecovery;
      await otherBrowser('replay', async ({ page: third }) => {
        const login = await authorize(third);
        await password(third, user, onMfa);
        assert.equal(await answer(third, '#code', used.code), 401);
        assert.ok(stepNow() <= used.step + 1, 'the replayed code was still within its window');
        assert.equal(await errorText(third), 'That code is not right. Try again.');
        await Promise.all([third.waitForURL((url) => url.searchParams.get('recovery') === '1'), third.click('#use-recovery')]);
        assert.equal((await third.locator('h1').textContent()).trim(), 'Use a recovery code');
        // Typed loosely: lower case, in groups.
        const typed = `${recoveryCode.slice(0, 8)}-${recoveryCode.slice(8, 16)} ${recoveryCode.slice(16)}`.toLowerCase();
        assert.equal(await answer(third, '#recovery_code', typed), 200);
        nextRecovery = (await third.locator('#recovery-code').textContent()).trim();
        assert.match(nextRecovery, /^[A-Z0-9]{24}$/);
        assert.notEqual(nextRecovery, recoveryCode, 'a new recovery code');
        await Promise.all([third.waitForURL(onCallback), third.click('#continue')]);
        const claims = await idTokenAtCallback(third, login);
        assert.deepEqual(claims.amr, ['pwd', 'mfa'], 'a recovery code is not an app code');
      });

      // A fourth: the spent recovery code is refused; the new one works.
      await otherBrowser('spent-recovery', async ({ page: fourth }) => {
        const login = await authorize(fourth);
        await password(fourth, user, onMfa);
        await fourth.goto(`${fourth.url()}&recovery=1`);
        assert.equal(await answer(fourth, '#recovery_code', recoveryCode), 401);
        assert.equal(await errorText(fourth), 'That code is not right. Try again.');
        assert.equal(await answer(fourth, '#recovery_code', nextRecovery), 200);
        await Promise.all([fourth.waitForURL(onCallback), fourth.click('#continue')]);
        assert.deepEqual((await idTokenAtCallback(fourth, login)).amr, ['pwd', 'mfa']);
      });

      // What the Management API lists for the user: the app and a recovery code.
      const { user_id: userId } = await cli(databaseUrl, ['users', 'show', user.email]);
      const methods = await management('GET', `/users/${encodeURIComponent(userId)}/authentication-methods`);
      assert.equal(methods.status, 200);
      assert.deepEqual(methods.body.map((m) => m.type).sort(), ['recovery-code', 'totp']);
    });

    browserTest('"Remember this browser": ticked with the code, the next login asks none', async ({ page }) => {
      await policy(true);
      const user = await newUser();
      const first = await authorize(page);
      await password(page, user, onMfa);
      const box = page.locator('input[name=remember_browser]');
      assert.equal(await box.isChecked(), false, 'unticked unless the tenant says otherwise');
      assert.match(await page.locator('label.remember').textContent(), /Remember this browser for 30 days/);
      const seed = base32Decode((await page.locator('#secret').textContent()).trim());
      await box.check();
      assert.equal(await answer(page, '#code', totp(seed, stepNow())), 200);
      await Promise.all([page.waitForURL(onCallback), page.click('#continue')]);
      await idTokenAtCallback(page, first);

      // A new login in this browser: the password, and back to the application.
      const again = await authorize(page, { prompt: 'login' });
      await password(page, user, onCallback);
      assert.deepEqual((await idTokenAtCallback(page, again)).amr, ['pwd', 'mfa']);
    });

    browserTest('step-up: an application asks for a second factor with acr_values, the policy off', async ({ page }) => {
      await policy(false);
      const user = await newUser();
      const plain = await authorize(page);
      await password(page, user, onCallback);
      const claims = await idTokenAtCallback(page, plain);
      assert.deepEqual(claims.amr, ['pwd'], 'no second factor asked');
      assert.equal(claims.acr, undefined);

      // The session has no second factor: the user signs in again and enrolls.
      const stepUp = await authorize(page, { acr_values: MFA_ACR });
      await password(page, user, onMfa);
      await enroll(page);
      await Promise.all([page.waitForURL(onCallback), page.click('#continue')]);
      const upped = await idTokenAtCallback(page, stepUp);
      assert.equal(upped.acr, MFA_ACR);
      assert.deepEqual(upped.amr, ['pwd', 'mfa', 'otp']);

      // Now the session has it: the next request asking for it is answered without a page.
      const again = await authorize(page, { acr_values: MFA_ACR });
      const claimsAgain = await idTokenAtCallback(page, again);
      assert.equal(claimsAgain.acr, MFA_ACR);
    });

    browserTest('five wrong codes lock the second factor, even the right code waits', async ({ page }) => {
      await policy(true);
      const user = await newUser();
      await authorize(page);
      await password(page, user, onMfa);
      const { seed, step } = await enroll(page);

      await otherBrowser('locked', async ({ page: second }) => {
        await authorize(second);
        await password(second, user, onMfa);
        for (let attempt = 1; attempt <= 5; attempt += 1) {
          assert.equal(await answer(second, '#code', wrongCode(seed)), 401, `wrong code ${attempt}`);
          assert.equal(await errorText(second), 'That code is not right. Try again.');
        }
        assert.equal(await answer(second, '#code', nextCode(seed, step).code), 429);
        assert.equal(await errorText(second), 'Too many wrong codes. Wait a few minutes, then try again.');
        assert.ok(onMfa(new URL(second.url())), 'still on the second-factor page');
      });
    });
  }
});
