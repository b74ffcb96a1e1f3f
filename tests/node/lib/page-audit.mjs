// Page audits for the browser tests: CSP violations, axe-core accessibility findings and
// screenshots at desktop and phone width.
//
//   import { watchCsp, audit, SCREENSHOTS } from './lib/page-audit.mjs';
//
//   const csp = await watchCsp(context); // a BrowserContext or a Page, before it navigates
//   await page.goto(url);
//   await audit(page, 'login-error'); // throws on a finding; saves the screenshots
//   csp.violations;                  // [{source: 'event' | 'console', url, text}] so far
//
// - watchCsp(target) records, for every page of a context (or for one page): the
//   `securitypolicyviolation` events (an init script: Playwright runs it before the page's own
//   scripts, and the page's CSP does not apply to it) and the console lines that mention a
//   Content Security Policy (Chromium logs them with JavaScript on or off). Returns the
//   recorder; calling it again on the same target, or on a page of a watched context, returns
//   the same recorder.
// - audit(page, name, {widths, dir}) throws if the page's recorder holds any CSP violation, or
//   if axe-core (npm `axe-core`, default rules: WCAG 2 A/AA and best practices) finds a
//   serious or critical violation (each listed with rule id, targets and summary); saves
//   full-page screenshots `<name>-desktop.png` (1280 px) and `<name>-phone.png` (390 px) in
//   `dir` (default SCREENSHOTS), and throws if the page scrolls sideways at either width.
//   The CSP check comes after axe has run, so it also proves the injection caused none.
//   Returns {violations (all impacts), screenshots}.
//
// axe runs in the page itself when its context has JavaScript on: its source goes in through
// CDP (Runtime.evaluate), which the page's CSP does not govern. With `javaScriptEnabled: false`
// Chromium closes the page as soon as an evaluation schedules a task or a promise, and axe needs
// both, so the page's DOM as that user sees it (<noscript> content shown, scripts inert) is
// serialised and axe audits that copy, served at the same URL (so the same stylesheets load) in
// a JavaScript-enabled page of a second context kept per browser (closed with it), in the same
// colour scheme; the copy holds the markup, so text typed into fields is not in it. The
// screenshots are always of the real page. Widths: {label: {width, height}}, default WIDTHS.

import { mkdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { REPO_ROOT } from './tessera.mjs';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** Where the screenshots go: $TESSERA_ARTIFACTS, or target/artifacts/screenshots. */
export const SCREENSHOTS = process.env.TESSERA_ARTIFACTS
  || path.join(REPO_ROOT, 'target', 'artifacts', 'screenshots');

export const WIDTHS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

const FAILING_IMPACTS = new Set(['serious', 'critical']);
const CSP_LINE = /Content Security Policy/i;
const BINDING = '__tesseraAuditCspViolation';

const recorders = new WeakMap(); // BrowserContext | Page → recorder

function listenToConsole(page, recorder) {
  page.on('console', (message) => {
    const text = message.text();
    if (CSP_LINE.test(text)) recorder.violations.push({ source: 'console', url: page.url(), text });
  });
}

/** Starts recording CSP violations of `target` (a BrowserContext or a Page). */
export async function watchCsp(target) {
  const isContext = typeof target.pages === 'function';
  // A page of a watched context is already watched (the binding can be exposed only once).
  const known = recorders.get(target) ?? (isContext ? undefined : recorders.get(target.context()));
  if (known) return known;
  const recorder = { violations: [] };
  recorders.set(target, recorder);
  await Promise.all([
    target.exposeBinding(BINDING, (_source, violation) => {
      recorder.violations.push({ source: 'event', ...violation });
    }),
    target.addInitScript((binding) => {
      document.addEventListener('securitypolicyviolation', (event) => {
        window[binding]({
          url: document.location.href,
          text: `${event.effectiveDirective} blocked ${event.blockedURI || '(inline)'}`
            + ` at ${event.sourceFile || document.location.href}:${event.lineNumber}`,
        });
      });
    }, BINDING),
  ]);
  if (isContext) {
    for (const page of target.pages()) listenToConsole(page, recorder);
    target.on('page', (page) => listenToConsole(page, recorder));
  } else {
    listenToConsole(target, recorder);
  }
  return recorder;
}

function recorderOf(page) {
  return recorders.get(page) ?? recorders.get(page.context());
}

const cdpSessions = new WeakMap();
async function cdpOf(page) {
  let session = cdpSessions.get(page);
  if (!session) {
    session = await page.context().newCDPSession(page);
    cdpSessions.set(page, session);
  }
  return session;
}

/** Evaluates `expression` in the page's main world through CDP; synchronous code only. */
async function evaluateSync(page, expression) {
  const answer = await (await cdpOf(page)).send('Runtime.evaluate', { expression, returnByValue: true });
  if (answer.exceptionDetails) {
    throw new Error(`evaluation failed: ${answer.exceptionDetails.exception?.description ?? answer.exceptionDetails.text}`);
  }
  return answer.result.value;
}

async function javaScriptEnabled(page) {
  // With scripting disabled, <noscript> is parsed as markup; with it enabled, as text.
  return evaluateSync(page, `(() => {
    const probe = document.createElement('div');
    probe.innerHTML = '<noscript><i></i></noscript>';
    return probe.querySelector('noscript i') === null;
  })()`);
}

/** The DOM a user without JavaScript sees, as HTML a JavaScript-enabled parser reads the same. */
const SNAPSHOT = `(() => {
  const root = document.documentElement.cloneNode(true);
  for (const script of root.querySelectorAll('script')) script.remove();
  for (const noscript of root.querySelectorAll('noscript')) {
    const shown = document.createElement('div');
    shown.append(...noscript.childNodes);
    noscript.replaceWith(shown);
  }
  return '<!doctype html>' + root.outerHTML;
})()`;

const RUN_AXE = `axe.run(document, { resultTypes: ['violations'] }).then((result) => result.violations.map((v) => ({
  id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
  nodes: v.nodes.map((n) => ({ target: n.target.join(' '), summary: n.failureSummary })),
})))`;

async function runAxe(page) {
  const session = await cdpOf(page);
  const load = await session.send('Runtime.evaluate', { expression: `${AXE_SOURCE}\n;0`, returnByValue: true });
  if (load.exceptionDetails) throw new Error(`axe-core did not load: ${load.exceptionDetails.text}`);
  const run = await session.send('Runtime.evaluate', { expression: RUN_AXE, returnByValue: true, awaitPromise: true });
  if (run.exceptionDetails) throw new Error(`axe-core failed: ${run.exceptionDetails.exception?.description ?? run.exceptionDetails.text}`);
  return run.result.value;
}

const auditors = new WeakMap(); // Browser → JavaScript-enabled context for DOM copies

async function axeOnCopy(page) {
  const html = await evaluateSync(page, SNAPSHOT);
  const url = page.url();
  const browser = page.context().browser();
  let auditor = auditors.get(browser);
  if (!auditor) {
    auditor = browser.newContext({ javaScriptEnabled: true, viewport: page.viewportSize() });
    auditors.set(browser, auditor);
  }
  const dark = await evaluateSync(page, "matchMedia('(prefers-color-scheme: dark)').matches");
  const copy = await (await auditor).newPage();
  try {
    await copy.setViewportSize(page.viewportSize());
    await copy.emulateMedia({ colorScheme: dark ? 'dark' : 'light' });
    let served = false;
    // A predicate, not the URL: a string would be read as a glob pattern.
    await copy.route((candidate) => candidate.href === url, (route) => {
      served = true;
      return route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: html });
    }, { times: 1 });
    await copy.goto(url, { waitUntil: 'load' });
    if (!served) throw new Error(`audit: the copy of ${url} was not the page loaded`);
    return await runAxe(copy);
  } finally {
    await copy.close();
  }
}

function describeViolations(violations) {
  return violations.map((v) => `- ${v.id} (${v.impact}): ${v.help} [${v.helpUrl}]\n${
    v.nodes.map((n) => `    element ${n.target}: ${String(n.summary).replace(/\n\s*/g, ' ')}`).join('\n')}`).join('\n');
}

/** Audits `page` as it is now; see the top of this file. */
export async function audit(page, name, { widths = WIDTHS, dir = SCREENSHOTS } = {}) {
  const recorder = recorderOf(page);
  if (!recorder) throw new Error(`audit(${name}): call watchCsp(context or page) before the page loads`);
  const violations = await javaScriptEnabled(page) ? await runAxe(page) : await axeOnCopy(page);

  await mkdir(dir, { recursive: true });
  const original = page.viewportSize();
  const screenshots = [];
  const overflowing = [];
  try {
    for (const [label, size] of Object.entries(widths)) {
      await page.setViewportSize(size);
      const scrollWidth = await evaluateSync(page, 'document.documentElement.scrollWidth');
      if (scrollWidth > size.width) overflowing.push(`${label}: ${scrollWidth} px wide in a ${size.width} px viewport`);
      const file = path.join(dir, `${name}-${label}.png`);
      await page.screenshot({ path: file, fullPage: true });
      screenshots.push(file);
    }
  } finally {
    if (original) await page.setViewportSize(original);
  }

  const problems = [];
  if (recorder.violations.length > 0) {
    problems.push(`CSP violations:\n${recorder.violations.map((v) => `- [${v.source}] ${v.url}: ${v.text}`).join('\n')}`);
  }
  const failing = violations.filter((v) => FAILING_IMPACTS.has(v.impact));
  if (failing.length > 0) problems.push(`serious or critical axe-core findings:\n${describeViolations(failing)}`);
  if (overflowing.length > 0) problems.push(`horizontal scrolling:\n- ${overflowing.join('\n- ')}`);
  if (problems.length > 0) {
    throw new Error(`audit of ${name} (${page.url()}) failed:\n${problems.join('\n')}\nscreenshots: ${screenshots.join(', ')}`);
  }
  return { violations, screenshots };
}
