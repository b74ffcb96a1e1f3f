// HTTPS against `tessera dev --tls`: requests from Node that trust only the CA it made, and a
// browser HOME whose NSS database trusts that CA, the way a developer trusts it (certutil).

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';

/**
 * One HTTPS request trusting only the CA certificate in `caFile` (or the PEM `ca`); with
 * neither, Node's default roots. Resolves {status, headers, body} (body parsed when JSON);
 * rejects on a TLS error (error.code, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE).
 */
export function httpsRequest(url, { caFile, ca, method = 'GET', headers = {}, body, timeoutMs = 10000 } = {}) {
  const trusted = ca ?? (caFile ? readFileSync(caFile) : undefined);
  return new Promise((resolve, reject) => {
    const request = https.request(url, { method, headers, ca: trusted, agent: false, timeout: timeoutMs }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed = text;
        if ((response.headers['content-type'] || '').includes('application/json')) {
          try { parsed = JSON.parse(text); } catch { /* keep the text */ }
        }
        resolve({ status: response.statusCode, headers: response.headers, body: parsed });
      });
    });
    request.on('timeout', () => request.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)));
    request.on('error', reject);
    request.end(body);
  });
}

function run(command, args) {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 30000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

/**
 * Makes `home`/.pki/nssdb (the NSS database Chromium on Linux reads for locally trusted
 * certificates) trust the CA in `caFile` to identify websites — the certutil command
 * `tessera dev --tls` prints. Needs certutil (Debian: libnss3-tools). Returns what
 * `certutil -L` lists.
 */
export async function homeTrustingCa(home, caFile, nickname = 'Tessera Development CA') {
  const dir = path.join(home, '.pki', 'nssdb');
  await mkdir(dir, { recursive: true });
  const db = `sql:${dir}`;
  await run('certutil', ['-d', db, '-N', '--empty-password']);
  await run('certutil', ['-d', db, '-A', '-t', 'C,,', '-n', nickname, '-i', caFile]);
  return run('certutil', ['-d', db, '-L']);
}
