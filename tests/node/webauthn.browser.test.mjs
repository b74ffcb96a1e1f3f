// Security keys in a real Chromium through the DevTools virtual authenticator (CTAP2, USB,
// resident keys, user verification), against the real `tessera serve` on http://localhost
// (a relying party id must be a host name, not an IP address): a key is registered as the
// second factor, the next login asks for it (amr has mfa and hwk), a clone — the credential
// put back with a lower signature counter — is refused, and so is a credential deleted
// through the Management API between the page and the answer.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { launchChromium, withPage } from './lib/browser.mjs';
import { authorizeWithPkce, base64url, claimsAtCallback, startHostedApp } from './lib/hosted-app.mjs';

const EMAIL = 'keyholder@example.com';
const PASSWORD = `key-${randomBytes(9).toString('base64url')}`;
const SCOPES = 'read:guardian_factors,update:guardian_factors,update:mfa_policies,read:authentication_methods,delete:authentication_methods';

describe('security keys in Chromium (tessera serve, virtual authenticator)', () => {
  let tenant; // startHostedApp's
  let browser;

  before(async () => {
    tenant = await startHostedApp({ appName: 'Key SPA', email: EMAIL, password: PASSWORD, scopes: SCOPES });
    assert.equal((await tenant.management('PUT', '/guardian/factors/webauthn-roaming', { enabled: true })).status, 200);
    assert.equal((await tenant.management('PUT', '/guardian/policies', ['all-applications'])).status, 200);
    browser = await launchChromium();
  }, { timeout: 120000 });

  after(async () => {
    await browser?.close().catch(() => {});
    await tenant?.stop();
  });

  /** /authorize → password → /u/mfa; returns the PKCE verifier. */
  async function passwordThenKeyPage(page) {
    const verifier = await authorizeWithPkce(page, tenant);
    await page.waitForURL((url) => url.pathname === '/u/login');
    await page.fill('#username', EMAIL);
    await page.fill('#password', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL((url) => url.pathname === '/u/mfa');
    return verifier;
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
    let claims = await claimsAtCallback(page, tenant, verifier);
    assert.deepEqual(claims.amr, ['pwd', 'mfa', 'hwk']);
    const { credentials: [registered] } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(registered.rpId, 'localhost');
    const methods = await tenant.management('GET', `/users/${encodeURIComponent(tenant.userId)}/authentication-methods`);
    const key = methods.body.find((m) => m.type === 'webauthn-roaming');
    assert.ok(key, JSON.stringify(methods.body));
    assert.equal(key.key_id, base64url(registered.credentialId));

    // Password + key, in a browser without the session.
    await context.clearCookies();
    verifier = await passwordThenKeyPage(page);
    assert.equal(await answerWithKey(page), 303);
    claims = await claimsAtCallback(page, tenant, verifier);
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
    const deleted = await tenant.management('DELETE', `/users/${encodeURIComponent(tenant.userId)}/authentication-methods/${encodeURIComponent(key.id)}`);
    assert.equal(deleted.status, 204);
    assert.equal(await answerWithKey(page), 401, 'a removed credential');
    await page.waitForSelector('#add-key');
  }));
});
