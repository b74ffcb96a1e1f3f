// Auth0's current Express verifier, express-oauth2-jwt-bearer, protecting the quickstart API with
// tokens from a real Tessera: `auth({issuerBaseURL, audience})` discovers issuer, jwks_uri and
// the allowed algorithms (id_token_signing_alg_values_supported) from our discovery document.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { interopFixture } from './lib/fixture.mjs';
import { bearerApi, MESSAGES } from './lib/apis.mjs';
import { listen, get } from './lib/http.mjs';
import { AUDIENCE, ES256_AUDIENCE, EDDSA_AUDIENCE } from './lib/tessera.mjs';
import { decodeProtectedHeader } from './lib/tokens.mjs';
import { createHash, randomUUID } from 'node:crypto';
import * as jose from 'jose';

// No token: a bare Bearer challenge (1.10 adds a DPoP challenge, also without an error).
const BARE_CHALLENGE = /^Bearer realm="api"(, DPoP algs="[^"]*")?$/;
const INVALID_TOKEN = /^Bearer realm="api", error="invalid_token", error_description="[^"]*"/;

describe('express-oauth2-jwt-bearer 1.10.0 with Tessera tokens', () => {
  let fx;
  let api;
  before(async () => {
    fx = await interopFixture();
    api = await listen(bearerApi({ issuerBaseURL: fx.baseUrl, audience: AUDIENCE }));
  });
  after(async () => {
    await api?.close();
    await fx?.close();
  });

  it('answers 200 on /api/private and /api/private-scoped for a token with read:messages', async () => {
    const priv = await get(`${api.url}/api/private`, { token: fx.tokens.read });
    assert.equal(priv.status, 200, JSON.stringify(priv.body));
    assert.equal(priv.body.message, MESSAGES.private);
    assert.equal(priv.body.claims.sub, `${fx.reader.clientId}@clients`);
    assert.equal(priv.body.claims.iss, fx.issuer);
    const scoped = await get(`${api.url}/api/private-scoped`, { token: fx.tokens.read });
    assert.equal(scoped.status, 200, JSON.stringify(scoped.body));
    assert.equal(scoped.body.message, MESSAGES.scoped);
  });

  it('leaves /api/public open (200 without a token)', async () => {
    const res = await get(`${api.url}/api/public`);
    assert.equal(res.status, 200);
    assert.equal(res.body.message, MESSAGES.public);
  });

  it('answers 401 with a bare `Bearer realm="api"` challenge when no token is sent', async () => {
    for (const path of ['/api/private', '/api/private-scoped']) {
      const res = await get(`${api.url}${path}`);
      assert.equal(res.status, 401, path);
      assert.match(res.wwwAuthenticate ?? '', BARE_CHALLENGE, path);
      assert.doesNotMatch(res.wwwAuthenticate ?? '', /error=/, path);
    }
  });

  describe('refuses bad tokens with 401 error="invalid_token"', () => {
    // Filled in before(); the subtests are generated from the fixture's list of bad tokens.
    const names = [
      'garbage (not a JWT)',
      'garbage (three base64url segments)',
      'tampered payload (write-only token claiming read:messages)',
      'foreign RSA key, same kid as ours',
      'foreign RSA key, unknown kid',
      'alg none, no signature',
      'HS256 keyed with our RSA public key',
      'signature of another of our tokens',
    ];
    it('covers every bad token of the fixture', () => {
      assert.deepEqual(Object.keys(fx.bad).sort(), [...names].sort());
    });
    for (const name of names) {
      it(`refuses: ${name}`, async () => {
        for (const path of ['/api/private', '/api/private-scoped']) {
          const res = await get(`${api.url}${path}`, { token: fx.bad[name] });
          assert.equal(res.status, 401, `${path}: ${JSON.stringify(res.body)}`);
          assert.equal(res.body.code, 'invalid_token', path);
          assert.match(res.wwwAuthenticate ?? '', INVALID_TOKEN, path);
        }
      });
    }
  });

  it('refuses a token for another API (wrong audience) with 401 invalid_token', async () => {
    const res = await get(`${api.url}/api/private`, { token: fx.tokens.otherAudience });
    assert.equal(res.status, 401, JSON.stringify(res.body));
    assert.match(res.wwwAuthenticate ?? '', INVALID_TOKEN);
    assert.match(res.body.message, /'aud'/);
  });

  it('answers 403 insufficient_scope with scope="read:messages" for a token without read:messages (200 on /api/private)', async () => {
    assert.equal(fx.tokens.writeOnlyResponse.scope, 'write:messages');
    const priv = await get(`${api.url}/api/private`, { token: fx.tokens.writeOnly });
    assert.equal(priv.status, 200, JSON.stringify(priv.body));
    const scoped = await get(`${api.url}/api/private-scoped`, { token: fx.tokens.writeOnly });
    assert.equal(scoped.status, 403, JSON.stringify(scoped.body));
    assert.equal(scoped.body.code, 'insufficient_scope');
    assert.match(scoped.wwwAuthenticate ?? '', /^Bearer realm="api", error="insufficient_scope", error_description="[^"]*", scope="read:messages"$/);
  });

  describe('discovery', () => {
    for (const [label, issuerBaseURL] of [
      ['the base URL without a trailing slash', (fx) => fx.baseUrl],
      ['the issuer itself (trailing slash)', (fx) => fx.issuer],
      ['the OpenID discovery URL', (fx) => `${fx.baseUrl}/.well-known/openid-configuration`],
      ['the RFC 8414 oauth-authorization-server URL', (fx) => `${fx.baseUrl}/.well-known/oauth-authorization-server`],
    ]) {
      it(`finds jwks_uri and issuer from ${label} (no jwksUri configured): 200 good, 401 forged`, async () => {
        // A new verifier per case, so its discovery and JWKS caches start empty.
        const verifier = await listen(bearerApi({ issuerBaseURL: issuerBaseURL(fx), audience: AUDIENCE }));
        try {
          const good = await get(`${verifier.url}/api/private-scoped`, { token: fx.tokens.read });
          assert.equal(good.status, 200, JSON.stringify(good.body));
          const forged = await get(`${verifier.url}/api/private-scoped`, { token: fx.bad['foreign RSA key, same kid as ours'] });
          assert.equal(forged.status, 401, JSON.stringify(forged.body));
        } finally {
          await verifier.close();
        }
      });
    }

    it('works with an explicit issuer + jwksUri (no discovery)', async () => {
      const verifier = await listen(bearerApi({ issuer: fx.issuer, jwksUri: fx.discovery.jwks_uri, audience: AUDIENCE }));
      try {
        const good = await get(`${verifier.url}/api/private-scoped`, { token: fx.tokens.read });
        assert.equal(good.status, 200, JSON.stringify(good.body));
        const tampered = await get(`${verifier.url}/api/private-scoped`,
          { token: fx.bad['tampered payload (write-only token claiming read:messages)'] });
        assert.equal(tampered.status, 401);
      } finally {
        await verifier.close();
      }
    });

    it('refuses our tokens when configured for another issuer (iss is checked exactly)', async () => {
      // Same JWKS, but the issuer string differs only by the trailing slash.
      const verifier = await listen(bearerApi({
        issuer: fx.issuer.replace(/\/$/, ''), jwksUri: fx.discovery.jwks_uri, audience: AUDIENCE,
      }));
      try {
        const res = await get(`${verifier.url}/api/private`, { token: fx.tokens.read });
        assert.equal(res.status, 401, JSON.stringify(res.body));
        assert.match(res.body.message, /'iss'/);
      } finally {
        await verifier.close();
      }
    });
  });

  describe('other signing algorithms (allowed by discovery\'s id_token_signing_alg_values_supported)', () => {
    it('discovery lists RS256, ES256 and EdDSA', () => {
      for (const alg of ['RS256', 'ES256', 'EdDSA']) {
        assert.ok(fx.discovery.id_token_signing_alg_values_supported.includes(alg), alg);
      }
    });

    for (const [alg, audience, token] of [
      ['ES256', ES256_AUDIENCE, (fx) => fx.tokens.es256],
      ['EdDSA', EDDSA_AUDIENCE, (fx) => fx.tokens.eddsa],
    ]) {
      it(`accepts an ${alg} token of an ${alg} API (200), refuses it when tampered (401)`, async () => {
        assert.equal(decodeProtectedHeader(token(fx)).alg, alg);
        const verifier = await listen(bearerApi({ issuerBaseURL: fx.baseUrl, audience }));
        try {
          const good = await get(`${verifier.url}/api/private-scoped`, { token: token(fx) });
          assert.equal(good.status, 200, JSON.stringify(good.body));
          const [h, p, s] = token(fx).split('.');
          const flipped = `${h}.${p}.${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
          const bad = await get(`${verifier.url}/api/private-scoped`, { token: flipped });
          assert.equal(bad.status, 401, JSON.stringify(bad.body));
        } finally {
          await verifier.close();
        }
      });
    }

    it('refuses an ES256 token when tokenSigningAlg pins RS256', async () => {
      const verifier = await listen(bearerApi({ issuerBaseURL: fx.baseUrl, audience: ES256_AUDIENCE, tokenSigningAlg: 'RS256' }));
      try {
        const res = await get(`${verifier.url}/api/private`, { token: fx.tokens.es256 });
        assert.equal(res.status, 401, JSON.stringify(res.body));
        assert.match(res.body.message, /'alg'/);
      } finally {
        await verifier.close();
      }
    });
  });
});

// DPoP (RFC 9449): Tessera binds a token to the key of the proof sent to /oauth/token
// (`cnf.jkt`, `token_type: DPoP`); express-oauth2-jwt-bearer's DPoP mode (on by default in
// 1.10) accepts it with a proof for each request, made here by `jose`, and refuses a proof
// that does not match. (It keeps no jti cache: replays are the guard's and the proxy's test.)
describe('express-oauth2-jwt-bearer 1.10.0 DPoP mode with Tessera DPoP-bound tokens', () => {
  let fx;
  let api;
  let strict;
  let key;
  let thief;

  async function newKey() {
    const { publicKey, privateKey } = await jose.generateKeyPair('ES256');
    return { privateKey, jwk: await jose.exportJWK(publicKey) };
  }

  function proof({ privateKey, jwk }, htm, htu, accessToken) {
    const claims = { jti: randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000) };
    if (accessToken) claims.ath = createHash('sha256').update(accessToken).digest('base64url');
    return new jose.SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).sign(privateKey);
  }

  async function boundToken(proofKey) {
    const response = await fetch(`${fx.baseUrl}/oauth/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        dpop: await proof(proofKey, 'POST', `${fx.issuer}oauth/token`),
      },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: fx.reader.clientId,
        client_secret: fx.reader.clientSecret,
        audience: AUDIENCE,
      }),
      signal: AbortSignal.timeout(10000),
    });
    const body = await response.json();
    assert.equal(response.status, 200, JSON.stringify(body));
    return body;
  }

  async function call(url, { scheme = 'DPoP', token, dpop }) {
    const headers = { authorization: `${scheme} ${token}` };
    if (dpop !== undefined) headers.dpop = dpop;
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(10000) });
    return { status: response.status, wwwAuthenticate: response.headers.get('www-authenticate'), body: await response.json().catch(() => null) };
  }

  before(async () => {
    fx = await interopFixture();
    api = await listen(bearerApi({ issuerBaseURL: fx.baseUrl, audience: AUDIENCE }));
    strict = await listen(bearerApi({ issuerBaseURL: fx.baseUrl, audience: AUDIENCE, dpop: { required: true } }));
    key = await newKey();
    thief = await newKey();
  });
  after(async () => {
    await api?.close();
    await strict?.close();
    await fx?.close();
  });

  it('issues a DPoP token bound to the proof key (token_type DPoP, cnf.jkt its thumbprint)', async () => {
    const issued = await boundToken(key);
    assert.equal(issued.token_type, 'DPoP');
    const claims = jose.decodeJwt(issued.access_token);
    assert.equal(claims.cnf?.jkt, await jose.calculateJwkThumbprint(key.jwk, 'sha256'));
  });

  it('accepts the bound token with a proof for the request, in both modes', async () => {
    const { access_token: token } = await boundToken(key);
    for (const base of [api.url, strict.url]) {
      const url = `${base}/api/private-scoped`;
      const res = await call(url, { token, dpop: await proof(key, 'GET', url, token) });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.claims.cnf.jkt, await jose.calculateJwkThumbprint(key.jwk, 'sha256'));
    }
  });

  it('refuses mismatched proofs and the bound token as Bearer', async () => {
    const { access_token: token } = await boundToken(key);
    // Another token (tokens issued in the same second to the same client are identical).
    const other = fx.tokens.writeOnly;
    const url = `${api.url}/api/private`;
    const cases = {
      'no proof': { token },
      'proof by another key': { token, dpop: await proof(thief, 'GET', url, token) },
      'proof for POST': { token, dpop: await proof(key, 'POST', url, token) },
      'proof for another URL': { token, dpop: await proof(key, 'GET', `${api.url}/api/public`, token) },
      'proof for another access token (ath)': { token, dpop: await proof(key, 'GET', url, other) },
      'the bound token as Bearer': { scheme: 'Bearer', token },
    };
    for (const [name, request] of Object.entries(cases)) {
      const res = await call(url, request);
      assert.ok(res.status === 401 || res.status === 400, `${name}: ${res.status} ${JSON.stringify(res.body)}`);
    }
  });

  it('a DPoP-required API refuses a plain Bearer token of Tessera', async () => {
    const res = await call(`${strict.url}/api/private`, { scheme: 'Bearer', token: fx.tokens.read });
    // 1.10 answers the wrong scheme with 400 invalid_request and a DPoP challenge.
    assert.ok(res.status === 400 || res.status === 401, `${res.status} ${JSON.stringify(res.body)}`);
    assert.match(res.wwwAuthenticate ?? '', /DPoP/);
  });
});
