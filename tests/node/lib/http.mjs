// Small HTTP helpers for the tests: run an Express app on 127.0.0.1:0, and make bounded requests.

import http from 'node:http';

/** Listens on 127.0.0.1:`port` (any free one by default); returns {url, close()} (close also
 * drops keep-alive connections). */
export function listen(app, port = 0) {
  return new Promise((resolve, reject) => {
    const server = http.createServer(app);
    server.on('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise((done) => {
          server.closeAllConnections();
          server.close(() => done());
        }),
      });
    });
  });
}

/**
 * GET `url` with an optional Bearer token (or a raw Authorization header) and a 10 s timeout.
 * Returns {status, wwwAuthenticate, body} where body is parsed JSON when the response is JSON.
 */
export async function get(url, { token, authorization } = {}) {
  const headers = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (authorization !== undefined) headers.authorization = authorization;
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(10000) });
  const text = await response.text();
  let body = text;
  if ((response.headers.get('content-type') || '').includes('application/json')) {
    body = JSON.parse(text);
  }
  return { status: response.status, wwwAuthenticate: response.headers.get('www-authenticate'), body };
}

/** GET and parse JSON, failing on any status but 200. */
export async function getJson(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(10000) });
  if (response.status !== 200) throw new Error(`GET ${url}: ${response.status}`);
  return response.json();
}
