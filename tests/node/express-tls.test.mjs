// An Express API on Auth0's express-oauth2-jwt-bearer against `tessera dev --tls`, trusting the
// dev CA the way `tessera dev` tells Node users to: NODE_EXTRA_CA_CERTS=<data-dir>/tls/ca.pem.
// The API runs in its own process (Node reads that variable at start-up only); without it, the
// same API cannot fetch https://localhost:P/'s discovery document.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startDev } from './lib/dev.mjs';
import { MESSAGES } from './lib/apis.mjs';
import { get } from './lib/http.mjs';
import { AUDIENCE, cli, spawnTracked, waitFor } from './lib/tessera.mjs';
import { httpsRequest } from './lib/tls.mjs';

const API_PROCESS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'bearer-api-process.mjs');

/** Starts lib/bearer-api-process.mjs with `env`; returns {url, output, stop()}. */
async function startApi(env) {
  const proc = spawnTracked(process.execPath, [API_PROCESS], { env });
  try {
    const url = await waitFor('the API to listen', () => /listening (\S+)/.exec(proc.output.stdout)?.[1], { timeoutMs: 20000, intervalMs: 50 });
    return { url, output: proc.output, stop: proc.stop };
  } catch (error) {
    await proc.stop();
    throw new Error(`${error.message}\n${proc.output.stderr}`);
  }
}

describe('express-oauth2-jwt-bearer against tessera dev --tls with NODE_EXTRA_CA_CERTS', () => {
  let dev;
  let token;
  const apis = [];
  before(async () => {
    dev = await startDev({ tls: true });
    // A machine-to-machine client for the quickstart API, made with the CLI on tessera dev's
    // database (the running server sees it within a second).
    const databaseUrl = `sqlite://${path.join(dev.dataDir, 'tessera.db')}`;
    const app = await cli(databaseUrl, ['apps', 'create', '--name', 'express test', '--type', 'm2m']);
    await cli(databaseUrl, ['grants', 'create', '--app', app.client_id, '--api', AUDIENCE, '--scopes', 'read:messages']);
    token = await waitFor('a client-credentials token over https', async () => {
      const response = await httpsRequest(`${dev.server}/oauth/token`, {
        caFile: dev.caFile,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret, audience: AUDIENCE,
        }).toString(),
      });
      return response.status === 200 && response.body.access_token;
    }, { timeoutMs: 10000, intervalMs: 200 });
  });
  after(async () => {
    for (const api of apis) await api.stop();
    await dev?.stop();
  });

  it('trusting the dev CA, the API discovers https://localhost:P/ and answers 200 on private and private-scoped', async () => {
    const api = await startApi({ ISSUER_BASE_URL: dev.server, AUDIENCE, NODE_EXTRA_CA_CERTS: dev.caFile });
    apis.push(api);
    const priv = await get(`${api.url}/api/private`, { token });
    assert.equal(priv.status, 200, JSON.stringify(priv.body));
    assert.equal(priv.body.message, MESSAGES.private);
    assert.equal(priv.body.claims.iss, `${dev.server}/`);
    const scoped = await get(`${api.url}/api/private-scoped`, { token });
    assert.equal(scoped.status, 200, JSON.stringify(scoped.body));
    assert.equal(scoped.body.message, MESSAGES.scoped);
    const none = await get(`${api.url}/api/private`);
    assert.equal(none.status, 401);
  });

  it('without NODE_EXTRA_CA_CERTS the same API cannot reach the issuer, and accepts nothing', async () => {
    const api = await startApi({ ISSUER_BASE_URL: dev.server, AUDIENCE, NODE_EXTRA_CA_CERTS: '' });
    apis.push(api);
    const priv = await get(`${api.url}/api/private`, { token });
    // The only difference to the test above is the variable: the TLS handshake fails.
    assert.equal(priv.status, 401, JSON.stringify(priv.body));
    assert.equal(priv.body.message, 'Failed to fetch authorization server metadata');
  });
});
