// openid-client (panva, OpenID Certified relying-party library) against the real server, in its
// strict defaults: discovery checks the issuer; the authorization response is checked for state
// and RFC 9207 `iss`; PKCE; the ID token's iss, aud, exp, iat, nonce, auth_time (max_age) and —
// with enableNonRepudiationChecks — its signature against the jwks_uri; userinfo's `sub` against
// the expected subject. The hosted login page is driven over HTTP with a cookie jar
// (lib/login.mjs); only the library decides whether a response is acceptable.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

import * as client from 'openid-client';
import { createRemoteJWKSet, jwtVerify, decodeJwt } from 'jose';

import { cli, startServer, tempDir } from './lib/tessera.mjs';
import { cookieClient, signIn } from './lib/login.mjs';

const API = 'https://openid-client/api';
const CALLBACK = 'https://rp.example.com/callback';
const LOGGED_OUT = 'https://rp.example.com/logged-out';
const EMAIL = 'carol@example.com';
const PASSWORD = `oidc-${randomBytes(9).toString('base64url')}`;

describe('openid-client (strict relying party)', () => {
  let tmp;
  let server;
  let issuer; // URL
  let regular; // {clientId, clientSecret}
  let m2m;
  let userId;
  let rp; // openid-client Configuration of the regular (confidential) app
  let JWKS;

  const discover = (clientId, secret, auth) =>
    client.discovery(issuer, clientId, secret, auth, {
      execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
      timeout: 10,
    });

  before(async () => {
    tmp = await tempDir();
    const databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
    await cli(databaseUrl, ['apis', 'create', '--name', 'OIDC API', '--identifier', API,
      '--scopes', 'read:messages,write:messages', '--allow-offline-access']);
    const app = await cli(databaseUrl, ['apps', 'create', '--name', 'Regular web app', '--type', 'regular',
      '--callbacks', CALLBACK, '--logout-urls', LOGGED_OUT]);
    regular = { clientId: app.client_id, clientSecret: app.client_secret };
    const machine = await cli(databaseUrl, ['apps', 'create', '--name', 'Worker', '--type', 'm2m']);
    m2m = { clientId: machine.client_id, clientSecret: machine.client_secret };
    await cli(databaseUrl, ['grants', 'create', '--app', m2m.clientId, '--api', API, '--scopes', 'read:messages']);
    const user = await cli(databaseUrl, ['users', 'create', '--email', EMAIL, '--password-stdin'], { input: `${PASSWORD}\n` });
    userId = user.user_id;
    assert.ok(userId, `users create printed a user_id: ${JSON.stringify(user)}`);
    server = await startServer({ databaseUrl });
    issuer = new URL(server.issuer);
    rp = await discover(regular.clientId, regular.clientSecret, client.ClientSecretBasic(regular.clientSecret));
    JWKS = createRemoteJWKSet(new URL(rp.serverMetadata().jwks_uri), { timeoutDuration: 5000 });
  }, { timeout: 120000 });

  after(async () => {
    await server?.stop();
    await tmp?.remove();
  });

  /**
   * Builds the authorization URL with the library (PKCE S256, state, nonce, max_age), signs in
   * with a fresh cookie jar and returns {callbackUrl, checks, browser}.
   */
  async function authorize(extra = {}, browser = cookieClient()) {
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const expectedState = client.randomState();
    const expectedNonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(rp, {
      redirect_uri: CALLBACK,
      scope: 'openid profile email',
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state: expectedState,
      nonce: expectedNonce,
      max_age: '300',
      ...extra,
    });
    const callbackUrl = await signIn(browser, url.href, { email: EMAIL, password: PASSWORD });
    return {
      callbackUrl,
      checks: { pkceCodeVerifier, expectedState, expectedNonce, maxAge: 300, idTokenExpected: true },
      browser,
    };
  }

  /** The full code flow, validated by the library; returns {tokens, browser}. */
  async function codeFlow(extra) {
    const { callbackUrl, checks, browser } = await authorize(extra);
    const tokens = await client.authorizationCodeGrant(rp, callbackUrl, checks);
    return { tokens, browser };
  }

  const withOffline = { scope: 'openid profile email offline_access read:messages', audience: API };

  it('discovery: the issuer (trailing slash) matches, RFC 9207 iss is advertised, and the endpoints openid-client needs are there', () => {
    const metadata = rp.serverMetadata();
    assert.equal(metadata.issuer, issuer.href);
    assert.equal(metadata.authorization_response_iss_parameter_supported, true);
    for (const endpoint of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri',
      'revocation_endpoint', 'end_session_endpoint']) {
      assert.ok(metadata[endpoint]?.startsWith(server.baseUrl), `${endpoint}: ${metadata[endpoint]}`);
    }
    assert.ok(metadata.code_challenge_methods_supported.includes('S256'));
  });

  it('code + PKCE with state, nonce and max_age: the library accepts the callback (iss, state) and the ID token (signature, iss, aud, nonce, auth_time); userinfo answers for the expected sub', async () => {
    const { callbackUrl, checks } = await authorize();
    assert.equal(callbackUrl.searchParams.get('iss'), issuer.href, 'RFC 9207 iss in the authorization response');
    const tokens = await client.authorizationCodeGrant(rp, callbackUrl, checks);
    assert.equal(tokens.token_type, 'bearer');
    assert.ok(tokens.access_token);
    assert.ok(tokens.id_token);
    const claims = tokens.claims();
    assert.equal(claims.sub, userId);
    assert.equal(claims.iss, issuer.href);
    assert.equal(claims.aud, regular.clientId);
    assert.equal(claims.nonce, checks.expectedNonce);
    assert.equal(typeof claims.auth_time, 'number');
    assert.ok(Math.abs(claims.auth_time - Date.now() / 1000) < 120, `auth_time ${claims.auth_time} is recent`);
    // The library verified the signature already (non-repudiation); an independent check agrees.
    await jwtVerify(tokens.id_token, JWKS, { issuer: issuer.href, audience: regular.clientId });

    const userinfo = await client.fetchUserInfo(rp, tokens.access_token, claims.sub);
    assert.equal(userinfo.sub, userId);
    assert.equal(userinfo.email, EMAIL);
    await assert.rejects(client.fetchUserInfo(rp, tokens.access_token, 'auth0|someone-else'),
      (error) => error.code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED' && error.cause?.cause?.attribute === 'sub',
      'userinfo for another subject must be refused by the library');
  });

  it('pushed authorization requests (RFC 9126): the library pushes the request, the browser carries only its request_uri, which works once', async () => {
    assert.equal(rp.serverMetadata().pushed_authorization_request_endpoint, `${issuer.href}oauth/par`);
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const expectedState = client.randomState();
    const expectedNonce = client.randomNonce();
    const url = await client.buildAuthorizationUrlWithPAR(rp, {
      redirect_uri: CALLBACK,
      scope: 'openid email',
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state: expectedState,
      nonce: expectedNonce,
    });
    assert.deepEqual([...url.searchParams.keys()].sort(), ['client_id', 'request_uri']);
    assert.match(url.searchParams.get('request_uri'), /^urn:ietf:params:oauth:request_uri:/);
    const callbackUrl = await signIn(cookieClient(), url.href, { email: EMAIL, password: PASSWORD });
    const tokens = await client.authorizationCodeGrant(rp, callbackUrl, { pkceCodeVerifier, expectedState, expectedNonce, idTokenExpected: true });
    assert.equal(tokens.claims().sub, userId);
    assert.equal(tokens.claims().nonce, expectedNonce);
    // Used once: the same URL again is refused.
    const again = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(10000) });
    assert.equal(again.status, 400);
  });

  it('a tampered state in the callback URL is rejected by the library before any token request', async () => {
    const { callbackUrl, checks } = await authorize();
    const tampered = new URL(callbackUrl);
    tampered.searchParams.set('state', `${checks.expectedState}x`);
    await assert.rejects(client.authorizationCodeGrant(rp, tampered, checks),
      (error) => error.code === 'OAUTH_INVALID_RESPONSE' && /unexpected "state"/.test(error.cause?.message),
      'a wrong state must be refused');
    // The untouched URL still works: the refusal was the library's, not the server's.
    const tokens = await client.authorizationCodeGrant(rp, callbackUrl, checks);
    assert.equal(tokens.claims().sub, userId);
  });

  it('RFC 9207: a callback without iss, or with another issuer, is rejected by the library', async () => {
    const { callbackUrl, checks } = await authorize();
    const withoutIss = new URL(callbackUrl);
    withoutIss.searchParams.delete('iss');
    await assert.rejects(client.authorizationCodeGrant(rp, withoutIss, checks),
      (error) => error.code === 'OAUTH_INVALID_RESPONSE' && /"iss" \(issuer\) missing/.test(error.cause?.message));
    const otherIss = new URL(callbackUrl);
    otherIss.searchParams.set('iss', 'https://evil.example.com/');
    await assert.rejects(client.authorizationCodeGrant(rp, otherIss, checks),
      (error) => error.code === 'OAUTH_INVALID_RESPONSE' && /unexpected "iss"/.test(error.cause?.message));
    // The untouched URL is accepted.
    const tokens = await client.authorizationCodeGrant(rp, callbackUrl, checks);
    assert.equal(tokens.claims().sub, userId);
  });

  it('a wrong PKCE code verifier is refused by the server (invalid_grant)', async () => {
    const { callbackUrl, checks } = await authorize();
    await assert.rejects(
      client.authorizationCodeGrant(rp, callbackUrl, { ...checks, pkceCodeVerifier: client.randomPKCECodeVerifier() }),
      (error) => error instanceof client.ResponseBodyError && error.error === 'invalid_grant',
    );
  });

  it('refresh: offline_access on an API that allows it gives a refresh token; refreshTokenGrant returns a new access token, a rotated refresh token and a valid ID token for the same user', async () => {
    const { tokens } = await codeFlow(withOffline);
    assert.ok(tokens.refresh_token, 'a refresh token');
    assert.ok([decodeJwt(tokens.access_token).aud].flat().includes(API));
    const refreshed = await client.refreshTokenGrant(rp, tokens.refresh_token);
    assert.ok(refreshed.access_token, 'a new access token');
    // (Not compared with the first one: the default dialect has no jti, so two tokens issued
    // within the same second for the same grant are byte-identical.)
    assert.ok(refreshed.refresh_token, 'a rotated refresh token');
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
    assert.ok(refreshed.id_token, 'every refresh returns an ID token');
    const claims = refreshed.claims();
    assert.equal(claims.sub, userId);
    assert.equal(claims.iss, issuer.href);
    assert.equal(claims.aud, regular.clientId);
    const access = await jwtVerify(refreshed.access_token, JWKS, { issuer: issuer.href, audience: API });
    assert.equal(access.payload.sub, userId);
    assert.ok(access.payload.scope.split(' ').includes('read:messages'));
    const userinfo = await client.fetchUserInfo(rp, refreshed.access_token, userId);
    assert.equal(userinfo.sub, userId);
    // The rotated token refreshes again.
    const again = await client.refreshTokenGrant(rp, refreshed.refresh_token);
    assert.equal(again.claims().sub, userId);
  });

  it('revocation (RFC 7009): tokenRevocation of the refresh token succeeds, after which refreshing with it fails with invalid_grant', async () => {
    const { tokens } = await codeFlow(withOffline);
    assert.ok(tokens.refresh_token);
    await client.tokenRevocation(rp, tokens.refresh_token, { token_type_hint: 'refresh_token' });
    await assert.rejects(client.refreshTokenGrant(rp, tokens.refresh_token),
      (error) => error instanceof client.ResponseBodyError && error.error === 'invalid_grant',
      'a revoked refresh token must not refresh');
    // Revoking an unknown token is not an error (RFC 7009 §2.2).
    await client.tokenRevocation(rp, randomBytes(32).toString('base64url'));
  });

  it('client credentials (client_secret_post) with an audience: a JWT access token for the API, sub <client_id>@clients', async () => {
    const worker = await discover(m2m.clientId, m2m.clientSecret, client.ClientSecretPost(m2m.clientSecret));
    const tokens = await client.clientCredentialsGrant(worker, { audience: API });
    assert.equal(tokens.token_type, 'bearer');
    assert.equal(tokens.id_token, undefined);
    assert.equal(tokens.refresh_token, undefined);
    const { payload } = await jwtVerify(tokens.access_token, JWKS, { issuer: issuer.href, audience: API });
    assert.equal(payload.sub, `${m2m.clientId}@clients`);
    assert.equal(payload.scope, 'read:messages');
    assert.equal(payload.gty, 'client-credentials');
    // Without a grant on the API the server refuses.
    await assert.rejects(client.clientCredentialsGrant(worker, { audience: 'https://not-granted/api' }),
      (error) => error instanceof client.ResponseBodyError);
  });

  it('introspection (RFC 7662): the API\'s worker learns of a user\'s token for the API; the regular app, without a grant, learns nothing', async () => {
    const worker = await discover(m2m.clientId, m2m.clientSecret, client.ClientSecretPost(m2m.clientSecret));
    assert.equal(worker.serverMetadata().introspection_endpoint, `${issuer.href}oauth/introspect`);
    const machine = await client.clientCredentialsGrant(worker, { audience: API });
    const own = await client.tokenIntrospection(worker, machine.access_token);
    assert.equal(own.active, true);
    assert.equal(own.client_id, m2m.clientId);
    assert.equal(own.aud, API);
    const ofRegular = await client.tokenIntrospection(rp, machine.access_token);
    assert.deepEqual(ofRegular, { active: false });
    const forged = `${machine.access_token.slice(0, -4)}AAAA`;
    assert.deepEqual(await client.tokenIntrospection(worker, forged), { active: false });
  });

  it('RP-initiated logout: buildEndSessionUrl (id_token_hint, registered post_logout_redirect_uri, state) redirects back with state and ends the session (prompt=none then answers login_required)', async () => {
    const { tokens, browser } = await codeFlow();
    const state = client.randomState();
    const endSession = client.buildEndSessionUrl(rp, {
      id_token_hint: tokens.id_token,
      post_logout_redirect_uri: LOGGED_OUT,
      state,
    });
    assert.equal(endSession.href.startsWith(rp.serverMetadata().end_session_endpoint), true);
    const response = await browser.request(endSession.href);
    assert.equal(response.status, 302, await response.clone().text());
    const back = new URL(response.headers.get('location'));
    assert.equal(`${back.origin}${back.pathname}`, LOGGED_OUT);
    assert.equal(back.searchParams.get('state'), state);

    // The session is gone: a silent authorization in the same browser comes back with an error
    // the library reports as an authorization response error.
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const expectedState = client.randomState();
    const silent = client.buildAuthorizationUrl(rp, {
      redirect_uri: CALLBACK, scope: 'openid', prompt: 'none', state: expectedState,
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier), code_challenge_method: 'S256',
    });
    const answer = await browser.request(silent.href);
    assert.equal(answer.status, 302);
    const callbackUrl = new URL(answer.headers.get('location'));
    assert.equal(`${callbackUrl.origin}${callbackUrl.pathname}`, CALLBACK);
    await assert.rejects(client.authorizationCodeGrant(rp, callbackUrl, { pkceCodeVerifier, expectedState }),
      (error) => error instanceof client.AuthorizationResponseError && error.error === 'login_required');
  });

  it('RP-initiated logout to an unregistered post_logout_redirect_uri: no redirect, a 400 page', async () => {
    const { tokens, browser } = await codeFlow();
    const endSession = client.buildEndSessionUrl(rp, {
      id_token_hint: tokens.id_token,
      post_logout_redirect_uri: 'https://evil.example.com/logged-out',
      state: client.randomState(),
    });
    const response = await browser.request(endSession.href);
    const body = await response.text();
    assert.equal(response.status, 400, body);
    assert.equal(response.headers.get('location'), null);
    assert.match(response.headers.get('content-type') ?? '', /text\/html/);
    assert.doesNotMatch(body, /evil\.example\.com/);
  });
});
