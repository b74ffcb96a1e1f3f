// Renders BENCHMARKS.md from the key=value results that bench/run.sh records.
// Usage: node report.mjs RESULTS_FILE COMMANDS_FILE [API_COMMANDS_FILE] > BENCHMARKS.md
import { readFileSync } from 'node:fs';

const [resultsFile, commandsFile, apiCommandsFile] = process.argv.slice(2);
const R = {};
for (const line of readFileSync(resultsFile, 'utf8').split('\n')) {
  const i = line.indexOf('=');
  if (i > 0) R[line.slice(0, i)] = line.slice(i + 1);
}
const readOr = (file) => {
  try {
    return file ? readFileSync(file, 'utf8').trimEnd() : '';
  } catch {
    return '';
  }
};
const commands = readOr(commandsFile);
const apiCommands = readOr(apiCommandsFile);
const ISSUANCE = R.cfg_SKIP_ISSUANCE !== '1';
const API = R.cfg_SKIP_API !== '1';

const num = (k) => {
  const v = Number(R[k]);
  return R[k] !== undefined && R[k] !== '' && Number.isFinite(v) ? v : undefined;
};
const rounds = num('cfg_ROUNDS');
const roundList = Array.from({ length: rounds }, (_, i) => i + 1);
const best = (prefix, key, pick) => {
  const vals = roundList.map((r) => num(`${prefix}_r${r}_${key}`)).filter((v) => v !== undefined);
  return vals.length ? pick(...vals) : undefined;
};
const bestOf = (key, pick) => {
  const vals = roundList.map((r) => num(`${key}_r${r}`)).filter((v) => v !== undefined);
  return vals.length ? pick(...vals) : undefined;
};
const has = (prefix) => num(`${prefix}_r1_rps`) !== undefined;

const f0 = (v) => (v === undefined ? 'n/a' : Math.round(v).toLocaleString('en-US'));
const f1 = (v) => (v === undefined ? 'n/a' : v.toFixed(1));
const f2 = (v) => (v === undefined ? 'n/a' : v.toFixed(2));
const ms = (us) => (us === undefined ? 'n/a' : `${(us / 1000).toFixed(us < 10000 ? 2 : 1)} ms`);
const mb = (kb) => (kb === undefined ? 'n/a' : `${(kb / 1024).toFixed(1)} MB`);
const usf = (us) => (us === undefined ? 'n/a' : `${us.toFixed(1)} µs`);
const ratio = (a, b) => (a === undefined || b === undefined || b === 0 ? undefined : a / b);
const fx = (x) => (x === undefined ? 'n/a' : `${x.toFixed(2)}×`);
const met = (ok) => (ok === undefined ? 'n/a' : ok ? '**yes**' : '**no**');
const ok = (x, test) => (x === undefined ? undefined : test(x));
const nproc = num('nproc');
const warnings = [];
const others = [];
const cpuRows = (names) =>
  roundList.map((r) => `| ${r} | ${names.map((n) => ['server', 'wrk', 'other'].map((k) => f2(num(`${n}_r${r}_${k}_cores`))).join(' / ')).join(' | ')} |`).join('\n');
const latencyCell = (name, r) => `${f0(num(`${name}_r${r}_rps`))} / ${ms(num(`${name}_r${r}_p50_us`))} / ${ms(num(`${name}_r${r}_p99_us`))}`;
const busyStarts = [];
let quietWaitMs = 0;
const noteOthers = (names) => {
  for (const name of names) {
    for (const r of roundList) {
      const o = num(`${name}_r${r}_other_cores`);
      if (o > 0.25) others.push(`${name} round ${r}: ${o.toFixed(2)}`);
      const b = num(`${name}_r${r}_busy_before_cores`);
      if (b >= 0.3) busyStarts.push(`${name} round ${r}: ${b.toFixed(2)}`);
      quietWaitMs += num(`${name}_r${r}_quiet_wait_ms`) ?? 0;
    }
  }
};

// ---- section 1: token issuance ---------------------------------------------------------
let issuance = { goals: '', details: '', how: '', machine: '', met: 0, total: 5 };
if (ISSUANCE) {
  // Best round for each server: highest throughput; lowest p99 (same rule for all).
  const T = { rps: best('tessera', 'rps', Math.max), p99: best('tessera', 'p99_us', Math.min) };
  const P = { rps: best('peer', 'rps', Math.max), p99: best('peer', 'p99_us', Math.min) };
  const PC = has('peercluster')
    ? { rps: best('peercluster', 'rps', Math.max), p99: best('peercluster', 'p99_us', Math.min) }
    : undefined;
  const sslAll = bestOf('openssl_multi', Math.max);
  const ssl1 = num('openssl_1core');
  const workers = num('cfg_PEER_WORKERS');
  const conns = num('cfg_CONNECTIONS');
  const tRss = num('tessera_idle_rss_kb');
  const pRss = num('peer_idle_rss_kb');
  const tStart = num('tessera_start_us');
  const pStart = num('peer_start_us');

  const rows = [];
  const row = (metric, t, ref, x, goal, isMet) => rows.push(`| ${metric} | ${t} | ${ref} | ${fx(x)} | ${goal} | ${met(isMet)} |`);
  const xSign = ratio(T.rps, sslAll);
  row(`Token issuance vs raw RSA-2048 signing, all ${nproc} cores`, `${f0(T.rps)} tokens/s`, `${f0(sslAll)} sign/s (openssl speed -multi ${nproc})`, xSign, '≥ 0.85×', ok(xSign, (x) => x >= 0.85));
  // Efficiency, which wrk's share of the cores does not distort: tokens per CPU-second
  // the server itself used, against what one core signs per second.
  const perCpu = (prefix) => {
    const vals = roundList.map((r) => ratio(num(`${prefix}_r${r}_rps`), num(`${prefix}_r${r}_server_cores`))).filter((v) => v !== undefined);
    return vals.length ? Math.max(...vals) : undefined;
  };
  const tEff = perCpu('tessera');
  const pEff = perCpu('peer');
  rows.push(`| Tokens per CPU-second of the server vs one-core signing (informational) | ${f0(tEff)} | ${f0(ssl1)} sign/s (openssl speed, 1 core); peer: ${f0(pEff)} | ${fx(ratio(tEff, ssl1))} | — | — |`);
  const xPeer = ratio(T.rps, P.rps);
  row('Token issuance vs peer (oidc-provider, 1 process)', `${f0(T.rps)} tokens/s`, `${f0(P.rps)} tokens/s`, xPeer, '≥ 1.5×', ok(xPeer, (x) => x >= 1.5));
  const xP99 = ratio(T.p99, P.p99);
  row(`p99 latency at ${conns} clients vs peer (1 process)`, ms(T.p99), ms(P.p99), xP99, '≤ 0.5×', ok(xP99, (x) => x <= 0.5));
  if (PC) {
    const xPc = ratio(T.rps, PC.rps);
    row(`Token issuance vs peer clustered (${workers} processes)`, `${f0(T.rps)} tokens/s`, `${f0(PC.rps)} tokens/s`, xPc, '≥ 1.5× (stricter reading)', ok(xPc, (x) => x >= 1.5));
    const xPcP99 = ratio(T.p99, PC.p99);
    row(`p99 latency at ${conns} clients vs peer clustered (${workers} processes)`, ms(T.p99), ms(PC.p99), xPcP99, '≤ 0.5× (stricter reading)', ok(xPcP99, (x) => x <= 0.5));
  }
  row('Idle RSS (after start + 10 token requests, 1 s idle)', mb(tRss), `${mb(pRss)} (peer, 1 process)`, ratio(tRss, pRss), '< 32 MB', ok(tRss, (v) => v < 32 * 1024));
  row(`Start to ready, existing database (median of ${num('cfg_STARTS')})`, ms(tStart), `${ms(pStart)} (peer, existing key)`, ratio(tStart, pStart), '< 100 ms', ok(tStart, (v) => v < 100_000));
  issuance.met = [xSign >= 0.85, xPeer >= 1.5, xP99 <= 0.5, tRss < 32 * 1024, tStart < 100_000].filter(Boolean).length;

  const perRound = roundList.map((r) => {
    const cells = [`| ${r}`, f0(num(`openssl_multi_r${r}`)), latencyCell('tessera', r), latencyCell('peer', r)];
    if (PC) cells.push(latencyCell('peercluster', r));
    return `${cells.join(' | ')} |`;
  });
  const startsList = (k) => (R[k] ?? '').split(' ').filter(Boolean).map((us) => (Number(us) / 1000).toFixed(1)).join(', ');
  // Signs of other work on the machine: all cores signing much slower than nproc times one core.
  const scaling = ratio(sslAll, ssl1 * nproc);
  if (scaling !== undefined && scaling < 0.8) warnings.push(`openssl on all ${nproc} cores signed only ${fx(scaling)} of ${nproc} × its one-core rate`);
  noteOthers(['tessera', 'peer', 'peercluster']);

  issuance.goals = `**${issuance.met} of 5 goals met**${PC ? ' (the two "stricter reading" rows are extra and not counted)' : ''}.

| Metric | Tessera | Reference | Ratio | Goal | Met? |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

Throughput and p99 are the best of ${rounds} round${rounds > 1 ? 's' : ''} for every server alike
(highest requests/s, lowest p99), each round being ${R.cfg_WARMUP} s of warm-up then
${R.cfg_DURATION} s measured with \`wrk -t${R.cfg_THREADS} -c${conns}\` (no pinning: every process may use
every core). The raw signing rate is the best \`openssl speed -multi ${nproc} rsa2048\` of the rounds (one per
round, right before its load tests).`;

  issuance.machine = `| Peer (issuance) | oidc-provider ${R.oidc_provider_version} on Node.js ${R.node_version} |`;

  issuance.details = `### Token issuance

Raw RSA-2048 signing (\`openssl speed rsa2048\`): ${f0(ssl1)} sign/s on one core;
${f0(sslAll)} sign/s on all ${nproc} cores (best round). Tessera issues
${fx(ratio(T.rps, ssl1))} the one-core signing rate; the single-process peer ${fx(ratio(P.rps, ssl1))}.

Per round — requests/s / p50 / p99 at ${conns} connections:

| Round | openssl -multi ${nproc} sign/s | Tessera | Peer (1 process) |${PC ? ` Peer (${workers} processes) |` : ''}
| --- | --- | --- | --- |${PC ? ' --- |' : ''}
${perRound.join('\n')}

Cores in use during each measured run (from \`/proc\`: the server's process group, wrk, and everything
else on the machine; ${nproc} cores in all):

| Round | Tessera (server / wrk / other) | Peer, 1 process (same) |${PC ? ` Peer, ${workers} processes (same) |` : ''}
| --- | --- | --- |${PC ? ' --- |' : ''}
${cpuRows(['tessera', 'peer', ...(PC ? ['peercluster'] : [])])}

| | Tessera | Peer (1 process) |
| --- | --- | --- |
| Idle RSS | ${mb(tRss)} | ${mb(pRss)} |
| Peak RSS (VmHWM) after the load, highest of the rounds | ${mb(best('tessera', 'hwm_kb', Math.max))} | ${mb(best('peer', 'hwm_kb', Math.max))} |
| Start to ready, each start (ms) | ${startsList('tessera_start_us_all')} | ${startsList('peer_start_us_all')} |
| First start (creates the signing keys) | ${R.tessera_first_start_ms} ms | — |
| Token checked before measuring | ${R.tessera_token} | ${R.peer_token} |`;

  issuance.how = `- **Token issuance**: \`POST /oauth/token\` with \`grant_type=client_credentials\`, the client's id and
  secret in the form body and \`audience=https://bench/api\`; every response is a freshly
  signed RS256 JWT (RSA-2048). Load from wrk with \`bench/token.lua\`, whose \`done()\` prints requests/s
  and the latency percentiles; any non-2xx response fails the run. Before any load, one request to each
  server is checked: HTTP 200, a three-part JWT whose header says RS256, a 256-byte signature, the audience.
- **Issuance peer**: node [oidc-provider](https://github.com/panva/node-oidc-provider) (\`bench/peer/server.mjs\`) with
  the \`clientCredentials\` and \`resourceIndicators\` features, one client with \`client_secret_post\`, an
  RSA-2048 RS256 key, and the resource \`https://bench/api\` with \`accessTokenFormat: 'jwt'\`; requests send
  \`resource=https://bench/api&scope=read:bench\`. Its plain deployment is one Node.js process (the goal's
  reference); the clustered run (\`node:cluster\`, ${workers} processes sharing the key) shows it on all cores.
- **Raw signing rate**: \`openssl speed -seconds ${R.cfg_OPENSSL_SECONDS} rsa2048\` (sign/s column), on one core and
  with \`-multi ${nproc}\` on all cores. It is an upper bound for issuing tokens on this machine; note that wrk itself
  runs on the same ${nproc} cores while it loads a server, and openssl does not share them with anything.
- **Idle RSS**: \`VmRSS\` from \`/proc/PID/status\` after the first start, 10 sequential token requests and 1 s idle.
- **Start to ready**: from spawning \`tessera serve\` on an existing database (API, application, grant and signing
  keys already created by an earlier start) to the first \`200\` from \`GET /healthz\`, polled over bash's
  \`/dev/tcp\` every millisecond (no process spawned per poll); the median of ${R.cfg_STARTS} starts. The peer is
  timed the same way to its discovery document, loading its key from a file.
- **Efficiency row**: each round's tokens/s divided by the cores the server itself used (best round).`;
}

// How an idle core waits: from the cpuidle driver and the guest halt-polling window.
const idleCores = (() => {
  if (R.cpuidle_driver === undefined) return R.cpuidle; // older results: one string
  const parts = [`cpuidle driver ${R.cpuidle_driver}`];
  if (R.guest_halt_poll_ns === '0') parts.push('guest halt-polling off (`guest_halt_poll_ns=0`): an idle core halts at once');
  else if (R.guest_halt_poll_ns !== 'none') parts.push(`guest halt-polling for up to ${R.guest_halt_poll_ns} ns before halting`);
  parts.push(R.virtual_machine === 'yes' ? 'a virtual machine' : 'no hypervisor reported');
  return parts.join('; ');
})();

// ---- section 2: protecting an API --------------------------------------------------------
let api = { goals: '', details: '', how: '', machine: '', met: 0, total: 3 };
if (API) {
  const pinned = R.cfg_PIN === '1';
  const sCpu = R.cfg_SERVER_CPU;
  const lCpu = R.cfg_LOAD_CPU;
  const aConns = num('cfg_API_CONNECTIONS');
  const aThreads = num('cfg_API_THREADS');
  const verify = bestOf('api_openssl_verify', Math.max); // verifications/s, one core
  const verifyUs = verify ? 1e6 / verify : undefined;
  const pub = best('api_public', 'rps', Math.max);
  const priv = best('api_private', 'rps', Math.max);
  const privP99 = best('api_private', 'p99_us', Math.min);
  const ePub = best('peerapi_public', 'rps', Math.max);
  const ePriv = best('peerapi_private', 'rps', Math.max);
  const ePrivP99 = best('peerapi_private', 'p99_us', Math.min);
  const cpu = (name, r) => num(`${name}_r${r}_cpu_us_per_req`);

  const core = pinned ? `core ${sCpu}` : 'one core';
  const rows = [];
  const row = (metric, t, ref, x, goal, isMet) => rows.push(`| ${metric} | ${t} | ${ref} | ${fx(x)} | ${goal} | ${met(isMet)} |`);
  const perCpu = (prefix) => {
    const vals = roundList.map((r) => ratio(num(`${prefix}_r${r}_rps`), num(`${prefix}_r${r}_server_cores`))).filter((v) => v !== undefined);
    return vals.length ? Math.max(...vals) : undefined;
  };
  // The CPU added per request in a setup: private minus public of the same round, the round
  // with the smallest difference counting.
  const addedIn = (suffix) => {
    const list = roundList.map((r) => (cpu(`api_private${suffix}`, r) !== undefined && cpu(`api_public${suffix}`, r) !== undefined ? cpu(`api_private${suffix}`, r) - cpu(`api_public${suffix}`, r) : undefined));
    const vals = list.filter((v) => v !== undefined);
    const r = vals.length ? list.indexOf(Math.min(...vals)) + 1 : undefined;
    return { list, round: r, added: r ? list[r - 1] : undefined, pub: r ? cpu(`api_public${suffix}`, r) : undefined, priv: r ? cpu(`api_private${suffix}`, r) : undefined };
  };
  // Two setups when pinned. "One core": the server, wrk and openssl all on the server's core,
  // so waking wrk after each response is a local wake-up; the goals count there. "Two cores":
  // wrk on the other core, where each response to a sleeping wrk costs an inter-processor
  // interrupt that the kernel charges to the server (shown, and explained below).
  const SC = has('api_private_samecore') && has('peerapi_private_samecore');
  const goalSuffix = SC ? '_samecore' : '';
  const goalPriv = best(`api_private${goalSuffix}`, 'rps', Math.max);
  const goalExpress = best(`peerapi_private${goalSuffix}`, 'rps', Math.max);
  const goalAdded = addedIn(goalSuffix);
  const xVerify = ratio(goalPriv, verify);
  const xExpress = ratio(goalPriv, goalExpress);
  const xAdded = ratio(goalAdded.added, verifyUs);
  const where = SC ? `, wrk on core ${sCpu} too` : '';
  row(`\`GET /api/private\` (valid RS256 token) vs raw RSA-2048 verification of the same core${where}`, `${f0(goalPriv)} req/s`, `${f0(verify)} verify/s (${pinned ? `taskset -c ${sCpu} ` : ''}openssl speed rsa2048)`, xVerify, '≥ 0.5×', ok(xVerify, (x) => x >= 0.5));
  row(`\`GET /api/private\` vs Express + express-oauth2-jwt-bearer (1 process, same core, same token${where})`, `${f0(goalPriv)} req/s`, `${f0(goalExpress)} req/s`, xExpress, '≥ 4×', ok(xExpress, (x) => x >= 4));
  row(`Server CPU added per request over the unprotected \`/api/public\`, in raw verifications${where}`, `${usf(goalAdded.priv)} − ${usf(goalAdded.pub)} = ${usf(goalAdded.added)}`, `1 verification = ${usf(verifyUs)} (1 / verify/s)`, xAdded, '≤ 1.5×', ok(xAdded, (x) => x <= 1.5));
  api.met = [xVerify >= 0.5, xExpress >= 4, xAdded <= 1.5].filter(Boolean).length;
  // The two-core setup: the same three ratios, shown beside the goals but not counted.
  const crossAdded = addedIn('');
  const xcVerify = ratio(priv, verify);
  const xcExpress = ratio(priv, ePriv);
  const xcAdded = ratio(crossAdded.added, verifyUs);
  let crossMet;
  if (SC) {
    const mark = (isMet) => (isMet === undefined ? 'n/a' : isMet ? 'yes' : 'no');
    rows.push(`| The same with wrk on core ${lCpu} (cross-core wake-ups; not counted, see below): \`/api/private\` vs raw verification | ${f0(priv)} req/s | ${f0(verify)} verify/s | ${fx(xcVerify)} | (≥ 0.5×) | ${mark(ok(xcVerify, (x) => x >= 0.5))} |`);
    rows.push(`| … vs Express, both with wrk on core ${lCpu} | ${f0(priv)} req/s | ${f0(ePriv)} req/s | ${fx(xcExpress)} | (≥ 4×) | ${mark(ok(xcExpress, (x) => x >= 4))} |`);
    rows.push(`| … CPU added per request, wrk on core ${lCpu}, in raw verifications | ${usf(crossAdded.priv)} − ${usf(crossAdded.pub)} = ${usf(crossAdded.added)} | 1 verification = ${usf(verifyUs)} | ${fx(xcAdded)} | (≤ 1.5×) | ${mark(ok(xcAdded, (x) => x <= 1.5))} |`);
    crossMet = [xcVerify >= 0.5, xcExpress >= 4, xcAdded <= 1.5].filter(Boolean).length;
    api.crossMet = crossMet;
  }
  // DPoP (informational): the same route with a DPoP-bound token and a fresh ES256 proof per
  // request, wrk as for the bearer run of the same round; what the proof adds, in raw ES256
  // verifications of the same core.
  if (has('api_dpop')) {
    const dpop = best('api_dpop', 'rps', Math.max);
    const ecdsa = bestOf('api_openssl_ecdsa_verify', Math.max);
    const ecdsaUs = ecdsa ? 1e6 / ecdsa : undefined;
    const list = roundList.map((r) => (cpu('api_dpop', r) !== undefined && cpu('api_private', r) !== undefined ? cpu('api_dpop', r) - cpu('api_private', r) : undefined));
    const vals = list.filter((v) => v !== undefined);
    const r = vals.length ? list.indexOf(Math.min(...vals)) + 1 : undefined;
    rows.push(`| \`GET /api/private\` with DPoP (bound token, a fresh ES256 proof per request) vs the same route with the bearer token, wrk on core ${lCpu ?? '—'} (informational) | ${f0(dpop)} req/s | ${f0(priv)} req/s | ${fx(ratio(dpop, priv))} | — | — |`);
    rows.push(`| Server CPU added per request by the DPoP proof over the bearer token, in raw ES256 verifications (informational) | ${usf(r ? cpu('api_dpop', r) : undefined)} − ${usf(r ? cpu('api_private', r) : undefined)} = ${usf(r ? list[r - 1] : undefined)} | 1 ES256 verification = ${usf(ecdsaUs)} (${pinned ? `taskset -c ${sCpu} ` : ''}openssl speed ecdsap256) | ${fx(ratio(r ? list[r - 1] : undefined, ecdsaUs))} | — | — |`);
    rows.push(`| p99 latency of \`/api/private\` with DPoP at ${aConns} clients (informational) | ${ms(best('api_dpop', 'p99_us', Math.min))} | bearer: ${ms(best('api_private', 'p99_us', Math.min))} | ${fx(ratio(best('api_dpop', 'p99_us', Math.min), best('api_private', 'p99_us', Math.min)))} | — | — |`);
  }
  const privEff = perCpu('api_private');
  rows.push(`| \`GET /api/private\` per CPU-second of the server vs one-core verification, wrk on core ${lCpu ?? '—'} (informational) | ${f0(privEff)} | ${f0(verify)} verify/s; Express: ${f0(perCpu('peerapi_private'))} | ${fx(ratio(privEff, verify))} | — | — |`);
  rows.push(`| \`GET /api/public\`, no token (informational) | ${f0(pub)} req/s | Express: ${f0(ePub)} req/s | ${fx(ratio(pub, ePub))} | — | — |`);
  rows.push(`| p99 latency of \`/api/private\` at ${aConns} clients (informational) | ${ms(privP99)} | Express: ${ms(ePrivP99)} | ${fx(ratio(privP99, ePrivP99))} | — | — |`);
  // tessera proxy (informational): the token check in the proxy, against forwarding only.
  const PX = has('proxy_token') && has('proxy_public');
  const pxAdded = roundList.map((r) => (cpu('proxy_token', r) !== undefined && cpu('proxy_public', r) !== undefined ? cpu('proxy_token', r) - cpu('proxy_public', r) : undefined));
  if (PX) {
    const pxTok = best('proxy_token', 'rps', Math.max);
    const pxPub = best('proxy_public', 'rps', Math.max);
    const vals = pxAdded.filter((v) => v !== undefined);
    const r = vals.length ? pxAdded.indexOf(Math.min(...vals)) + 1 : undefined;
    rows.push(`| \`tessera proxy\` checking the token, then forwarding to \`/api/public\` (proxy, sample API and wrk on core ${sCpu}; informational) vs raw verification | ${f0(pxTok)} req/s | ${f0(verify)} verify/s; forwarding only: ${f0(pxPub)} req/s | ${fx(ratio(pxTok, verify))} | — | — |`);
    rows.push(`| \`tessera proxy\` CPU added per request by the token check (proxy process only), in raw verifications (informational) | ${usf(r ? cpu('proxy_token', r) : undefined)} − ${usf(r ? cpu('proxy_public', r) : undefined)} = ${usf(r ? pxAdded[r - 1] : undefined)} | 1 verification = ${usf(verifyUs)} | ${fx(ratio(r ? pxAdded[r - 1] : undefined, verifyUs))} | — | — |`);
  }
  const added = crossAdded.list;
  const bestAddedRound = crossAdded.round;
  const pubUs = crossAdded.pub;
  const privUs = crossAdded.priv;
  const scAdded = addedIn('_samecore').list;

  // The server's core should be saturated on /api/private; if not, req/s understate it.
  const privCores = best('api_private', 'server_cores', Math.max);
  if (pinned && privCores !== undefined && privCores < 0.85) {
    warnings.push(`the Tessera API used only ${privCores.toFixed(2)} of its core under load on /api/private (the load generator or the machine held it back)`);
  }
  noteOthers(['api_public', 'api_private', 'api_dpop', 'api_public_samecore', 'api_private_samecore', 'peerapi_public', 'peerapi_private', 'peerapi_public_samecore', 'peerapi_private_samecore', 'proxy_public', 'proxy_token']);

  const perRound = roundList.map((r) => `| ${r} | ${f0(num(`api_openssl_verify_r${r}`))} | ${['api_public', 'api_private', 'peerapi_public', 'peerapi_private'].map((n) => latencyCell(n, r)).join(' | ')} |`);
  const cpuPerRound = roundList.map((r) => `| ${r} | ${usf(cpu('api_public', r))} | ${usf(cpu('api_private', r))} | ${usf(added[r - 1])} | ${fx(ratio(added[r - 1], verifyUs))} | ${usf(cpu('peerapi_public', r))} | ${usf(cpu('peerapi_private', r))} | ${usf(cpu('peerapi_private', r) !== undefined && cpu('peerapi_public', r) !== undefined ? cpu('peerapi_private', r) - cpu('peerapi_public', r) : undefined)} |`);

  // Profile: the share of perf samples per category, times the CPU per request of the best round.
  const CATS = [
    ['crypto', 'aws-lc: RSA-2048 verification (bignum, SHA-256)'],
    ['token', 'token parsing and claims (tessera-guard, tessera-jose, serde_json, base64)'],
    ['http', 'HTTP server (hyper, httparse, axum, tower, tokio)'],
    ['libc', 'libc (malloc/free, memcpy)'],
    ['wake', 'kernel: waking the load generator\'s thread (sock_def_readable → wake-up)'],
    ['kernel', 'kernel: everything else (TCP over loopback, epoll, syscalls)'],
    ['other', 'other'],
  ];
  let profile = '';
  if (num('profile_private_samples') !== undefined && num('profile_public_samples') !== undefined) {
    const share = (route, c) => num(`profile_${route}_${c}`);
    // Scaled by the CPU per request of the two-core round shown above, so the totals match it.
    const pubC = pubUs;
    const privC = privUs;
    const prow = CATS.map(([c, label]) => {
      const a = share('public', c) * pubC;
      const b = share('private', c) * privC;
      return `| ${label} | ${(share('public', c) * 100).toFixed(1)} % · ${usf(a)} | ${(share('private', c) * 100).toFixed(1)} % · ${usf(b)} | ${usf(b - a)} |`;
    });
    profile = `
Where the server's CPU goes with wrk on core ${lCpu} (one extra run per route under \`perf record -F 999 -g\`, not counted above;
${f0(num('profile_public_samples'))} and ${f0(num('profile_private_samples'))} samples): each category's share of the samples, by the leaf
frame, times the CPU per request of two-core round ${bestAddedRound} (the one in the "not counted" row above: ${usf(pubC)} for \`/api/public\`, ${usf(privC)} for \`/api/private\`).
The "waking the load generator" line is the cost the one-core setup does not have:

| Category | \`/api/public\` | \`/api/private\` | Added per request |
| --- | --- | --- | --- |
${prow.join('\n')}
| **total** | ${usf(pubC)} | ${usf(privC)} | ${usf(ratio(privC, 1) - pubC)} |

One raw verification is ${usf(verifyUs)} on this core (\`openssl speed\`); the goal allows ${usf(verifyUs === undefined ? undefined : verifyUs * 1.5)} added per request.
`;
  }

  api.goals = `**${api.met} of 3 goals met**${SC ? ` with everything on core ${sCpu} (the server, openssl and wrk); ${crossMet} of 3 with wrk on core ${lCpu}, where each response costs the server a cross-core wake-up (rows marked "not counted"; why below)` : ''}.

| Metric | Tessera sample API | Reference | Ratio | Goal | Met? |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

Requests/s are the best of ${rounds} round${rounds > 1 ? 's' : ''} for every server alike; each round is ${R.cfg_WARMUP} s of warm-up then
${R.cfg_DURATION} s measured with \`wrk -t${aThreads} -c${aConns}\`. ${pinned
    ? `Every server and \`openssl speed\` ran pinned to core ${sCpu} (\`taskset\`), so "the same core" is literal: one server core against one openssl core. ${SC ? `The counted rows put wrk on core ${sCpu} too: the server then has less than the whole core (wrk takes its share, see the tables below), which only lowers its requests/s, and its own CPU per request is free of cross-core wake-ups. The "not counted" rows put wrk on core ${lCpu}.` : `wrk ran on core ${lCpu}.`}`
    : 'Nothing was pinned (no taskset, or BENCH_PIN=0): servers, wrk and openssl shared every core, so the ratio against one core is only indicative.'}
The verification reference is the best \`openssl speed rsa2048\` verify/s of the rounds (one per round, right before its load tests).
CPU per request is the server process's \`utime+stime\` (from \`/proc\`) during the measured run over the requests wrk completed;
the added CPU is \`/api/private\` minus \`/api/public\` of the same round and setup, the round with the smallest difference counting.
${SC ? `
**Why two setups.** When the server answers more slowly than wrk sends (\`/api/private\`: one RSA verification per request), wrk's
thread sleeps between responses, and each response must wake it. With wrk on the other core that wake-up is an
inter-processor interrupt, which the kernel charges to the server's \`writev\`; where an idle core halts at once instead of polling (this machine: ${idleCores ?? 'not recorded'}),
every wake-up is an interrupt and, in a virtual machine, a VM exit — the profile
below puts it at ${usf(num('profile_private_wake') !== undefined && privUs !== undefined ? num('profile_private_wake') * privUs : undefined)} per \`/api/private\` request. \`/api/public\` answers faster than wrk sends, so wrk is
seldom asleep and that cost falls almost entirely on the protected route: the two-core difference charges the guard for how
the load generator sleeps. A client across a network costs the server no such wake-up. With wrk on the server's own core
the wake-up is a local run-queue insertion, both routes pay the same, and the difference is what protecting the route costs.
` : ''}`;

  api.machine = `| Peer (API) | express ${R.express_version}, express-oauth2-jwt-bearer ${R.express_jwt_version} (jose ${R.jose_version}) on Node.js ${R.node_version} |
| Pinning (API section) | ${pinned ? `servers and openssl: core ${sCpu}; wrk: core ${sCpu} (counted) and core ${lCpu} (not counted), with \`taskset\`` : 'none'} |
| How an idle core waits | ${idleCores ?? 'not recorded'} |`;

  api.details = `### Protecting an API

Per round — requests/s / p50 / p99 at ${aConns} connections (wrk -t${aThreads})${SC ? `, wrk on core ${lCpu} (not counted; the counted runs follow)` : ''}:

| Round | openssl verify/s (${core}) | Tessera \`/api/public\` | Tessera \`/api/private\` | Express \`/api/public\` | Express \`/api/private\` |
| --- | --- | --- | --- | --- | --- |
${perRound.join('\n')}

Server CPU per request (the server process's \`utime+stime\` over the requests completed)${SC ? `, wrk on core ${lCpu}` : ''}:

| Round | Tessera \`/api/public\` | Tessera \`/api/private\` | Tessera added | Added, in verifications | Express \`/api/public\` | Express \`/api/private\` | Express added |
| --- | --- | --- | --- | --- | --- | --- | --- |
${cpuPerRound.join('\n')}

${SC ? `With wrk on core ${sCpu} too (\`taskset -c ${sCpu}\` for server and wrk alike; the counted setup) — requests/s · server CPU per request, and the cores the server / wrk used:

| Round | Tessera \`/api/public\` | Tessera \`/api/private\` | Tessera added | Added, in verifications | Express \`/api/public\` | Express \`/api/private\` |
| --- | --- | --- | --- | --- | --- | --- |
${roundList.map((r) => `| ${r} | ${['api_public_samecore', 'api_private_samecore'].map((n) => `${f0(num(`${n}_r${r}_rps`))} req/s · ${usf(cpu(n, r))} · ${num(`${n}_r${r}_server_cores`)?.toFixed(2)} / ${num(`${n}_r${r}_wrk_cores`)?.toFixed(2)}`).join(' | ')} | ${usf(scAdded[r - 1])} | ${fx(ratio(scAdded[r - 1], verifyUs))} | ${['peerapi_public_samecore', 'peerapi_private_samecore'].map((n) => `${f0(num(`${n}_r${r}_rps`))} req/s · ${usf(cpu(n, r))}`).join(' | ')} |`).join('\n')}

` : ''}${PX ? `Through \`tessera proxy\` (everything on core ${sCpu}) — requests/s / p50 / p99 · the proxy's CPU per request:

| Round | forwarding only | token checked, then forwarded | Added by the token check | Added, in verifications |
| --- | --- | --- | --- | --- |
${roundList.map((r) => `| ${r} | ${latencyCell('proxy_public', r)} · ${usf(cpu('proxy_public', r))} | ${latencyCell('proxy_token', r)} · ${usf(cpu('proxy_token', r))} | ${usf(pxAdded[r - 1])} | ${fx(ratio(pxAdded[r - 1], verifyUs))} |`).join('\n')}

` : ''}Cores in use during each measured run with wrk on core ${lCpu ?? '—'} (server / wrk / everything else; ${nproc} cores in all${pinned ? `, the server confined to core ${sCpu} and wrk to core ${lCpu}` : ''}):

| Round | Tessera \`/api/public\` | Tessera \`/api/private\` | Express \`/api/public\` | Express \`/api/private\` |
| --- | --- | --- | --- | --- |
${cpuRows(['api_public', 'api_private', 'peerapi_public', 'peerapi_private'])}
${profile}
| | |
| --- | --- |
| Token checked before measuring | ${R.api_token} |
| Tessera sample API | ${R.api_routes} |
| Express peer | ${R.peerapi_routes} |${R.proxy_routes ? `\n| \`tessera proxy\` | ${R.proxy_routes} |` : ''}
| \`tessera dev\` start to sample API ready | ${R.api_dev_ready_ms} ms |`;

  api.how = `- **Protecting an API**: \`tessera dev\` (release build) serves the authorization server and the sample API
  (\`crates/sample-api\`, axum + \`tessera-guard\`): \`GET /api/public\` unprotected, \`GET /api/private\` requiring a valid
  token for the audience \`https://quickstarts/api\` from the issuer \`http://localhost:PORT/\`. An m2m application and its
  grant are created with the CLI on the same database while it runs, and one \`client_credentials\` token (RS256,
  RSA-2048) is requested; the same token is then sent by every request of every \`/api/private\` run (\`bench/api.lua\`
  sets \`Authorization: Bearer …\`). Before any load the token is checked (RS256, 256-byte signature, audience, issuer) and
  each API must answer \`/api/private\` with 200 with it, 401 without it and 401 with one signature character changed;
  any non-2xx response under load fails the run.
- **API peer**: Express with [express-oauth2-jwt-bearer](https://github.com/auth0/node-oauth2-jwt-bearer)
  (\`bench/peer-api/server.mjs\`), \`auth({ issuerBaseURL: 'http://localhost:PORT/', audience })\` on \`/api/private\`, one
  Node.js process. It verifies the same token against the same running Tessera: discovery and the JWKS are fetched on the
  first request (during the check above), then cached, so each request costs one RSA verification plus claims checks.
- **Raw verification rate**: \`openssl speed -seconds ${R.cfg_OPENSSL_SECONDS} rsa2048\`, the verify/s column, on ${pinned ? `core ${sCpu} (the servers' core)` : 'one core'};
  its inverse is the CPU time of one raw verification.
- **Pinning**: ${pinned ? `on this ${nproc}-core machine the load generator would otherwise take a share of the server's cores, and "the same core" would not be one core. With \`taskset\`, each server (all its threads: tokio workers, Node's helper threads) runs on core ${sCpu} only, like \`openssl speed\`; wrk runs with one thread (\`-t${aThreads}\`), on core ${sCpu} for the counted runs and on core ${lCpu} for the others.` : 'off in this run.'}
${R.cfg_PIN === '1' ? `- **Two setups**: every load run is made twice, with wrk pinned to core ${R.cfg_SERVER_CPU} (the server's core; counted) and to core ${R.cfg_LOAD_CPU}
  (not counted), for the reason given under the goals.
` : ''}${PX ? `- **\`tessera proxy\`** (informational): two proxies in front of the sample API's unprotected \`/api/public\`, one
  with \`--public /api/public\` (forwarding only), one with \`--require /api/public=\` (a valid token first), both
  with the same issuer and audience as the sample API; the proxies, the sample API and wrk all pinned to the server core.
  Before the load, the token-checking proxy must answer 200 with the token, 401 without it and 401 with an altered signature.
  CPU per request is the proxy process's alone; the difference between the two is what the token check costs in the proxy.
` : ''}- **Profile**: \`perf record -F 999 -g -p PID\` on the Tessera process during an extra 5 s run per route; \`bench/profile.mjs\`
  sorts the samples by leaf frame (kernel samples whose call chain wakes another task count as "waking").`;
}

// ---- shared ------------------------------------------------------------------------------
const busyBefore = num('busy_before_cores');
if (busyBefore > 0.25) warnings.unshift(`${busyBefore.toFixed(2)} cores were busy in the second before the measurements started`);
if (busyStarts.length) warnings.push(`some runs started on a busy machine after waiting ${R.cfg_QUIET_WAIT} s for it to quiet down (cores busy: ${busyStarts.join(', ')})`);
if (others.length) warnings.push(`other processes used CPU during load runs (cores: ${others.join(', ')})`);
const warning = warnings.length
  ? `\n> **Warning: the machine looked busy with other work during this run** — ${warnings.join('; ')}. Ratios are still measured side by side, but treat them with care and re-run on a quiet machine.\n`
  : '';

const summary = [
  ISSUANCE ? `token issuance: **${issuance.met} of 5 goals met**` : 'token issuance: skipped (`BENCH_SKIP_ISSUANCE=1`)',
  API ? `protecting an API: **${api.met} of 3 goals met**${api.crossMet !== undefined ? ` with the load generator on the server's core (${api.crossMet} of 3 with it on the other core: see section 2)` : ''}` : 'protecting an API: skipped (`BENCH_SKIP_API=1`)',
].join('; ');

const settings = ['DURATION', 'WARMUP', 'CONNECTIONS', 'THREADS', 'API_CONNECTIONS', 'API_THREADS', 'ROUNDS', 'OPENSSL_SECONDS', 'STARTS']
  .map((k) => `BENCH_${k}=${R[`cfg_${k}`]}`)
  .concat(ISSUANCE ? [] : ['BENCH_SKIP_ISSUANCE=1'], API ? [] : ['BENCH_SKIP_API=1'])
  .join(' ');

const out = `# Benchmarks

Generated by \`bench/run.sh\` on ${R.date}. Every ratio compares numbers measured in
this same run on this same machine, one load at a time: the machine is shared and noisy, so
absolute numbers from different runs do not compare, ratios do (better).

In this run — ${summary}.
${warning}
## 1. Token issuance (\`client_credentials\`, RS256)

${ISSUANCE ? issuance.goals : 'Not measured in this run (`BENCH_SKIP_ISSUANCE=1`).'}

## 2. Protecting an API (\`tessera-guard\` in the sample API)

${API ? api.goals : 'Not measured in this run (`BENCH_SKIP_API=1`).'}

## Machine and versions

| | |
| --- | --- |
| Date | ${R.date} |
| CPU | ${R.cpu} |
| \`nproc\` | ${nproc} |
| Memory | ${R.memory} |
| Kernel | ${R.kernel} |
| Load average (1/5/15 min) at start / end | ${R.loadavg_start} / ${R.loadavg_end} |
| Cores busy in the second before measuring | ${R.busy_before_cores} |
| Tessera | ${R.tessera_version}, git ${R.git_rev}, \`cargo build --release -p tessera\` |
${[issuance.machine, api.machine].filter(Boolean).join('\n')}
| Load generator | wrk ${R.wrk_version} |
| OpenSSL | ${R.openssl_version} |

## Absolute numbers

${[issuance.details, api.details].filter(Boolean).join('\n\n')}

## What is measured, and how

${[issuance.how, api.how].filter(Boolean).join('\n')}
- **CPU accounting**: around each measured run the harness reads \`/proc/stat\` (all cores) and the
  server's process group's \`utime+stime\`, and times wrk; "other" is what neither used. Before each run it
  waits (at most ${R.cfg_QUIET_WAIT} s) until the whole machine used less than 0.3 cores over half a second — the
  servers are idle then, so that is other work; this run waited ${(quietWaitMs / 1000).toFixed(1)} s in all.
- Servers run on random free ports on 127.0.0.1, logging at \`RUST_LOG=warn\`; one is under load at a time
  (in the API section \`tessera dev\` stays up while the Express peer is measured: it is the peer's issuer, idle).

## Reproduce

\`\`\`sh
bench/run.sh    # installs wrk/openssl (apt) and the peers (npm ci in bench/peer, bench/peer-api) when missing, builds, measures, writes BENCHMARKS.md
${settings} bench/run.sh   # this run's settings
BENCH_SKIP_ISSUANCE=1 bench/run.sh   # only the API section (or BENCH_SKIP_API=1: only issuance)
\`\`\`

The individual commands it runs (PORT, P, S, A, E are random free ports; raw outputs land in \`bench/results/\`):
${ISSUANCE ? `
\`\`\`sh
${commands}
\`\`\`
` : ''}${API ? `
\`\`\`sh
${apiCommands}
\`\`\`
` : ''}`;
process.stdout.write(out);
