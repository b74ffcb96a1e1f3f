// The dashboard in a real (headless Debian) Chromium, with JavaScript on and off: the
// quickstart's first steps as an administrator clicks them on `tessera dev` — sign in → APIs →
// Create API → Permissions → Machine to Machine Applications → Test — then what the CLI and the
// Management API see, an application that signs a user in, a role whose permission reaches that
// user's next token, a user's second factors seen and reset, a user signed out of a browser
// from their Sessions tab, a viewer who changes nothing, a
// user without a role who sees a 403 page, and a form without its CSRF token refused. Every page is audited (CSP, axe-core, screenshots at
// desktop and phone width).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';

import { cli, freePort } from './lib/tessera.mjs';
import { startDev, DEMO_EMAIL } from './lib/dev.mjs';
import { launchChromium, withPage } from './lib/browser.mjs';
import { watchCsp, audit } from './lib/page-audit.mjs';
import { base32Decode, stepNow, totp } from './lib/totp.mjs';

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

        // The application's Credentials tab: a public key pasted in, and the application authenticates with
        // a JWT signed by the private key (RFC 7523); the secret no longer works.
        await page.goto(`${dev.server}/admin/applications/${clientId}/credentials`);
        const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
        await page.fill('#name', `Key ${mode}`);
        await page.fill('#pem', publicKey.export({ type: 'spki', format: 'pem' }));
        await submit(page, '+ Add');
        await page.getByText('The key was added').waitFor();
        await audit(page, `dashboard-${mode}-application-credentials`);
        const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
        const now = Math.floor(Date.now() / 1000);
        const input = `${b64({ alg: 'ES256', typ: 'JWT' })}.${b64({ iss: clientId, sub: clientId, aud: `${dev.server}/oauth/token`, jti: randomBytes(16).toString('hex'), iat: now, exp: now + 60 })}`;
        const assertion = `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
        const signed = await fetch(`${dev.server}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'client_credentials', audience: identifier, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }),
        });
        assert.equal(signed.status, 200, await signed.clone().text());
        const withSecret = await fetch(`${dev.server}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret, audience: identifier }),
        });
        assert.equal(withSecret.status, 401);

        assert.deepEqual(csp.violations, [], 'no CSP violation on any page');
      }, { contextOptions: { javaScriptEnabled } });
    });
  }
  it('creates a SPA and a user with a role; the role\'s permission reaches the user\'s next token', { timeout: 240000 }, async () => {
    // Long enough that every page naming this user or API must wrap it on a phone.
    const suffix = randomBytes(14).toString('hex');
    const identifier = `https://orders-${suffix}.example.com/`;
    const userEmail = `reader-${suffix}@example.com`;
    const userPassword = `pw-${randomBytes(12).toString('base64url')}`;
    let spaId;
    await withPage(browser, 'dashboard-people', async ({ page, context }) => {
      const csp = await watchCsp(context);
      await signIn(page, DEMO_EMAIL, dev.password);
      // An API with RBAC and permissions in the token.
      await page.goto(`${dev.server}/admin/apis/new`);
      await page.fill('#name', `Orders ${suffix}`);
      await page.fill('#identifier', identifier);
      await submit(page, 'Create');
      await follow(page, 'link', 'Permissions');
      await page.fill('#value', 'read:orders');
      await page.fill('#description', 'Read orders');
      await submit(page, '+ Add');
      await follow(page, 'link', 'Settings');
      await page.check('input[name=enforce_policies]');
      await page.selectOption('#token_dialect', 'access_token_authz');
      await submit(page, 'Save');
      await page.getByText("The API's settings were saved.").waitFor();

      // A single-page application with its callback.
      await page.goto(`${dev.server}/admin/applications/new`);
      await page.fill('#name', `Shop ${suffix}`);
      await page.check('input[name=app_type][value=spa]');
      await submit(page, 'Create');
      spaId = (await page.locator('#client-id').textContent()).trim();
      await follow(page, 'link', 'Go to Settings');
      await page.fill('#callbacks', callback.url);
      await page.fill('#allowed_logout_urls', callback.origin);
      await page.fill('#web_origins', callback.origin);
      // Told when an administrator ends a session it was used with (back-channel logout).
      await page.fill('#backchannel_logout_url', `${callback.origin}/backchannel`);
      await page.check('input[name="initiator:session-revoked"]');
      await submit(page, 'Save Changes');
      await page.getByText("The application's settings were saved.").waitFor();
      assert.equal(await page.inputValue('#backchannel_logout_url'), `${callback.origin}/backchannel`);
      assert.ok(await page.isChecked('input[name="initiator:session-revoked"]'));
      assert.ok(!(await page.isChecked('input[name="initiator:account-deleted"]')));
      await audit(page, 'dashboard-application-settings');

      // A user, a role with read:orders, the role given to the user.
      await page.goto(`${dev.server}/admin/users/new`);
      await audit(page, 'dashboard-create-user');
      await page.fill('#email', userEmail);
      await page.fill('#password', userPassword);
      await submit(page, 'Create');
      await page.getByText('The user was created.').waitFor();
      await audit(page, 'dashboard-user-details');
      await page.goto(`${dev.server}/admin/roles/new`);
      await page.fill('#name', `Order readers ${suffix}`);
      await page.fill('#description', 'May read orders');
      await submit(page, 'Create');
      await page.selectOption('#permission', `${identifier} read:orders`);
      await submit(page, 'Add');
      await audit(page, 'dashboard-role-permissions');
      await page.goto(`${dev.server}${new URL(page.url()).pathname.replace(/permissions$/, 'users')}`);
      await page.fill('#email', userEmail);
      await submit(page, 'Assign');
      await page.getByRole('link', { name: userEmail }).waitFor();
      await audit(page, 'dashboard-role-users');
      await page.goto(`${dev.server}/admin/users?field=email&term=${encodeURIComponent(`reader-${suffix}`)}`);
      await audit(page, 'dashboard-users-search');
      await follow(page, 'link', userEmail);
      await page.goto(`${dev.server}${new URL(page.url()).pathname}/roles`);
      await audit(page, 'dashboard-user-roles');
      const userPage = new URL(page.url()).pathname.replace(/\/roles$/, '');
      for (const [tab, name] of [['permissions', 'user-permissions'], ['authorized-applications', 'user-authorized-applications'], ['json', 'user-json'], ['delete', 'user-delete']]) {
        await page.goto(`${dev.server}${userPage}/${tab}`);
        await audit(page, `dashboard-${name}`);
      }
      await page.goto(`${dev.server}/admin/applications/${spaId}/apis`);
      await audit(page, 'dashboard-application-apis');
      await page.goto(`${dev.server}/admin/applications/${spaId}/delete`);
      await audit(page, 'dashboard-application-delete');
      await page.goto(`${dev.server}/admin/applications`);
      await audit(page, 'dashboard-applications');
      await page.goto(`${dev.server}/admin/roles`);
      await audit(page, 'dashboard-roles');
      await follow(page, 'link', `Order readers ${suffix}`);
      await audit(page, 'dashboard-role-settings');
      await page.goto(`${dev.server}/admin/roles/new`);
      await audit(page, 'dashboard-create-role');
      await page.goto(`${dev.server}/admin/users`);
      await audit(page, 'dashboard-users');
      await page.goto(`${dev.server}/admin/apis`);
      await follow(page, 'link', `Orders ${suffix}`);
      await page.goto(`${dev.server}${new URL(page.url()).pathname}/delete`);
      await audit(page, 'dashboard-api-delete');
      await page.goto(`${dev.server}/admin/no-such-page`);
      await audit(page, 'dashboard-not-found');
      // A GitHub connection made on the dashboard, enabled for the SPA; its pages audited.
      await page.goto(`${dev.server}/admin/connections/new`);
      await audit(page, 'dashboard-create-connection');
      await page.selectOption('#strategy', 'github');
      await page.fill('#name', `gh-${suffix}`);
      await page.fill('#client_id', 'github-client-id');
      await page.fill('#client_secret', 'github-client-secret');
      await submit(page, 'Create');
      await page.getByText('The connection was created').waitFor();
      await audit(page, 'dashboard-connection-applications');
      await follow(page, 'link', 'Settings');
      await audit(page, 'dashboard-connection-settings');
      assert.ok(!(await page.content()).includes('github-client-secret'), 'the secret is never shown');
      await page.goto(`${dev.server}/admin/connections`);
      await audit(page, 'dashboard-connections');
      await page.goto(`${dev.server}/admin/applications/${spaId}/connections`);
      await audit(page, 'dashboard-application-connections');
      await page.goto(`${dev.server}/admin/settings`);
      await audit(page, 'dashboard-settings');
      // Brute-force protection: a threshold out of bounds is refused next to its field, then one saved.
      await page.fill('#bf-max-attempts', '0');
      await submit(page, 'Save brute-force protection');
      assert.ok(await page.locator('#bf-max-attempts[aria-invalid="true"]').count(), 'the field is marked');
      await audit(page, 'dashboard-settings-brute-force-error');
      await page.fill('#bf-max-attempts', '25');
      await submit(page, 'Save brute-force protection');
      await page.getByText('The brute-force protection settings were saved.').waitFor();
      assert.equal(await page.inputValue('#bf-max-attempts'), '25');
      // Signing out ends the dashboard's session and the login page's, then says so.
      await submit(page, 'Sign out');
      await page.waitForURL((url) => url.pathname === '/admin/signed-out');
      await audit(page, 'dashboard-signed-out');
      const back = await page.goto(`${dev.server}/admin/apis`);
      await page.waitForURL((url) => url.pathname === '/u/login');
      assert.ok(back, 'signed out: the dashboard asks to sign in again');
      assert.deepEqual(csp.violations, []);
    });

    // The user signs in through the new SPA: the access token carries the role's permission.
    await withPage(browser, 'dashboard-spa-login', async ({ page }) => {
      const verifier = b64url(randomBytes(32));
      const challenge = b64url(createHash('sha256').update(verifier).digest());
      const authorize = new URL(`${dev.server}/authorize`);
      for (const [k, v] of Object.entries({
        response_type: 'code', client_id: spaId, redirect_uri: callback.url, audience: identifier,
        scope: 'openid read:orders', state: 'st', code_challenge: challenge, code_challenge_method: 'S256',
      })) authorize.searchParams.set(k, v);
      await page.goto(authorize.href);
      await page.waitForURL((url) => url.pathname === '/u/login');
      await page.fill('#username', userEmail);
      await page.fill('#password', userPassword);
      await page.click('button[type=submit]');
      await page.waitForURL((url) => url.origin === callback.origin);
      const code = new URL(page.url()).searchParams.get('code');
      assert.ok(code, 'the application got a code');
      const tokens = await (await fetch(`${dev.server}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'authorization_code', client_id: spaId, code, code_verifier: verifier, redirect_uri: callback.url }),
      })).json();
      const claims = decodeJwt(tokens.access_token);
      assert.deepEqual(claims.permissions, ['read:orders']);
      assert.equal(claims.scope.split(' ').includes('read:orders'), true);
    });
  });

  it('writes an action, tests it, deploys it and orders it in its trigger', { timeout: 180000 }, async () => {
    const suffix = randomBytes(4).toString('hex');
    const name = `Tier claim ${suffix}`;
    await withPage(browser, 'dashboard-actions', async ({ page, context }) => {
      const csp = await watchCsp(context);
      await signIn(page, DEMO_EMAIL, dev.password);
      await follow(page, 'link', 'Library');
      await audit(page, 'dashboard-actions');
      await follow(page, 'link', '+ Create Action');
      await audit(page, 'dashboard-create-action');
      await page.fill('#name', name);
      await page.selectOption('#trigger', 'post-login');
      await submit(page, 'Create');
      await page.getByText('The action was created as a draft').waitFor();
      assert.match(await page.inputValue('#code'), /exports\.onExecutePostLogin/);
      await page.fill('#code', [
        'exports.onExecutePostLogin = async (event, api) => {',
        `  api.idToken.setCustomClaim('https://example.com/tier', event.secrets.TIER + '-${suffix}');`,
        '};',
      ].join('\n'));
      await page.fill('#secret_name', 'TIER');
      await page.fill('#secret_value', 'gold');
      await submit(page, 'Save Draft');
      await page.getByText('The draft was saved.').waitFor();
      assert.equal(await page.getByText('gold', { exact: false }).count(), 0, 'the secret is not shown again');
      await audit(page, 'dashboard-action-code');

      await follow(page, 'link', 'Test');
      await audit(page, 'dashboard-action-test');
      await submit(page, 'Run');
      await page.getByRole('heading', { name: 'Result' }).waitFor();
      assert.match(await page.locator('pre').textContent(), new RegExp(`gold-${suffix}`));
      await audit(page, 'dashboard-action-test-result');

      await follow(page, 'link', 'Code');
      await submit(page, 'Deploy');
      await page.getByText('The draft was deployed as a new version.').waitFor();
      await follow(page, 'link', 'Versions');
      await audit(page, 'dashboard-action-versions');
      assert.equal(await page.getByRole('cell', { name: 'Deployed', exact: true }).count(), 1);

      await follow(page, 'link', 'Triggers');
      await audit(page, 'dashboard-triggers');
      await follow(page, 'link', 'post-login');
      await page.selectOption('#action', { label: name });
      await submit(page, 'Add');
      await page.getByText("The trigger's actions were saved.").waitFor();
      await page.getByRole('link', { name }).waitFor();
      await audit(page, 'dashboard-trigger');
      await submit(page, `Remove ${name}`);
      await page.getByText("The trigger's actions were saved.").waitFor();
      assert.equal(await page.getByRole('link', { name }).count(), 0, 'removed from the trigger');
      assert.deepEqual(csp.violations, []);
    });
  });

  it('shows an administrator a user\'s second factors, and resets them: the user enrolls again', { timeout: 180000 }, async () => {
    const suffix = randomBytes(6).toString('hex');
    const email = `mfa-${suffix}@example.com`;
    const password = `pw-${randomBytes(12).toString('base64url')}`;
    await cli(databaseUrl, ['users', 'create', '--email', email, '--password-stdin'], { input: `${password}\n` });
    const app = await cli(databaseUrl, ['apps', 'create', '--name', `MFA app ${suffix}`, '--type', 'spa',
      '--callbacks', callback.url, '--origins', callback.origin]);
    // The authenticator-app factor on, the policy left off: only a login that asks for a second
    // factor (acr_values) gets one, so the administrator's own logins are not changed.
    const automation = await cli(databaseUrl, ['apps', 'create', '--name', `Guardian ${suffix}`, '--type', 'm2m']);
    const audience = `${dev.server}/api/v2/`;
    await cli(databaseUrl, ['grants', 'create', '--app', automation.client_id, '--api', audience, '--scopes', 'update:guardian_factors']);
    const { access_token: token } = await (await fetch(`${dev.server}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: automation.client_id, client_secret: automation.client_secret, audience }),
    })).json();
    const enabled = await fetch(`${dev.server}/api/v2/guardian/factors/otp`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ enabled: true }),
    });
    assert.equal(enabled.status, 200);

    /** Signs the user in through the app, asking for a second factor; ends on /u/mfa. */
    async function toSecondFactor(page) {
      const verifier = b64url(randomBytes(32));
      const url = new URL(`${dev.server}/authorize`);
      url.search = new URLSearchParams({
        response_type: 'code', client_id: app.client_id, redirect_uri: callback.url, scope: 'openid', state: 'st',
        code_challenge: b64url(createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256',
        acr_values: 'http://schemas.openid.net/pape/policies/2007/06/multi-factor',
      });
      await page.goto(url.href);
      await page.waitForURL((u) => u.pathname === '/u/login');
      await page.fill('#username', email);
      await page.fill('#password', password);
      await Promise.all([page.waitForURL((u) => u.pathname === '/u/mfa'), page.click('button[type=submit]')]);
    }

    // The user enrolls an authenticator app on the hosted page.
    await withPage(browser, 'dashboard-mfa-enroll', async ({ page }) => {
      await toSecondFactor(page);
      assert.equal((await page.locator('h1').textContent()).trim(), 'Secure your account');
      const seed = base32Decode((await page.locator('#secret').textContent()).trim());
      await page.fill('#code', totp(seed, stepNow()));
      await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
      assert.match((await page.locator('#recovery-code').textContent()).trim(), /^[A-Z0-9]{24}$/);
      await Promise.all([page.waitForURL((u) => u.origin === callback.origin), page.click('#continue')]);
    });

    // The administrator sees them on the user's Multi-factor tab, and resets them.
    await withPage(browser, 'dashboard-mfa-reset', async ({ page, context }) => {
      const csp = await watchCsp(context);
      await signIn(page, DEMO_EMAIL, dev.password);
      await page.goto(`${dev.server}/admin/users?field=email&term=${encodeURIComponent(`mfa-${suffix}`)}`);
      await follow(page, 'link', email);
      await follow(page, 'link', 'Multi-factor');
      await audit(page, 'dashboard-user-mfa');
      const rows = await page.locator('#factors tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent.trim())));
      assert.deepEqual(rows.map(([type]) => type).sort(), ['recovery-code', 'totp'], JSON.stringify(rows));
      const app = rows.find(([type]) => type === 'totp');
      assert.equal(app[1], 'Authenticator app');
      assert.match(app[2], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/, 'when it was created');

      await follow(page, 'link', 'Reset second factors…');
      await audit(page, 'dashboard-user-mfa-reset');
      // Not confirmed: nothing changes.
      await page.fill('#confirm', `someone-else-${suffix}@example.com`);
      await submit(page, 'Reset');
      await page.getByText("Type the user's email address exactly to reset their second factors.").waitFor();
      await page.goto(`${new URL(page.url()).href.replace(/\/reset$/, '')}`);
      assert.equal(await page.locator('#factors tbody tr').count(), 2, 'still there');
      await follow(page, 'link', 'Reset second factors…');
      await page.fill('#confirm', email);
      await submit(page, 'Reset');
      await page.getByText("The user's second factors were reset").waitFor();
      assert.equal(await page.locator('#factors').count(), 0);
      assert.equal(await page.locator('#no-factors').count(), 1);
      assert.deepEqual(csp.violations, []);
    });

    // The user's next login that asks for a second factor enrolls again.
    await withPage(browser, 'dashboard-mfa-enroll-again', async ({ page }) => {
      await toSecondFactor(page);
      assert.equal((await page.locator('h1').textContent()).trim(), 'Secure your account');
      assert.equal(await page.locator('.qr svg').count(), 1);
    });
  });

  it('signs a user out of the browser they signed in with, from the user\'s Sessions tab', { timeout: 180000 }, async () => {
    const suffix = randomBytes(6).toString('hex');
    const email = `away-${suffix}@example.com`;
    const password = `pw-${randomBytes(12).toString('base64url')}`;
    await cli(databaseUrl, ['users', 'create', '--email', email, '--password-stdin'], { input: `${password}\n` });
    const app = await cli(databaseUrl, ['apps', 'create', '--name', `Away app ${suffix}`, '--type', 'spa',
      '--callbacks', callback.url, '--origins', callback.origin]);
    const authorize = (extra = {}) => {
      const verifier = b64url(randomBytes(32));
      const url = new URL(`${dev.server}/authorize`);
      url.search = new URLSearchParams({
        response_type: 'code', client_id: app.client_id, redirect_uri: callback.url, scope: 'openid', state: 'st',
        code_challenge: b64url(createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256', ...extra,
      });
      return url.href;
    };

    await withPage(browser, 'dashboard-sessions-user', async ({ page: userPage }) => {
      // The user signs in to the application in their own browser.
      await userPage.goto(authorize());
      await userPage.waitForURL((u) => u.pathname === '/u/login');
      await userPage.fill('#username', email);
      await userPage.fill('#password', password);
      await Promise.all([userPage.waitForURL((u) => u.origin === callback.origin), userPage.click('button[type=submit]')]);
      const agent = await userPage.evaluate(() => navigator.userAgent);

      // The administrator, in another browser, finds that browser on the user's Sessions tab.
      await withPage(browser, 'dashboard-sessions-admin', async ({ page, context }) => {
        const csp = await watchCsp(context);
        await signIn(page, DEMO_EMAIL, dev.password);
        await page.goto(`${dev.server}/admin/users?field=email&term=${encodeURIComponent(`away-${suffix}`)}`);
        await follow(page, 'link', email);
        await follow(page, 'link', 'Sessions');
        await audit(page, 'dashboard-user-sessions');
        const rows = await page.locator('#sessions tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent.trim())));
        assert.equal(rows.length, 1, JSON.stringify(rows));
        assert.equal(rows[0][0], agent, 'the browser it was signed in with');
        assert.equal(rows[0][1], '127.0.0.1');
        await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: /^Sign out session / }).click()]);
        await page.getByText('Signed out: that browser or application signs in again.').waitFor();
        assert.equal(await page.locator('#no-sessions').count(), 1);
        assert.deepEqual(csp.violations, []);
      });

      // The user's browser is no longer signed in: a silent sign-in comes back login_required.
      await userPage.goto(authorize({ prompt: 'none' }));
      await userPage.waitForURL((u) => u.origin === callback.origin);
      assert.equal(new URL(userPage.url()).searchParams.get('error'), 'login_required', userPage.url());
    });
  });

  it('a viewer changes nothing, a user without a role gets 403, a form without its token is refused', { timeout: 180000 }, async () => {
    const suffix = randomBytes(4).toString('hex');
    const viewerEmail = `viewer-${suffix}@example.com`;
    const plainEmail = `plain-${suffix}@example.com`;
    const password = `pw-${randomBytes(12).toString('base64url')}`;
    for (const email of [viewerEmail, plainEmail]) {
      await cli(databaseUrl, ['users', 'create', '--email', email, '--password-stdin'], { input: `${password}\n` });
    }
    await cli(databaseUrl, ['admins', 'add', viewerEmail, '--viewer']);
    const listed = await cli(databaseUrl, ['admins', 'list']);
    assert.ok(JSON.stringify(listed).includes(viewerEmail), 'tessera admins list shows the viewer');

    await withPage(browser, 'dashboard-viewer', async ({ page, context }) => {
      const csp = await watchCsp(context);
      await signIn(page, viewerEmail, password);
      await page.goto(`${dev.server}/admin/apis`);
      assert.equal(await page.getByRole('link', { name: '+ Create API' }).count(), 0, 'no Create API for a viewer');
      await page.goto(`${dev.server}/admin/applications`);
      await audit(page, 'dashboard-viewer-applications');
      // A form posted anyway (its token is right): refused by the same permission check.
      const csrf = await page.locator('input[name=csrf]').first().inputValue();
      const forged = await page.request.post(`${dev.server}/admin/apis`, {
        form: { csrf, name: 'Nope', identifier: `https://nope-${suffix}.example.com/`, signing_alg: 'RS256' },
        maxRedirects: 0,
      });
      assert.equal(forged.status(), 403);
      assert.match(await forged.text(), /Insufficient scope/);
      // Without the token, even an administrator's form is refused.
      const tokenless = await page.request.post(`${dev.server}/admin/apis`, {
        form: { name: 'Nope', identifier: `https://nope2-${suffix}.example.com/`, signing_alg: 'RS256' },
        maxRedirects: 0,
      });
      assert.equal(tokenless.status(), 403);
      assert.deepEqual(csp.violations, []);
    });
    await assert.rejects(cli(databaseUrl, ['apis', 'show', `https://nope-${suffix}.example.com/`]));

    await withPage(browser, 'dashboard-no-role', async ({ page, context }) => {
      await watchCsp(context);
      await signIn(page, plainEmail, password);
      assert.match(await page.locator('h1').textContent(), /No access/);
      const response = await page.goto(`${dev.server}/admin/users`);
      assert.equal(response.status(), 403);
      assert.equal(await page.getByText(DEMO_EMAIL).count(), 0, 'no data on the 403 page');
      await audit(page, 'dashboard-forbidden');
    });
  });
});
