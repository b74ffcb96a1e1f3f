// Signing in through an upstream connection in a real Chromium: the jQuery quickstart SPA of
// `tessera dev` (downstream) and a second Tessera (`tessera serve`, the upstream OpenID
// Connect provider) on another host name, so each keeps its own cookies. The downstream
// tenant gets an `oidc` connection "acme" to the upstream, enabled for the SPA; the upstream
// knows the downstream as a regular web application whose callback is <issuer>login/callback.
// Two ways in, as the issue asks: the hosted page's "Continue with Acme" button, and the SPA's
// own auth0-js `webAuth.authorize({connection: 'acme'})`. Both end with the SPA logged in, a
// token for the quickstart API that the sample API accepts, and the upstream's profile.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

import { startDev } from './lib/dev.mjs';
import { launchChromium, withPage, waitForText, CHROMIUM } from './lib/browser.mjs';
import { decodeJwt } from './lib/tokens.mjs';
import { cli, startServer, tempDir } from './lib/tessera.mjs';

const AUDIENCE = 'https://quickstarts/api';
const LOGGED_IN = 'You are logged in!';
const LOGGED_OUT = 'You are not logged in! Please log in to continue.';
const UPSTREAM_EMAIL = 'ada@acme.example';

describe('an upstream OpenID Connect connection in Chromium', () => {
  let dev;
  let upstream;
  let upstreamDir;
  let browser;
  const upstreamPassword = `up-${randomBytes(12).toString('base64url')}`;
  after(async () => {
    await browser?.close().catch(() => {});
    await dev?.stop();
    await upstream?.stop();
    await upstreamDir?.remove();
  });

  it('starts tessera dev, a second Tessera as the provider, and connects them', { timeout: 240000 }, async () => {
    dev = await startDev();
    upstreamDir = await tempDir('tessera-upstream-');
    const upstreamDb = `sqlite://${path.join(upstreamDir.dir, 'upstream.db')}`;
    await cli(upstreamDb, ['users', 'create', '--email', UPSTREAM_EMAIL, '--name', 'Ada Lovelace', '--email-verified', '--password-stdin'],
      { input: `${upstreamPassword}\n` });
    const downstreamApp = await cli(upstreamDb, ['apps', 'create', '--name', 'Downstream', '--type', 'regular',
      '--callbacks', `${dev.server}/login/callback`]);
    upstream = await startServer({ databaseUrl: upstreamDb });
    assert.match(upstream.issuer, /^http:\/\/127\.0\.0\.1:\d+\/$/, 'another host name than localhost');

    // The downstream tenant: a Management API client, then the connection.
    const downstreamDb = `sqlite://${path.join(dev.dataDir, 'tessera.db')}`;
    const managementAudience = `${dev.server}/api/v2/`;
    const admin = await cli(downstreamDb, ['apps', 'create', '--name', 'Connections admin', '--type', 'm2m']);
    await cli(downstreamDb, ['grants', 'create', '--app', admin.client_id, '--api', managementAudience,
      '--scopes', 'read:clients,create:connections,read:connections']);
    const spa = (await cli(downstreamDb, ['apps', 'list'])).find((app) => app.app_type === 'spa');
    assert.ok(spa, 'the quickstart SPA');
    const token = await (await fetch(`${dev.server}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: admin.client_id, client_secret: admin.client_secret, audience: managementAudience }),
    })).json();
    assert.ok(token.access_token, JSON.stringify(token));
    const created = await fetch(`${dev.server}/api/v2/connections`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token.access_token}` },
      body: JSON.stringify({
        name: 'acme',
        display_name: 'Acme',
        strategy: 'oidc',
        options: {
          discovery_url: `${upstream.issuer}.well-known/openid-configuration`,
          client_id: downstreamApp.client_id,
          client_secret: downstreamApp.client_secret,
          scopes: 'openid profile email',
        },
        enabled_clients: [spa.client_id],
      }),
    });
    assert.equal(created.status, 201, await created.text());
  });

  it(`headless Chromium starts (${CHROMIUM})`, { timeout: 90000 }, async () => {
    browser = await launchChromium();
    assert.ok(browser.version());
  });

  const browserTest = (name, fn) =>
    it(name, { timeout: 120000 }, () => {
      assert.ok(dev && upstream, 'both servers run (see the first test)');
      assert.ok(browser, 'Chromium runs (see the second test)');
      return withPage(browser, name, fn);
    });

  async function openSpa(page) {
    await page.goto(dev.spa);
    await page.waitForFunction(() => typeof window.webAuth === 'object' && window.webAuth !== null);
    await waitForText(page, '#login-status', LOGGED_OUT);
  }

  /** At the upstream's hosted login page: Ada's credentials. */
  async function signInUpstream(page) {
    await page.waitForURL((url) => url.origin === new URL(upstream.issuer).origin && url.pathname === '/u/login');
    await page.fill('#username', UPSTREAM_EMAIL);
    await page.fill('#password', upstreamPassword);
    await page.click('button[type=submit]');
    await page.waitForURL((url) => url.origin === dev.spa, { timeout: 20000 });
    await waitForText(page, '#login-status', LOGGED_IN);
  }

  /** What the SPA holds now: Ada's tokens from the downstream, and the API answers. */
  async function checkSignedInAsAda(page) {
    const tokens = await page.evaluate(() => ({
      accessToken: localStorage.getItem('access_token'),
      idToken: localStorage.getItem('id_token'),
    }));
    const id = decodeJwt(tokens.idToken);
    assert.match(id.sub, /^oidc\|acme\|auth0\|/, `sub ${id.sub}`);
    // The SPA asks for `openid profile`: the provider's name and nickname, no email.
    assert.equal(id.name, 'Ada Lovelace');
    assert.equal(id.nickname, 'ada');
    assert.equal(id.iss, `${dev.server}/`);
    const access = decodeJwt(tokens.accessToken);
    assert.ok([access.aud].flat().includes(AUDIENCE), `aud ${JSON.stringify(access.aud)}`);
    const privateAnswer = await fetch(`${dev.api}/api/private`, { headers: { authorization: `Bearer ${tokens.accessToken}` } });
    assert.equal(privateAnswer.status, 200);
    await page.click('#btn-profile-view');
    await waitForText(page, '#profile-view .nickname', 'ada');
  }

  browserTest('the hosted page\'s "Continue with Acme" signs Ada in through the provider', async ({ page }) => {
    await openSpa(page);
    await page.click('#qsLoginBtn');
    await page.waitForURL((url) => url.origin === dev.server && url.pathname === '/u/login');
    await page.click('a.upstream:has-text("Continue with Acme")');
    await signInUpstream(page);
    await checkSignedInAsAda(page);
  });

  browserTest('auth0-js authorize({connection: "acme"}) skips the hosted page', async ({ page }) => {
    await openSpa(page);
    const visited = [];
    page.on('framenavigated', (frame) => { if (frame === page.mainFrame()) visited.push(frame.url()); });
    await page.evaluate(() => window.webAuth.authorize({ connection: 'acme' }));
    await signInUpstream(page);
    assert.ok(visited.some((url) => url.startsWith(upstream.issuer)), `the provider was visited: ${visited}`);
    assert.ok(!visited.some((url) => url.startsWith(`${dev.server}/u/login`)), `no hosted page of ours: ${visited}`);
    await checkSignedInAsAda(page);
  });
});
