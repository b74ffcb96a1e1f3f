// The HTTP client bench/writes.mjs, logins.mjs and tenant.mjs share: one kept-alive agent,
// form bodies, a cookie jar per caller (a Map the answers' Set-Cookie fill), and a source
// address per request (each simulated client its own loopback address: the login form is
// throttled per address).
import http from 'node:http';

/** A `request(url, options)` over one kept-alive agent, each request given up after
 *  `timeout` ms; it resolves {status, headers, body}. `request.close()` ends the agent's
 *  connections, so the process can exit. */
export function httpClient({ maxSockets = Infinity, timeout = 60000 } = {}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  const request = function request(url, { method = 'GET', cookies = new Map(), form, headers: extra = {}, localAddress } = {}) {
    return new Promise((resolve, reject) => {
      const body = form ? new URLSearchParams(form).toString() : undefined;
      const headers = { accept: 'text/html,application/json', ...extra };
      if (cookies.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      if (body) {
        headers['content-type'] = 'application/x-www-form-urlencoded';
        headers['content-length'] = Buffer.byteLength(body);
      }
      const req = http.request(url, { method, headers, agent, localAddress, timeout }, (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => {
          for (const line of res.headers['set-cookie'] ?? []) {
            const [pair] = line.split(';');
            const at = pair.indexOf('=');
            cookies.set(pair.slice(0, at), pair.slice(at + 1));
          }
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out`)));
      req.on('error', reject);
      if (body) req.write(body);
      req.end();
    });
  };
  request.close = () => agent.destroy();
  return request;
}

/** The value of the hidden form field `name` on an HTML page (the login form's state, csrf). */
export function hidden(html, name) {
  const match = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  if (!match) throw new Error(`no ${name} field on the page`);
  return match[1];
}
