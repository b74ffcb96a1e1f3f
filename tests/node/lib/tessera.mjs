// Helpers to run the real `tessera` binary from Node tests: the admin CLI, `tessera serve` on an
// ephemeral port, and client-credentials tokens from its /oauth/token endpoint.
//
// Every process spawned here is tracked; `stop()` ends it (SIGTERM, then SIGKILL after a bounded
// wait), and a process 'exit' hook SIGKILLs whatever a failed test left behind.

import { spawn, execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The prebuilt binary (`cargo build -p tessera`), or $TESSERA_BIN. */
export function tesseraBin() {
  const bin = process.env.TESSERA_BIN || path.join(REPO_ROOT, 'target', 'debug', 'tessera');
  if (!existsSync(bin)) {
    throw new Error(`${bin} does not exist: run \`cargo build -p tessera\` first (or set TESSERA_BIN)`);
  }
  return bin;
}

// ---- process bookkeeping --------------------------------------------------------------------

const live = new Set();

function killAllNow() {
  for (const child of live) {
    try {
      // Negative pid: the whole process group (tessera dev may run children of its own).
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      try { child.kill('SIGKILL'); } catch { /* already gone */ }
    }
  }
}
const tempDirs = new Set();
const sleepSync = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const isAlive = (pid) => {
  try { process.kill(pid, 0); return true; } catch { return false; }
};
function cleanUpNow() {
  const pids = [...live].map((child) => child.pid);
  killAllNow();
  // Let the killed processes go before deleting their files (at most 2 s).
  for (let i = 0; i < 40 && pids.some(isAlive); i += 1) sleepSync(50);
  // Temporary directories a failed or interrupted test did not remove.
  for (const dir of tempDirs) {
    try { rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 }); } catch (e) { process.stderr.write(`could not remove ${dir}: ${e.message}\n`); }
  }
}
process.on('exit', cleanUpNow);
// Children run in their own process groups, so a Ctrl-C of the test run does not reach them:
// end them here, then die of the signal as usual.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    cleanUpNow();
    process.kill(process.pid, signal);
  });
}

/**
 * Spawns `bin args` in its own process group, collecting stdout/stderr as text.
 * Returns {child, output: {stdout, stderr}, exited: Promise<{code, signal}>, stop()}.
 */
export function spawnTracked(bin, args, { env = {}, cwd } = {}) {
  const child = spawn(bin, args, {
    cwd,
    env: { ...process.env, RUST_BACKTRACE: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group, so stop() can end children too
  });
  live.add(child);
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk) => { output.stdout += chunk; });
  child.stderr.on('data', (chunk) => { output.stderr += chunk; });
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
    child.on('error', (error) => {
      live.delete(child);
      output.stderr += `\nspawn error: ${error.message}`;
      resolve({ code: null, signal: null, error });
    });
  });
  const signalGroup = (signal) => {
    try {
      process.kill(-child.pid, signal);
    } catch {
      try { child.kill(signal); } catch { /* already gone */ }
    }
  };
  let stopping;
  const stop = ({ graceMs = 5000 } = {}) => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      signalGroup('SIGTERM');
      const result = await Promise.race([exited, delay(graceMs).then(() => null)]);
      if (result) return result;
      signalGroup('SIGKILL');
      return Promise.race([exited, delay(2000).then(() => ({ code: null, signal: 'SIGKILL (no exit seen)' }))]);
    })();
    return stopping;
  };
  return { child, output, exited, stop };
}

export const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` (async, returns a truthy value when done) every `intervalMs` until `timeoutMs`.
 * An error thrown by `check` counts as "not yet", unless it has `fatal: true`.
 */
export async function waitFor(what, check, { timeoutMs = 20000, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      if (error?.fatal) throw error;
      lastError = error;
    }
    await delay(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError.message}` : ''}`);
}

/** A port that was free a moment ago (bind port 0, read it, close). */
export async function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A fresh temporary directory; `remove()` deletes it. */
export async function tempDir(prefix = 'tessera-node-') {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return {
    dir,
    remove: async () => {
      await rm(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    },
  };
}

// ---- the admin CLI --------------------------------------------------------------------------

/**
 * Runs `tessera <args> --database-url <db> --json` (with `input` on stdin, e.g. a password for
 * `--password-stdin`) and returns the parsed JSON output. Killed after `timeoutMs`.
 */
export function cli(databaseUrl, args, { input, timeoutMs = 30000 } = {}) {
  const fullArgs = [...args, '--database-url', databaseUrl, '--json'];
  return new Promise((resolve, reject) => {
    const child = execFile(tesseraBin(), fullArgs, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 << 20 },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`tessera ${fullArgs.join(' ')} failed (${error.code ?? error.signal}): ${stderr || error.message}`));
          return;
        }
        try {
          resolve(JSON.parse(stdout));
        } catch {
          reject(new Error(`tessera ${fullArgs.join(' ')} printed no JSON: ${stdout}\n${stderr}`));
        }
      });
    // A command that reads no stdin may exit before this write lands: its exit status, not
    // the closed pipe (EPIPE), says how it went.
    child.stdin.on('error', (error) => {
      if (error.code !== 'EPIPE') reject(error);
    });
    child.stdin.end(input ?? '');
  });
}

// ---- tessera serve --------------------------------------------------------------------------

const LISTENING = /tessera listening on (http:\/\/\S+) \(issuer (\S+)\)/;
const METRICS = /tessera metrics at (http:\/\/\S+)/;

/**
 * Starts `tessera serve --listen 127.0.0.1:0` (plus `args`) on the given database and waits for
 * its "tessera listening on http://ADDR (issuer …)" line. With port 0 the server derives the
 * issuer from the bound address (http://127.0.0.1:PORT/), so no port has to be guessed.
 * Returns {baseUrl, issuer, metricsUrl (with --metrics-listen), output, stop()}.
 */
export async function startServer({ databaseUrl, args = [], timeoutMs = 30000 }) {
  const proc = spawnTracked(tesseraBin(), ['serve', '--listen', '127.0.0.1:0', '--database-url', databaseUrl, ...args], {
    env: { RUST_LOG: 'warn' },
  });
  const wantsMetrics = args.includes('--metrics-listen');
  let exitedEarly = false;
  proc.exited.then(() => { exitedEarly = true; });
  try {
    const match = await waitFor('tessera serve to print its address', () => {
      if (exitedEarly) throw Object.assign(new Error('tessera serve exited early'), { fatal: true });
      // The metrics line comes after the main one.
      if (wantsMetrics && !METRICS.test(proc.output.stderr)) return null;
      return LISTENING.exec(proc.output.stderr);
    }, { timeoutMs, intervalMs: 50 });
    const baseUrl = match[1];
    const issuer = match[2];
    const metricsUrl = METRICS.exec(proc.output.stderr)?.[1];
    return { baseUrl, issuer, metricsUrl, output: proc.output, stop: proc.stop };
  } catch (error) {
    await proc.stop();
    throw new Error(`${error.message}\n--- stderr ---\n${proc.output.stderr}`);
  }
}

/** POST /oauth/token with client credentials (form body, client_secret_post). */
export async function clientCredentialsToken(baseUrl, { clientId, clientSecret, audience }) {
  const response = await fetch(`${baseUrl}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: clientSecret,
      audience,
    }),
    signal: AbortSignal.timeout(10000),
  });
  const body = await response.json();
  if (response.status !== 200 || typeof body.access_token !== 'string') {
    throw new Error(`token request for ${audience} failed: ${response.status} ${JSON.stringify(body)}`);
  }
  return body;
}

// ---- the quickstart tenant for the interop tests ----------------------------------------------

export const AUDIENCE = 'https://quickstarts/api';
export const OTHER_AUDIENCE = 'https://quickstarts/other-api';
export const SHORT_AUDIENCE = 'https://quickstarts/short-lived-api';
export const ES256_AUDIENCE = 'https://quickstarts/es256-api';
export const EDDSA_AUDIENCE = 'https://quickstarts/eddsa-api';
export const SHORT_LIFETIME_SECONDS = 3;

/**
 * Registers, with the CLI, the APIs and machine-to-machine apps the interop tests need:
 * - "Quickstart API" (https://quickstarts/api, RS256) with read:messages and write:messages;
 * - "Other API" (RS256), a second audience, for wrong-audience tests;
 * - a short-lived API (tokens live SHORT_LIFETIME_SECONDS), for expiry tests;
 * - an ES256 API and an EdDSA API;
 * - app `reader`: read:messages on all of them; app `writer`: write:messages only on the
 *   Quickstart API (its token lacks read:messages).
 */
export async function seedInteropTenant(databaseUrl) {
  const api = (name, identifier, extra = []) =>
    cli(databaseUrl, ['apis', 'create', '--name', name, '--identifier', identifier,
      '--scopes', 'read:messages,write:messages', ...extra]);
  await api('Quickstart API', AUDIENCE);
  await api('Other API', OTHER_AUDIENCE);
  await api('Short-lived API', SHORT_AUDIENCE, ['--token-lifetime', String(SHORT_LIFETIME_SECONDS)]);
  await api('ES256 API', ES256_AUDIENCE, ['--signing-alg', 'ES256']);
  await api('EdDSA API', EDDSA_AUDIENCE, ['--signing-alg', 'EdDSA']);

  const app = async (name) => {
    const created = await cli(databaseUrl, ['apps', 'create', '--name', name, '--type', 'm2m']);
    return { clientId: created.client_id, clientSecret: created.client_secret };
  };
  const reader = await app('m2m reader');
  const writer = await app('m2m writer');
  const grant = (client, audience, scopes) =>
    cli(databaseUrl, ['grants', 'create', '--app', client.clientId, '--api', audience, '--scopes', scopes]);
  for (const audience of [AUDIENCE, OTHER_AUDIENCE, SHORT_AUDIENCE, ES256_AUDIENCE, EDDSA_AUDIENCE]) {
    await grant(reader, audience, 'read:messages');
  }
  await grant(writer, AUDIENCE, 'write:messages');
  return { reader, writer };
}

/**
 * One Tessera for a test file: temp dir, seeded tenant, running server.
 * Returns {baseUrl, issuer, reader, writer, token(client, audience), close()}.
 */
export async function startInteropTessera() {
  const tmp = await tempDir();
  const databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
  let server;
  try {
    const clients = await seedInteropTenant(databaseUrl);
    server = await startServer({ databaseUrl });
    return {
      ...clients,
      baseUrl: server.baseUrl,
      issuer: server.issuer,
      output: server.output,
      token: (client, audience = AUDIENCE) => clientCredentialsToken(server.baseUrl, { ...client, audience }),
      close: async () => {
        await server.stop();
        await tmp.remove();
      },
    };
  } catch (error) {
    if (server) await server.stop();
    await tmp.remove();
    throw error;
  }
}
