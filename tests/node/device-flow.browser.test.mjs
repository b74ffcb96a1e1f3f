// The device authorization grant (RFC 8628) with a real client: openid-client 6
// (`initiateDeviceAuthorization` / `pollDeviceAuthorizationGrant`, which waits the interval and
// honours authorization_pending and slow_down) plays the TV or CLI against the real
// `tessera serve`, while Chromium — with JavaScript disabled, since the activation page must work
// without it — opens `verification_uri_complete`, signs in on the hosted page and confirms or
// cancels. The tokens the library accepts are checked again with jose against the JWKS.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

import * as client from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';

import { cli, startServer, tempDir } from './lib/tessera.mjs';
import { launchChromium, withPage, waitForText } from './lib/browser.mjs';

const API = 'https://device-flow/api';
const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
const EMAIL = 'tv-owner@example.com';
const PASSWORD = `device-${randomBytes(9).toString('base64url')}`;
const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;

describe('device flow with openid-client and Chromium (tessera serve)', () => {
  let tmp;
  let server;
  let browser;
  let config; // openid-client Configuration of the native (public) application
  let clientId;
  let userId;
  let JWKS;

  before(async () => {
    tmp = await tempDir();
    const databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
    await cli(databaseUrl, ['apis', 'create', '--name', 'Device API', '--identifier', API,
      '--scopes', 'read:messages,write:messages', '--allow-offline-access']);
    const app = await cli(databaseUrl, ['apps', 'create', '--name', 'Living Room TV', '--type', 'native',
      '--grant-types', `authorization_code,refresh_token,${DEVICE_CODE}`]);
    clientId = app.client_id;
    const user = await cli(databaseUrl, ['users', 'create', '--email', EMAIL, '--password-stdin'], { input: `${PASSWORD}\n` });
    userId = user.user_id;
    server = await startServer({ databaseUrl });
    config = await client.discovery(new URL(server.issuer), clientId, undefined, client.None(), {
      execute: [client.allowInsecureRequests],
      timeout: 10,
    });
    JWKS = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri), { timeoutDuration: 5000 });
    browser = await launchChromium();
  }, { timeout: 120000 });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.stop();
    await tmp?.remove();
  });

  /**
   * Starts a device authorization and its polling; `person(page, handle)` then acts in a
   * script-less Chromium. Returns {handle, outcome}: the tokens, or the error polling ended with.
   */
  async function deviceFlow(name, person) {
    const handle = await client.initiateDeviceAuthorization(config, {
      scope: 'openid profile offline_access read:messages',
      audience: API,
    });
    const stop = new AbortController();
    const polling = client.pollDeviceAuthorizationGrant(config, handle, undefined, { signal: stop.signal })
      .then((tokens) => ({ tokens }), (error) => ({ error }));
    try {
      await withPage(browser, name, ({ page }) => person(page, handle), {
        contextOptions: { javaScriptEnabled: false },
      });
    } catch (error) {
      stop.abort();
      await polling;
      throw error;
    }
    return { handle, outcome: await polling };
  }

  /** verification_uri_complete → the prefilled code → the hosted login → the confirm page. */
  async function signInAt(page, handle) {
    await page.goto(handle.verification_uri_complete);
    assert.equal(await page.inputValue('#user_code'), handle.user_code, 'the code is prefilled');
    await page.click('#continue');
    await page.waitForURL(/\/u\/login\?state=/);
    await page.fill('#username', EMAIL);
    await page.fill('#password', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForSelector('#confirm');
    assert.equal((await page.textContent('#user-code')).trim(), handle.user_code, 'the code shown again');
    assert.match(await page.textContent('main'), /Living Room TV/);
  }

  it('a person confirms: the device gets the user\'s tokens', { timeout: 120000 }, async () => {
    const { handle, outcome } = await deviceFlow('device flow confirm', async (page, started) => {
      await signInAt(page, started);
      await page.click('#confirm');
      await waitForText(page, 'h1', 'Your device is connected');
    });
    assert.match(handle.user_code, USER_CODE);
    assert.equal(handle.verification_uri, `${server.issuer}activate`);
    assert.equal(handle.expires_in, 900);
    assert.ifError(outcome.error);
    const { tokens } = outcome;
    const { payload: access } = await jwtVerify(tokens.access_token, JWKS, { issuer: server.issuer, audience: API });
    assert.equal(access.sub, userId);
    assert.equal(access.azp, clientId);
    assert.ok(access.scope.split(' ').includes('read:messages'), access.scope);
    const id = tokens.claims();
    assert.equal(id.sub, userId);
    assert.equal(id.aud, clientId);
    assert.ok(tokens.refresh_token, 'offline_access gives a refresh token');

    // The device code was good once.
    await assert.rejects(
      client.genericGrantRequest(config, DEVICE_CODE, { device_code: handle.device_code }),
      (error) => error.error === 'invalid_grant',
    );
  });

  it('a person cancels: the device hears access_denied', { timeout: 120000 }, async () => {
    const { outcome } = await deviceFlow('device flow cancel', async (page, started) => {
      await signInAt(page, started);
      await page.click('#cancel');
      await waitForText(page, 'h1', 'Cancelled');
    });
    assert.ok(outcome.error, 'no tokens after Cancel');
    assert.equal(outcome.error.error, 'access_denied', String(outcome.error));
  });
});
