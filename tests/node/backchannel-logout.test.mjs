// OIDC Back-Channel Logout 1.0 with Auth0's Express SDK for regular web apps, npm
// `express-openid-connect` 3 (`backchannelLogout: {store}`), against a real `tessera serve`: when a
// Tessera login session ends, Tessera POSTs a logout token to the application's
// `oidc_logout.backchannel_logout_urls[0]`, the SDK verifies it (`jwtVerify` against the
// discovered JWKS, issuer, audience = its client id, the back-channel event, no nonce, a sub or
// sid), answers 204 and records `<iss>|<sid>` and `<iss>|<sub>` in its store; its next request
// with that app cookie is then signed out. The app's own session is never ended by the test
// through the app's /logout: only Tessera's token can end it.
//
// The application's `oidc_logout` is set with the `auth0` SDK's ManagementClient
// (`clients.update`), which sends the member as given. The "browser" is a cookie jar driving the
// Express app's /login, Tessera's hosted login and the app's /callback over HTTP (lib/login.mjs).
// The app records every answer of its back-channel endpoint, so a token the SDK refused (400)
// fails the test with the SDK's error description. Negative controls: a token signed by a key
// that is not Tessera's and a real Tessera token for another application are refused (400) and
// leave the session alone.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';

import express from 'express';
import expressOpenidConnect from 'express-openid-connect';
import session from 'express-session';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';

import { cli, delay, freePort, startServer, tempDir, waitFor } from './lib/tessera.mjs';
import { managementClient } from './lib/management.mjs';
import { cookieClient, signIn } from './lib/login.mjs';
import { signWithForeignKey, tamperPayload } from './lib/tokens.mjs';

// A CommonJS module: its exports come as the default one.
const { auth } = expressOpenidConnect;

const EMAIL = 'bcl@example.com';
const PASSWORD = `bcl-${randomBytes(9).toString('base64url')}`;
const EVENT = 'http://schemas.openid.net/event/backchannel-logout';
// Long enough for Tessera's once-a-second delivery task (and a retry) to have run.
const QUIET_MS = 3000;

/**
 * The Express app on 127.0.0.1:`port`: express-openid-connect with back-channel logout (an
 * express-session MemoryStore keeps the logout records), `/me` telling whether the app cookie is
 * signed in. Every answer of `/backchannel-logout` is recorded in `deliveries` ({from: 'tessera'
 * or the `x-test-sender` header, contentType, token, status, body}). `/other-backchannel` stands
 * for another application's endpoint: it keeps the tokens posted to it in `otherTokens`.
 */
async function startApp({ port, issuer, clientId, clientSecret }) {
  const origin = `http://127.0.0.1:${port}`;
  const deliveries = [];
  const otherTokens = [];
  const app = express();
  app.post('/other-backchannel', express.urlencoded({ extended: false }), (req, res) => {
    otherTokens.push({ token: req.body?.logout_token, contentType: req.get('content-type') });
    res.status(204).end();
  });
  // Before the SDK's own route: records what was posted and what the SDK answered.
  app.post('/backchannel-logout', express.urlencoded({ extended: false }), (req, res, next) => {
    const entry = {
      from: req.get('x-test-sender') ?? 'tessera',
      contentType: req.get('content-type'),
      token: req.body?.logout_token,
    };
    const json = res.json.bind(res);
    res.json = (body) => {
      entry.body = body;
      return json(body);
    };
    res.on('finish', () => {
      entry.status = res.statusCode;
      deliveries.push(entry);
    });
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
    idpLogout: false,
    enableTelemetry: false,
    backchannelLogout: { store: new session.MemoryStore() },
    authorizationParams: { response_type: 'code', scope: 'openid profile email' },
  }));
  app.get('/me', (req, res) => {
    const authenticated = req.oidc.isAuthenticated();
    res.json({
      authenticated,
      sub: authenticated ? req.oidc.idTokenClaims.sub : null,
      sid: authenticated ? req.oidc.idTokenClaims.sid ?? null : null,
    });
  });
  // The SDK's errors (e.g. at /callback) as JSON the test can read.
  app.use((error, req, res, next) => { // eslint-disable-line no-unused-vars
    res.status(error.status || 500).json({ error: error.error ?? null, message: error.message });
  });
  const listener = await new Promise((resolve, reject) => {
    const server = app.listen(port, '127.0.0.1', () => resolve(server));
    server.on('error', reject);
  });
  return {
    origin,
    deliveries,
    otherTokens,
    close: () => new Promise((resolve) => { listener.closeAllConnections(); listener.close(resolve); }),
  };
}

describe('express-openid-connect ends its session on Tessera\'s logout token (OIDC Back-Channel Logout)', () => {
  let tmp;
  let databaseUrl;
  let server;
  let mgmt;
  let userId;
  let web; // the Express app's registration: {clientId, clientSecret}
  let other; // another regular web application (its endpoint is the app's /other-backchannel)
  let app;
  let discovery;
  let JWKS;
  let browser;

  before(async () => {
    tmp = await tempDir();
    databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
    const user = await cli(databaseUrl, ['users', 'create', '--email', EMAIL, '--password-stdin'], { input: `${PASSWORD}\n` });
    userId = user.user_id;
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const created = await cli(databaseUrl, ['apps', 'create', '--name', 'Back-channel web app', '--type', 'regular',
      '--callbacks', `${origin}/callback`, '--logout-urls', origin]);
    web = { clientId: created.client_id, clientSecret: created.client_secret };
    const second = await cli(databaseUrl, ['apps', 'create', '--name', 'Other web app', '--type', 'regular',
      '--callbacks', `${origin}/other-callback`]);
    other = { clientId: second.client_id };
    server = await startServer({ databaseUrl });
    mgmt = await managementClient(server, databaseUrl, 'read:clients,update:clients,read:sessions,delete:sessions');
    app = await startApp({ port, issuer: server.issuer, ...web });
    const response = await fetch(`${server.baseUrl}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(10000) });
    assert.equal(response.status, 200);
    discovery = await response.json();
    JWKS = createRemoteJWKSet(new URL(discovery.jwks_uri), { timeoutDuration: 5000 });
    browser = cookieClient();
  }, { timeout: 60000 });

  after(async () => {
    await app?.close();
    await server?.stop();
    await tmp?.remove();
  });

  const fromTessera = () => app.deliveries.filter((d) => d.from === 'tessera');

  /** What the Express app says about the browser's app cookie. */
  const appState = async () => {
    const response = await browser.request(`${app.origin}/me`);
    assert.equal(response.status, 200, await response.clone().text());
    return response.json();
  };

  /** The app's /login → Tessera's /authorize (and hosted login if needed) → the app's /callback. */
  const signInToApp = async () => {
    const login = await browser.request(`${app.origin}/login`);
    assert.equal(login.status, 302, `the app's /login answered ${login.status}`);
    const authorize = new URL(login.headers.get('location'));
    assert.equal(authorize.origin, new URL(server.baseUrl).origin, authorize.href);
    const callback = await signIn(browser, authorize.href, { email: EMAIL, password: PASSWORD });
    assert.equal(`${callback.origin}${callback.pathname}`, `${app.origin}/callback`, callback.href);
    assert.ok(callback.searchParams.get('code'), callback.href);
    const back = await browser.request(callback.href);
    assert.equal(back.status, 302, `the app's /callback answered ${back.status}: ${await back.text()}`);
    const state = await appState();
    assert.equal(state.authenticated, true, JSON.stringify(state));
    assert.equal(state.sub, userId);
    assert.equal(typeof state.sid, 'string', 'the ID token carries a sid');
    return state;
  };

  /** The same Tessera session answers an /authorize of the other application. */
  const useOtherApp = async () => {
    const verifier = randomBytes(32).toString('base64url');
    const url = new URL('/authorize', server.baseUrl);
    url.search = new URLSearchParams({
      response_type: 'code', client_id: other.clientId, redirect_uri: `${app.origin}/other-callback`,
      scope: 'openid', state: randomBytes(8).toString('hex'),
      code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    });
    const back = await signIn(browser, url.href, { email: EMAIL, password: PASSWORD });
    assert.ok(back.searchParams.get('code'), back.href);
  };

  /** Waits (bounded) for the `n`-th delivery from Tessera; a refused one fails with the SDK's words. */
  const delivery = async (n) => {
    await waitFor(`logout token #${n} from Tessera at the app's back-channel endpoint`,
      () => fromTessera().length >= n, { timeoutMs: 10000, intervalMs: 100 });
    const entry = fromTessera()[n - 1];
    assert.equal(entry.status, 204,
      `the SDK refused Tessera's logout token: ${entry.status} ${JSON.stringify(entry.body)}\n`
      + `header ${JSON.stringify(entry.token && decodeProtectedHeader(entry.token))}\n`
      + `claims ${JSON.stringify(entry.token && decodeJwt(entry.token))}`);
    assert.match(entry.contentType ?? '', /^application\/x-www-form-urlencoded/);
    return entry;
  };

  /** The logout token checked apart from the SDK (jose, the JWKS from discovery). */
  const checkLogoutToken = async (token, { audience, sid }) => {
    const { payload, protectedHeader } = await jwtVerify(token, JWKS, {
      issuer: server.issuer, audience, typ: 'logout+jwt', algorithms: ['RS256'],
    });
    assert.equal(protectedHeader.alg, 'RS256');
    assert.equal(typeof protectedHeader.kid, 'string');
    assert.equal(payload.sub, userId);
    if (sid) assert.equal(payload.sid, sid);
    assert.equal(typeof payload.sid, 'string');
    assert.deepEqual(payload.events, { [EVENT]: {} });
    assert.equal(payload.nonce, undefined, 'a logout token has no nonce');
    assert.equal(typeof payload.jti, 'string');
    assert.ok(payload.jti.length > 0);
    const now = Math.floor(Date.now() / 1000);
    assert.ok(Math.abs(payload.iat - now) < 60, `iat ${payload.iat}, now ${now}`);
    assert.ok(payload.exp > now, `exp ${payload.exp}, now ${now}`);
    return payload;
  };

  /** Revokes every login session of the user with the ManagementClient. */
  const revokeAll = async () => {
    const ids = [];
    const page = await mgmt.users.sessions.list(userId, { take: 50 });
    for await (const item of page) ids.push(item.id);
    assert.ok(ids.length >= 1, 'the user has a login session to revoke');
    for (const id of ids) await mgmt.sessions.revoke(id);
  };

  /** Posts `token` to the app's back-channel endpoint as the test (not Tessera). */
  const postToApp = async (token) => {
    const response = await fetch(`${app.origin}/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-test-sender': 'test' },
      body: new URLSearchParams({ logout_token: token }),
      signal: AbortSignal.timeout(10000),
    });
    return { status: response.status, body: await response.json().catch(() => null) };
  };

  it('discovery announces back-channel logout with sid', () => {
    assert.equal(discovery.backchannel_logout_supported, true, JSON.stringify(discovery));
    assert.equal(discovery.backchannel_logout_session_supported, true);
  });

  it('the ManagementClient sets oidc_logout (loopback http, one URL)', async () => {
    const oidcLogout = {
      backchannel_logout_urls: [`${app.origin}/backchannel-logout`],
      backchannel_logout_initiators: { mode: 'custom', selected_initiators: ['rp-logout'] },
    };
    const updated = await mgmt.clients.update(web.clientId, { oidc_logout: oidcLogout });
    assert.deepEqual(updated.oidc_logout, oidcLogout, JSON.stringify(updated.oidc_logout));
    assert.deepEqual((await mgmt.clients.get(web.clientId)).oidc_logout, oidcLogout);
    await mgmt.clients.update(other.clientId, {
      oidc_logout: { ...oidcLogout, backchannel_logout_urls: [`${app.origin}/other-backchannel`] },
    });
    // Plain http only to loopback; Auth0 takes one URL.
    const refused = (error) => error.statusCode === 400;
    await assert.rejects(mgmt.clients.update(web.clientId, {
      oidc_logout: { ...oidcLogout, backchannel_logout_urls: ['http://example.com/backchannel-logout'] },
    }), refused);
    await assert.rejects(mgmt.clients.update(web.clientId, {
      oidc_logout: { ...oidcLogout, backchannel_logout_urls: [`${app.origin}/backchannel-logout`, `${app.origin}/other`] },
    }), refused);
    assert.deepEqual((await mgmt.clients.get(web.clientId)).oidc_logout, oidcLogout, 'refused updates change nothing');
  });

  it('a logout at Tessera\'s /v2/logout signs the app out through its back-channel endpoint', { timeout: 30000 }, async () => {
    const signedIn = await signInToApp();
    await useOtherApp();
    assert.equal(fromTessera().length, 0, 'nothing delivered before the logout');

    const logout = await browser.request(`${server.baseUrl}/v2/logout?${new URLSearchParams({ client_id: web.clientId, returnTo: app.origin })}`);
    assert.equal(logout.status, 302);
    assert.equal(logout.headers.get('location'), app.origin);

    const entry = await delivery(1);
    await checkLogoutToken(entry.token, { audience: web.clientId, sid: signedIn.sid });
    const state = await waitFor('the app to say signed out', async () => {
      const now = await appState();
      return now.authenticated === false && now;
    }, { timeoutMs: 5000, intervalMs: 100 });
    assert.equal(state.authenticated, false);

    // The other application of the session got its own token, for its own client id.
    await waitFor('the other application\'s logout token', () => app.otherTokens.length >= 1, { timeoutMs: 10000 });
    assert.match(app.otherTokens[0].contentType ?? '', /^application\/x-www-form-urlencoded/);
    const otherClaims = await checkLogoutToken(app.otherTokens[0].token, { audience: other.clientId, sid: signedIn.sid });
    assert.notEqual(otherClaims.jti, decodeJwt(entry.token).jti, 'one jti per token');
  });

  it('a token signed by another key, or Tessera\'s for another application, is refused (400) and the session stays', { timeout: 30000 }, async () => {
    assert.ok(fromTessera()[0]?.token && app.otherTokens[0]?.token, 'needs the logout tokens of the /v2/logout test');
    const signedIn = await signInToApp();
    const real = fromTessera()[0].token;
    // Tessera's claims for the current session, re-signed by a key that is not Tessera's (same kid).
    const forged = await signWithForeignKey(tamperPayload(real, (claims) => ({
      ...claims, sid: signedIn.sid, jti: randomUUID(), iat: Math.floor(Date.now() / 1000),
    })));
    const foreign = await postToApp(forged);
    assert.equal(foreign.status, 400, JSON.stringify(foreign));
    assert.equal(foreign.body?.error, 'invalid_request');
    assert.match(foreign.body?.error_description ?? '', /signature/i);

    // A real Tessera logout token, for the same user, but for the other application.
    const misaddressed = await postToApp(app.otherTokens[0].token);
    assert.equal(misaddressed.status, 400, JSON.stringify(misaddressed));
    assert.match(misaddressed.body?.error_description ?? '', /aud/);

    const state = await appState();
    assert.equal(state.authenticated, true, 'the refused tokens left the session alone');
    assert.equal(state.sid, signedIn.sid);
  });

  it('an administrator\'s revoke signs the app out only when its initiators ask for session-revoked', { timeout: 40000 }, async () => {
    // Mode custom with only rp-logout: the revoke ends Tessera's session, the app is not told.
    let state = await appState();
    if (!state.authenticated) state = await signInToApp();
    const delivered = fromTessera().length;
    await revokeAll();
    await delay(QUIET_MS);
    assert.equal(fromTessera().length, delivered,
      `no logout token for session-revoked in mode custom [rp-logout]: ${JSON.stringify(fromTessera().slice(delivered).map((d) => d.token && decodeJwt(d.token)))}`);
    const kept = await appState();
    assert.equal(kept.authenticated, true, 'the app keeps its session');
    assert.equal(kept.sid, state.sid);

    // Mode all: a new sign-in (Tessera's session was revoked), then the revoke reaches the app.
    const all = await mgmt.clients.update(web.clientId, {
      oidc_logout: {
        backchannel_logout_urls: [`${app.origin}/backchannel-logout`],
        backchannel_logout_initiators: { mode: 'all' },
      },
    });
    assert.equal(all.oidc_logout.backchannel_logout_initiators.mode, 'all');
    const again = await signInToApp();
    assert.notEqual(again.sid, state.sid, 'a new Tessera session after the revoke');
    await revokeAll();
    const entry = await delivery(delivered + 1);
    await checkLogoutToken(entry.token, { audience: web.clientId, sid: again.sid });
    const out = await waitFor('the app to say signed out', async () => {
      const now = await appState();
      return now.authenticated === false && now;
    }, { timeoutMs: 5000, intervalMs: 100 });
    assert.equal(out.authenticated, false);
  });
});
