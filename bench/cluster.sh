#!/usr/bin/env bash
# One node against three, behind HAProxy (round-robin, no stickiness), on one PostgreSQL:
#  1. client-credentials issuance (wrk + token.lua, as bench/run.sh) through a frontend
#     whose backend has one node, then through one whose backend has all three;
#  2. logins (bench/logins.mjs: /authorize, the hosted form, the code redeemed), several
#     clients at once, through the same two frontends;
#  3. what the database does per 100 logins (three nodes): transactions, rows written, WAL,
#     blocks read and PostgreSQL's CPU, from pg_stat_database, pg_stat_wal and /proc.
# On 2 cores three nodes share the cores one node had: the ratios show the cluster's
# overhead (HAProxy, the round-robin crossing nodes), not a speed-up; that needs more cores.
#
# Writes (or replaces) the section between the `cluster` markers of BENCHMARKS.md;
# bench/run.sh keeps that section when it rewrites the file. See bench/README.md.
#
# Usage: bench/cluster.sh
# Knobs (environment, all optional):
#   BENCH_DURATION=10       seconds of each measured wrk run (after a 3 s warm-up)
#   BENCH_CONNECTIONS=16    concurrent wrk connections      BENCH_THREADS=2  wrk threads
#   BENCH_ROUNDS=2          rounds; each measures one node and three; the best round counts
#   BENCH_LOGINS=50         logins per login client and run
#   BENCH_LOGIN_CLIENTS=4   login clients at once (each signs in one login after another)
#   BENCH_SKIP_BUILD=1      use target/release/tessera as it is
#   BENCH_TESSERA_BIN=PATH  measure that binary instead (implies no build)
#   BENCH_OUT=BENCHMARKS.md report path, relative to the repository root
set -euo pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd -- "$BENCH_DIR/.." && pwd)
cd "$ROOT"

DURATION=${BENCH_DURATION:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_THREADS:-2}
ROUNDS=${BENCH_ROUNDS:-2}
LOGINS=${BENCH_LOGINS:-50}
LOGIN_CLIENTS=${BENCH_LOGIN_CLIENTS:-4}
OUT=${BENCH_OUT:-BENCHMARKS.md}
[[ $OUT == /* ]] || OUT="$ROOT/$OUT"
for v in DURATION CONNECTIONS THREADS ROUNDS LOGINS LOGIN_CLIENTS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench/cluster: $v must be a positive whole number (got '${!v}')" >&2; exit 2; }
done
(( DURATION <= 120 && ROUNDS <= 5 && LOGIN_CLIENTS <= 16 && LOGINS <= 1000 )) \
  || { echo "bench/cluster: a knob is out of its bounds (duration <= 120, rounds <= 5, login clients <= 16, logins <= 1000)" >&2; exit 2; }

log() { printf '[bench/cluster %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf '[bench/cluster] FAILED: %s\n' "$*" >&2; exit 1; }
for tool in wrk curl node; do
  command -v "$tool" >/dev/null || die "$tool is needed (Debian: apt-get install -y wrk curl nodejs)"
done
HAPROXY=$(command -v haproxy || true)
[[ -n $HAPROXY ]] || { [[ -x /usr/sbin/haproxy ]] && HAPROXY=/usr/sbin/haproxy; } || true
[[ -n $HAPROXY ]] || die "haproxy is needed (Debian: apt-get install -y haproxy)"
# /usr/local/bin/initdb may be a link into the real directory, beside createdb and psql.
PGBIN=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)")")
[[ -x $PGBIN/initdb && -x $PGBIN/postgres ]] || die "PostgreSQL is needed (Debian: apt-get install -y postgresql)"

BIN=${BENCH_TESSERA_BIN:-$ROOT/target/release/tessera}
if [[ -n ${BENCH_TESSERA_BIN:-} || ${BENCH_SKIP_BUILD:-0} == 1 ]]; then
  :
else
  log "cargo build --release -p tessera"
  cargo build --release -p tessera >&2 || die "the build failed"
fi
[[ -x $BIN ]] || die "no binary at $BIN"
case $BIN in
  */debug/*) PROFILE="a debug build (${BIN#"$ROOT"/}): the ratios and the database's work hold, the absolute rates do not" ;;
  *) PROFILE="the release build" ;;
esac

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$BENCH_DIR/results"
RUN_DIR=$BENCH_DIR/results/cluster-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RUN_DIR"
free_port() { node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }

PIDS=() # what this script started, stopped last first: HAProxy, the nodes, PostgreSQL
cleanup() {
  local i pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[$i]}
    # PostgreSQL: a fast shutdown (SIGINT); the rest: SIGTERM.
    if [[ $pid == "${PG_PID:-}" ]]; then kill -INT "$pid" 2>/dev/null || true; else kill "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

# ---- PostgreSQL: a throwaway cluster (as `postgres` when we are root) ----------------------
as_pg() { if [[ $(id -u) -eq 0 ]]; then setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"; else "$@"; fi; }
PGDIR=$RUN_DIR/pg
mkdir -p "$PGDIR/sock"
[[ $(id -u) -ne 0 ]] || chown -R postgres:postgres "$PGDIR"
as_pg "$PGBIN/initdb" -D "$PGDIR/data" -A trust -U postgres --encoding=UTF8 --no-locale >"$RUN_DIR/initdb.log" 2>&1 \
  || die "initdb failed: $(tail -5 "$RUN_DIR/initdb.log")"
PGPORT=$(free_port)
# The server's defaults otherwise (fsync, synchronous_commit on): what a login costs a real one.
# Started directly (not through a shell function, which would fork a subshell): $! is the
# postmaster itself (setpriv execs it), whose children are the backends measured below.
pg_args=(-D "$PGDIR/data" -k "$PGDIR/sock" -h 127.0.0.1 -p "$PGPORT" -c max_connections=100)
if [[ $(id -u) -eq 0 ]]; then
  setpriv --reuid=postgres --regid=postgres --clear-groups -- "$PGBIN/postgres" "${pg_args[@]}" >"$RUN_DIR/postgres.log" 2>&1 &
else
  "$PGBIN/postgres" "${pg_args[@]}" >"$RUN_DIR/postgres.log" 2>&1 &
fi
PG_PID=$!
PIDS+=("$PG_PID")
for ((i = 0; i < 300; i++)); do
  grep -q '^ready' "$PGDIR/data/postmaster.pid" 2>/dev/null && break
  kill -0 "$PG_PID" 2>/dev/null || die "postgres exited: $(tail -5 "$RUN_DIR/postgres.log")"
  sleep 0.1
done
psql_() { "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -X -q -At "$@"; }
grep -q '^ready' "$PGDIR/data/postmaster.pid" || die "postgres did not start: $(tail -5 "$RUN_DIR/postgres.log")"
"$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres tessera || die "createdb failed"
export TESSERA_DATABASE_URL=postgres://postgres@127.0.0.1:$PGPORT/tessera
TESSERA_MASTER_KEY=$(node -p 'require("crypto").randomBytes(32).toString("hex")')
export TESSERA_MASTER_KEY

# ---- the tenant: an API, an m2m application with its grant, a SPA, a user ------------------
AUDIENCE=https://bench.cluster/
CALLBACK=http://127.0.0.1:9/callback
EMAIL=bench@example.com
PASSWORD=bench-password-$RANDOM$RANDOM
tessera() { RUST_LOG=warn "$BIN" "$@"; }
tessera apis create --name "Bench API" --identifier "$AUDIENCE" --scopes read:bench --json >"$RUN_DIR/api.json"
app=$(tessera apps create --name bench-m2m --type m2m --json)
CLIENT_ID=$(node -p "JSON.parse(process.argv[1]).client_id" "$app")
CLIENT_SECRET=$(node -p "JSON.parse(process.argv[1]).client_secret" "$app")
tessera grants create --app "$CLIENT_ID" --api "$AUDIENCE" --scopes read:bench --json >/dev/null
spa=$(tessera apps create --name bench-spa --type spa --callbacks "$CALLBACK" --json)
SPA_ID=$(node -p "JSON.parse(process.argv[1]).client_id" "$spa")
printf '%s\n' "$PASSWORD" | tessera users create --email "$EMAIL" --password-stdin --email-verified --json >/dev/null

# ---- three nodes and HAProxy: one frontend over node 1, one over all three ------------------
FRONT1=$(free_port)
FRONT3=$(free_port)
NODES=()
for n in 1 2 3; do
  port=$(free_port)
  # HAProxy's X-Forwarded-For names the client: the login throttle counts each address.
  TESSERA_TRUSTED_PROXIES=127.0.0.1 RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$port" \
    --issuer "http://127.0.0.1:$FRONT3/" >"$RUN_DIR/node$n.log" 2>&1 &
  PIDS+=("$!")
  NODES+=("127.0.0.1:$port")
done
for address in "${NODES[@]}"; do
  for ((i = 0; i < 300; i++)); do
    curl -fsS -o /dev/null "http://$address/healthz" 2>/dev/null && break
    sleep 0.1
  done
  curl -fsS -o /dev/null "http://$address/healthz" || die "the node at $address is not ready: $(tail -5 "$RUN_DIR"/node*.log)"
done
cat >"$RUN_DIR/haproxy.cfg" <<CFG
global
    maxconn 1024
defaults
    mode http
    option forwardfor
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    retry-on conn-failure
    option redispatch 1
frontend one
    bind 127.0.0.1:$FRONT1
    default_backend one
frontend three
    bind 127.0.0.1:$FRONT3
    default_backend three
backend one
    option httpchk GET /healthz
    default-server inter 1s fall 2 rise 1
    server n1 ${NODES[0]} check
backend three
    balance roundrobin
    option httpchk GET /healthz
    default-server inter 1s fall 2 rise 1
    server n1 ${NODES[0]} check
    server n2 ${NODES[1]} check
    server n3 ${NODES[2]} check
CFG
"$HAPROXY" -c -q -f "$RUN_DIR/haproxy.cfg" || die "haproxy refuses the configuration"
"$HAPROXY" -db -f "$RUN_DIR/haproxy.cfg" >"$RUN_DIR/haproxy.log" 2>&1 &
PIDS+=("$!")
for front in "$FRONT1" "$FRONT3"; do
  for ((i = 0; i < 100; i++)); do
    curl -fsS -o /dev/null "http://127.0.0.1:$front/healthz" 2>/dev/null && break
    sleep 0.1
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$front/healthz" || die "haproxy does not serve on $front"
done

TOKEN_BODY="grant_type=client_credentials&client_id=$CLIENT_ID&client_secret=$CLIENT_SECRET&audience=$(node -p 'encodeURIComponent(process.argv[1])' "$AUDIENCE")"
wrk_run() { # wrk_run BASE SECONDS OUTFILE
  BENCH_TOKEN_BODY=$TOKEN_BODY wrk -t"$THREADS" -c"$CONNECTIONS" -d"${2}s" --latency -s "$BENCH_DIR/token.lua" "$1" >"$3" 2>&1 \
    || die "wrk failed: $(tail -5 "$3")"
  grep -q '^BENCH_RESULT' "$3" || die "wrk printed no result: $(tail -5 "$3")"
}
field() { grep '^BENCH_RESULT' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

OCTET=2 # login clients come from 127.0.0.OCTET and up: a fresh address for every 50 logins
logins_run() { # logins_run BASE OUTFILE: LOGIN_CLIENTS clients at once; logins/s into OUTFILE.rate
  # (not printed: a command substitution's subshell would lose OCTET's advance)
  local pids=() c started ended
  started=$(date +%s.%N)
  for ((c = 0; c < LOGIN_CLIENTS; c++)); do
    node "$BENCH_DIR/logins.mjs" "$1" "$SPA_ID" "$CALLBACK" "$EMAIL" "$PASSWORD" "$LOGINS" "$OCTET" >"$2.$c" 2>&1 &
    pids+=("$!")
    OCTET=$((OCTET + (LOGINS + 49) / 50))
  done
  for c in "${!pids[@]}"; do wait "${pids[$c]}" || die "a login client failed: $(tail -3 "$2.$c")"; done
  ended=$(date +%s.%N)
  node -p "($LOGIN_CLIENTS * $LOGINS / ($ended - $started)).toFixed(2)" >"$2.rate"
}

# PostgreSQL's counters, and the CPU its processes used (clock ticks), as KEY=VALUE lines.
# Backends publish their statistics when idle, within 10 s: callers wait before reading.
pg_counters() {
  psql_ -d tessera -F= -c "SELECT 'xact_commit', xact_commit FROM pg_stat_database WHERE datname = 'tessera'
    UNION ALL SELECT 'tup_inserted', tup_inserted FROM pg_stat_database WHERE datname = 'tessera'
    UNION ALL SELECT 'tup_updated', tup_updated FROM pg_stat_database WHERE datname = 'tessera'
    UNION ALL SELECT 'tup_deleted', tup_deleted FROM pg_stat_database WHERE datname = 'tessera'
    UNION ALL SELECT 'blks_read', blks_read FROM pg_stat_database WHERE datname = 'tessera'
    UNION ALL SELECT 'wal_records', wal_records FROM pg_stat_wal
    UNION ALL SELECT 'wal_bytes', wal_bytes::bigint FROM pg_stat_wal"
  local ticks=0 pid stat
  for pid in "$PG_PID" $(pgrep -P "$PG_PID" || true); do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    stat=${stat##*) }
    read -r -a f <<<"$stat"
    ticks=$((ticks + f[11] + f[12]))
  done
  echo "cpu_ticks=$ticks"
}
STATS_SETTLE=11

RESULTS=$RUN_DIR/results.txt
: >"$RESULTS"
for ((round = 1; round <= ROUNDS; round++)); do
  for nodes in 1 3; do
    front=$FRONT1
    [[ $nodes == 1 ]] || front=$FRONT3
    base=http://127.0.0.1:$front
    log "round $round, $nodes node(s): issuance"
    wrk_run "$base" 3 "$RUN_DIR/warmup-$round-$nodes.txt"
    wrk_run "$base" "$DURATION" "$RUN_DIR/wrk-$round-$nodes.txt"
    errors=$(( $(field "$RUN_DIR/wrk-$round-$nodes.txt" err_status) + $(field "$RUN_DIR/wrk-$round-$nodes.txt" err_connect) ))
    (( errors == 0 )) || die "wrk saw $errors errors (round $round, $nodes node(s))"
    log "round $round, $nodes node(s): $((LOGIN_CLIENTS * LOGINS)) logins, $LOGIN_CLIENTS clients at once"
    logins_run "$base" "$RUN_DIR/logins-$round-$nodes"
    rate=$(cat "$RUN_DIR/logins-$round-$nodes.rate")
    printf '%s %s rps=%s p99_us=%s logins_per_s=%s\n' "$round" "$nodes" \
      "$(field "$RUN_DIR/wrk-$round-$nodes.txt" rps)" "$(field "$RUN_DIR/wrk-$round-$nodes.txt" p99_us)" "$rate" >>"$RESULTS"
  done
done

# ---- the database's work per 100 logins (three nodes) ---------------------------------------
# What the idle cluster does meanwhile (each node reads the cache generation every 5 s, and
# purges) is measured over the same length of time and taken off.
log "the database's work: idle baseline, then $((LOGIN_CLIENTS * LOGINS)) logins"
sleep "$STATS_SETTLE"
pg_counters >"$RUN_DIR/pg-0.txt"
t0=$(date +%s.%N)
sleep "$STATS_SETTLE"
pg_counters >"$RUN_DIR/pg-1.txt"
t1=$(date +%s.%N)
logins_run "http://127.0.0.1:$FRONT3" "$RUN_DIR/logins-db"
sleep "$STATS_SETTLE"
pg_counters >"$RUN_DIR/pg-2.txt"
t2=$(date +%s.%N)

# ---- report ------------------------------------------------------------------------------
node - "$OUT" "$RESULTS" "$RUN_DIR" "$t0" "$t1" "$t2" <<NODE || die "writing the report failed"
const fs = require("fs");
const [out, results, runDir, t0, t1, t2] = process.argv.slice(2);
const rows = fs.readFileSync(results, "utf8").trim().split("\n").map((line) => {
  const [round, nodes, ...rest] = line.split(" ");
  const kv = Object.fromEntries(rest.map((p) => [p.slice(0, p.indexOf("=")), Number(p.slice(p.indexOf("=") + 1))]));
  return { round: Number(round), nodes: Number(nodes), ...kv };
});
const counters = (i) => Object.fromEntries(fs.readFileSync(\`\${runDir}/pg-\${i}.txt\`, "utf8").trim().split("\n")
  .map((l) => l.split("=")).map(([k, v]) => [k, Number(v)]));
const [c0, c1, c2] = [0, 1, 2].map(counters);
const idle = Number(t1) - Number(t0), busy = Number(t2) - Number(t1);
const logins = $LOGIN_CLIENTS * $LOGINS;
const per100 = (k) => ((c2[k] - c1[k]) - (c1[k] - c0[k]) * (busy / idle)) * 100 / logins;
// Below zero: the idle window's own work (a purge, a checkpoint's reads), scaled to the busy
// window, was more than the logins added — the logins' share is lost in it.
const n = (x, d = 0) => (x < 0 ? "≈ 0 (under the idle work)"
  : Number(x).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }));
const best = (nodes, k) => Math.max(...rows.filter((r) => r.nodes === nodes).map((r) => r[k]));
const ratio = (k) => best(3, k) / best(1, k);
const perRound = (k) => rows.filter((r) => r.nodes === 3)
  .map((r) => (r[k] / rows.find((o) => o.round === r.round && o.nodes === 1)[k]).toFixed(2) + "×").join(", ");
const section = \`<!-- cluster:begin (bench/cluster.sh) -->
## Three nodes behind HAProxy

\\\`bench/cluster.sh\\\` on $(date -u '+%Y-%m-%d %H:%M:%S') UTC with $PROFILE: three \\\`tessera serve\\\` on one
PostgreSQL, HAProxy in front (round-robin, no stickiness), $ROUNDS rounds, each through a frontend
whose backend is node 1 alone, then through one over all three. On $(nproc) cores the three nodes share
the cores one node had: the ratio is the cluster's overhead, not a speed-up (that needs more cores).

| Metric (best round) | 3 nodes | 1 node | Ratio |
| --- | --- | --- | --- |
| Client-credentials tokens/s at $CONNECTIONS connections | \${n(best(3, "rps"))} | \${n(best(1, "rps"))} | \${ratio("rps").toFixed(2)}× (per round: \${perRound("rps")}) |
| Logins/s end to end, $LOGIN_CLIENTS clients at once ($((LOGIN_CLIENTS * LOGINS)) per run) | \${n(best(3, "logins_per_s"), 1)} | \${n(best(1, "logins_per_s"), 1)} | \${ratio("logins_per_s").toFixed(2)}× (per round: \${perRound("logins_per_s")}) |

What PostgreSQL does per 100 logins (three nodes; a login = /authorize, the hosted form, the
code redeemed for tokens; the idle cluster's own work over the same time taken off):

| Per 100 logins | |
| --- | --- |
| Transactions committed (a statement outside a transaction counts as one: most are reads) | \${n(per100("xact_commit"))} |
| Rows inserted / updated / deleted | \${n(per100("tup_inserted"))} / \${n(per100("tup_updated"))} / \${n(per100("tup_deleted"))} |
| WAL records / bytes | \${n(per100("wal_records"))} / \${n(per100("wal_bytes") / 1024, 1)} KiB |
| Blocks read from outside PostgreSQL's cache | \${n(per100("blks_read"))} |
| PostgreSQL CPU | \${n(per100("cpu_ticks") * 10)} ms |

Machine: $(nproc) cores; load average $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end.

Reproduce: \\\`bench/cluster.sh\\\` (knobs: \\\`BENCH_ROUNDS\\\`, \\\`BENCH_LOGINS\\\`, \\\`BENCH_LOGIN_CLIENTS\\\`, \\\`BENCH_DURATION\\\`;
raw outputs in \\\`bench/results/cluster-*/\\\`).
<!-- cluster:end -->\`;
let text = fs.existsSync(out) ? fs.readFileSync(out, "utf8") : "# Benchmarks\n";
const re = /<!-- cluster:begin[\s\S]*?<!-- cluster:end -->/;
text = re.test(text) ? text.replace(re, section) : text.trimEnd() + "\n\n" + section + "\n";
fs.writeFileSync(out, text);
console.log(\`issuance \${ratio("rps").toFixed(2)}x, logins \${ratio("logins_per_s").toFixed(2)}x; per 100 logins: \${n(per100("xact_commit"))} commits, \${n(per100("wal_bytes") / 1024, 1)} KiB WAL\`);
NODE
log "wrote the cluster section of ${OUT#"$ROOT"/}"
