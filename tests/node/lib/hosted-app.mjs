// The setup the hosted-page browser tests share: a real `tessera serve` on http://localhost
// (WebAuthn needs a host name as its relying party id, never an IP address), a SPA whose
// redirect_uri is a small local page, one user, and a Management API caller; plus the code
// flow with PKCE as that application runs it in Chromium.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';

import { decodeJwt } from 'jose';

import { cli, tempDir, freePort, spawnTracked, tesseraBin, waitFor, clientCredentialsToken } from './tessera.mjs';

/** The application's redirect_uri: a page on localhost the browser lands on. */
export async function startCallback() {
  const port = await freePort();
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>callback</title><p id="callback">callback reached</p>');
  });
  await new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    origin: `http://localhost:${port}`,
    url: `http://localhost:${port}/callback`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

/**
 * Starts the tenant: a SPA named `appName`, the user `email`/`password`, and an automation
 * client granted the Management API `scopes`. Returns {server, callback, clientId, userId,
 * databaseUrl, management(method, path, body) → {status, body}, stop()}.
 */
export async function startHostedApp({ appName, email, password, scopes }) {
  const tmp = await tempDir();
  const databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
  const callback = await startCallback();
  const app = await cli(databaseUrl, ['apps', 'create', '--name', appName, '--type', 'spa',
    '--callbacks', callback.url, '--origins', callback.origin]);
  const user = await cli(databaseUrl, ['users', 'create', '--email', email, '--password-stdin'], { input: `${password}\n` });
  const m2m = await cli(databaseUrl, ['apps', 'create', '--name', 'Automation', '--type', 'm2m']);

  const port = await freePort();
  const issuer = `http://localhost:${port}/`;
  const proc = spawnTracked(tesseraBin(), ['serve', '--listen', `127.0.0.1:${port}`, '--issuer', issuer,
    '--database-url', databaseUrl], { env: { RUST_LOG: 'warn' } });
  const server = { baseUrl: `http://localhost:${port}`, issuer };
  const stop = async () => {
    await proc.stop();
    await callback.close();
    await tmp.remove();
  };
  try {
    await waitFor('tessera serve to listen', () => /tessera listening on/.test(proc.output.stderr), { timeoutMs: 30000 });
    // The Management API is registered at the first start; the grant comes after it.
    await cli(databaseUrl, ['grants', 'create', '--app', m2m.client_id, '--api', `${issuer}api/v2/`, '--scopes', scopes]);
  } catch (error) {
    await stop();
    throw error;
  }
  async function management(method, pathname, body) {
    const { access_token: token } = await clientCredentialsToken(server.baseUrl, {
      clientId: m2m.client_id, clientSecret: m2m.client_secret, audience: `${issuer}api/v2/`,
    });
    const response = await fetch(`${server.baseUrl}/api/v2${pathname}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10000),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }
  return { server, callback, clientId: app.client_id, userId: user.user_id, databaseUrl, management, stop };
}

/** Opens /authorize in `page` as the SPA does (code flow, PKCE): the verifier. */
export async function authorizeWithPkce(page, { server, clientId, callback }) {
  const verifier = randomBytes(48).toString('base64url');
  const authorize = new URL(`${server.baseUrl}/authorize`);
  authorize.search = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: callback.url, scope: 'openid',
    state: 's', code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
  });
  await page.goto(authorize.href);
  return verifier;
}

/** Waits for the callback and redeems its code with `verifier`: the ID token's claims. */
export async function claimsAtCallback(page, { server, clientId, callback }, verifier) {
  await page.waitForURL((url) => url.origin === callback.origin);
  const code = new URL(page.url()).searchParams.get('code');
  assert.ok(code, `a code at ${page.url()}`);
  const response = await fetch(`${server.baseUrl}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', client_id: clientId, code, redirect_uri: callback.url, code_verifier: verifier }),
    signal: AbortSignal.timeout(10000),
  });
  const tokens = await response.json();
  assert.equal(response.status, 200, JSON.stringify(tokens));
  return decodeJwt(tokens.id_token);
}

/** A standard base64 text (as DevTools reports credential ids) in base64url. */
export const base64url = (standard) => standard.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
