// Renders the "Management API lists at scale" section of BENCHMARKS.md from the key=value
// results bench/lists.sh records, and puts it between the section's markers (replacing the
// previous one, or appended at the end). bench/run.sh keeps this section when it rewrites
// the file. Usage: node lists-report.mjs RESULTS_FILE REPORT_FILE
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export const BEGIN = '<!-- lists:begin (bench/lists.sh) -->';
export const END = '<!-- lists:end -->';

const [resultsFile, reportFile] = process.argv.slice(2);
const R = {};
for (const line of readFileSync(resultsFile, 'utf8').split('\n')) {
  const i = line.indexOf('=');
  if (i > 0) R[line.slice(0, i)] = line.slice(i + 1);
}
const num = (k) => (R[k] === undefined || R[k] === '' ? undefined : Number(R[k]));
const ms = (v) => (v === undefined ? 'n/a' : v < 10 ? v.toFixed(2) : v.toFixed(1));
const mb = (kb) => (kb === undefined ? 'n/a' : (kb / 1024).toFixed(1));
const ratio = (a, b) => (a === undefined || !b ? undefined : a / b);
const x = (r) => (r === undefined ? 'n/a' : `${r < 10 ? r.toFixed(2) : r.toFixed(0)}×`);
const yes = (ok) => (ok === undefined ? 'n/a' : ok ? '**yes**' : '**no**');
const int = (v) => Number(v).toLocaleString('en-US');

// Every query but the total is read from an index whatever the size: its time may grow
// with the B-tree's depth, not with the table. The total counts every match.
const LATENCY_GOAL = 3;
// Memory is flat, not equal: a larger database fills more of SQLite's page caches, which
// are bounded (2 MB per connection, 8 connections), where reading a table whole took GBs.
const MEMORY_GOAL = 2;

const rows = [];
for (let n = 0; R[`small_q${n}_label`] !== undefined; n++) {
  const small = num(`small_q${n}_median_ms`);
  const large = num(`large_q${n}_median_ms`);
  // The total counts every match, and a search sorted by another column sorts every
  // match: both grow with the matches, not with the page.
  const label = R[`small_q${n}_label`];
  const counts = label.includes('include_totals') || label.includes('every match');
  const r = ratio(large, small);
  rows.push(
    `| ${R[`small_q${n}_label`]} | ${ms(small)} | ${ms(large)} | ${ms(num(`large_q${n}_max_ms`))} | ${x(r)} | ` +
      `${counts ? '— (grows with the matches)' : `≤ ${LATENCY_GOAL}×`} | ${counts ? 'n/a' : yes(r <= LATENCY_GOAL)} |`,
  );
}
const memory = [
  ['RSS after start', 'idle_rss_kb'],
  ['RSS after the queries', 'rss_kb'],
  ['peak RSS (VmHWM)', 'hwm_kb'],
].map(([label, key]) => {
  const r = ratio(num(`large_${key}`), num(`small_${key}`));
  const goal = key === 'idle_rss_kb' ? '—' : `≤ ${MEMORY_GOAL}×`;
  const ok = key === 'idle_rss_kb' ? 'n/a' : yes(r <= MEMORY_GOAL);
  return `| ${label} | ${mb(num(`small_${key}`))} | ${mb(num(`large_${key}`))} | ${x(r)} | ${goal} | ${ok} |`;
});

const section = `${BEGIN}
## Management API lists at scale

\`bench/lists.sh\`: \`GET /api/v2/users\` on a SQLite database of **${int(R.users_large)} users**
against the same request on **${int(R.users_small)} users**, both seeded in this run
(${R.large_seed_seconds} s for the large one, ${R.large_db_mb} MB on disk), ${R.requests} requests per
query on one kept-alive connection, the server restarted for each database. Lists are paged in
SQL through indexes, so a page should cost about the same at any size; what reads every match
grows with the matches: the total (\`include_totals=true\`, counted through an index) and a
search sorted by another column than the one searched (its matches are sorted, keeping one
page in memory).

Binary: \`${R.binary}\` (build: ${R.build}); SQLite shell ${R.sqlite3_version}; ${R.machine};
load average ${R.loadavg_start} at the start, ${R.loadavg_end} at the end.

| query | ${int(R.users_small)} users, median ms | ${int(R.users_large)} users, median ms | slowest ms | ratio | goal | met |
| --- | ---: | ---: | ---: | ---: | --- | --- |
${rows.join('\n')}

| server memory | ${int(R.users_small)} users, MB | ${int(R.users_large)} users, MB | ratio | goal | met |
| --- | ---: | ---: | ---: | --- | --- |
${memory.join('\n')}

Memory is flat rather than equal: the larger database fills more of SQLite's page caches,
which are bounded (2 MB per connection, at most 8 connections); before lists were paged in
SQL, the first page at a million users took 10–12 GB.

Reproduce: \`bench/lists.sh\` (knobs: \`BENCH_LIST_USERS\`, \`BENCH_LIST_SMALL\`, \`BENCH_LIST_REQUESTS\`;
raw timings in \`bench/results/lists-*/\`).
${END}`;

const before = existsSync(reportFile) ? readFileSync(reportFile, 'utf8') : '';
const start = before.indexOf(BEGIN);
const end = before.indexOf(END);
const after =
  start >= 0 && end > start
    ? before.slice(0, start) + section + before.slice(end + END.length)
    : `${before.trimEnd()}${before ? '\n\n' : ''}${section}\n`;
writeFileSync(reportFile, after);
