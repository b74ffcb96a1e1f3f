// A plain JWT library, npm `jose`: createRemoteJWKSet(jwks_uri) + jwtVerify({issuer, audience}),
// on the same tokens — and the claims Auth0's access tokens carry.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { createHash, X509Certificate } from 'node:crypto';

import { createRemoteJWKSet, decodeProtectedHeader, importX509, jwtVerify, errors } from 'jose';

import { interopFixture } from './lib/fixture.mjs';
import { AUDIENCE, OTHER_AUDIENCE, ES256_AUDIENCE, EDDSA_AUDIENCE } from './lib/tessera.mjs';

describe('jose 6.2.18 jwtVerify with the remote JWKS', () => {
  let fx;
  let JWKS;
  before(async () => {
    fx = await interopFixture();
    JWKS = createRemoteJWKSet(new URL(fx.discovery.jwks_uri), { timeoutDuration: 5000 });
  });
  after(async () => {
    await fx?.close();
  });

  it('verifies an RS256 access token with issuer and audience, with Auth0\'s M2M claims', async () => {
    const { payload, protectedHeader } = await jwtVerify(fx.tokens.read, JWKS, {
      issuer: fx.issuer, audience: AUDIENCE, algorithms: ['RS256'],
    });
    assert.equal(fx.discovery.issuer, fx.issuer);
    assert.match(fx.issuer, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.equal(protectedHeader.alg, 'RS256');
    assert.equal(protectedHeader.typ, 'JWT');
    assert.ok(fx.jwks.keys.some((key) => key.kid === protectedHeader.kid), 'kid is in the JWKS');
    assert.equal(payload.iss, fx.issuer);
    assert.equal(payload.aud, AUDIENCE);
    assert.equal(payload.sub, `${fx.reader.clientId}@clients`);
    assert.equal(payload.azp, fx.reader.clientId);
    assert.equal(payload.gty, 'client-credentials');
    assert.equal(payload.scope, 'read:messages');
    assert.equal(payload.exp - payload.iat, 86400);
    assert.ok(Math.abs(payload.iat - Date.now() / 1000) < 120, `iat ${payload.iat} is now`);
    // The token response matches the token.
    assert.equal(fx.tokens.readResponse.token_type, 'Bearer');
    assert.equal(fx.tokens.readResponse.scope, 'read:messages');
    assert.equal(fx.tokens.readResponse.expires_in, 86400);
  });

  it('verifies ES256 and EdDSA access tokens of APIs that use them', async () => {
    for (const [token, audience, alg] of [
      [fx.tokens.es256, ES256_AUDIENCE, 'ES256'],
      [fx.tokens.eddsa, EDDSA_AUDIENCE, 'EdDSA'],
    ]) {
      const { payload, protectedHeader } = await jwtVerify(token, JWKS, { issuer: fx.issuer, audience });
      assert.equal(protectedHeader.alg, alg);
      assert.equal(payload.aud, audience);
      const jwk = fx.jwks.keys.find((key) => key.kid === protectedHeader.kid);
      assert.equal(jwk?.alg, alg, `the JWKS key ${protectedHeader.kid} is an ${alg} key`);
    }
  });

  it('publishes only public keys; each RS256 key with the self-signed certificate that holds it (x5c, x5t)', async () => {
    assert.ok(fx.jwks.keys.length >= 3);
    for (const key of fx.jwks.keys) {
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) {
        assert.equal(key[secret], undefined, `${key.kid} has no "${secret}"`);
      }
      assert.equal(key.use, 'sig');
      assert.ok(key.kid && key.alg);
      if (key.alg !== 'RS256') {
        assert.equal(key.x5c, undefined, `${key.alg} keys carry no certificate`);
        continue;
      }
      assert.equal(key.x5c.length, 1);
      const der = Buffer.from(key.x5c[0], 'base64');
      const certificate = new X509Certificate(der);
      assert.ok(certificate.verify(certificate.publicKey), 'self-signed');
      assert.equal(certificate.subject, certificate.issuer);
      const fromCertificate = certificate.publicKey.export({ format: 'jwk' });
      assert.equal(fromCertificate.n, key.n, 'the certificate holds the key');
      assert.equal(fromCertificate.e, key.e);
      assert.equal(key.x5t, createHash('sha1').update(der).digest('base64url'));
    }
    // A verifier that takes the key from the certificate (importX509) verifies our token.
    const signer = fx.jwks.keys.find((key) => key.kid === decodeProtectedHeader(fx.tokens.read).kid);
    const pem = `-----BEGIN CERTIFICATE-----\n${signer.x5c[0].match(/.{1,64}/g).join('\n')}\n-----END CERTIFICATE-----`;
    const { payload } = await jwtVerify(fx.tokens.read, await importX509(pem, 'RS256'), { issuer: fx.issuer, audience: AUDIENCE });
    assert.equal(payload.aud, AUDIENCE);
  });

  it('refuses a token for another audience (ERR_JWT_CLAIM_VALIDATION_FAILED on aud)', async () => {
    await assert.rejects(jwtVerify(fx.tokens.otherAudience, JWKS, { issuer: fx.issuer, audience: AUDIENCE }),
      (error) => error instanceof errors.JWTClaimValidationFailed && error.claim === 'aud');
    // …and accepts it for its own audience.
    const { payload } = await jwtVerify(fx.tokens.otherAudience, JWKS, { issuer: fx.issuer, audience: OTHER_AUDIENCE });
    assert.equal(payload.aud, OTHER_AUDIENCE);
  });

  it('refuses our token when told another issuer (ERR_JWT_CLAIM_VALIDATION_FAILED on iss)', async () => {
    await assert.rejects(jwtVerify(fx.tokens.read, JWKS, { issuer: fx.issuer.replace(/\/$/, ''), audience: AUDIENCE }),
      (error) => error instanceof errors.JWTClaimValidationFailed && error.claim === 'iss');
  });

  describe('refuses bad tokens', () => {
    // The error classes jose reports (a kid-less header matches our current and next RSA keys).
    const expected = {
      'garbage (not a JWT)': [errors.JWSInvalid],
      'garbage (three base64url segments)': [errors.JWKSMultipleMatchingKeys, errors.JWSSignatureVerificationFailed],
      'tampered payload (write-only token claiming read:messages)': [errors.JWSSignatureVerificationFailed],
      'foreign RSA key, same kid as ours': [errors.JWSSignatureVerificationFailed],
      'foreign RSA key, unknown kid': [errors.JWKSNoMatchingKey],
      'alg none, no signature': [errors.JOSENotSupported],
      'HS256 keyed with our RSA public key': [errors.JOSENotSupported],
      'signature of another of our tokens': [errors.JWSSignatureVerificationFailed],
    };
    it('covers every bad token of the fixture', () => {
      assert.deepEqual(Object.keys(fx.bad).sort(), Object.keys(expected).sort());
    });
    for (const [name, errorClasses] of Object.entries(expected)) {
      it(`refuses: ${name} (${errorClasses.map((c) => c.code).join(' or ')})`, async () => {
        await assert.rejects(jwtVerify(fx.bad[name], JWKS, { issuer: fx.issuer, audience: AUDIENCE }),
          (error) => errorClasses.some((errorClass) => error instanceof errorClass));
      });
    }
  });
});
