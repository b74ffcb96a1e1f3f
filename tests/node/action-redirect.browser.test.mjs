// A redirect action in a real (headless Debian) Chromium: a post-login action sends the user
// from the hosted login to a terms page on another site (`api.redirect.sendUserTo`, with a
// session token from `api.redirect.encodeToken`); the page's "Accept" sends the browser back to
// Tessera's /continue with the site's own signed answer, which the action's
// `onContinuePostLogin` checks (`api.redirect.validateToken`) before the code reaches the
// application. The login form's CSP (`form-action`) holds every redirect after its POST, so
// only a browser shows the way out to a third origin works; the site signs and checks its
// tokens with jose, not with anything of Tessera's.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';

import { SignJWT, jwtVerify, decodeJwt } from 'jose';

import { cli, startServer, tempDir, freePort, AUDIENCE } from './lib/tessera.mjs';
import { launchChromium, withPage } from './lib/browser.mjs';

const EMAIL = 'dana@example.com';
const PASSWORD = `terms-${randomBytes(9).toString('base64url')}`;
const SECRET = randomBytes(32).toString('base64url');

const ACTION = `
exports.onExecutePostLogin = async (event, api) => {
  if (event.user.app_metadata.terms_accepted) return;
  const token = api.redirect.encodeToken({ secret: event.secrets.TERMS_SECRET, payload: { email: event.user.email } });
  api.redirect.sendUserTo(event.secrets.TERMS_URL, { query: { session_token: token } });
};
exports.onContinuePostLogin = async (event, api) => {
  const answer = api.redirect.validateToken({ secret: event.secrets.TERMS_SECRET });
  api.user.setAppMetadata('terms_accepted', answer.accepted === true);
  api.idToken.setCustomClaim('https://example.com/terms', answer.accepted === true);
};
`;

/** Reads a request's body as text. */
function bodyOf(req) {
  return new Promise((resolve) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => resolve(body));
  });
}

async function listen(server) {
  const port = await freePort();
  await new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return port;
}

function close(server) {
  return new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); });
}

describe('a redirect action in Chromium (terms page on another site, tessera serve)', () => {
  let tmp;
  let server;
  let browser;
  let site; // the terms site: {url, server, seen: [session token claims]}
  let callback; // the application's callback: {origin, url, server}
  let clientId;
  const key = new TextEncoder().encode(SECRET);

  before(async () => {
    tmp = await tempDir();
    const databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
    const callbackServer = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>callback</title><p id="callback">callback reached</p>');
    });
    const callbackPort = await listen(callbackServer);
    callback = { origin: `http://localhost:${callbackPort}`, url: `http://localhost:${callbackPort}/callback`, server: callbackServer };

    // The terms site: shows who arrives (from Tessera's session token), and on "Accept" sends
    // the browser back to /continue with its own signed answer.
    const seen = [];
    const siteServer = http.createServer(async (req, res) => {
      const url = new URL(req.url, 'http://localhost');
      try {
        if (req.method === 'GET' && url.pathname === '/terms') {
          const { payload } = await jwtVerify(url.searchParams.get('session_token'), key, { algorithms: ['HS256'] });
          assert.equal(payload.state, url.searchParams.get('state'), 'the token names the state the site was given');
          seen.push(payload);
          res.writeHead(200, { 'content-type': 'text/html' });
          res.end(`<!doctype html><title>Terms</title><p id="who">${payload.email}</p>
            <form method="post" action="/accept"><input type="hidden" name="state" value="${url.searchParams.get('state')}">
            <input type="hidden" name="sub" value="${payload.sub}"><button id="accept">Accept</button></form>`);
          return;
        }
        if (req.method === 'POST' && url.pathname === '/accept') {
          const form = new URLSearchParams(await bodyOf(req));
          const answer = await new SignJWT({ state: form.get('state'), accepted: true })
            .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
            .setIssuer('terms.localhost').setSubject(form.get('sub'))
            .setIssuedAt().setExpirationTime('2m')
            .sign(key);
          const back = new URL('/continue', server.baseUrl);
          // GET: over plain HTTP a cross-site POST would carry no SameSite=Lax cookie.
          back.search = new URLSearchParams({ state: form.get('state'), session_token: answer });
          res.writeHead(302, { location: back.href });
          res.end();
          return;
        }
        res.writeHead(404).end();
      } catch (error) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(String(error));
      }
    });
    const sitePort = await listen(siteServer);
    site = { url: `http://localhost:${sitePort}/terms`, origin: `http://localhost:${sitePort}`, server: siteServer, seen };

    await cli(databaseUrl, ['apis', 'create', '--name', 'Quickstart API', '--identifier', AUDIENCE,
      '--scopes', 'read:messages', '--allow-offline-access']);
    const app = await cli(databaseUrl, ['apps', 'create', '--name', 'Terms App', '--type', 'spa',
      '--callbacks', callback.url, '--origins', callback.origin, '--logout-urls', callback.origin]);
    clientId = app.client_id;
    await cli(databaseUrl, ['users', 'create', '--email', EMAIL, '--password-stdin'], { input: `${PASSWORD}\n` });
    const code = path.join(tmp.dir, 'terms.js');
    await writeFile(code, ACTION);
    await cli(databaseUrl, ['actions', 'create', 'terms', '--trigger', 'post-login', '--code', code,
      '--secret', `TERMS_SECRET=${SECRET}`, '--secret', `TERMS_URL=${site.url}`]);
    await cli(databaseUrl, ['actions', 'deploy', 'terms']);
    await cli(databaseUrl, ['actions', 'bind', 'post-login', 'terms']);
    server = await startServer({ databaseUrl });
    browser = await launchChromium();
  }, { timeout: 120000 });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.stop();
    if (site) await close(site.server);
    if (callback) await close(callback.server);
    await tmp?.remove();
  });

  function pkce() {
    const verifier = randomBytes(48).toString('base64url');
    return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
  }

  function authorizeUrl(challenge, extra = {}) {
    const url = new URL(`${server.baseUrl}/authorize`);
    url.search = new URLSearchParams({
      response_type: 'code', client_id: clientId, redirect_uri: callback.url, audience: AUDIENCE,
      scope: 'openid read:messages', state: 'app-state', code_challenge: challenge, code_challenge_method: 'S256',
      ...extra,
    });
    return url.href;
  }

  async function redeem(code, verifier) {
    const response = await fetch(`${server.baseUrl}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', client_id: clientId, code, redirect_uri: callback.url, code_verifier: verifier }),
      signal: AbortSignal.timeout(10000),
    });
    const tokens = await response.json();
    assert.equal(response.status, 200, JSON.stringify(tokens));
    return tokens;
  }

  it('signs in, accepts the terms on the other site, comes back to the application with the claim; the next sign-in skips the page', { timeout: 90000 }, () => withPage(browser, 'action-redirect', async ({ page }) => {
    const { verifier, challenge } = pkce();
    await page.goto(authorizeUrl(challenge));
    await page.waitForURL((url) => url.pathname === '/u/login');
    await page.fill('#username', EMAIL);
    await page.fill('#password', PASSWORD);
    await page.click('button[type=submit]');

    // Out of the login form's chain to the third origin, where the site read the token.
    await page.waitForURL((url) => url.origin === site.origin, { timeout: 15000 });
    assert.equal(await page.textContent('#who'), EMAIL);
    assert.equal(site.seen.length, 1);
    assert.equal(new URL(page.url()).searchParams.getAll('state').length, 1);

    await page.click('#accept');
    await page.waitForURL((url) => url.origin === callback.origin, { timeout: 15000 });
    const landed = new URL(page.url());
    assert.equal(landed.searchParams.get('state'), 'app-state');
    const tokens = await redeem(landed.searchParams.get('code'), verifier);
    assert.equal(decodeJwt(tokens.id_token)['https://example.com/terms'], true);

    // Accepted once: a new sign-in goes straight back to the application.
    const again = pkce();
    await page.goto(authorizeUrl(again.challenge, { prompt: 'login' }));
    await page.waitForURL((url) => url.pathname === '/u/login');
    await page.fill('#username', EMAIL);
    await page.fill('#password', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL((url) => url.origin === callback.origin, { timeout: 15000 });
    assert.ok(new URL(page.url()).searchParams.get('code'));
    assert.equal(site.seen.length, 1, 'the terms page was not shown again');
  }));
});
