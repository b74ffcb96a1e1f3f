// `tessera dev` for the browser tests: the authorization server, the sample SPA and the sample
// API on three free ports, seeded with the demo user and a password of our choosing.

import { randomBytes } from 'node:crypto';
import path from 'node:path';

import { tesseraBin, spawnTracked, freePort, tempDir, waitFor } from './tessera.mjs';
import { httpsRequest } from './tls.mjs';

export const DEMO_EMAIL = 'demo@example.com';

async function distinctFreePorts(count) {
  const ports = new Set();
  for (let i = 0; ports.size < count && i < 20; i += 1) ports.add(await freePort('127.0.0.1'));
  if (ports.size < count) throw new Error('could not find free ports');
  return [...ports];
}

async function isUp(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await response.arrayBuffer();
  return response.status === 200;
}

/**
 * Starts `tessera dev --data-dir <tmp> --port P --spa-port S --api-port A` with
 * TESSERA_DEMO_PASSWORD set, and waits until the server (/healthz), the SPA (/auth_config.json)
 * and the API (/api/public) answer 200. Ports are picked free beforehand (bind port 0, close);
 * if the process exits while starting (a port was taken meanwhile), it retries with new ports.
 * With `tls`, adds `--tls`: all three are https://localhost:…, checked trusting only the CA
 * that tessera dev made (`caFile`, <data-dir>/tls/ca.pem). `args` are appended to the
 * command line (e.g. `['--dpop-nonces']`).
 * Returns {server, spa, api (origins on localhost), password, dataDir, caFile, output, stop()}.
 */
export async function startDev({ attempts = 3, readyTimeoutMs = 60000, tls = false, args = [] } = {}) {
  const password = `e2e-${randomBytes(12).toString('base64url')}`;
  let lastError;
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    const tmp = await tempDir('tessera-dev-');
    const [port, spaPort, apiPort] = await distinctFreePorts(3);
    const dataDir = path.join(tmp.dir, 'data');
    const caFile = path.join(dataDir, 'tls', 'ca.pem');
    const proc = spawnTracked(tesseraBin(), [
      'dev', '--data-dir', dataDir,
      '--port', String(port), '--spa-port', String(spaPort), '--api-port', String(apiPort),
      ...(tls ? ['--tls'] : []),
      ...args,
    ], { env: { TESSERA_DEMO_PASSWORD: password, RUST_LOG: 'warn' } });
    let exited = null;
    proc.exited.then((result) => { exited = result; });
    const scheme = tls ? 'https' : 'http';
    const urls = {
      server: `${scheme}://localhost:${port}`,
      spa: `${scheme}://localhost:${spaPort}`,
      api: `${scheme}://localhost:${apiPort}`,
    };
    const up = tls
      ? async (url) => (await httpsRequest(url, { caFile })).status === 200
      : isUp;
    try {
      await waitFor('tessera dev: server /healthz, SPA /auth_config.json and API /api/public', async () => {
        if (exited) throw Object.assign(new Error(`tessera dev exited (${JSON.stringify(exited)})`), { fatal: true });
        return (await up(`${urls.server}/healthz`))
          && (await up(`${urls.spa}/auth_config.json`))
          && (await up(`${urls.api}/api/public`));
      }, { timeoutMs: readyTimeoutMs, intervalMs: 250 });
      return {
        ...urls,
        password,
        dataDir,
        caFile: tls ? caFile : undefined,
        output: proc.output,
        stop: async () => {
          const result = await proc.stop();
          await tmp.remove();
          return result;
        },
      };
    } catch (error) {
      const exitedByItself = exited !== null;
      await proc.stop();
      await tmp.remove();
      lastError = new Error(`${error.message}\n--- stdout ---\n${proc.output.stdout}\n--- stderr ---\n${proc.output.stderr}`);
      if (!exitedByItself) break; // it did not die on a taken port: do not retry a hang
    }
  }
  throw lastError;
}
