// Every hosted page in its real states, in a real Chromium with JavaScript on and off, audited
// by lib/page-audit.mjs: no CSP violation, no serious or critical axe-core finding, no sideways
// scrolling at 390 px, and a screenshot at desktop and phone width of each (their directory is
// printed by scripts/test.sh); with JavaScript off the pages are shown in the dark colour scheme. Tessera is `tessera serve` with mail going to a local SMTP server,
// so "Forgot password?" is offered and the reset code arrives. First, the audit itself is shown
// to catch what it must catch, on pages served here.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';

import { SMTPServer } from 'smtp-server';

import { cli, startServer, tempDir, freePort, waitFor, clientCredentialsToken, AUDIENCE } from './lib/tessera.mjs';
import { launchChromium } from './lib/browser.mjs';
import { watchCsp, audit, SCREENSHOTS } from './lib/page-audit.mjs';
import { base32Decode, totp, stepNow, wrongCode } from './lib/totp.mjs';

const EMAIL = 'audit@example.com';
const PASSWORD = `audit-${randomBytes(9).toString('base64url')}`;
const resetEmail = (mode) => `reset-${mode}@example.com`;
const mfaEmail = (mode) => `mfa-${mode}@example.com`;
const PASSKEY_CONNECTION = 'passkey-users';
const PASSKEY_EMAIL = 'passkey-audit@example.com';
const MFA_ACR = 'http://schemas.openid.net/pape/policies/2007/06/multi-factor';
const STRICT_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; form-action 'self'; base-uri 'none'";

/** An HTTP server answering `pages[pathname]` ({headers, body}); {origin, close()}. */
async function serve(pages) {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      const page = pages[new URL(req.url, 'http://x').pathname] ?? pages['*'];
      res.writeHead(page ? 200 : 404, page?.headers ?? {});
      res.end(page?.body ?? '');
    });
  });
  await new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    origin: `http://localhost:${server.address().port}`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

/** An SMTP server on loopback keeping every message: {port, next(to), close()}. */
async function startSmtp() {
  const mails = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (chunk) => chunks.push(chunk));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), text: Buffer.concat(chunks).toString('utf8') });
        callback();
      });
    },
  });
  const port = await freePort();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    port,
    /** The text of the first mail to `to` not yet taken. */
    next: async (to) => {
      const mail = await waitFor(`a mail to ${to}`, () => mails.find((m) => m.to.includes(to)), { timeoutMs: 20000 });
      mails.splice(mails.indexOf(mail), 1);
      return mail.text;
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe('the page audit catches what it must', () => {
  let browser;
  let site;

  before(async () => {
    const html = (body) => ({
      headers: { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': STRICT_CSP },
      body: `<!doctype html><html lang="en"><head><meta name="viewport" content="width=device-width">`
        + `<title>t</title><link rel="stylesheet" href="/s.css"></head><body><main><h1>Audit</h1>${body}</main></body></html>`,
    });
    site = await serve({
      '/s.css': { headers: { 'content-type': 'text/css' }, body: '.faint { color: #b0b0b0; } .wide { width: 2000px; }' },
      '/clean': html('<p>Readable text.</p><noscript><p>No JavaScript.</p></noscript>'),
      '/inline-style': html('<p style="color: red">Styled inline.</p>'),
      '/inline-script': html('<p>Text.</p><script>document.title = "x";</script>'),
      '/faint': html('<p class="faint">Too faint.</p>'),
      '/faint-noscript': html('<noscript><p class="faint">Too faint, without JavaScript only.</p></noscript>'),
      '/wide': html('<p class="wide">Too wide.</p>'),
    });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await site?.close();
  });

  for (const javaScriptEnabled of [true, false]) {
    const mode = javaScriptEnabled ? 'js' : 'nojs';
    const visit = async (pathname) => {
      const context = await browser.newContext({ javaScriptEnabled });
      const csp = await watchCsp(context);
      const page = await context.newPage();
      await page.goto(`${site.origin}${pathname}`);
      return { context, page, csp };
    };

    it(`JavaScript ${javaScriptEnabled ? 'on' : 'off'}: a clean page passes, and running axe in it causes no CSP violation`, async () => {
      const { context, page, csp } = await visit('/clean');
      try {
        const result = await audit(page, `selftest-clean-${mode}`, { dir: path.join(SCREENSHOTS, 'selftest') });
        assert.equal(result.screenshots.length, 2);
        assert.deepEqual(csp.violations, []);
      } finally {
        await context.close();
      }
    });

    it(`JavaScript ${javaScriptEnabled ? 'on' : 'off'}: inline styles and scripts, faint text and a page wider than a phone fail`, async () => {
      const expectations = [
        ['/inline-style', /CSP violations:[\s\S]*style-src/],
        ['/faint', /color-contrast \(serious\)[\s\S]*element p: [^\n]*foreground color: #b0b0b0/],
        ['/wide', /horizontal scrolling:[\s\S]*- phone: \d+ px wide in a 390 px viewport/],
      ];
      if (javaScriptEnabled) expectations.push(['/inline-script', /CSP violations:[\s\S]*\[event\][\s\S]*script-src/]);
      else expectations.push(['/faint-noscript', /color-contrast \(serious\)/]);
      for (const [pathname, expected] of expectations) {
        const { context, page } = await visit(pathname);
        try {
          await assert.rejects(audit(page, `selftest${pathname.replace('/', '-')}-${mode}`, { dir: path.join(SCREENSHOTS, 'selftest') }), expected, pathname);
        } finally {
          await context.close();
        }
      }
    });
  }
});

describe('every hosted page passes the audit (tessera serve, Chromium with JavaScript on and off)', () => {
  let tmp;
  let server;
  let smtp;
  let browser;
  let app; // the applications' callback
  let firstParty;
  let thirdParty;
  let passkeyApp;
  let deviceApp;
  let userId;
  let managementToken;

  before(async () => {
    tmp = await tempDir();
    const databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
    smtp = await startSmtp();
    app = await serve({ '*': { headers: { 'content-type': 'text/html' }, body: '<!doctype html><title>callback</title><p>callback</p>' } });
    await cli(databaseUrl, ['apis', 'create', '--name', 'Quickstart API', '--identifier', AUDIENCE,
      '--scopes', 'read:messages,write:messages']);
    const create = (name, extra = []) => cli(databaseUrl, ['apps', 'create', '--name', name, '--type', 'regular',
      '--callbacks', `${app.origin}/callback`, '--logout-urls', app.origin,
      '--grant-types', 'authorization_code,implicit', ...extra]);
    firstParty = (await create('Audit Web App')).client_id;
    thirdParty = (await create('Partner Dashboard', ['--third-party'])).client_id;
    deviceApp = (await cli(databaseUrl, ['apps', 'create', '--name', 'Living Room TV', '--type', 'native',
      '--grant-types', 'urn:ietf:params:oauth:grant-type:device_code'])).client_id;
    // The password reset tests change their users' passwords: each mode has its own.
    for (const mode of ['js', 'nojs-dark']) {
      await cli(databaseUrl, ['users', 'create', '--email', resetEmail(mode), '--password-stdin'], { input: `${PASSWORD}\n` });
      await cli(databaseUrl, ['users', 'create', '--email', mfaEmail(mode), '--password-stdin'], { input: `${PASSWORD}\n` });
    }
    userId = (await cli(databaseUrl, ['users', 'create', '--email', EMAIL, '--password-stdin'], { input: `${PASSWORD}\n` })).user_id;
    server = await startServer({
      databaseUrl,
      args: ['--smtp-url', `smtp://127.0.0.1:${smtp.port}`, '--email-from', 'Tessera <no-reply@example.com>'],
    });
    const automation = await cli(databaseUrl, ['apps', 'create', '--name', 'Automation', '--type', 'm2m']);
    const managementApi = `${server.issuer}api/v2/`;
    await cli(databaseUrl, ['grants', 'create', '--app', automation.client_id, '--api', managementApi, '--scopes', 'create:user_tickets,update:guardian_factors,create:connections,create:users']);
    managementToken = (await clientCredentialsToken(server.baseUrl, {
      clientId: automation.client_id, clientSecret: automation.client_secret, audience: managementApi,
    })).access_token;
    // Authenticator apps and recovery codes on, the policy off: step-up asks for them.
    for (const factor of ['otp', 'recovery-code']) {
      const response = await fetch(`${server.baseUrl}/api/v2/guardian/factors/${factor}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${managementToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ enabled: true }),
      });
      assert.equal(response.status, 200, `PUT /guardian/factors/${factor}`);
    }
    // A database connection with passkeys on, for its own application: its login page has
    // the passkey button, and a password login there is offered a passkey.
    passkeyApp = (await create('Passkey App')).client_id;
    const managementCall = async (pathname, body) => {
      const response = await fetch(`${server.baseUrl}/api/v2${pathname}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${managementToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(response.status, 201, `POST ${pathname}: ${await response.text()}`);
    };
    await managementCall('/connections', {
      name: PASSKEY_CONNECTION, strategy: 'auth0', enabled_clients: [passkeyApp],
      options: { authentication_methods: { passkey: { enabled: true } } },
    });
    await managementCall('/users', { connection: PASSKEY_CONNECTION, email: PASSKEY_EMAIL, password: PASSWORD });
    browser = await launchChromium();
  }, { timeout: 120000 });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.stop();
    await smtp?.close();
    await app?.close();
    await tmp?.remove();
  });

  const authorizeUrl = (clientId, extra = {}) => {
    const url = new URL(`${server.baseUrl}/authorize`);
    url.search = new URLSearchParams({
      response_type: 'code', client_id: clientId, redirect_uri: `${app.origin}/callback`,
      audience: AUDIENCE, scope: 'openid read:messages', state: 'st', ...extra,
    });
    return url.href;
  };

  /** A new device authorization of the native application: its verification_uri_complete. */
  async function deviceVerificationUri() {
    const response = await fetch(`${server.baseUrl}/oauth/device/code`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: deviceApp, scope: 'openid read:messages', audience: AUDIENCE }),
    });
    const body = await response.json();
    assert.equal(response.status, 200, JSON.stringify(body));
    return body.verification_uri_complete;
  }

  async function emailVerificationTicket() {
    const response = await fetch(`${server.baseUrl}/api/v2/tickets/email-verification`, {
      method: 'POST',
      headers: { authorization: `Bearer ${managementToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: userId, result_url: `${app.origin}/verified` }),
    });
    const body = await response.json();
    assert.equal(response.status, 201, JSON.stringify(body));
    return body.ticket;
  }

  async function submit(page, fields, button = 'button[type=submit]') {
    for (const [selector, value] of Object.entries(fields)) await page.fill(selector, value);
    await Promise.all([page.waitForNavigation(), page.click(button)]);
  }

  // JavaScript on in the light colour scheme, off in the dark one: both schemes are audited
  // without doubling the run.
  for (const javaScriptEnabled of [true, false]) {
    const colorScheme = javaScriptEnabled ? 'light' : 'dark';
    const mode = javaScriptEnabled ? 'js' : 'nojs-dark';
    const pageTest = (name, fn) => it(`${name} (JavaScript ${javaScriptEnabled ? 'on' : 'off'}, ${colorScheme})`, { timeout: 120000 }, async (t) => {
      const context = await browser.newContext({ javaScriptEnabled, colorScheme });
      context.setDefaultTimeout(20000);
      await watchCsp(context);
      const page = await context.newPage();
      const check = async (state) => {
        const { violations } = await audit(page, `${state}-${mode}`);
        // Moderate and minor findings do not fail the test; they are shown.
        for (const v of violations) t.diagnostic(`${state}: ${v.id} (${v.impact}) ${v.help}: ${v.nodes.map((n) => n.target).join(', ')}`);
      };
      try {
        await fn(page, check);
      } finally {
        await context.close();
      }
    });

    pageTest('login: plain, with "Forgot password?", then after a wrong password', async (page, check) => {
      await page.goto(authorizeUrl(firstParty));
      assert.equal(new URL(page.url()).pathname, '/u/login');
      assert.equal(await page.locator('a', { hasText: 'Forgot password?' }).count(), 1);
      await check('login');
      await submit(page, { '#username': EMAIL, '#password': 'not-the-password' });
      assert.equal(await page.locator('#error').count(), 1);
      await check('login-error');
    });

    pageTest('signup: plain, then with an error', async (page, check) => {
      await page.goto(authorizeUrl(firstParty));
      await Promise.all([page.waitForNavigation(), page.click('a:has-text("Sign up")')]);
      assert.equal(new URL(page.url()).pathname, '/u/signup');
      await check('signup');
      await submit(page, { '#email': `new-${mode}@example.com`, '#password': 'short' });
      assert.equal(await page.locator('#error').count(), 1);
      await check('signup-error');
    });

    pageTest('consent of a third-party application', async (page, check) => {
      await page.goto(authorizeUrl(thirdParty));
      await submit(page, { '#username': EMAIL, '#password': PASSWORD });
      assert.equal(new URL(page.url()).pathname, '/u/consent');
      assert.ok(await page.locator('#scopes li').count() > 0);
      await check('consent');
    });

    pageTest('password reset: request, request error, code page, code error, done', async (page, check) => {
      const email = resetEmail(mode);
      await page.goto(authorizeUrl(firstParty));
      await Promise.all([page.waitForNavigation(), page.click('a:has-text("Forgot password?")')]);
      assert.equal(new URL(page.url()).pathname, '/u/reset-password');
      await check('reset-request');
      await submit(page, { '#email': 'not an address' });
      assert.equal(await page.locator('#error').count(), 1);
      await check('reset-request-error');
      await submit(page, { '#email': email });
      assert.equal(await page.locator('h1').textContent(), 'Choose a new password');
      const mail = await smtp.next(email).catch((error) => {
        throw new Error(`${error.message}\n--- tessera stderr ---\n${server.output.stderr}`);
      });
      const code = /Your code: (\d{8})/.exec(mail)?.[1];
      assert.ok(code, 'a code in the mail');
      await check('reset-code');
      await submit(page, { '#code': '00000000', '#password': 'whatever-long-enough' });
      assert.equal(await page.locator('#error').count(), 1);
      await check('reset-code-error');
      await submit(page, { '#code': code, '#password': `new-${randomBytes(9).toString('base64url')}` });
      await check('reset-done');
    });

    pageTest('email verification: the ticket page, verified, and a spent ticket', async (page, check) => {
      const ticket = await emailVerificationTicket();
      await page.goto(ticket);
      await check('email-verification');
      await submit(page, {});
      assert.equal(await page.locator('h1', { hasText: 'Email address verified' }).count(), 1);
      await check('email-verified');
      await page.goto(ticket);
      await check('email-verification-spent');
    });

    pageTest('device activation: the code form, its error, confirm, done', async (page, check) => {
      await page.goto(`${server.baseUrl}/activate`);
      await check('activate');
      await submit(page, { '#user_code': 'BBBB-BBBB' });
      assert.equal(await page.locator('#error').count(), 1);
      await check('activate-error');
      await page.goto(await deviceVerificationUri());
      await submit(page, {});
      assert.equal(new URL(page.url()).pathname, '/u/login');
      await submit(page, { '#username': EMAIL, '#password': PASSWORD });
      assert.equal(await page.locator('#confirm').count(), 1);
      await check('activate-confirm');
      await submit(page, {}, '#confirm');
      assert.equal(await page.locator('h1', { hasText: 'Your device is connected' }).count(), 1);
      await check('activate-done');
    });

    pageTest('second factor: enrollment, its error, the recovery code, the code asked, a recovery code asked', async (page, check) => {
      const signIn = async (extra = {}) => {
        await page.goto(authorizeUrl(firstParty, { acr_values: MFA_ACR, ...extra }));
        await submit(page, { '#username': mfaEmail(mode), '#password': PASSWORD });
        assert.equal(new URL(page.url()).pathname, '/u/mfa');
      };
      await signIn();
      const seed = base32Decode((await page.locator('#secret').textContent()).trim());
      await check('mfa-enroll');
      await submit(page, { '#code': wrongCode(seed) });
      assert.equal(await page.locator('#error').count(), 1);
      await check('mfa-enroll-error');
      const step = stepNow();
      await submit(page, { '#code': totp(seed, step) });
      assert.equal(await page.locator('#recovery-code').count(), 1);
      await check('mfa-recovery-code');
      // Another sign-in of the same user: the code is asked, or a recovery code.
      await signIn({ prompt: 'login' });
      assert.equal(await page.locator('#secret').count(), 0, 'no enrollment now');
      await check('mfa-challenge');
      await Promise.all([page.waitForNavigation(), page.click('#use-recovery')]);
      assert.equal(await page.locator('#recovery_code').count(), 1);
      await check('mfa-recovery');
    });

    pageTest('passkeys: the login page with its button, and the offer after a password', async (page, check) => {
      await page.goto(authorizeUrl(passkeyApp, { connection: PASSKEY_CONNECTION }));
      assert.equal(await page.locator('#passkey-login').count(), 1);
      await check('login-passkey');
      await submit(page, { '#username': PASSKEY_EMAIL, '#password': PASSWORD });
      assert.equal(new URL(page.url()).pathname, '/u/passkey');
      await check('passkey-offer');
      await submit(page, {}, '#skip-passkey');
      assert.equal(new URL(page.url()).origin, app.origin);
    });

    pageTest('error pages: an unknown application at /authorize, and a page that does not exist', async (page, check) => {
      const response = await page.goto(authorizeUrl('no-such-client'));
      assert.equal(response.status(), 400);
      await check('error-authorize');
      assert.equal((await page.goto(`${server.baseUrl}/no-such-page`)).status(), 404);
      await check('error-not-found');
    });

    pageTest('logout without a return address', async (page, check) => {
      await page.goto(`${server.baseUrl}/v2/logout`);
      assert.equal(await page.locator('h1').count(), 1);
      await check('logout');
    });

    if (!javaScriptEnabled) {
      // With JavaScript on, this page posts itself at once; without, it shows a button.
      pageTest('form_post response page', async (page, check) => {
        await page.goto(authorizeUrl(firstParty, { response_mode: 'form_post' }));
        await submit(page, { '#username': EMAIL, '#password': PASSWORD });
        assert.equal(await page.locator('#form-post').count(), 1);
        await check('form-post');
      });
    }
  }
});
