// Passkeys as the first factor in a real Chromium through the DevTools virtual
// authenticator (CTAP2, internal transport, resident keys, user verification), against the
// real `tessera serve` on http://localhost: with passkeys turned on for the database
// connection, a password login offers one and the authenticator creates it (a discoverable
// credential naming the user); the next login is the passkey alone (amr hwk and user); an
// authenticator that cannot verify its user, a clone with its counter behind, and a passkey
// deleted through the Management API sign nobody in; "Not now" works without JavaScript.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { launchChromium, withPage } from './lib/browser.mjs';
import { authorizeWithPkce, base64url, claimsAtCallback, startHostedApp } from './lib/hosted-app.mjs';

const EMAIL = 'passkey-user@example.com';
const PASSWORD = `key-${randomBytes(9).toString('base64url')}`;
const SCOPES = 'update:connections,read:authentication_methods,delete:authentication_methods';

describe('passkeys in Chromium (tessera serve, virtual authenticator)', () => {
  let tenant; // startHostedApp's
  let browser;

  before(async () => {
    tenant = await startHostedApp({ appName: 'Passkey SPA', email: EMAIL, password: PASSWORD, scopes: SCOPES });
    const enabled = await tenant.management('PATCH', '/connections/con_TesseraDatabase1', {
      options: { authentication_methods: { passkey: { enabled: true } } },
    });
    assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
    browser = await launchChromium();
  }, { timeout: 120000 });

  after(async () => {
    await browser?.close().catch(() => {});
    await tenant?.stop();
  });

  /** /authorize in this page, up to the login page: the PKCE verifier. */
  async function loginPage(page) {
    const verifier = await authorizeWithPkce(page, tenant);
    await page.waitForURL((url) => url.pathname === '/u/login');
    return verifier;
  }

  async function password(page) {
    await page.fill('#username', EMAIL);
    await page.fill('#password', PASSWORD);
    await page.click('form[action="/u/login"] button[type=submit]');
  }

  /** Clicks "Continue with a passkey": the status of the form's POST. */
  async function continueWithPasskey(page) {
    const post = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/u/login/passkey');
    await page.click('#passkey-login');
    return (await post).status();
  }

  it('offers a passkey after a password, then signs in with it alone; refuses a clone and a removed one', { timeout: 120000 }, () => withPage(browser, 'passkeys', async ({ page, context }) => {
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', ctap2Version: 'ctap2_1', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
    });

    // The offer after a password login; the authenticator keeps a discoverable credential.
    let verifier = await loginPage(page);
    await password(page);
    await page.waitForURL((url) => url.pathname === '/u/passkey');
    await page.click('#create-passkey');
    let claims = await claimsAtCallback(page, tenant, verifier);
    assert.deepEqual(claims.amr, ['pwd']);
    const { credentials: [created] } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(created.isResidentCredential, true);
    assert.equal(created.rpId, 'localhost');
    assert.equal(Buffer.from(created.userHandle, 'base64').toString(), tenant.userId);
    const methods = await tenant.management('GET', `/users/${encodeURIComponent(tenant.userId)}/authentication-methods`);
    const passkey = methods.body.find((m) => m.type === 'passkey');
    assert.ok(passkey, JSON.stringify(methods.body));
    assert.equal(passkey.key_id, base64url(created.credentialId));

    // The passkey alone, in a browser without the session.
    await context.clearCookies();
    verifier = await loginPage(page);
    assert.equal(await continueWithPasskey(page), 303);
    claims = await claimsAtCallback(page, tenant, verifier);
    assert.equal(claims.sub, tenant.userId);
    assert.deepEqual(claims.amr, ['hwk', 'user']);

    // An authenticator that cannot verify its user: no sign-in.
    await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
    await context.clearCookies();
    await loginPage(page);
    await page.click('#passkey-login');
    await page.waitForSelector('.webauthn-error:not([hidden]), #error');
    assert.equal(new URL(page.url()).pathname, '/u/login');
    await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: true });

    // A clone: the same passkey put back with its counter behind the one the server saw.
    const { credentials: [used] } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.ok(used.signCount >= 1, `the authenticator counts (${used.signCount})`);
    await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: used.credentialId });
    await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: { ...used, signCount: 0 } });
    await context.clearCookies();
    await loginPage(page);
    assert.equal(await continueWithPasskey(page), 401, 'a counter that did not rise');
    await page.waitForSelector('#error');

    // Deleted through the Management API while the login page is open: refused.
    await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: used.credentialId });
    await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: used });
    await context.clearCookies();
    await loginPage(page);
    const deleted = await tenant.management('DELETE', `/users/${encodeURIComponent(tenant.userId)}/authentication-methods/${encodeURIComponent(passkey.id)}`);
    assert.equal(deleted.status, 204);
    assert.equal(await continueWithPasskey(page), 401, 'a removed passkey');
    await page.waitForSelector('#error');
  }));

  it('lets a user say "Not now" with JavaScript off', { timeout: 60000 }, () => withPage(browser, 'passkeys-no-js', async ({ page }) => {
    const verifier = await loginPage(page);
    assert.ok(await page.isVisible('#passkey-login'), 'the button is there');
    await password(page);
    await page.waitForURL((url) => url.pathname === '/u/passkey');
    assert.match(await page.textContent('body'), /Passkeys need JavaScript/);
    await page.click('#skip-passkey');
    const claims = await claimsAtCallback(page, tenant, verifier);
    assert.deepEqual(claims.amr, ['pwd']);
  }, { contextOptions: { javaScriptEnabled: false } }));
});
