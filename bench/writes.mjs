// Load for bench/writes.sh: the write paths, with CLIENTS clients at once.
//
//   node bench/writes.mjs rotation BASE CLIENT_ID CALLBACK EMAIL PASSWORD AUDIENCE CLIENTS SECONDS
//     Each client signs in once (the hosted form; scope openid offline_access), then
//     redeems its refresh token over and over for SECONDS (after 2 s of warm-up), each
//     answer's new token being the next one presented.
//   node bench/writes.mjs code BASE CLIENT_ID CALLBACK EMAIL PASSWORD AUDIENCE CLIENTS SECONDS
//     Each client signs in once, then runs the code cycle with its SSO session: /authorize
//     answers with a code at once (no form), and the code is redeemed at /oauth/token.
//   node bench/writes.mjs login BASE CLIENT_ID CALLBACK EMAIL PASSWORD AUDIENCE CLIENTS COUNT
//     CLIENTS clients sign in COUNT times each through the hosted form (/authorize, the
//     form, the code redeemed), all at once.
//   node bench/writes.mjs floor BASE CLIENT_ID CALLBACK EMAIL PASSWORD AUDIENCE CLIENTS SECONDS
//     The rotation's requests against crates/server/examples/sign_floor.rs at BASE (an
//     HTTP server that only signs the two tokens): no sign-in, the other arguments unused.
//
// Prints one JSON line: {ops, seconds, per_second, p50_ms, p99_ms, errors, signatures, writes,
// commits, server_cpu_s} (signatures: tokens signed per operation, read from the answers; writes
// and commits: how far the server's tessera_db_writes_total and tessera_db_commits_total moved
// during the measured part, read from BENCH_METRICS_URL when set; server_cpu_s: the CPU time
// the process BENCH_SERVER_PID used meanwhile, when set). Each client uses its own loopback
// address (127.0.0.2 and up): the login form is throttled per address.

import fs from 'node:fs';
import { hidden, httpClient } from './http.mjs';
import { createHash, randomBytes } from 'node:crypto';

const [mode, base, clientId, callback, email, password, audience, clientsText, amountText] = process.argv.slice(2);
const clients = Number(clientsText);
const amount = Number(amountText);
if (!['rotation', 'code', 'login', 'floor'].includes(mode) || !audience || !(clients > 0 && clients <= 250) || !(amount > 0)) {
  console.error('usage: node bench/writes.mjs rotation|code|login|floor BASE CLIENT_ID CALLBACK EMAIL PASSWORD AUDIENCE CLIENTS SECONDS|COUNT');
  process.exit(2);
}

const request = httpClient({ maxSockets: 1024, timeout: 60000 });

/** /authorize; with a session it answers with the code, else the hosted form is filled in. */
async function codeFor(client, scope) {
  const verifier = randomBytes(32).toString('base64url');
  const authorize = new URL('/authorize', base);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: clientId, redirect_uri: callback, scope, audience,
    state: 'bench', code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  })) authorize.searchParams.set(k, v);
  const { cookies, localAddress } = client;
  let res = await request(authorize, { cookies, localAddress });
  if (res.status !== 302) throw new Error(`/authorize answered ${res.status}`);
  let back = new URL(res.headers.location, base);
  if (!back.searchParams.get('code')) {
    const page = await request(back, { cookies, localAddress });
    res = await request(new URL('/u/login', base), {
      method: 'POST', cookies, localAddress,
      form: { state: hidden(page.body, 'state'), csrf: hidden(page.body, 'csrf'), username: email, password },
    });
    if (res.status !== 303) throw new Error(`the login form answered ${res.status}: ${res.body.slice(0, 200)}`);
    res = await request(new URL(res.headers.location, base), { cookies, localAddress });
    back = new URL(res.headers.location ?? '', base);
  }
  const code = back.searchParams.get('code');
  if (!code) throw new Error(`no code: ${res.status} ${res.headers.location}`);
  return { code, verifier };
}

async function redeem(client, { code, verifier }) {
  const res = await request(new URL('/oauth/token', base), {
    method: 'POST', localAddress: client.localAddress,
    form: { grant_type: 'authorization_code', client_id: clientId, code, redirect_uri: callback, code_verifier: verifier },
  });
  if (res.status !== 200) throw new Error(`/oauth/token answered ${res.status}: ${res.body.slice(0, 200)}`);
  return JSON.parse(res.body);
}

const signed = (tokens) => (tokens.access_token ? 1 : 0) + (tokens.id_token ? 1 : 0);

async function rotate(client) {
  const res = await request(new URL('/oauth/token', base), {
    method: 'POST', localAddress: client.localAddress,
    form: { grant_type: 'refresh_token', client_id: clientId, refresh_token: client.refresh },
  });
  if (res.status !== 200) throw new Error(`refresh answered ${res.status}: ${res.body.slice(0, 200)}`);
  const tokens = JSON.parse(res.body);
  if (!tokens.refresh_token || tokens.refresh_token === client.refresh) throw new Error('the refresh token did not rotate');
  client.refresh = tokens.refresh_token;
  return tokens;
}

/** The server's CPU seconds so far (utime + stime of BENCH_SERVER_PID; 0 without it). */
function serverCpu() {
  const pid = process.env.BENCH_SERVER_PID;
  if (!pid) return 0;
  // The fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * The context switches of all the server's threads so far (voluntary and not; 0 without
 * BENCH_SERVER_PID): each hand-over to a database connection's thread and back costs two.
 */
function serverSwitches() {
  const pid = process.env.BENCH_SERVER_PID;
  if (!pid) return 0;
  let total = 0;
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8');
      for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) total += Number(m[1]);
    } catch {
      // A thread that ended between the listing and the read: its switches are gone either way.
    }
  }
  return total;
}

/** The server's write and commit counters (zeros without BENCH_METRICS_URL), CPU and switches now. */
async function counters() {
  const cpu = serverCpu();
  const switches = serverSwitches();
  if (!process.env.BENCH_METRICS_URL) return { writes: 0, commits: 0, cpu, switches };
  const text = (await request(new URL(process.env.BENCH_METRICS_URL), {})).body;
  const value = (name) => Number(text.match(new RegExp(`^${name} (\\d+)$`, 'm'))?.[1] ?? NaN);
  return { writes: value('tessera_db_writes_total'), commits: value('tessera_db_commits_total'), cpu, switches };
}

const times = [];
let errors = 0;
let signatures = 0;
const firstError = [];
const timed = async (op) => {
  const started = process.hrtime.bigint();
  try {
    const tokens = await op();
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
    signatures = signed(tokens);
  } catch (error) {
    errors += 1;
    if (firstError.length === 0) firstError.push(String(error.message ?? error));
  }
};

const all = Array.from({ length: clients }, (_, i) => ({
  cookies: new Map(), localAddress: `127.0.${2 + Math.floor(i / 250)}.${2 + (i % 250)}`, refresh: undefined,
}));
let seconds;
let before;
if (mode === 'login') {
  before = await counters();
  const started = process.hrtime.bigint();
  await Promise.all(all.map(async (client) => {
    for (let i = 0; i < amount; i++) {
      client.cookies = new Map();
      await timed(async () => redeem(client, await codeFor(client, 'openid')));
    }
  }));
  seconds = Number(process.hrtime.bigint() - started) / 1e9;
} else {
  const scope = mode === 'code' ? 'openid' : 'openid offline_access';
  await Promise.all(all.map(async (client) => {
    if (mode === 'floor') {
      client.refresh = 'floor';
      return;
    }
    const tokens = await redeem(client, await codeFor(client, scope));
    client.refresh = tokens.refresh_token;
    if (mode === 'rotation' && !client.refresh) throw new Error('no refresh token: offline_access not allowed?');
  }));
  const op = mode !== 'code'
    ? (client) => rotate(client)
    : async (client) => redeem(client, await codeFor(client, scope));
  const run = async (ms, counting) => {
    const until = Date.now() + ms;
    await Promise.all(all.map(async (client) => {
      while (Date.now() < until) {
        if (counting) await timed(() => op(client));
        else await op(client).catch(() => {});
      }
    }));
  };
  await run(2000, false);
  before = await counters();
  const started = process.hrtime.bigint();
  await run(amount * 1000, true);
  seconds = Number(process.hrtime.bigint() - started) / 1e9;
}
const after = await counters();
times.sort((a, b) => a - b);
const at = (p) => (times.length ? times[Math.min(times.length - 1, Math.ceil((p / 100) * times.length) - 1)] : NaN);
console.log(JSON.stringify({
  mode, clients, ops: times.length, seconds, per_second: times.length / seconds,
  p50_ms: at(50), p99_ms: at(99), errors, first_error: firstError[0] ?? null, signatures,
  writes: after.writes - before.writes, commits: after.commits - before.commits,
  server_cpu_s: after.cpu - before.cpu, server_switches: after.switches - before.switches,
}));
request.close();
