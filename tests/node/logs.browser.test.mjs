// The dashboard's Logs page in a real (headless Debian) Chromium, on `tessera dev`: a failed
// sign-in (a wrong password on the hosted login page) becomes an `fp` event; the administrator
// signs in, opens Logs, filters by type `fp`, opens the entry and sees its fields — type,
// description, user, application, IP address, user agent — and nowhere the password typed or
// the administrator's own. Every page is audited (CSP, axe-core, screenshots).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startDev, DEMO_EMAIL } from './lib/dev.mjs';
import { launchChromium, withPage } from './lib/browser.mjs';
import { watchCsp, audit } from './lib/page-audit.mjs';

const WRONG_PASSWORD = 'Wrong-Browser-Password-21';

describe('the Logs page in Chromium (tessera dev)', () => {
  let dev;
  let browser;

  before(async () => {
    dev = await startDev();
    browser = await launchChromium();
  }, { timeout: 120000 });

  after(async () => {
    await browser?.close().catch(() => {});
    await dev?.stop();
  });

  it('shows a failed sign-in, filtered by its type, with its fields and no secret', { timeout: 240000 }, async () => {
    // A person types a wrong password at the hosted login page (the dashboard's sign-in).
    await withPage(browser, 'logs-failed-login', async ({ page }) => {
      await page.goto(`${dev.server}/admin/`);
      await page.waitForURL((url) => url.pathname === '/u/login');
      await page.fill('#username', DEMO_EMAIL);
      await page.fill('#password', WRONG_PASSWORD);
      await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
      await page.getByText('Wrong email or password').first().waitFor();
    });

    await withPage(browser, 'logs-page', async ({ page, context }) => {
      const csp = await watchCsp(context);
      await page.goto(`${dev.server}/admin/`);
      await page.waitForURL((url) => url.pathname === '/u/login');
      await page.fill('#username', DEMO_EMAIL);
      await page.fill('#password', dev.password);
      await page.click('button[type=submit]');
      await page.waitForURL((url) => url.pathname.startsWith('/admin/'));

      await Promise.all([page.waitForLoadState('load'), page.getByRole('link', { name: 'Logs', exact: true }).first().click()]);
      await page.waitForURL((url) => url.pathname === '/admin/logs');
      assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Logs');
      // Unfiltered, the administrator's own sign-in is there too.
      assert.ok(await page.locator('td code', { hasText: /^s$/ }).count() >= 1, 'the successful sign-in is listed');

      await page.fill('#type', 'fp');
      await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Filter', exact: true }).click()]);
      assert.equal(new URL(page.url()).searchParams.get('type'), 'fp');
      await audit(page, 'logs-filtered');
      const types = await page.locator('tbody td code').allTextContents();
      assert.deepEqual(types, ['fp'], 'only the failed sign-in');
      const row = page.locator('tbody tr').first();
      assert.match(await row.textContent(), /Wrong email or password/);
      assert.match(await row.textContent(), new RegExp(DEMO_EMAIL.replace('.', '\\.')));

      await Promise.all([page.waitForNavigation(), row.locator('a').first().click()]);
      assert.match(new URL(page.url()).pathname, /^\/admin\/logs\/\d+$/);
      await audit(page, 'logs-entry');
      const heading = await page.getByRole('heading', { level: 1 }).textContent();
      assert.match(heading, /fp/);
      assert.match(heading, /Wrong email or password/);
      const fields = {};
      const terms = await page.locator('dl.kv dt').allTextContents();
      const values = await page.locator('dl.kv dd').allTextContents();
      terms.forEach((term, i) => { fields[term] = values[i]; });
      assert.ok(fields.Date, 'a date');
      assert.match(fields['Log id'], /^\d+$/);
      assert.match(fields.User, new RegExp(DEMO_EMAIL.replace('.', '\\.')));
      assert.match(fields.Application, /Tessera Dashboard|tessera_dashboard/);
      assert.match(fields['IP address'], /^(127\.0\.0\.1|::1)$/);
      assert.match(fields['User agent'], /Chrome/);
      const json = JSON.parse(await page.locator('pre code').textContent());
      assert.equal(json.type, 'fp');
      assert.equal(json.connection, 'Username-Password-Authentication');

      const text = await page.locator('body').textContent();
      const html = await page.content();
      for (const secret of [WRONG_PASSWORD, dev.password]) {
        assert.ok(!text.includes(secret) && !html.includes(secret), 'no password on the page');
      }
      assert.deepEqual(csp.violations, [], 'no CSP violation');
    });
  });
});
