// Security keys in a real Chromium through the DevTools virtual authenticator (CTAP2, USB,
// resident keys, user verification), against the real `tessera serve` on http://localhost
// (a relying party id must be a host name, not an IP address): a key is registered as the
// second factor, the next login asks for it (amr has mfa and hwk), a clone — the credential
// put back with a lower signature counter — is refused, and so is a credential deleted
// through the Management API between the page and the answer.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';

import { decodeJwt } from 'jose';

import { cli, tempDir, freePort, spawnTracked, tesseraBin, waitFor, clientCredentialsToken } from './lib/tessera.mjs';
import { launchChromium, withPage } from './lib/browser.mjs';

const EMAIL = 'keyholder@example.com';
const PASSWORD = `key-${randomBytes(9).toString('base64url')}`;
const SCOPES = 'read:guardian_factors,update:guardian_factors,update:mfa_policies,read:authentication_methods,delete:authentication_methods';

describe('security keys in Chromium (tessera serve, virtual authenticator)', () => {
  let tmp;
  let server; // {baseUrl, issuer, stop()}
  let browser;
  let callback; // {origin, url, close()}
  let clientId;
  let m2m;
  let userId;

  async function management(method, pathname, body) {
    const { access_token: token } = await clientCredentialsToken(server.baseUrl, {
      clientId: m2m.client_id, clientSecret: m2m.client_secret, audience: `${server.issuer}api/v2/`,
    });
    const response = await fetch(`${server.baseUrl}/api/v2${pathname}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10000),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }

  before(async () => {
    tmp = await tempDir();
    const databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
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
    const app = await cli(databaseUrl, ['apps', 'create', '--name', 'Key SPA', '--type', 'spa',
      '--callbacks', callback.url, '--origins', callback.origin]);
    clientId = app.client_id;
    const user = await cli(databaseUrl, ['users', 'create', '--email', EMAIL, '--password-stdin'], { input: `${PASSWORD}\n` });
    userId = user.user_id;
    m2m = await cli(databaseUrl, ['apps', 'create', '--name', 'Automation', '--type', 'm2m']);

    const port = await freePort();
    const issuer = `http://localhost:${port}/`;
    const proc = spawnTracked(tesseraBin(), ['serve', '--listen', `127.0.0.1:${port}`, '--issuer', issuer,
      '--database-url', databaseUrl], { env: { RUST_LOG: 'warn' } });
    server = { baseUrl: `http://localhost:${port}`, issuer, stop: proc.stop };
    await waitFor('tessera serve to listen', () => /tessera listening on/.test(proc.output.stderr), { timeoutMs: 30000 });
    // The Management API is registered at the first start; the grant comes after it.
    await cli(databaseUrl, ['grants', 'create', '--app', m2m.client_id, '--api', `${issuer}api/v2/`, '--scopes', SCOPES]);
    assert.equal((await management('PUT', '/guardian/factors/webauthn-roaming', { enabled: true })).status, 200);
    assert.equal((await management('PUT', '/guardian/policies', ['all-applications'])).status, 200);
    browser = await launchChromium();
  }, { timeout: 120000 });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.stop();
    await callback?.close();
    await tmp?.remove();
  });

  /** /authorize → password → /u/mfa; returns the PKCE verifier. */
  async function passwordThenKeyPage(page) {
    const verifier = randomBytes(48).toString('base64url');
    const authorize = new URL(`${server.baseUrl}/authorize`);
    authorize.search = new URLSearchParams({
      response_type: 'code', client_id: clientId, redirect_uri: callback.url, scope: 'openid',
      state: 's', code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    });
    await page.goto(authorize.href);
    await page.waitForURL((url) => url.pathname === '/u/login');
    await page.fill('#username', EMAIL);
    await page.fill('#password', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL((url) => url.pathname === '/u/mfa');
    return verifier;
  }

  /** Waits for the callback and redeems its code: the ID token's claims. */
  async function claimsAtCallback(page, verifier) {
    await page.waitForURL((url) => url.origin === callback.origin);
    const code = new URL(page.url()).searchParams.get('code');
    assert.ok(code, `a code at ${page.url()}`);
    const response = await fetch(`${server.baseUrl}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', client_id: clientId, code, redirect_uri: callback.url, code_verifier: verifier }),
      signal: AbortSignal.timeout(10000),
    });
    const tokens = await response.json();
    assert.equal(response.status, 200, JSON.stringify(tokens));
    return decodeJwt(tokens.id_token);
  }

  /** Clicks the key button; the status of the form's POST. */
  async function answerWithKey(page) {
    const post = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/u/mfa');
    await page.click('#use-key');
    return (await post).status();
  }

  it('registers a key, logs in with password + key, refuses a clone and a removed key', { timeout: 120000 }, () => withPage(browser, 'webauthn', async ({ page, context }) => {
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'usb', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
    });

    // Registration at the first login, then a recovery code, then the application.
    let verifier = await passwordThenKeyPage(page);
    await page.click('#add-key');
    await page.waitForSelector('#recovery-code');
    await page.click('#continue');
    let claims = await claimsAtCallback(page, verifier);
    assert.deepEqual(claims.amr, ['pwd', 'mfa', 'hwk']);
    const { credentials: [registered] } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(registered.rpId, 'localhost');
    const methods = await management('GET', `/users/${encodeURIComponent(userId)}/authentication-methods`);
    const key = methods.body.find((m) => m.type === 'webauthn-roaming');
    assert.ok(key, JSON.stringify(methods.body));
    assert.equal(key.key_id, registered.credentialId.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''));

    // Password + key, in a browser without the session.
    await context.clearCookies();
    verifier = await passwordThenKeyPage(page);
    assert.equal(await answerWithKey(page), 303);
    claims = await claimsAtCallback(page, verifier);
    assert.deepEqual(claims.amr, ['pwd', 'mfa', 'hwk']);

    // A clone: the same key put back with its counter behind the one the server saw.
    const { credentials: [used] } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.ok(used.signCount >= 1, `the authenticator counts (${used.signCount})`);
    await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: used.credentialId });
    await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: { ...used, signCount: 0 } });
    await context.clearCookies();
    await passwordThenKeyPage(page);
    assert.equal(await answerWithKey(page), 401, 'a counter that did not rise');
    await page.waitForSelector('#error');
    assert.equal(new URL(page.url()).pathname, '/u/mfa');

    // Deleted through the Management API while its page is open: refused, enrollment again.
    await context.clearCookies();
    await passwordThenKeyPage(page);
    await page.waitForSelector('#use-key');
    const deleted = await management('DELETE', `/users/${encodeURIComponent(userId)}/authentication-methods/${encodeURIComponent(key.id)}`);
    assert.equal(deleted.status, 204);
    assert.equal(await answerWithKey(page), 401, 'a removed credential');
    await page.waitForSelector('#add-key');
  }));
});
