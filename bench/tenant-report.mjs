// Renders the "Large tenants" section of BENCHMARKS.md from the key=value results
// bench/tenant.sh records, and puts it between the section's markers (replacing the
// previous one, or appended at the end). bench/run.sh keeps this section when it rewrites
// the file. Usage: node tenant-report.mjs RESULTS_FILE REPORT_FILE
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export const BEGIN = '<!-- tenant:begin (bench/tenant.sh) -->';
export const END = '<!-- tenant:end -->';

const [resultsFile, reportFile] = process.argv.slice(2);
const R = {};
for (const line of readFileSync(resultsFile, 'utf8').split('\n')) {
  const i = line.indexOf('=');
  if (i > 0) R[line.slice(0, i)] = line.slice(i + 1);
}
const num = (k) => (R[k] === undefined || R[k] === '' ? undefined : Number(R[k]));
const parsed = (k) => (R[k] ? JSON.parse(R[k]) : {});
const ms = (v) => (v === undefined ? 'n/a' : v < 10 ? v.toFixed(2) : v.toFixed(1));
const mb = (kb) => (kb === undefined ? 'n/a' : (kb / 1024).toFixed(1));
const ratio = (a, b) => (a === undefined || !b ? undefined : a / b);
const x = (r) => (r === undefined ? 'n/a' : `${r < 10 ? r.toFixed(2) : r.toFixed(0)}×`);
const yes = (ok) => (ok === undefined ? 'n/a' : ok ? '**yes**' : '**no**');
const int = (v) => Number(v).toLocaleString('en-US');

// The issue's goal: the large tenant within ±20% of the small one, memory flat.
const LOW = 0.8;
const HIGH = 1.2;
// Memory is flat, not equal: a larger database fills more of SQLite's page caches, which
// are bounded (2 MB per connection, at most 8 connections).
const MEMORY_GOAL = 2;
const within = (r) => (r === undefined ? undefined : r >= LOW && r <= HIGH);
// A latency may be faster at a million (noise); the goal is that it does not grow.
const notSlower = (r) => (r === undefined ? undefined : r <= HIGH);

// The rounds ran small and large in turn; the best round of each measure counts (the
// lowest latency, the highest rate), the slowest request is the slowest of all rounds.
const rounds = Number(R.rounds ?? 1);
const best = (name) => {
  const logins = [];
  const pages = [];
  const tokens = [];
  for (let r = 1; r <= rounds; r++) {
    if (R[`${name}_logins_r${r}`]) logins.push(JSON.parse(R[`${name}_logins_r${r}`]));
    if (R[`${name}_pages_r${r}`]) pages.push(JSON.parse(R[`${name}_pages_r${r}`]).queries);
    if (num(`${name}_tokens_r${r}`) !== undefined) tokens.push(num(`${name}_tokens_r${r}`));
  }
  const min = (values) => (values.length ? Math.min(...values) : undefined);
  const max = (values) => (values.length ? Math.max(...values) : undefined);
  const starts = [num(`${name}_start_ms`)];
  for (let r = 1; r <= rounds; r++) starts.push(num(`${name}_start_ms_r${r}`));
  return {
    start_ms: min(starts.filter((v) => v !== undefined)),
    seed: parsed(`${name}_seed`),
    logins: {
      p50_ms: min(logins.map((l) => l.p50_ms)),
      p99_ms: min(logins.map((l) => l.p99_ms)),
      per_second: max(logins.map((l) => l.per_second)),
    },
    tokens: max(tokens),
    pages: (pages[0] ?? []).map((q, i) => ({
      ...q,
      median_ms: min(pages.map((round) => round[i].median_ms)),
      max_ms: max(pages.map((round) => round[i].max_ms)),
    })),
  };
};
const small = best('small');
const large = best('large');

const rows = [];
const row = (label, s, l, r, goal, ok, fmt = ms) =>
  rows.push(`| ${label} | ${fmt(s)} | ${fmt(l)} | ${x(r)} | ${goal} | ${ok} |`);
const latency = (label, s, l, grows) => {
  const r = ratio(l, s);
  row(label, s, l, r, grows ? `— (${grows})` : `≤ ${HIGH}×`, grows ? 'n/a' : yes(notSlower(r)));
};
const rate = (label, s, l) => {
  const r = ratio(l, s);
  row(label, s, l, r, `${LOW}×–${HIGH}×`, yes(within(r)), (v) => (v === undefined ? 'n/a' : v.toFixed(1)));
};

latency('start (exec → first 200 of /healthz), best of the starts, ms', small.start_ms, large.start_ms);
latency('hosted login p50, ms', small.logins.p50_ms, large.logins.p50_ms);
latency('hosted login p99, ms', small.logins.p99_ms, large.logins.p99_ms);
rate('hosted logins/s', small.logins.per_second, large.logins.per_second);
rate('client-credentials tokens/s', small.tokens, large.tokens);
// What counts every match grows with the matches: the Management API's total. (The
// dashboard's users page reads one row ahead instead of counting: it should stay flat.)
const grows = (q) => (q.label.includes('include_totals') ? 'counts every user' : undefined);
for (const q of small.pages) {
  const l = large.pages.find((p) => p.kind === q.kind && p.label === q.label);
  const where = q.kind === 'api' ? 'Management API' : 'dashboard';
  latency(`${where}: ${q.label}, median ms`, q.median_ms, l?.median_ms, grows(q));
  rows.push(`| ${where}: ${q.label}, slowest ms | ${ms(q.max_ms)} | ${ms(l?.max_ms)} | ${x(ratio(l?.max_ms, q.max_ms))} | — | n/a |`);
}

const memory = [
  ['RSS after start', 'idle_rss_kb'],
  ['RSS after the load', 'rss_kb'],
  ['peak RSS (VmHWM)', 'hwm_kb'],
].map(([label, key]) => {
  const r = ratio(num(`large_${key}`), num(`small_${key}`));
  return `| ${label} | ${mb(num(`small_${key}`))} | ${mb(num(`large_${key}`))} | ${x(r)} | ≤ ${MEMORY_GOAL}× | ${yes(r <= MEMORY_GOAL)} |`;
});
const dbMb = (k) => (num(k) === undefined ? 'n/a' : (num(k) / 1048576).toFixed(1));
const perUser = (k, users) => (num(k) === undefined ? 'n/a' : (num(k) / users).toFixed(0));

const section = `${BEGIN}
## Large tenants

\`bench/tenant.sh\`: a tenant of **${int(R.users_large)} users** against one of **${int(R.users_small)} users**,
both built in this run, each in its own fresh data directory (SQLite) with its own fresh
\`tessera serve\`. Users are written through the store's own bulk path (\`Store::import_users\`,
as the users-imports job writes them, ${R.batch} a transaction; \`crates/server/examples/seed_users.rs\`):
${int(R.users_large)} in ${large.seed.write_seconds} s (${int(large.seed.rows_per_second)} rows/s). Every stored
hash is a real Argon2id hash of its user's password, made by Tessera's own
\`hash_password_blocking\`: ${int(R.hashes)} distinct ones (${large.seed.hash_seconds} s), user *i* has the password of
hash *i* mod ${int(R.hashes)} — so a login pays the real verification.

Both servers ran at once, measured in ${R.rounds} rounds, the small tenant and the large one in
turn (the machine's other work weighs on both alike); each measure's best round counts, the
slowest request is the slowest of every round. Each server was also started and stopped once
a round before the measured start: the start time is the best of those. Logins: ${R.logins} hosted logins, ${R.clients} at once, each of a user picked at random over the whole
database (\`/authorize\` → the hosted form → the code redeemed). Client credentials: wrk, 16
connections, ${R.duration} s. Management API and dashboard: ${R.requests} requests per query, one
kept-alive connection; the dashboard's pages with an administrator's session, signed in over
HTTP through \`/admin/login\` and the hosted login page.

Binary: \`${R.binary}\` (build: ${R.build}); ${R.machine}; load average ${R.loadavg_start} at the
start, ${R.loadavg_end} at the end (other work shared the machine).

| measure | ${int(R.users_small)} users | ${int(R.users_large)} users | ratio | goal | met |
| --- | ---: | ---: | ---: | --- | --- |
${rows.join('\n')}

| server memory | ${int(R.users_small)} users, MB | ${int(R.users_large)} users, MB | ratio | goal | met |
| --- | ---: | ---: | ---: | --- | --- |
${memory.join('\n')}

What counts grows with the tenant, by design: \`include_totals=true\` counts every user
through an index (Auth0's total is exact too). The dashboard's users page shows no total: it
reads one row more than a page to know whether another follows (it counted every user, or
every match of a search, on each view until this was measured: 86–111× at a million users).
Every other query reads a page through an index at any size.

Database on disk (main file + WAL after a checkpoint): ${dbMb('small_db_bytes')} MB for ${int(R.users_small)} users,
${dbMb('large_db_bytes')} MB for ${int(R.users_large)} (${perUser('large_db_bytes', Number(R.users_large))} bytes a user, the Argon2 hash
and the default picture included). The first start (migrating an empty database) took
${R.small_first_start_ms} ms and ${R.large_first_start_ms} ms.

Reproduce: \`bench/tenant.sh\` (knobs: \`BENCH_TENANT_USERS\`, \`BENCH_TENANT_SMALL\`, \`BENCH_TENANT_HASHES\`,
\`BENCH_TENANT_LOGINS\`, \`BENCH_TENANT_REQUESTS\`, …; raw outputs in \`bench/results/tenant-*/\`).
${END}`;

const before = existsSync(reportFile) ? readFileSync(reportFile, 'utf8') : '';
const start = before.indexOf(BEGIN);
const end = before.indexOf(END);
const after =
  start >= 0 && end > start
    ? before.slice(0, start) + section + before.slice(end + END.length)
    : `${before.trimEnd()}${before ? '\n\n' : ''}${section}\n`;
writeFileSync(reportFile, after);
