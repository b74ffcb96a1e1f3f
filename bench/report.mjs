// Renders BENCHMARKS.md from the key=value results that bench/run.sh records.
// Usage: node report.mjs RESULTS_FILE COMMANDS_FILE > BENCHMARKS.md
import { readFileSync } from 'node:fs';

const [resultsFile, commandsFile] = process.argv.slice(2);
const R = {};
for (const line of readFileSync(resultsFile, 'utf8').split('\n')) {
  const i = line.indexOf('=');
  if (i > 0) R[line.slice(0, i)] = line.slice(i + 1);
}
const commands = readFileSync(commandsFile, 'utf8').trimEnd();

const num = (k) => {
  const v = Number(R[k]);
  return Number.isFinite(v) ? v : undefined;
};
const rounds = num('cfg_ROUNDS');
const roundList = Array.from({ length: rounds }, (_, i) => i + 1);
const best = (prefix, key, pick) => {
  const vals = roundList.map((r) => num(`${prefix}_r${r}_${key}`)).filter((v) => v !== undefined);
  return vals.length ? pick(...vals) : undefined;
};
const has = (prefix) => num(`${prefix}_r1_rps`) !== undefined;

const f0 = (v) => (v === undefined ? 'n/a' : Math.round(v).toLocaleString('en-US'));
const f2 = (v) => (v === undefined ? 'n/a' : v.toFixed(2));
const ms = (us) => (us === undefined ? 'n/a' : `${(us / 1000).toFixed(us < 10000 ? 2 : 1)} ms`);
const mb = (kb) => (kb === undefined ? 'n/a' : `${(kb / 1024).toFixed(1)} MB`);
const ratio = (a, b) => (a === undefined || b === undefined || b === 0 ? undefined : a / b);
const fx = (x) => (x === undefined ? 'n/a' : `${x.toFixed(2)}×`);
const met = (ok) => (ok === undefined ? 'n/a' : ok ? '**yes**' : '**no**');

// Best round for each server: highest throughput; lowest p99 (same rule for all).
const T = { rps: best('tessera', 'rps', Math.max), p99: best('tessera', 'p99_us', Math.min) };
const P = { rps: best('peer', 'rps', Math.max), p99: best('peer', 'p99_us', Math.min) };
const PC = has('peercluster')
  ? { rps: best('peercluster', 'rps', Math.max), p99: best('peercluster', 'p99_us', Math.min) }
  : undefined;
const sslVals = roundList.map((r) => num(`openssl_multi_r${r}`)).filter((v) => v !== undefined);
const sslAll = sslVals.length ? Math.max(...sslVals) : undefined;
const ssl1 = num('openssl_1core');
const nproc = num('nproc');
const workers = num('cfg_PEER_WORKERS');
const conns = num('cfg_CONNECTIONS');

const tRss = num('tessera_idle_rss_kb');
const pRss = num('peer_idle_rss_kb');
const tStart = num('tessera_start_us');
const pStart = num('peer_start_us');

const rows = [];
const row = (metric, t, ref, x, goal, ok) => rows.push(`| ${metric} | ${t} | ${ref} | ${fx(x)} | ${goal} | ${met(ok)} |`);

const xSign = ratio(T.rps, sslAll);
row(`Token issuance vs raw RSA-2048 signing, all ${nproc} cores`, `${f0(T.rps)} tokens/s`, `${f0(sslAll)} sign/s (openssl speed -multi ${nproc})`, xSign, '≥ 0.85×', xSign === undefined ? undefined : xSign >= 0.85);
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
row('Token issuance vs peer (oidc-provider, 1 process)', `${f0(T.rps)} tokens/s`, `${f0(P.rps)} tokens/s`, xPeer, '≥ 1.5×', xPeer === undefined ? undefined : xPeer >= 1.5);
const xP99 = ratio(T.p99, P.p99);
row(`p99 latency at ${conns} clients vs peer (1 process)`, ms(T.p99), ms(P.p99), xP99, '≤ 0.5×', xP99 === undefined ? undefined : xP99 <= 0.5);
let xPc;
let xPcP99;
if (PC) {
  xPc = ratio(T.rps, PC.rps);
  row(`Token issuance vs peer clustered (${workers} processes)`, `${f0(T.rps)} tokens/s`, `${f0(PC.rps)} tokens/s`, xPc, '≥ 1.5× (stricter reading)', xPc === undefined ? undefined : xPc >= 1.5);
  xPcP99 = ratio(T.p99, PC.p99);
  row(`p99 latency at ${conns} clients vs peer clustered (${workers} processes)`, ms(T.p99), ms(PC.p99), xPcP99, '≤ 0.5× (stricter reading)', xPcP99 === undefined ? undefined : xPcP99 <= 0.5);
}
row('Idle RSS (after start + 10 token requests, 1 s idle)', mb(tRss), `${mb(pRss)} (peer, 1 process)`, ratio(tRss, pRss), '< 32 MB', tRss === undefined ? undefined : tRss < 32 * 1024);
row(`Start to ready, existing database (median of ${num('cfg_STARTS')})`, ms(tStart), `${ms(pStart)} (peer, existing key)`, ratio(tStart, pStart), '< 100 ms', tStart === undefined ? undefined : tStart < 100_000);

const perRound = [];
for (const r of roundList) {
  const cells = [
    `| ${r}`,
    `${f0(num(`openssl_multi_r${r}`))}`,
    `${f0(num(`tessera_r${r}_rps`))} / ${ms(num(`tessera_r${r}_p50_us`))} / ${ms(num(`tessera_r${r}_p99_us`))}`,
    `${f0(num(`peer_r${r}_rps`))} / ${ms(num(`peer_r${r}_p50_us`))} / ${ms(num(`peer_r${r}_p99_us`))}`,
  ];
  if (PC) cells.push(`${f0(num(`peercluster_r${r}_rps`))} / ${ms(num(`peercluster_r${r}_p50_us`))} / ${ms(num(`peercluster_r${r}_p99_us`))}`);
  perRound.push(`${cells.join(' | ')} |`);
}

const startsList = (k) => (R[k] ?? '').split(' ').filter(Boolean).map((us) => (Number(us) / 1000).toFixed(1)).join(', ');
// Signs of other work on the machine: a busy load average at the start, or all
// cores signing much slower than nproc times one core.
const warnings = [];
const busyBefore = num('busy_before_cores');
if (busyBefore > 0.25) warnings.push(`${busyBefore.toFixed(2)} cores were busy in the second before the measurements started`);
const scaling = ratio(sslAll, ssl1 * nproc);
if (scaling !== undefined && scaling < 0.8) warnings.push(`openssl on all ${nproc} cores signed only ${fx(scaling)} of ${nproc} × its one-core rate`);
const others = [];
for (const name of ['tessera', 'peer', 'peercluster']) {
  for (const r of roundList) {
    const o = num(`${name}_r${r}_other_cores`);
    if (o > 0.25) others.push(`${name} round ${r}: ${o.toFixed(2)}`);
  }
}
if (others.length) warnings.push(`other processes used CPU during load runs (cores: ${others.join(', ')})`);
const warning = warnings.length
  ? `\n> **Warning: the machine looked busy with other work during this run** — ${warnings.join('; ')}. Ratios are still measured side by side, but treat them with care and re-run on a quiet machine.\n`
  : '';

const metCount = [xSign >= 0.85, xPeer >= 1.5, xP99 <= 0.5, tRss < 32 * 1024, tStart < 100_000].filter(Boolean).length;

const out = `# Benchmarks

Generated by \`bench/run.sh\` on ${R.date}. Every ratio compares numbers measured in
this same run on this same machine, one server at a time: the machine is shared and noisy, so
absolute numbers from different runs do not compare, ratios do (better).

**${metCount} of 5 goals met** in this run${PC ? ' (the two "stricter reading" rows are extra and not counted)' : ''}.
${warning}
| Metric | Tessera | Reference | Ratio | Goal | Met? |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

Throughput and p99 are the best of ${rounds} round${rounds > 1 ? 's' : ''} for every server alike
(highest requests/s, lowest p99), each round being ${R.cfg_WARMUP} s of warm-up then
${R.cfg_DURATION} s measured with \`wrk -t${R.cfg_THREADS} -c${conns}\`. The raw signing rate is
the best \`openssl speed -multi ${nproc} rsa2048\` of the rounds (one per round, right before its load tests).

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
| Peer | oidc-provider ${R.oidc_provider_version} on Node.js ${R.node_version} |
| Load generator | wrk ${R.wrk_version} |
| OpenSSL | ${R.openssl_version} |

## Absolute numbers

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
${roundList.map((r) => `| ${r} | ${['tessera', 'peer', ...(PC ? ['peercluster'] : [])].map((n) => ['server', 'wrk', 'other'].map((k) => f2(num(`${n}_r${r}_${k}_cores`))).join(' / ')).join(' | ')} |`).join('\n')}

| | Tessera | Peer (1 process) |
| --- | --- | --- |
| Idle RSS | ${mb(tRss)} | ${mb(pRss)} |
| Peak RSS (VmHWM) after the load, highest of the rounds | ${mb(best('tessera', 'hwm_kb', Math.max))} | ${mb(best('peer', 'hwm_kb', Math.max))} |
| Start to ready, each start (ms) | ${startsList('tessera_start_us_all')} | ${startsList('peer_start_us_all')} |
| First start (creates the signing keys) | ${R.tessera_first_start_ms} ms | — |
| Token checked before measuring | ${R.tessera_token} | ${R.peer_token} |

## What is measured, and how

- **Token issuance**: \`POST /oauth/token\` with \`grant_type=client_credentials\`, the client's id and
  secret in the form body and \`audience=${'https://bench/api'}\`; every response is a freshly
  signed RS256 JWT (RSA-2048). Load from wrk with \`bench/token.lua\`, whose \`done()\` prints requests/s
  and the latency percentiles; any non-2xx response fails the run. Before any load, one request to each
  server is checked: HTTP 200, a three-part JWT whose header says RS256, a 256-byte signature, the audience.
- **Peer**: node [oidc-provider](https://github.com/panva/node-oidc-provider) (\`bench/peer/server.mjs\`) with
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
- **CPU accounting**: around each measured run the harness reads \`/proc/stat\` (all cores) and the
  server's process group's \`utime+stime\`, and times wrk; "other" is what neither used. The efficiency row
  divides each round's tokens/s by the cores the server itself used (best round).
- Servers run one at a time, each on a random free port on 127.0.0.1, logging at \`RUST_LOG=warn\`.

## Reproduce

\`\`\`sh
bench/run.sh    # installs wrk/openssl (apt) and the peer (npm ci in bench/peer) when missing, builds, measures, writes BENCHMARKS.md
BENCH_DURATION=${R.cfg_DURATION} BENCH_WARMUP=${R.cfg_WARMUP} BENCH_CONNECTIONS=${conns} BENCH_THREADS=${R.cfg_THREADS} BENCH_ROUNDS=${rounds} BENCH_STARTS=${R.cfg_STARTS} bench/run.sh   # this run's settings
\`\`\`

The individual commands it runs (PORT is a random free port; raw outputs land in \`bench/results/\`):

\`\`\`sh
${commands}
\`\`\`
`;
process.stdout.write(out);
