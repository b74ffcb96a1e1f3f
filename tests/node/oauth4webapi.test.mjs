// oauth4webapi's resource-server check, validateJwtAccessToken (RFC 9068, "JWT Profile for OAuth
// 2.0 Access Tokens"): header typ at+jwt; claims iss, exp, aud, sub, iat, jti, client_id present
// (jti, client_id, sub strings); iss = the discovered issuer; aud contains the expected audience;
// signature by a key of the AS's jwks_uri. An API whose token dialect is rfc9068_profile must
// pass; an API in the default Auth0 dialect (typ JWT, no jti / client_id) must not.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import * as oauth from 'oauth4webapi';
import { decodeJwt, decodeProtectedHeader } from 'jose';

import { cli, startServer, tempDir, clientCredentialsToken } from './lib/tessera.mjs';

const RFC9068_API = 'https://rfc9068/api';
const DEFAULT_API = 'https://default-dialect/api';
const insecure = { [oauth.allowInsecureRequests]: true };

describe('oauth4webapi validateJwtAccessToken (RFC 9068)', () => {
  let tmp;
  let server;
  let as; // discovered authorization server metadata
  let worker; // m2m app granted on both APIs

  const bearer = (token, scheme = 'Bearer') =>
    new Request('http://127.0.0.1/resource', { headers: { authorization: `${scheme} ${token}` } });
  const validate = (token, audience, options = {}) =>
    oauth.validateJwtAccessToken(as, bearer(token), audience, { ...insecure, ...options });
  const token = async (audience) => (await clientCredentialsToken(server.baseUrl, { ...worker, audience })).access_token;

  before(async () => {
    tmp = await tempDir();
    const databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
    await cli(databaseUrl, ['apis', 'create', '--name', 'RFC 9068 API', '--identifier', RFC9068_API,
      '--scopes', 'read,write', '--token-dialect', 'rfc9068_profile']);
    await cli(databaseUrl, ['apis', 'create', '--name', 'Default API', '--identifier', DEFAULT_API,
      '--scopes', 'read,write']);
    const app = await cli(databaseUrl, ['apps', 'create', '--name', 'Worker', '--type', 'm2m']);
    worker = { clientId: app.client_id, clientSecret: app.client_secret };
    for (const api of [RFC9068_API, DEFAULT_API]) {
      await cli(databaseUrl, ['grants', 'create', '--app', worker.clientId, '--api', api, '--scopes', 'read']);
    }
    server = await startServer({ databaseUrl });
    const issuer = new URL(server.issuer);
    const response = await oauth.discoveryRequest(issuer, { ...insecure, signal: AbortSignal.timeout(10000) });
    as = await oauth.processDiscoveryResponse(issuer, response);
  }, { timeout: 120000 });

  after(async () => {
    await server?.stop();
    await tmp?.remove();
  });

  it('accepts an access token of an rfc9068_profile API (typ at+jwt, iss, sub, aud, exp, iat, client_id, jti, scope)', async () => {
    const access = await token(RFC9068_API);
    assert.equal(decodeProtectedHeader(access).typ, 'at+jwt');
    const claims = await validate(access, RFC9068_API);
    assert.equal(claims.iss, server.issuer);
    assert.deepEqual([claims.aud].flat(), [RFC9068_API]);
    assert.equal(claims.client_id, worker.clientId);
    assert.equal(claims.sub, `${worker.clientId}@clients`);
    assert.equal(typeof claims.jti, 'string');
    assert.ok(claims.jti.length >= 16, `jti ${claims.jti}`);
    assert.equal(claims.scope, 'read');
    assert.ok(claims.exp > claims.iat);
    // Two tokens, two jti.
    const second = await validate(await token(RFC9068_API), RFC9068_API);
    assert.notEqual(second.jti, claims.jti);
  });

  it('accepts it with the DPoP-less "Bearer" scheme in any case, and refuses it for another audience', async () => {
    const access = await token(RFC9068_API);
    await oauth.validateJwtAccessToken(as, bearer(access, 'bearer'), RFC9068_API, insecure);
    await assert.rejects(validate(access, DEFAULT_API),
      (error) => error instanceof oauth.OperationProcessingError && error.code === oauth.JWT_CLAIM_COMPARISON
        && /"aud"/.test(error.message));
  });

  it('refuses a tampered rfc9068_profile token (signature checked against the jwks_uri)', async () => {
    const access = await token(RFC9068_API);
    const [header, , signature] = access.split('.');
    const claims = decodeJwt(access);
    const forged = Buffer.from(JSON.stringify({ ...claims, scope: 'read write' })).toString('base64url');
    await assert.rejects(validate(`${header}.${forged}.${signature}`, RFC9068_API),
      (error) => error instanceof oauth.OperationProcessingError && /signature/i.test(error.message));
    // The untouched token still validates: the refusal is about the forgery.
    await validate(access, RFC9068_API);
  });

  it('refuses an access token of a default-dialect API: typ JWT instead of at+jwt (and it has no jti / client_id)', async () => {
    const access = await token(DEFAULT_API);
    assert.equal(decodeProtectedHeader(access).typ, 'JWT');
    const claims = decodeJwt(access);
    assert.equal(claims.jti, undefined);
    assert.equal(claims.client_id, undefined);
    await assert.rejects(validate(access, DEFAULT_API),
      (error) => error instanceof oauth.OperationProcessingError && /"typ"/.test(error.message));
  });
});
