// Renders the "Write paths on SQLite" section of BENCHMARKS.md from bench/writes.sh's results.
// Usage: node writes-report.mjs RESULTS OUT ROUNDS LOGIN_CLIENTS LOGINS DURATION DATE CORES BIN PINNED NPROC
// CORES: the cores the server ran on and the limits were measured on.
import fs from 'node:fs';

const [resultsFile, out, roundsText, loginClients, logins, duration, date, cores, bin, pinnedText, nproc] = process.argv.slice(2);
const pinned = pinnedText === '1';
const shares = pinned ? 'the load generator runs on the other cores' : 'the load generator shares the cores';
const rounds = Number(roundsText);
const kv = Object.fromEntries(fs.readFileSync(resultsFile, 'utf8').trim().split('\n').map((line) => {
  const at = line.indexOf('=');
  return [line.slice(0, at), line.slice(at + 1)];
}));
const json = (key) => JSON.parse(kv[key]);
const each = (f) => Array.from({ length: rounds }, (_, i) => f(i + 1));
const n = (x, d = 0) => Number(x).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

// Each round's limits, measured right before and after its loads: the higher of the two
// (what the machine could do then; the drift within a round is a few percent, between
// rounds and runs much more). Results of older runs have no `_after_` keys.
const higher = (before, after) => (Number.isFinite(after) ? Math.max(before, after) : before);
const limits = each((r) => ({
  commits: Number(kv[`commits_r${r}`]),
  rsa: higher(Number(kv[`rsa_r${r}`]), Number(kv[`rsa_after_r${r}`])),
  argon2: higher(json(`argon2_r${r}`).per_second,
    kv[`argon2_after_r${r}`] ? json(`argon2_after_r${r}`).per_second : NaN),
}));
// A load bound by signatures has its own RSA rates, measured right before and after it
// (results of older runs only have the round's): the higher of the two.
const limitsOf = (key, r) => {
  const before = Number(kv[`rsa_before_${key}_r${r}`]);
  const after = Number(kv[`rsa_after_${key}_r${r}`]);
  return Number.isFinite(before) ? { ...limits[r - 1], rsa: higher(before, after) } : limits[r - 1];
};
// The best round of each load: the highest ratio to its own limit; its rate, p50, p99 and
// limits are reported with it. (A shared machine's slow round is noise.)
const best = (key, limitOf) => each((r) => ({ run: json(`${key}_r${r}`), limit: limitsOf(key, r) }))
  .sort((a, b) => b.run.per_second / limitOf(b) - a.run.per_second / limitOf(a))[0];

let met = 0;
let goals = 0;
const verdict = (ok) => {
  goals += 1;
  if (ok) met += 1;
  return ok ? '**yes**' : '**no**';
};
const rows = [];
// One signature's CPU time on one core: the all-core rate is over `cores` cores.
const msOn = (rate) => (1000 * Number(cores)) / rate;
for (const [mode, label, durable] of [['rotation', 'Refresh-token rotation', 1], ['code', 'Code cycle with an SSO session', 2]]) {
  for (const clients of [4, 16]) {
    const bindingLimit = ({ run, limit: { rsa, commits } }) =>
      Math.min(rsa / Math.max(1, run.signatures), commits / durable);
    const chosen = best(`${mode}_c${clients}`, bindingLimit);
    const { run, limit: { rsa, commits } } = chosen;
    const signMs = msOn(rsa);
    const bySignatures = rsa / Math.max(1, run.signatures);
    const byCommits = commits / durable;
    const limit = bindingLimit(chosen);
    const binding = bySignatures <= byCommits
      ? `${n(rsa)} RSA signs/s ÷ ${run.signatures} tokens`
      : `${n(commits)} durable commits/s ÷ ${durable}`;
    const ratio = run.per_second / limit;
    const perSync = run.commits ? run.writes / run.commits : NaN;
    rows.push(`| ${label}, ${clients} clients | ${n(run.per_second)}/s (p50 ${n(run.p50_ms, 1)} ms, p99 ${n(run.p99_ms, 1)} ms; ${run.errors} errors) | ${n(limit)}/s (${binding}) | ${ratio.toFixed(2)}× | ≥ 0.8× | ${verdict(ratio >= 0.8 && run.errors === 0)} |`);
    rows.push(`| … p99 ÷ p50, ${clients} clients | ${(run.p99_ms / run.p50_ms).toFixed(1)}× | — | — | < 4× | ${verdict(run.p99_ms < 4 * run.p50_ms)} |`);
    rows.push(`| … writes per operation; writes per commit (one sync each) (informational) | ${n(run.writes / run.ops, 1)}; ${n(perSync, 1)} | — | — | — | — |`);
    const cpuMs = (run.server_cpu_s * 1000) / run.ops;
    rows.push(`| … server CPU per operation, in one-core RSA signatures (informational; ${shares}) | ${n(cpuMs, 3)} ms = ${(cpuMs / signMs).toFixed(1)} signatures | ${run.signatures} signatures (1 = ${n(signMs, 3)} ms) | ${(run.signatures / (cpuMs / signMs)).toFixed(2)}× | — | — |`);
    rows.push(switchesRow(run, 'operation'));
    if (mode === 'rotation' && kv[`floor_c${clients}_r1`]) rows.push(...floorRows(clients, ratio));
  }
}
/** The floor at CLIENTS clients (informational): sign_floor answering the rotation's
 * requests with the same two tokens and nothing else, against its own neighbouring RSA
 * rates; and the rotation's ratio over the floor's — how much of the gap to the limit is
 * Tessera's own work rather than what HTTP, the crypto and the kernel cost any server here. */
function floorRows(clients, rotationRatio) {
  const bySignatures = ({ run, limit }) => limit.rsa / Math.max(1, run.signatures);
  const chosen = best(`floor_c${clients}`, bySignatures);
  const { run, limit } = chosen;
  const ratio = run.per_second / bySignatures(chosen);
  const cpuMs = (run.server_cpu_s * 1000) / run.ops;
  return [
    `| … the floor, ${clients} clients: an HTTP server that only signs the same ${run.signatures} tokens (no database; informational) | ${n(run.per_second)}/s (p50 ${n(run.p50_ms, 1)} ms, p99 ${n(run.p99_ms, 1)} ms; ${run.errors} errors; CPU ${n(cpuMs, 3)} ms = ${(cpuMs / msOn(limit.rsa)).toFixed(1)} signatures) | ${n(bySignatures(chosen))}/s (${n(limit.rsa)} RSA signs/s ÷ ${run.signatures} tokens) | ${ratio.toFixed(2)}× | — | — |`,
    `| … the rotation's ratio over the floor's, ${clients} clients (informational) | ${(rotationRatio / ratio).toFixed(2)}× | — | — | — | — |`,
  ];
}
/** Context switches of the server's threads per operation (informational): two for each
 * hand-over to a database connection's thread and back, and preemptions. */
function switchesRow(run, per) {
  const each = run.server_switches / run.ops;
  return `| … server context switches per ${per} (informational) | ${Number.isFinite(each) ? n(each, 0) : 'n/a'} | — | — | — | — |`;
}
const loginChosen = best('login', ({ limit }) => limit.argon2);
const { run: login, limit: { argon2, rsa: loginRsa } } = loginChosen;
const loginRatio = login.per_second / argon2;
const verifyMs = msOn(argon2);
const signMs = msOn(loginRsa);
rows.push(`| Password logins through the hosted form, ${loginClients} clients at once × ${logins} | ${n(login.per_second, 1)}/s (p50 ${n(login.p50_ms)} ms, p99 ${n(login.p99_ms)} ms; ${login.errors} errors) | ${n(argon2, 1)} Argon2id verifications/s (${cores === '1' ? '1 thread' : `${cores} threads`}) | ${loginRatio.toFixed(2)}× | ≥ 0.9×, no errors | ${verdict(loginRatio >= 0.9 && login.errors === 0)} |`);
// A login here ends with its code exchanged for tokens, so its crypto is one verification
// and those tokens' signatures, on the same cores: the limit no server could pass.
const loginCryptoMs = verifyMs + login.signatures * signMs;
const loginCryptoLimit = (1000 * Number(cores)) / loginCryptoMs;
rows.push(`| … against all of a login's crypto (informational) | — | ${n(loginCryptoLimit, 1)}/s (1 verification + ${login.signatures} RSA signatures = ${n(loginCryptoMs, 1)} ms of one core) | ${(login.per_second / loginCryptoLimit).toFixed(2)}× | — | — |`);
const loginCpuMs = (login.server_cpu_s * 1000) / login.ops;
rows.push(`| … server CPU per login, in its crypto (informational; ${shares}) | ${n(loginCpuMs, 1)} ms = ${(loginCpuMs / loginCryptoMs).toFixed(2)}× | 1 verification + ${login.signatures} signatures = ${n(loginCryptoMs, 1)} ms (1 verification = ${n(verifyMs, 1)} ms) | ${(loginCryptoMs / loginCpuMs).toFixed(2)}× | — | — |`);
rows.push(switchesRow(login, 'login'));
const rss = each((r) => ({ before: Number(kv[`rss_before_r${r}`]), after: Number(kv[`rss_after_r${r}`]), later: Number(kv[`rss_later_r${r}`]) }));
const worstLater = Math.max(...rss.map((x) => x.later));
rows.push(`| Resident memory 5 s after the login burst (worst round) | ${n(worstLater, 1)} MB (before: ${rss.map((x) => n(x.before, 1)).join(', ')} MB; right after: ${rss.map((x) => n(x.after, 1)).join(', ')} MB) | — | — | < 64 MB | ${verdict(worstLater < 64)} |`);

const section = `<!-- writes:begin (bench/writes.sh) -->
## Write paths on SQLite

\`bench/writes.sh\` on ${date} UTC (${bin}, ${nproc} cores, ${rounds} rounds; each load's best round counts, against the limits measured right before and after it in that round): **${met} of ${goals} goals met**.
${pinned
    ? `The server runs pinned to one core (\`taskset\`) and the load generator on the other${Number(nproc) > 2 ? 's' : ''}; the CPU-bound limits are
measured on the server's core alone, so the load generator's own work is not counted against the server.`
    : `Nothing is pinned: the server and the load generator share the ${cores} cores, and the limits are measured on all of them.`}
Each operation is compared with the limit that binds it, measured in the same run: RSA-2048
signatures on the server's ${cores === '1' ? 'core' : `${cores} cores`} (\`openssl speed${pinned ? '' : ` -multi ${cores}`}\`) ÷ the tokens an operation signs, or
durable SQLite commits per second on the same file system (the \`sqlite3\` shell committing
single-row transactions, WAL, \`synchronous=FULL\`: ${limits.map((l) => n(l.commits)).join(', ')}/s by round) ÷ the durable writes it
needs (a rotation 1, a code cycle 2: the code stored, then spent), whichever is lower; and
logins against Argon2id with Tessera's parameters (m = 19 MiB, t = 2, p = 1) on the same ${cores === '1' ? 'core' : 'cores'}
(\`crates/server/examples/argon2_rate.rs\`). The RSA rate is measured right before and after each
rotation and code-cycle run, and the Argon2id rate before and after the logins, and each load is
held to the higher of its two: this machine's speed drifts by more within a minute than the goals' margins. A login here ends with its code exchanged, as an
application's does, so its crypto also counts the signatures of its tokens (informational). Rotation and code cycle: ${duration} s measured after 2 s of warm-up.
The floor (informational) is the rotation's load against \`crates/server/examples/sign_floor.rs\`, pinned
like the server: an HTTP server (the same axum and signer) that reads the form, signs the same two
tokens and answers, with no database, lookup or policy — what any server pays on this machine
before doing a rotation's own work; the rotation's ratio over the floor's is Tessera's share of the gap.

| Metric | Tessera | Limit | Ratio | Goal | Met? |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

Writes per commit above 1 is group commit at work: writers that queue while a transaction runs
share its commit (\`crates/store/src/sqlite.rs\`), so several acknowledged writes cost one sync (\`fdatasync\`).

Load average ${kv.load_start} at the start, ${kv.load_end} at the end. Reproduce: \`bench/writes.sh\`
(knobs: \`BENCH_ROUNDS\`, \`BENCH_DURATION\`, \`BENCH_LOGIN_CLIENTS\`, \`BENCH_LOGINS\`; raw outputs in
\`bench/results/writes-*/\`).
<!-- writes:end -->`;
let text = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '# Benchmarks\n';
const re = /<!-- writes:begin[\s\S]*?<!-- writes:end -->/;
text = re.test(text) ? text.replace(re, section) : `${text.trimEnd()}\n\n${section}\n`;
fs.writeFileSync(out, text);
console.log(`writes: ${met} of ${goals} goals met`);
