// "Forgot password?" in a real Chromium against the real `tessera serve`, with mail going to a
// real SMTP server (nodemailer's smtp-server, started here on 127.0.0.1): from the login page
// to the code mail, the new password, and a sign-in with it. Then auth0-js 9's
// webAuth.changePassword from a page on the application's origin (CORS), and its mail.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';

import { SMTPServer } from 'smtp-server';

import { cli, startServer, tempDir, freePort, waitFor, AUDIENCE } from './lib/tessera.mjs';
import { launchChromium, withPage, waitForText } from './lib/browser.mjs';

const require = createRequire(import.meta.url);
const AUTH0_JS = require.resolve('auth0-js/dist/auth0.min.js');

const EMAIL = 'reset-me@example.com';
const OLD_PASSWORD = `old-${randomBytes(9).toString('base64url')}`;
const NEW_PASSWORD = `new-${randomBytes(9).toString('base64url')}`;
const CONNECTION = 'Username-Password-Authentication';

/** An SMTP server that keeps every message it accepts: {port, mails, next(to), close()}. */
async function startSmtp() {
  const mails = [];
  const server = new SMTPServer({
    authOptional: true,
    // Plaintext on loopback, as Tessera allows there (and only there).
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (chunk) => chunks.push(chunk));
      stream.on('end', () => {
        mails.push({
          to: session.envelope.rcptTo.map((r) => r.address),
          text: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  const port = await freePort();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  let taken = 0;
  return {
    port,
    mails,
    /** The next message not yet taken; it must be for `to`. Bounded wait. */
    async next(to) {
      const mail = await waitFor(`a mail for ${to}`, () => mails[taken], { timeoutMs: 20000 });
      taken += 1;
      assert.deepEqual(mail.to, [to]);
      return mail;
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** The 8-digit code of a reset mail. */
function codeOf(mail) {
  const match = /Your code: (\d{8})/.exec(mail.text);
  assert.ok(match, `a code in the mail:\n${mail.text}`);
  return match[1];
}

describe('password reset in Chromium (tessera serve + an SMTP server)', () => {
  let tmp;
  let server;
  let smtp;
  let browser;
  let app; // {origin, url, close()}
  let clientId;

  before(async () => {
    tmp = await tempDir();
    const databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
    smtp = await startSmtp();
    // The application: its callback, and a page that loads auth0-js from npm.
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
    await cli(databaseUrl, ['apis', 'create', '--name', 'Quickstart API', '--identifier', AUDIENCE,
      '--scopes', 'read:messages']);
    const created = await cli(databaseUrl, ['apps', 'create', '--name', 'Reset SPA', '--type', 'spa',
      '--callbacks', app.url, '--origins', app.origin, '--logout-urls', app.origin,
      '--grant-types', 'authorization_code,implicit,refresh_token']);
    clientId = created.client_id;
    await cli(databaseUrl, ['users', 'create', '--email', EMAIL, '--password-stdin'], { input: `${OLD_PASSWORD}\n` });
    server = await startServer({
      databaseUrl,
      args: ['--smtp-url', `smtp://127.0.0.1:${smtp.port}`, '--email-from', 'Tessera <no-reply@example.com>'],
    });
    browser = await launchChromium();
  }, { timeout: 120000 });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.stop();
    await smtp?.close();
    await app?.close();
    await tmp?.remove();
  });

  const browserTest = (name, fn) => it(name, { timeout: 90000 }, () => withPage(browser, name, fn));

  const authorizeUrl = () => {
    const url = new URL(`${server.baseUrl}/authorize`);
    url.search = new URLSearchParams({
      response_type: 'token id_token', client_id: clientId, redirect_uri: app.url, audience: AUDIENCE,
      scope: 'openid read:messages', state: 'st', nonce: randomBytes(9).toString('base64url'),
    });
    return url.href;
  };

  async function submitLogin(page, password) {
    await page.fill('#username', EMAIL);
    await page.fill('#password', password);
    const post = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/u/login');
    await page.click('button[type=submit]');
    return (await post).status();
  }

  browserTest('Forgot password? → the emailed code and a new password → back on the login page, the new password signs in to the app', async ({ page }) => {
    await page.goto(authorizeUrl());
    await page.waitForURL((url) => url.pathname === '/u/login');
    await page.click('text=Forgot password?');
    await page.waitForURL((url) => url.pathname === '/u/reset-password');
    await page.fill('#email', EMAIL);
    await page.click('button[type=submit]');
    await waitForText(page, 'p.lead', /If an account exists for that address, we sent a code to it\./);

    const mail = await smtp.next(EMAIL);
    assert.match(mail.text, /Subject: Your password reset code/);
    const code = codeOf(mail);
    assert.ok(!page.url().includes(code), 'the code is not in any URL');

    await page.fill('#code', code);
    await page.fill('#password', NEW_PASSWORD);
    await page.click('button[type=submit]');
    // Back to the login page of the same transaction, which says what happened.
    await page.waitForURL((url) => url.pathname === '/u/login' && url.searchParams.get('password_changed') === '1');
    await waitForText(page, 'p.notice', 'Your password has been changed. Log in with your new password.');

    assert.equal(await submitLogin(page, OLD_PASSWORD), 401, 'the old password no longer works');
    assert.equal(await submitLogin(page, NEW_PASSWORD), 303);
    await page.waitForURL((url) => url.origin === app.origin, { timeout: 15000 });
    const fragment = new URLSearchParams(new URL(page.url()).hash.slice(1));
    assert.ok(fragment.get('access_token'), 'the application got its tokens');
  });

  browserTest('auth0-js webAuth.changePassword from the application\'s page: Auth0\'s answer, and the code mail arrives', async ({ page }) => {
    await page.goto(`${app.origin}/sdk`);
    await waitForText(page, '#ready', 'ready');
    const result = await page.evaluate(({ domain, clientID, email, connection }) => new Promise((resolve) => {
      // Over http auth0-js is given the full URL as its domain, as the quickstart does.
      const webAuth = new window.auth0.WebAuth({ domain, clientID });
      webAuth.changePassword({ connection, email }, (err, response) => resolve({ err: err && JSON.stringify(err), response }));
    }), { domain: server.baseUrl, clientID: clientId, email: EMAIL, connection: CONNECTION });
    assert.equal(result.err, null);
    assert.equal(result.response, "We've just sent you an email to reset your password.");
    const mail = await smtp.next(EMAIL);
    codeOf(mail);
    assert.match(mail.text, new RegExp(`${server.issuer.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}u/reset-password/code`));

    // An unknown address gets the same answer (and no mail: the next test would see it).
    const unknown = await page.evaluate(({ domain, clientID, connection }) => new Promise((resolve) => {
      new window.auth0.WebAuth({ domain, clientID })
        .changePassword({ connection, email: 'nobody@example.com' }, (err, response) => resolve({ err: err && JSON.stringify(err), response }));
    }), { domain: server.baseUrl, clientID: clientId, connection: CONNECTION });
    assert.equal(unknown.err, null);
    assert.equal(unknown.response, "We've just sent you an email to reset your password.");

    // An unknown client: auth0-js reports the error.
    const refused = await page.evaluate(({ domain, email, connection }) => new Promise((resolve) => {
      new window.auth0.WebAuth({ domain, clientID: 'no-such-client' })
        .changePassword({ connection, email }, (err) => resolve(err && { statusCode: err.statusCode, code: err.code }));
    }), { domain: server.baseUrl, email: EMAIL, connection: CONNECTION });
    assert.deepEqual(refused, { statusCode: 400, code: 'invalid_request' });
  });
});
