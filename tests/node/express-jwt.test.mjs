// Auth0's older Express stack: express-jwt + jwks-rsa (+ express-jwt-authz for scopes),
// configured as the samples do (jwksUri, audience, issuer, algorithms ["RS256"]), protecting the
// quickstart API with tokens from a real Tessera.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

import { interopFixture } from './lib/fixture.mjs';
import { expressJwtApi, MESSAGES } from './lib/apis.mjs';
import { listen, get } from './lib/http.mjs';
import { AUDIENCE, ES256_AUDIENCE } from './lib/tessera.mjs';

const require = createRequire(import.meta.url);
const AUTHZ_VERSION = require('express-jwt-authz/package.json').version;

describe('express-jwt 8.5.1 + jwks-rsa 4.1.0 + express-jwt-authz with Tessera tokens', () => {
  let fx;
  let api;
  before(async () => {
    fx = await interopFixture();
    api = await listen(expressJwtApi({ jwksUri: fx.discovery.jwks_uri, issuer: fx.issuer, audience: AUDIENCE }));
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
    assert.equal(priv.body.claims.aud, AUDIENCE);
    const scoped = await get(`${api.url}/api/private-scoped`, { token: fx.tokens.read });
    assert.equal(scoped.status, 200, JSON.stringify(scoped.body));
    assert.equal(scoped.body.message, MESSAGES.scoped);
  });

  it('answers 401 credentials_required when no token is sent', async () => {
    for (const path of ['/api/private', '/api/private-scoped']) {
      const res = await get(`${api.url}${path}`);
      assert.equal(res.status, 401, path);
      assert.equal(res.body.code, 'credentials_required', path);
    }
  });

  describe('refuses bad tokens with 401 invalid_token', () => {
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
        }
      });
    }
  });

  it('refuses a token for another API (wrong audience) with 401 "jwt audience invalid"', async () => {
    const res = await get(`${api.url}/api/private`, { token: fx.tokens.otherAudience });
    assert.equal(res.status, 401, JSON.stringify(res.body));
    assert.equal(res.body.code, 'invalid_token');
    assert.match(res.body.message, /jwt audience invalid/);
  });

  it(`answers ${AUTHZ_VERSION.startsWith('1.') ? 401 : 403} "Insufficient scope" (express-jwt-authz ${AUTHZ_VERSION}) for a token without read:messages (200 on /api/private)`, async () => {
    // express-jwt-authz 1.x answers a missing scope with 401, 2.x with 403.
    const expected = AUTHZ_VERSION.startsWith('1.') ? 401 : 403;
    assert.equal(fx.tokens.writeOnlyResponse.scope, 'write:messages');
    const priv = await get(`${api.url}/api/private`, { token: fx.tokens.writeOnly });
    assert.equal(priv.status, 200, JSON.stringify(priv.body));
    const scoped = await get(`${api.url}/api/private-scoped`, { token: fx.tokens.writeOnly });
    assert.equal(scoped.status, expected, JSON.stringify(scoped.body));
    assert.equal(scoped.body, 'Insufficient scope');
    assert.equal(scoped.wwwAuthenticate, 'Bearer scope="read:messages", error="Insufficient scope"');
  });

  it('refuses an ES256 token with algorithms ["RS256"] (401 invalid algorithm)', async () => {
    const verifier = await listen(expressJwtApi({ jwksUri: fx.discovery.jwks_uri, issuer: fx.issuer, audience: ES256_AUDIENCE }));
    try {
      const res = await get(`${verifier.url}/api/private`, { token: fx.tokens.es256 });
      assert.equal(res.status, 401, JSON.stringify(res.body));
      assert.equal(res.body.code, 'invalid_token');
      assert.equal(res.body.message, 'invalid algorithm');
    } finally {
      await verifier.close();
    }
  });

  it('accepts an ES256 token with algorithms ["ES256"] (jwks-rsa reads our EC keys)', async () => {
    const verifier = await listen(expressJwtApi({
      jwksUri: fx.discovery.jwks_uri, issuer: fx.issuer, audience: ES256_AUDIENCE, algorithms: ['ES256'],
    }));
    try {
      const res = await get(`${verifier.url}/api/private-scoped`, { token: fx.tokens.es256 });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.claims.aud, ES256_AUDIENCE);
    } finally {
      await verifier.close();
    }
  });
});
