// Auth0's Express SDK for regular web apps, npm `express-openid-connect`, with the hybrid
// response type `code id_token` against a real `tessera serve`, the login driven by headless
// Chromium: /login → /authorize → the hosted login page → Tessera's form_post page posts the code
// and the front-channel ID token to the app's /callback, where the library checks the ID token
// (signature against the JWKS, nonce, c_hash) and redeems the code (PKCE, client secret). The
// protected route then shows the user's claims. The posted ID token is also checked here, apart
// from the library: jose against the JWKS, and its c_hash computed from the posted code.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';

import express from 'express';
import expressOpenidConnect from 'express-openid-connect';
import { createRemoteJWKSet, jwtVerify } from 'jose';

import { cli, startServer, tempDir, freePort } from './lib/tessera.mjs';
import { launchChromium, withPage } from './lib/browser.mjs';

// A CommonJS module: its exports come as the default one.
const { auth, requiresAuth } = expressOpenidConnect;

const EMAIL = 'hybrid@example.com';
const PASSWORD = `hybrid-${randomBytes(9).toString('base64url')}`;

/** base64url of the left half of SHA-256 (RS256 ID tokens' c_hash, OIDC Core §3.3.2.11). */
const leftHalfSha256 = (value) => createHash('sha256').update(value).digest().subarray(0, 16).toString('base64url');

/**
 * An Express app protected by express-openid-connect with `response_type: 'code id_token'`, on
 * 127.0.0.1:`port` (the same site as Tessera's issuer, as an app beside its IdP would be: the library's
 * transaction cookie is `SameSite=None; Secure`, which plain http drops, and its fallback
 * cookie, without SameSite, comes back on a same-site form post). It records what Tessera posts
 * to /callback. Returns {origin, posted, close()}.
 */
async function startApp({ port, issuer, clientId, clientSecret }) {
  const origin = `http://127.0.0.1:${port}`;
  const posted = [];
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.post('/callback', (req, res, next) => {
    posted.push({ ...req.body });
    next();
  });
  app.use(auth({
    issuerBaseURL: issuer,
    baseURL: origin,
    clientID: clientId,
    clientSecret,
    clientAuthMethod: 'client_secret_post',
    secret: randomBytes(32).toString('base64url'),
    authRequired: false,
    enableTelemetry: false,
    authorizationParams: { response_type: 'code id_token', scope: 'openid profile email' },
  }));
  app.get('/profile', requiresAuth(), (req, res) => {
    res.json({ user: req.oidc.user, idTokenClaims: req.oidc.idTokenClaims, hasAccessToken: Boolean(req.oidc.accessToken) });
  });
  // The library's errors (e.g. an error response from Tessera) as JSON the test can read.
  app.use((error, req, res, next) => { // eslint-disable-line no-unused-vars
    res.status(error.status || 500).json({ error: error.error ?? null, message: error.message });
  });
  const listener = await new Promise((resolve, reject) => {
    const server = app.listen(port, '127.0.0.1', () => resolve(server));
    server.on('error', reject);
  });
  return {
    origin,
    posted,
    close: () => new Promise((resolve) => { listener.closeAllConnections(); listener.close(resolve); }),
  };
}

describe('express-openid-connect with response_type "code id_token" (tessera serve, Chromium)', () => {
  let tmp;
  let databaseUrl;
  let server;
  let browser;
  let userId;
  let JWKS;
  const apps = [];

  before(async () => {
    tmp = await tempDir();
    databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
    const user = await cli(databaseUrl, ['users', 'create', '--email', EMAIL, '--password-stdin'], { input: `${PASSWORD}\n` });
    userId = user.user_id;
    server = await startServer({ databaseUrl });
    JWKS = createRemoteJWKSet(new URL(`${server.baseUrl}/.well-known/jwks.json`), { timeoutDuration: 5000 });
    browser = await launchChromium();
  }, { timeout: 120000 });

  after(async () => {
    await browser?.close().catch(() => {});
    for (const app of apps) await app.close();
    await server?.stop();
    await tmp?.remove();
  });

  /** A regular web application registered with the CLI (`grantTypes`: else the type's defaults), and the app running as it. */
  async function registeredApp(name, grantTypes) {
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const args = ['apps', 'create', '--name', name, '--type', 'regular', '--callbacks', `${origin}/callback`,
      '--logout-urls', origin];
    if (grantTypes) args.push('--grant-types', grantTypes);
    const created = await cli(databaseUrl, args);
    const app = await startApp({ port, issuer: server.issuer, clientId: created.client_id, clientSecret: created.client_secret });
    apps.push(app);
    return { ...app, clientId: created.client_id, clientSecret: created.client_secret };
  }

  const browserTest = (name, fn) => it(name, { timeout: 90000 }, () => withPage(browser, name, fn));

  browserTest('logs in through the hybrid flow and reaches the protected route with the user\'s claims', async ({ page }) => {
    const app = await registeredApp('Hybrid web app');
    await page.goto(`${app.origin}/profile`);
    await page.waitForURL((url) => url.pathname === '/u/login');
    await page.fill('#username', EMAIL);
    await page.fill('#password', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL((url) => url.origin === app.origin && url.pathname === '/profile', { timeout: 20000 });
    const profile = JSON.parse(await page.locator('body').innerText());
    assert.equal(profile.user.sub, userId);
    assert.equal(profile.user.email, EMAIL);
    assert.equal(profile.user.nickname, 'hybrid');
    assert.equal(profile.idTokenClaims.aud, app.clientId);
    assert.equal(profile.hasAccessToken, true, 'the code was redeemed for an access token');

    // What Tessera posted: a code and an ID token bound to it, no access token, no error.
    assert.equal(app.posted.length, 1, JSON.stringify(app.posted));
    const [{ code, id_token: idToken, state, iss, access_token: accessToken, error }] = app.posted;
    assert.equal(error, undefined);
    assert.ok(code && idToken && state, JSON.stringify(app.posted[0]));
    assert.equal(accessToken, undefined, '`code id_token` returns no access token from /authorize');
    assert.equal(iss, server.issuer);
    const { payload, protectedHeader } = await jwtVerify(idToken, JWKS, { issuer: server.issuer, audience: app.clientId });
    assert.equal(protectedHeader.alg, 'RS256');
    assert.equal(payload.c_hash, leftHalfSha256(code), 'c_hash is the posted code\'s');
    assert.equal(payload.sub, userId);
    assert.equal(typeof payload.nonce, 'string');
    // The library kept the token endpoint's ID token: same user and nonce, no c_hash.
    assert.equal(profile.idTokenClaims.sub, payload.sub);
    assert.equal(profile.idTokenClaims.nonce, payload.nonce);
    assert.equal(profile.idTokenClaims.c_hash, undefined);

    // The posted code was redeemed by the library: a replay is refused.
    const replay = await fetch(`${server.baseUrl}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code', client_id: app.clientId, client_secret: app.clientSecret, code,
        redirect_uri: `${app.origin}/callback`,
      }),
      signal: AbortSignal.timeout(10000),
    });
    assert.equal(replay.status, 400);
    assert.equal((await replay.json()).error, 'invalid_grant');
  });

  browserTest('an application without the implicit grant: Tessera posts unauthorized_client and the library reports it', async ({ page }) => {
    const app = await registeredApp('Code-only web app', 'authorization_code,refresh_token');
    const callback = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/callback');
    await page.goto(`${app.origin}/profile`);
    const answer = await callback;
    assert.equal(answer.status(), 400);
    const body = await answer.json();
    assert.equal(body.error, 'unauthorized_client', JSON.stringify(body));
    assert.equal(app.posted.length, 1);
    assert.equal(app.posted[0].code, undefined, 'no code');
    assert.equal(app.posted[0].id_token, undefined, 'no ID token');
  });
});
