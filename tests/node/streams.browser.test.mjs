// The dashboard's Monitoring → Streams in a real (headless Debian) Chromium, on `tessera dev`,
// with an HTTP receiver the test starts on loopback: the administrator opens Streams from the
// navigation, creates a Custom Webhook stream to the receiver (an authorization and a custom
// header), a wrong password at the hosted login page becomes an `fp` event the receiver gets
// with that authorization and header, the administrator pauses the stream from its page and
// sees its status change there and in the list. The authorization typed appears in no page.
// Every page is audited (CSP, axe-core, screenshots).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { startDev, DEMO_EMAIL } from './lib/dev.mjs';
import { launchChromium, withPage } from './lib/browser.mjs';
import { watchCsp, audit } from './lib/page-audit.mjs';
import { waitFor } from './lib/tessera.mjs';

const WRONG_PASSWORD = 'Wrong-Stream-Password-7';
const AUTHORIZATION = 'Bearer browser-stream-secret-31';

/** A receiver on 127.0.0.1: keeps each request's headers and JSON-lines events, answers 200. */
async function startReceiver() {
  const requests = [];
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const events = body.split('\n').filter((line) => line.trim()).map((line) => JSON.parse(line));
      requests.push({ headers: request.headers, events });
      response.writeHead(200).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}/in`, requests, close: () => new Promise((r) => server.close(r)) };
}

describe('log streams in the dashboard in Chromium (tessera dev)', () => {
  let dev;
  let browser;
  let receiver;

  before(async () => {
    receiver = await startReceiver();
    dev = await startDev();
    browser = await launchChromium();
  }, { timeout: 120000 });

  after(async () => {
    await browser?.close().catch(() => {});
    await dev?.stop();
    await receiver?.close();
  });

  it('creates a stream to a receiver, which gets an event, then pauses it', { timeout: 240000 }, async () => {
    let streamPath;
    await withPage(browser, 'streams-create', async ({ page, context }) => {
      const csp = await watchCsp(context);
      await page.goto(`${dev.server}/admin/`);
      await page.waitForURL((url) => url.pathname === '/u/login');
      await page.fill('#username', DEMO_EMAIL);
      await page.fill('#password', dev.password);
      await page.click('button[type=submit]');
      await page.waitForURL((url) => url.pathname.startsWith('/admin/'));

      await Promise.all([page.waitForLoadState('load'), page.getByRole('link', { name: 'Streams', exact: true }).first().click()]);
      await page.waitForURL((url) => url.pathname === '/admin/log-streams');
      assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Streams');
      await audit(page, 'streams-empty');
      await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: '+ Create Stream' }).click()]);
      await audit(page, 'streams-new');
      await page.fill('#name', 'Browser SIEM');
      await page.fill('#endpoint', receiver.url);
      await page.fill('#authorization', AUTHORIZATION);
      await page.fill('#headers', 'X-Tenant: browser-test');
      await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Create', exact: true }).click()]);
      streamPath = new URL(page.url()).pathname;
      assert.match(streamPath, /^\/admin\/log-streams\/lst_[A-Za-z0-9]+$/);
      await page.getByText('The stream was created').first().waitFor();
      assert.equal(await page.locator('#stream-status').textContent(), 'active');
      assert.equal(await page.locator('#authorization').inputValue(), '', 'write-only');
      assert.ok(!(await page.content()).includes('browser-stream-secret'), 'the authorization is not in the page');
      await audit(page, 'streams-created');
      assert.deepEqual(csp.violations, [], 'no CSP violation');
    });

    // An event: a wrong password at the hosted login page.
    await withPage(browser, 'streams-failed-login', async ({ page }) => {
      await page.goto(`${dev.server}/admin/`);
      await page.waitForURL((url) => url.pathname === '/u/login');
      await page.fill('#username', DEMO_EMAIL);
      await page.fill('#password', WRONG_PASSWORD);
      await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
      await page.getByText('Wrong email or password').first().waitFor();
    });
    await waitFor('the receiver gets the failed sign-in', () =>
      receiver.requests.some((r) => r.events.some((e) => e.data?.type === 'fp')), { timeoutMs: 30000 });
    const delivery = receiver.requests.find((r) => r.events.some((e) => e.data?.type === 'fp'));
    assert.equal(delivery.headers.authorization, AUTHORIZATION);
    assert.equal(delivery.headers['x-tenant'], 'browser-test');
    const failed = delivery.events.find((e) => e.data.type === 'fp');
    assert.equal(failed.log_id, failed.data.log_id);
    assert.ok(!JSON.stringify(receiver.requests.map((r) => r.events)).includes(WRONG_PASSWORD), 'no password delivered');

    await withPage(browser, 'streams-pause', async ({ page, context }) => {
      const csp = await watchCsp(context);
      await page.goto(`${dev.server}/admin/`);
      await page.waitForURL((url) => url.pathname === '/u/login');
      await page.fill('#username', DEMO_EMAIL);
      await page.fill('#password', dev.password);
      await page.click('button[type=submit]');
      await page.waitForURL((url) => url.pathname.startsWith('/admin/'));
      await page.goto(`${dev.server}${streamPath}`);
      assert.equal(await page.locator('#stream-status').textContent(), 'active');
      await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Pause', exact: true }).click()]);
      await page.getByText('The stream was paused').first().waitFor();
      assert.equal(await page.locator('#stream-status').textContent(), 'paused');
      await page.getByRole('button', { name: 'Resume', exact: true }).waitFor();
      await audit(page, 'streams-paused');
      await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Streams', exact: true }).first().click()]);
      const row = page.locator('tbody tr', { hasText: 'Browser SIEM' });
      assert.match(await row.textContent(), /paused/);
      assert.match(await row.textContent(), new RegExp(receiver.url.replace(/[.]/g, '\\.')));
      await audit(page, 'streams-list');
      const html = await page.content();
      assert.ok(!html.includes('browser-stream-secret'), 'the authorization is not in the list');
      assert.deepEqual(csp.violations, [], 'no CSP violation');
    });
  });
});
