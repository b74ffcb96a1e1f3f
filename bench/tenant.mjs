// The HTTP client of bench/tenant.sh. Two modes, each printing one JSON line:
//
//   node bench/tenant.mjs logins BASE CLIENT_ID CALLBACK USERS HASHES COUNT CLIENTS FIRST_OCTET
//     COUNT hosted logins, CLIENTS at once, each of a user picked at random over the whole
//     database (user{i:07}@bench.example, password bench-password-{i % HASHES}, as
//     crates/server/examples/seed_users.rs seeded them): /authorize → the hosted form →
//     the code redeemed at /oauth/token, each in a fresh cookie jar. The login form is
//     throttled per address (60 posts a minute): every 50 logins move to the next loopback
//     address, 127.0.0.FIRST_OCTET and up.
//     → {count, clients, seconds, per_second, p50_ms, p90_ms, p99_ms, max_ms}
//
//   node bench/tenant.mjs pages BASE REQUESTS ADMIN_EMAIL ADMIN_PASSWORD TOKEN < QUERIES
//     Times REQUESTS GETs of each query, one kept-alive connection. QUERIES: lines
//     `api|LABEL|PATH` (a Management API request, with the bearer TOKEN) or
//     `dash|LABEL|PATH` (a dashboard page, with the session of ADMIN_EMAIL, who signs in
//     through /admin/login and the hosted login page first, over HTTP as a browser does).
//     Every answer must be 200 and list at least one user.
//     → {"queries":[{kind, label, median_ms, max_ms}, …]}

import { hidden, httpClient } from './http.mjs';
import { createHash, randomBytes, randomInt } from 'node:crypto';

const [mode, ...args] = process.argv.slice(2);
const request = httpClient({ maxSockets: 64, timeout: 120000 });

function fail(message) {
  console.error(`bench/tenant.mjs: ${message}`);
  process.exit(1);
}

/** Follows the hosted login page from a redirect to it: posts the form, returns the
 * redirect that comes back after it (the callback with its code). */
async function hostedLogin(base, loginUrl, cookies, username, password, localAddress) {
  const page = await request(new URL(loginUrl, base), { cookies, localAddress });
  if (page.status !== 200) throw new Error(`the login page answered ${page.status}`);
  let res = await request(new URL('/u/login', base), {
    method: 'POST', cookies, localAddress,
    form: { state: hidden(page.body, 'state'), csrf: hidden(page.body, 'csrf'), username, password },
  });
  if (res.status !== 303) throw new Error(`the login form answered ${res.status}: ${res.body.slice(0, 200)}`);
  res = await request(new URL(res.headers.location, base), { cookies, localAddress });
  if (!res.headers.location) throw new Error(`no redirect after the login: ${res.status}`);
  return new URL(res.headers.location, base);
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const median = (sorted) => {
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
};

async function logins([base, clientId, callback, usersText, hashesText, countText, clientsText, firstOctetText]) {
  const [users, hashes, count, clients, firstOctet] = [usersText, hashesText, countText, clientsText, firstOctetText].map(Number);
  if (!base || !clientId || !callback || !(users > 0) || !(hashes > 0) || !(count > 0) || !(clients > 0) || !(firstOctet >= 2)) {
    console.error('usage: node bench/tenant.mjs logins BASE CLIENT_ID CALLBACK USERS HASHES COUNT CLIENTS FIRST_OCTET');
    process.exit(2);
  }
  async function login(n) {
    const localAddress = `127.0.0.${firstOctet + Math.floor(n / 50)}`;
    const i = randomInt(users);
    const email = `user${String(i).padStart(7, '0')}@bench.example`;
    const cookies = new Map();
    const verifier = randomBytes(32).toString('base64url');
    const authorize = new URL('/authorize', base);
    for (const [k, v] of Object.entries({
      response_type: 'code', client_id: clientId, redirect_uri: callback, scope: 'openid',
      state: 'bench', code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    })) authorize.searchParams.set(k, v);
    const started = process.hrtime.bigint();
    const res = await request(authorize, { cookies, localAddress });
    if (res.status !== 302) throw new Error(`/authorize answered ${res.status}`);
    const back = await hostedLogin(base, res.headers.location, cookies, email, `bench-password-${i % hashes}`, localAddress);
    const code = back.searchParams.get('code');
    if (!code) throw new Error(`${email}: no code in ${back}`);
    const token = await request(new URL('/oauth/token', base), {
      method: 'POST', localAddress,
      form: { grant_type: 'authorization_code', client_id: clientId, code, redirect_uri: callback, code_verifier: verifier },
    });
    if (token.status !== 200) throw new Error(`/oauth/token answered ${token.status}: ${token.body.slice(0, 200)}`);
    return Number(process.hrtime.bigint() - started) / 1e6;
  }
  const times = [];
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: clients }, async () => {
    for (let n = next++; n < count; n = next++) times.push(await login(n));
  }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  times.sort((a, b) => a - b);
  console.log(JSON.stringify({
    count, clients, seconds, per_second: count / seconds,
    p50_ms: percentile(times, 50), p90_ms: percentile(times, 90), p99_ms: percentile(times, 99), max_ms: times.at(-1),
  }));
}

async function pages([base, requestsText, email, password, token]) {
  const requests = Number(requestsText);
  if (!base || !(requests > 0) || !email || !password || !token) {
    console.error('usage: node bench/tenant.mjs pages BASE REQUESTS ADMIN_EMAIL ADMIN_PASSWORD TOKEN < QUERIES');
    process.exit(2);
  }
  const queries = (await new Promise((resolve) => {
    const chunks = [];
    process.stdin.on('data', (c) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks).toString()));
  })).split('\n').filter(Boolean).map((line) => {
    const [kind, label, path] = line.split('|');
    if (!['api', 'dash'].includes(kind) || !label || !path) fail(`bad query line: ${line}`);
    return { kind, label, path };
  });

  // The dashboard's session: /admin/login → /authorize → the hosted login page →
  // /admin/callback, which sets the session cookie.
  const session = new Map();
  let res = await request(new URL('/admin/login?return_to=/admin/users', base), { cookies: session });
  if (res.status !== 303 && res.status !== 302) fail(`/admin/login answered ${res.status}`);
  res = await request(new URL(res.headers.location, base), { cookies: session });
  if (res.status !== 302) fail(`/authorize (the dashboard's) answered ${res.status}: ${res.body.slice(0, 200)}`);
  const callback = await hostedLogin(base, res.headers.location, session, email, password);
  res = await request(callback, { cookies: session });
  if (res.status >= 400) fail(`/admin/callback answered ${res.status}: ${res.body.slice(0, 300)}`);

  const out = [];
  for (const { kind, label, path } of queries) {
    const options = kind === 'api'
      ? { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } }
      : { cookies: session };
    const times = [];
    for (let n = 0; n < requests; n++) {
      const started = process.hrtime.bigint();
      const answer = await request(new URL(path, base), options);
      times.push(Number(process.hrtime.bigint() - started) / 1e6);
      if (answer.status !== 200) fail(`${kind} ${label} answered ${answer.status}: ${answer.body.slice(0, 300)}`);
      if (n === 0) {
        // Each query finds users: an empty answer would time nothing worth knowing.
        const found = kind === 'api'
          ? (() => { const b = JSON.parse(answer.body); return (b.users ?? b).length; })()
          : (answer.body.match(/href="\/admin\/users\/auth0/g) ?? []).length;
        if (!found) fail(`${kind} ${label} found no user`);
      }
    }
    times.sort((a, b) => a - b);
    out.push({ kind, label, median_ms: median(times), max_ms: times.at(-1) });
  }
  console.log(JSON.stringify({ queries: out }));
}

try {
  if (mode === 'logins') await logins(args);
  else if (mode === 'pages') await pages(args);
  else {
    console.error('usage: node bench/tenant.mjs logins|pages …');
    process.exit(2);
  }
} catch (error) {
  fail(error.message);
} finally {
  request.close();
}
