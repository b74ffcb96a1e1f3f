// A redirect action in a real (headless Debian) Chromium: a post-login action sends the user
// from the hosted login to a terms page on another origin (`api.redirect.sendUserTo`, with a
// session token from `api.redirect.encodeToken`); the page's "Accept" sends the browser back to
// Tessera's /continue with the site's own signed answer, which the action's
// `onContinuePostLogin` checks (`api.redirect.validateToken`) before the code reaches the
// application. The login form's CSP (`form-action`) holds every redirect after its POST, so
// only a browser shows the way out to another origin works; the site signs and checks its
// tokens with jose, not with anything of Tessera's.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';

import { SignJWT, jwtVerify } from 'jose';

import { cli, freePort } from './lib/tessera.mjs';
import { launchChromium, withPage } from './lib/browser.mjs';
import { startHostedApp, authorizeWithPkce, claimsAtCallback } from './lib/hosted-app.mjs';

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

describe('a redirect action in Chromium (terms page on another origin, tessera serve)', () => {
  let app; // startHostedApp: {server, callback, clientId, databaseUrl, stop()}
  let browser;
  let site; // the terms site: {url, origin, server, seen: [session token claims]}
  const key = new TextEncoder().encode(SECRET);

  before(async () => {
    app = await startHostedApp({ appName: 'Terms App', email: EMAIL, password: PASSWORD, scopes: 'read:users' });
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
          const back = new URL('/continue', app.server.baseUrl);
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

    const code = path.join(path.dirname(app.databaseUrl.slice('sqlite://'.length)), 'terms.js');
    await writeFile(code, ACTION);
    await cli(app.databaseUrl, ['actions', 'create', 'terms', '--trigger', 'post-login', '--code', code,
      '--secret', `TERMS_SECRET=${SECRET}`, '--secret', `TERMS_URL=${site.url}`]);
    await cli(app.databaseUrl, ['actions', 'deploy', 'terms']);
    await cli(app.databaseUrl, ['actions', 'bind', 'post-login', 'terms']);
    browser = await launchChromium();
  }, { timeout: 120000 });

  after(async () => {
    await browser?.close().catch(() => {});
    await app?.stop();
    if (site) await close(site.server);
  });

  it('signs in, accepts the terms on the other origin, comes back to the application with the claim; the next sign-in skips the page', { timeout: 90000 }, () => withPage(browser, 'action-redirect', async ({ page }) => {
    const verifier = await authorizeWithPkce(page, app);
    await page.waitForURL((url) => url.pathname === '/u/login');
    await page.fill('#username', EMAIL);
    await page.fill('#password', PASSWORD);
    await page.click('button[type=submit]');

    // Out of the login form's chain to the other origin, where the site read the token.
    await page.waitForURL((url) => url.origin === site.origin, { timeout: 15000 });
    assert.equal(await page.textContent('#who'), EMAIL);
    assert.equal(site.seen.length, 1);
    assert.equal(new URL(page.url()).searchParams.getAll('state').length, 1);

    await page.click('#accept');
    const claims = await claimsAtCallback(page, app, verifier);
    assert.equal(claims['https://example.com/terms'], true);

    // Accepted once: the next sign-in (the session's) goes straight back to the application.
    const again = await authorizeWithPkce(page, app);
    const next = await claimsAtCallback(page, app, again);
    assert.equal(next['https://example.com/terms'], undefined, 'the action asked nothing this time');
    assert.equal(site.seen.length, 1, 'the terms page was not shown again');
  }));
});
