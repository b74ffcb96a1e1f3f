// private_key_jwt with openid-client (panva; its PrivateKeyJwt client authentication signs
// the assertion itself, `aud` the issuer): the key is made here with WebCrypto, its public
// half registered with `tessera apps credentials add`, and the library then gets tokens
// with client credentials and pushes an authorization request (PAR), never sending a
// secret. The same assertion replayed by hand is refused, and so is the old secret.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import * as client from 'openid-client';
import { createRemoteJWKSet, jwtVerify, exportSPKI } from 'jose';

import { cli, startServer, tempDir } from './lib/tessera.mjs';

const API = 'https://private-key-jwt/api';
const CALLBACK = 'https://rp.example.com/callback';

describe('openid-client with private_key_jwt', () => {
  let tmp;
  let server;
  let machine;
  let web;
  let keys;

  const discover = (clientId) =>
    client.discovery(new URL(server.issuer), clientId, undefined, client.PrivateKeyJwt(keys.privateKey), {
      execute: [client.allowInsecureRequests],
      timeout: 10,
    });

  before(async () => {
    tmp = await tempDir();
    const databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
    await cli(databaseUrl, ['apis', 'create', '--name', 'PKJWT API', '--identifier', API, '--scopes', 'read:messages']);
    machine = await cli(databaseUrl, ['apps', 'create', '--name', 'Signed worker', '--type', 'm2m']);
    await cli(databaseUrl, ['grants', 'create', '--app', machine.client_id, '--api', API, '--scopes', 'read:messages']);
    web = await cli(databaseUrl, ['apps', 'create', '--name', 'Signed web app', '--type', 'regular', '--callbacks', CALLBACK]);
    keys = await crypto.subtle.generateKey(
      { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
      false,
      ['sign', 'verify'],
    );
    const pem = path.join(tmp.dir, 'public.pem');
    await writeFile(pem, await exportSPKI(keys.publicKey));
    for (const app of [machine, web]) {
      const added = await cli(databaseUrl, ['apps', 'credentials', 'add', app.client_id, '--pem', pem, '--name', 'node key']);
      assert.match(added.id, /^cred_/);
      assert.equal(added.alg, 'RS256');
    }
    server = await startServer({ databaseUrl });
  }, { timeout: 120000 });

  after(async () => {
    await server?.stop();
    await tmp?.remove();
  });

  it('discovery offers private_key_jwt with RS256', async () => {
    const config = await discover(machine.client_id);
    const metadata = config.serverMetadata();
    assert.ok(metadata.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
    assert.ok(metadata.token_endpoint_auth_signing_alg_values_supported.includes('RS256'));
  });

  it('gets a machine token with a signed assertion, and each assertion works once', async () => {
    const config = await discover(machine.client_id);
    const tokens = await client.clientCredentialsGrant(config, { audience: API });
    const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
    const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: server.issuer, audience: API });
    assert.equal(payload.sub, `${machine.client_id}@clients`);
    assert.equal(payload.scope, 'read:messages');
    // A second grant signs a new assertion (a new jti): it works too.
    const again = await client.clientCredentialsGrant(config, { audience: API });
    assert.ok(again.access_token);

    // The library's assertion, captured and sent a second time: refused.
    let captured;
    const capturing = await client.discovery(new URL(server.issuer), machine.client_id, undefined,
      client.PrivateKeyJwt(keys.privateKey), {
        execute: [client.allowInsecureRequests],
        [client.customFetch]: (url, options) => {
          if (String(url).endsWith('/oauth/token')) captured = options.body.toString();
          return fetch(url, options);
        },
      });
    await client.clientCredentialsGrant(capturing, { audience: API });
    assert.ok(captured?.includes('client_assertion='), 'the library sent an assertion');
    assert.ok(!captured.includes('client_secret'), 'and no secret');
    const replay = await fetch(`${server.baseUrl}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: captured,
    });
    assert.equal(replay.status, 401);
    assert.equal((await replay.json()).error, 'invalid_client');
  });

  it('refuses the client secret of an application configured for private_key_jwt', async () => {
    const config = await client.discovery(new URL(server.issuer), machine.client_id, machine.client_secret,
      client.ClientSecretPost(machine.client_secret), { execute: [client.allowInsecureRequests] });
    await assert.rejects(client.clientCredentialsGrant(config, { audience: API }), (error) => {
      assert.equal(error.error, 'invalid_client');
      return true;
    });
  });

  it('pushes an authorization request authenticated by an assertion', async () => {
    const config = await discover(web.client_id);
    const url = await client.buildAuthorizationUrlWithPAR(config, {
      redirect_uri: CALLBACK,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    assert.equal(url.searchParams.get('client_id'), web.client_id);
    assert.match(url.searchParams.get('request_uri'), /^urn:ietf:params:oauth:request_uri:/);
    // The browser's first stop: the hosted login page.
    const response = await fetch(url, { redirect: 'manual' });
    assert.equal(response.status, 302);
    assert.match(response.headers.get('location'), /\/login/);
  });
});
