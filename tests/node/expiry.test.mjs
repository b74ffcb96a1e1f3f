// Expired tokens. The server cannot be asked for an expired token, but an API can be given a
// 3-second token lifetime (`apis create --token-lifetime 3`): its fresh tokens are accepted by
// each verifier, and the same tokens are refused once `exp` (+ each verifier's leeway:
// express-oauth2-jwt-bearer 5 s, express-jwt and jose 0 s) has passed.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { jwtVerify, createRemoteJWKSet, decodeJwt, errors } from 'jose';

import { startInteropTessera, SHORT_AUDIENCE, SHORT_LIFETIME_SECONDS, delay } from './lib/tessera.mjs';
import { bearerApi, expressJwtApi } from './lib/apis.mjs';
import { listen, get, getJson } from './lib/http.mjs';

const BEARER_LEEWAY_SECONDS = 5; // express-oauth2-jwt-bearer's default clockTolerance

describe(`expired tokens (API with a ${SHORT_LIFETIME_SECONDS} s token lifetime)`, () => {
  let tessera;
  let bearer;
  let ejwt;
  let JWKS;
  let token;
  let exp;
  before(async () => {
    tessera = await startInteropTessera();
    const discovery = await getJson(`${tessera.baseUrl}/.well-known/openid-configuration`);
    JWKS = createRemoteJWKSet(new URL(discovery.jwks_uri), { timeoutDuration: 5000 });
    bearer = await listen(bearerApi({ issuerBaseURL: tessera.baseUrl, audience: SHORT_AUDIENCE }));
    ejwt = await listen(expressJwtApi({ jwksUri: discovery.jwks_uri, issuer: tessera.issuer, audience: SHORT_AUDIENCE }));
  });
  after(async () => {
    await bearer?.close();
    await ejwt?.close();
    await tessera?.close();
  });

  it('accepts a fresh short-lived token in all three verifiers', async () => {
    const response = await tessera.token(tessera.reader, SHORT_AUDIENCE);
    token = response.access_token;
    ({ exp } = decodeJwt(token));
    assert.equal(response.expires_in, SHORT_LIFETIME_SECONDS);
    assert.equal(exp - decodeJwt(token).iat, SHORT_LIFETIME_SECONDS);
    const b = await get(`${bearer.url}/api/private-scoped`, { token });
    assert.equal(b.status, 200, JSON.stringify(b.body));
    const e = await get(`${ejwt.url}/api/private-scoped`, { token });
    assert.equal(e.status, 200, JSON.stringify(e.body));
    const { payload } = await jwtVerify(token, JWKS, { issuer: tessera.issuer, audience: SHORT_AUDIENCE });
    assert.equal(payload.exp, exp);
  });

  it('refuses it once exp has passed: express-jwt 401 "jwt expired", jose ERR_JWT_EXPIRED', async () => {
    assert.ok(token, 'the previous test obtained a token');
    // Bounded wait: at most SHORT_LIFETIME_SECONDS + 1.5 s from issuance.
    const waitMs = (exp + 1) * 1000 - Date.now() + 500;
    assert.ok(waitMs < (SHORT_LIFETIME_SECONDS + 3) * 1000, `exp ${exp} is in the near future`);
    if (waitMs > 0) await delay(waitMs);
    const e = await get(`${ejwt.url}/api/private`, { token });
    assert.equal(e.status, 401, JSON.stringify(e.body));
    assert.equal(e.body.code, 'invalid_token');
    assert.equal(e.body.message, 'jwt expired');
    await assert.rejects(jwtVerify(token, JWKS, { issuer: tessera.issuer, audience: SHORT_AUDIENCE }),
      (error) => error instanceof errors.JWTExpired);
  });

  it('refuses it once exp + 5 s leeway has passed: express-oauth2-jwt-bearer 401 invalid_token on "exp"', async () => {
    assert.ok(token, 'the first test obtained a token');
    const waitMs = (exp + BEARER_LEEWAY_SECONDS + 1) * 1000 - Date.now() + 500;
    assert.ok(waitMs < (SHORT_LIFETIME_SECONDS + BEARER_LEEWAY_SECONDS + 3) * 1000);
    if (waitMs > 0) await delay(waitMs);
    const b = await get(`${bearer.url}/api/private`, { token });
    assert.equal(b.status, 401, JSON.stringify(b.body));
    assert.equal(b.body.code, 'invalid_token');
    assert.match(b.body.message, /"exp"/);
    assert.match(b.wwwAuthenticate ?? '', /^Bearer realm="api", error="invalid_token"/);
  });
});
