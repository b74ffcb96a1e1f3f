// Headless Debian Chromium driven by playwright-core; a fresh context per test, and a screenshot
// plus the page's console log in tests/artifacts/ when a test fails.

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { REPO_ROOT } from './tessera.mjs';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const ARTIFACTS = path.join(REPO_ROOT, 'tests', 'artifacts');

/** `env` is added to the browser's environment (e.g. a HOME whose NSS database trusts a CA). */
export function launchChromium({ env } = {}) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60000,
    env: env ? { ...process.env, ...env } : undefined,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
    ],
  });
}

/** Adds a line to an error's message and stack (the test reporter prints the stack). */
function note(error, line) {
  if (!(error instanceof Error)) return;
  error.message += `\n(${line})`;
  if (typeof error.stack === 'string') error.stack = `${error.stack}\n(${line})`;
}

const fileName = (name) => name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 120);

const logs = new WeakMap();

/** What withPage recorded for `page` so far (console, page errors, failed requests, navigations). */
export const pageLog = (page) => logs.get(page) ?? [];

/**
 * Runs `fn({page, context, log})` in a fresh browser context (made with `contextOptions`, e.g.
 * `{ javaScriptEnabled: false }`). On failure, saves
 * tests/artifacts/<name>.png (full page) and <name>.log (console, page errors, failed requests,
 * main-frame navigations), then rethrows. The context is always closed.
 */
export async function withPage(browser, name, fn, { defaultTimeoutMs = 20000, contextOptions = {} } = {}) {
  const context = await browser.newContext(contextOptions);
  context.setDefaultTimeout(defaultTimeoutMs);
  context.setDefaultNavigationTimeout(defaultTimeoutMs);
  const page = await context.newPage();
  const log = [];
  logs.set(page, log);
  const stamp = () => new Date().toISOString().slice(11, 23);
  page.on('console', (message) => log.push(`${stamp()} console.${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => log.push(`${stamp()} pageerror: ${error.message}`));
  page.on('requestfailed', (request) => log.push(`${stamp()} requestfailed: ${request.method()} ${request.url()} ${request.failure()?.errorText}`));
  page.on('response', (response) => {
    if (response.status() >= 400) log.push(`${stamp()} HTTP ${response.status()}: ${response.request().method()} ${response.url()}`);
  });
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) log.push(`${stamp()} navigated: ${frame.url()}`);
  });
  try {
    return await fn({ page, context, log });
  } catch (error) {
    const base = path.join(ARTIFACTS, fileName(name));
    try {
      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: `${base}.png`, fullPage: true, timeout: 10000 });
      await writeFile(`${base}.log`, `${log.join('\n')}\n\nURL: ${page.url()}\n\n${error.stack}\n`);
      note(error, `screenshot: ${base}.png, log: ${base}.log`);
    } catch (artifactError) {
      note(error, `could not save the screenshot: ${artifactError.message}`);
    }
    throw error;
  } finally {
    await context.close().catch(() => {});
  }
}

/**
 * Waits until the trimmed text of `selector` satisfies `expected`: a string (equal), a RegExp
 * (matches) or a predicate function.
 */
export async function waitForText(page, selector, expected, { timeoutMs = 20000 } = {}) {
  const matches = (text) => {
    if (expected instanceof RegExp) return expected.test(text);
    if (typeof expected === 'function') return expected(text);
    return text === expected;
  };
  const deadline = Date.now() + timeoutMs;
  let actual;
  while (Date.now() < deadline) {
    actual = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => undefined);
    if (actual !== undefined && actual !== null && matches(actual.trim())) return actual.trim();
    await page.waitForTimeout(100);
  }
  throw new Error(`${selector}: expected text ${expected instanceof RegExp ? expected : JSON.stringify(expected)}, `
    + `got ${actual === undefined ? '(no such element)' : JSON.stringify(actual?.trim())} after ${timeoutMs} ms (page ${page.url()})`);
}
