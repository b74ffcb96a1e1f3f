#!/usr/bin/env bash
# The write paths on SQLite, each against the limit that binds it, measured in the same run:
#  - refresh-token rotation and the code cycle with an SSO session (bench/writes.mjs), at
#    4 and 16 clients, against min(RSA-2048 signatures/s ÷ tokens signed per operation,
#    the disk's durable SQLite commits/s ÷ durable writes an operation needs: 1 for a
#    rotation, 2 for a code cycle — the code stored, then spent);
#  - password logins through the hosted form, 64 clients at once, each ending with its code
#    exchanged, against the Argon2id verifications/s of Tessera's own parameters and crate
#    (crates/server/examples/argon2_rate.rs) — and, for information, against that plus the
#    RSA signatures of the tokens; and the server's resident memory before the burst, right
#    after it and 5 s later;
#  - the floor under a rotation: the same requests against an HTTP server that only signs
#    the two tokens (crates/server/examples/sign_floor.rs, pinned like the server) — what
#    HTTP, the crypto and the kernel cost any server here, before any database or policy.
# The commit limit: the sqlite3 shell commits single-row transactions (WAL,
# synchronous=FULL, as Tessera) into a database beside the server's, one after another.
# The server's own writes and commits (its metrics) show how many writes shared a sync.
# Pinned (the default with 2+ cores and taskset): the server runs on the last core and the
# load generator on the others, and the RSA and Argon2id limits are measured on the
# server's core alone — so the load generator's own CPU is not counted against the server.
#
# Writes (or replaces) the section between the `writes` markers of BENCHMARKS.md;
# bench/run.sh keeps that section when it rewrites the file. See bench/README.md.
#
# Usage: bench/writes.sh
# Knobs (environment, all optional):
#   BENCH_DURATION=10       seconds of each measured rotation / code-cycle run (after 2 s warm-up)
#   BENCH_ROUNDS=2          rounds; each load counts its best round, against that round's limits
#   BENCH_LOGIN_CLIENTS=64  clients signing in at once     BENCH_LOGINS=3  logins per client
#   BENCH_PIN=auto          1: server on the last core, load on the others, limits on the
#                           server's core; 0: nothing pinned, limits on every core
#   BENCH_SKIP_BUILD=1      use target/release/tessera and its argon2_rate example as they are
#   BENCH_TESSERA_BIN=PATH  measure that binary instead (implies no build of it)
#   BENCH_ARGON2_RATE_BIN=PATH  the argon2_rate example to use (implies no build of it)
#   BENCH_SIGN_FLOOR_BIN=PATH   the sign_floor example to use (implies no build of it)
#   BENCH_OUT=BENCHMARKS.md report path, relative to the repository root
set -euo pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd -- "$BENCH_DIR/.." && pwd)
cd "$ROOT"

DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-2}
LOGIN_CLIENTS=${BENCH_LOGIN_CLIENTS:-64}
LOGINS=${BENCH_LOGINS:-3}
OUT=${BENCH_OUT:-BENCHMARKS.md}
[[ $OUT == /* ]] || OUT="$ROOT/$OUT"
for v in DURATION ROUNDS LOGIN_CLIENTS LOGINS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench/writes: $v must be a positive whole number (got '${!v}')" >&2; exit 2; }
done
(( DURATION <= 120 && ROUNDS <= 5 && LOGIN_CLIENTS <= 250 && LOGINS <= 20 )) \
  || { echo "bench/writes: a knob is out of its bounds (duration <= 120, rounds <= 5, login clients <= 250, logins <= 20)" >&2; exit 2; }

PIN=${BENCH_PIN:-auto}
[[ $PIN =~ ^(auto|0|1)$ ]] || { echo "bench/writes: BENCH_PIN must be auto, 0 or 1 (got '$PIN')" >&2; exit 2; }
if [[ $PIN == auto ]]; then
  if command -v taskset >/dev/null && (( $(nproc) >= 2 )); then PIN=1; else PIN=0; fi
fi
if (( PIN )); then
  (( $(nproc) >= 2 )) || { echo "bench/writes: BENCH_PIN=1 needs 2 or more cores" >&2; exit 2; }
  SERVER_CPU=$(( $(nproc) - 1 ))
  SERVER_PIN=(taskset -c "$SERVER_CPU")
  LOAD_PIN=(taskset -c "0-$(( SERVER_CPU - 1 ))")
  SERVER_CORES=1
else
  SERVER_PIN=()
  LOAD_PIN=()
  SERVER_CORES=$(nproc)
fi

log() { printf '[bench/writes %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf '[bench/writes] FAILED: %s\n' "$*" >&2; exit 1; }
for tool in curl node openssl sqlite3 python3; do
  command -v "$tool" >/dev/null || die "$tool is needed (Debian: apt-get install -y curl nodejs openssl sqlite3 python3)"
done

BIN=${BENCH_TESSERA_BIN:-$ROOT/target/release/tessera}
RATE_BIN=${BENCH_ARGON2_RATE_BIN:-$ROOT/target/release/examples/argon2_rate}
FLOOR_BIN=${BENCH_SIGN_FLOOR_BIN:-$ROOT/target/release/examples/sign_floor}
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  if [[ -z ${BENCH_TESSERA_BIN:-} ]]; then
    log "cargo build --release -p tessera"
    cargo build --release -p tessera >&2 || die "the build failed"
  fi
  examples=()
  [[ -n ${BENCH_ARGON2_RATE_BIN:-} ]] || examples+=(--example argon2_rate)
  [[ -n ${BENCH_SIGN_FLOOR_BIN:-} ]] || examples+=(--example sign_floor)
  if (( ${#examples[@]} )); then
    log "cargo build --release -p tessera-server ${examples[*]}"
    cargo build --release -p tessera-server "${examples[@]}" >&2 || die "the build of the examples failed"
  fi
fi
[[ -x $BIN ]] || die "no binary at $BIN"
[[ -x $RATE_BIN ]] || die "no argon2_rate at $RATE_BIN (cargo build --release -p tessera-server --example argon2_rate)"
[[ -x $FLOOR_BIN ]] || die "no sign_floor at $FLOOR_BIN (cargo build --release -p tessera-server --example sign_floor)"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$BENCH_DIR/results"
RUN_DIR=$BENCH_DIR/results/writes-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RUN_DIR"
RESULTS=$RUN_DIR/results.txt
: >"$RESULTS"
record() { printf '%s=%s\n' "$1" "$2" >>"$RESULTS"; }
free_port() { node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }

SERVER_PID=
FLOOR_PID=
cleanup() {
  local pid
  for pid in $SERVER_PID $FLOOR_PID; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

# ---- the limits ------------------------------------------------------------------------------
commit_rate() { # single-row transactions, WAL + FULL, in a database beside the server's
  local db=$RUN_DIR/commits.db n=2000 started ended
  rm -f "$db" "$db-wal" "$db-shm"
  sqlite3 "$db" 'PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);' >/dev/null
  python3 -c "import sys
n = int(sys.argv[1])
print('PRAGMA synchronous=FULL;')
for i in range(n): print(f\"BEGIN IMMEDIATE; INSERT INTO t (v) VALUES ('row {i}'); COMMIT;\")" "$n" >"$RUN_DIR/commits.sql"
  started=$(date +%s.%N)
  sqlite3 "$db" <"$RUN_DIR/commits.sql" >/dev/null
  ended=$(date +%s.%N)
  [[ $(sqlite3 "$db" 'SELECT count(*) FROM t') == "$n" ]] || die "the commit loop lost rows"
  node -p "($n / ($ended - $started)).toFixed(1)"
}
rsa_rate() { # RSA-2048 sign/s on the server's cores
  local multi=()
  (( PIN )) || multi=(-multi "$(nproc)")
  "${SERVER_PIN[@]}" openssl speed -seconds 3 "${multi[@]}" rsa2048 2>/dev/null \
    | awk '/sign\/s/ && /verify\/s/ { for (i = 1; i <= NF; i++) if ($i == "sign/s") col = i + 3; next }
           col && $1 == "rsa" && $2 == "2048" { print $col; exit }'
}

# ---- a server on SQLite with an API, a SPA and a user --------------------------------------
export TESSERA_DATABASE_URL=sqlite://$RUN_DIR/tessera.db
TESSERA_MASTER_KEY=$(node -p 'require("crypto").randomBytes(32).toString("hex")')
export TESSERA_MASTER_KEY
AUDIENCE=https://bench.writes/
CALLBACK=http://127.0.0.1:9/callback
EMAIL=bench@example.com
PASSWORD=bench-password-$RANDOM$RANDOM
tessera() { RUST_LOG=warn "$BIN" "$@"; }
tessera apis create --name "Bench API" --identifier "$AUDIENCE" --scopes read:bench --allow-offline-access --json >/dev/null
spa=$(tessera apps create --name bench-spa --type spa --callbacks "$CALLBACK" --json)
SPA_ID=$(node -p "JSON.parse(process.argv[1]).client_id" "$spa")
printf '%s\n' "$PASSWORD" | tessera users create --email "$EMAIL" --password-stdin --email-verified --json >/dev/null

PORT=$(free_port)
METRICS=$(free_port)
BASE=http://127.0.0.1:$PORT
RUST_LOG=warn "${SERVER_PIN[@]}" "$BIN" serve --listen "127.0.0.1:$PORT" --issuer "$BASE/" --metrics-listen "127.0.0.1:$METRICS" \
  >"$RUN_DIR/server.log" 2>&1 &
SERVER_PID=$!
for ((i = 0; i < 300; i++)); do
  curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited: $(tail -5 "$RUN_DIR/server.log")"
  sleep 0.1
done
curl -fsS -o /dev/null "$BASE/healthz" || die "the server is not ready: $(tail -5 "$RUN_DIR/server.log")"
FLOOR_PORT=$(free_port)
FLOOR_BASE=http://127.0.0.1:$FLOOR_PORT
"${SERVER_PIN[@]}" "$FLOOR_BIN" "127.0.0.1:$FLOOR_PORT" >"$RUN_DIR/floor.log" 2>&1 &
FLOOR_PID=$!
for ((i = 0; i < 100; i++)); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' -X POST -d grant_type=refresh_token "$FLOOR_BASE/oauth/token") == 200 ]] && break
  kill -0 "$FLOOR_PID" 2>/dev/null || die "sign_floor exited: $(tail -5 "$RUN_DIR/floor.log")"
  sleep 0.1
done
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status"; }

measure() { # measure KEY MODE CLIENTS AMOUNT: one run of bench/writes.mjs
  local key=$1 mode=$2 clients=$3 amount=$4 out base=$BASE pid=$SERVER_PID metrics=http://127.0.0.1:$METRICS/metrics
  [[ $mode != floor ]] || { base=$FLOOR_BASE; pid=$FLOOR_PID; metrics=; }
  out=$(BENCH_METRICS_URL=$metrics BENCH_SERVER_PID=$pid \
    "${LOAD_PIN[@]}" node "$BENCH_DIR/writes.mjs" "$mode" "$base" "$SPA_ID" "$CALLBACK" "$EMAIL" "$PASSWORD" "$AUDIENCE" "$clients" "$amount") \
    || die "bench/writes.mjs $mode failed"
  echo "$out" >"$RUN_DIR/$key.json"
  record "$key" "$out"
  log "$key: $out"
}

# Each load is compared with limits measured right before and right after it: this
# machine's speed drifts by more than the goals' margins within a minute, so a limit
# measured a minute away from its load says little about it. One RSA measurement between
# two loads serves as the first one's "after" and the next one's "before".
argon2_rate() { "${SERVER_PIN[@]}" "$RATE_BIN" "$SERVER_CORES" 5; }
RSA_LAST=
signing_load() { # signing_load KEY MODE CLIENTS: a load bound by RSA, with its neighbouring rates
  record "rsa_before_$1" "$RSA_LAST"
  measure "$1" "$2" "$3" "$DURATION"
  RSA_LAST=$(rsa_rate)
  record "rsa_after_$1" "$RSA_LAST"
}
for ((round = 1; round <= ROUNDS; round++)); do
  log "round $round: limits"
  record "commits_r$round" "$(commit_rate)"
  RSA_LAST=$(rsa_rate)
  record "rsa_r$round" "$RSA_LAST"
  for clients in 4 16; do
    signing_load "rotation_c${clients}_r$round" rotation "$clients"
    signing_load "floor_c${clients}_r$round" floor "$clients"
    signing_load "code_c${clients}_r$round" code "$clients"
  done
  record "rsa_after_r$round" "$RSA_LAST"
  record "argon2_r$round" "$(argon2_rate)"
  sleep 2
  record "rss_before_r$round" "$(rss_mb)"
  measure "login_r$round" login "$LOGIN_CLIENTS" "$LOGINS"
  record "rss_after_r$round" "$(rss_mb)"
  sleep 5
  record "rss_later_r$round" "$(rss_mb)"
  record "argon2_after_r$round" "$(argon2_rate)"
done
record load_start "$LOAD_START"
record load_end "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- the report ------------------------------------------------------------------------------
node "$BENCH_DIR/writes-report.mjs" "$RESULTS" "$OUT" "$ROUNDS" "$LOGIN_CLIENTS" "$LOGINS" "$DURATION" \
  "$(date -u '+%Y-%m-%d %H:%M:%S')" "$SERVER_CORES" "${BIN#"$ROOT"/}" "$PIN" "$(nproc)" || die "the report failed"
log "wrote the writes section of ${OUT#"$ROOT"/} (raw outputs in ${RUN_DIR#"$ROOT"/})"
