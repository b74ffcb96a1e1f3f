#!/usr/bin/env bash
# Large tenants, measured (issue 18): a database of BENCH_TENANT_USERS users against one of
# BENCH_TENANT_SMALL users, both built in this run, each on its own fresh data directory
# with a fresh `tessera serve`, and for each:
#  - start time: the exec of `tessera serve` → the first 200 of GET /healthz;
#  - the server's RSS after the start, after the load, and its peak (VmHWM);
#  - the database's size on disk (main file + WAL, after a checkpoint);
#  - hosted logins (bench/tenant.mjs logins): p50/p99 and rate, users picked at random over
#    the whole database, from /authorize through the hosted form to the code's redemption;
#  - client-credentials tokens/s (wrk + bench/token.lua, as bench/run.sh);
#  - the Management API's deepest page (page 19 of 50: the deepest Auth0 serves), its
#    first page with a total, and searches (an exact email, a prefix) — median and slowest;
#  - the dashboard's users page over HTTP with an administrator's session (signed in through
#    /admin/login and the hosted login page): the first page, the same depth, a prefix
#    search and an exact one;
# each as a ratio large/small, against the issue's goal (±20%; memory flat).
#
# Honest rows: users are written by crates/server/examples/seed_users.rs through the store's
# own bulk path (`Store::import_users`, the users-imports job's, 500 a transaction), every
# column as the product writes it, random `auth0|<hex>` ids. Every password hash is a real
# Argon2id hash made with Tessera's own `hash_password_blocking`: BENCH_TENANT_HASHES distinct
# ones (1,000 by default, on every core), user i has the password of hash i mod HASHES, so a
# login pays the real verification. (Hashing a million distinct passwords would take hours
# on two cores: the Argon2 cost is per login, not per stored row, so sharing hashes between
# users changes nothing the server does.) The import stores an Argon2 PHC string as it is.
#
# Writes (or replaces) the section between the `tenant` markers of BENCHMARKS.md; bench/run.sh
# keeps that section when it rewrites the file. See bench/README.md.
#
# Usage: bench/tenant.sh
# Knobs (environment, all optional):
#   BENCH_TENANT_USERS=1000000  users in the large database
#   BENCH_TENANT_SMALL=1000     users in the reference database
#   BENCH_TENANT_HASHES=1000    distinct Argon2id hashes (passwords) shared by the users
#   BENCH_TENANT_BATCH=500      users per import transaction (at most 2000)
#   BENCH_TENANT_LOGINS=200     hosted logins timed      BENCH_TENANT_CLIENTS=4  at once
#   BENCH_TENANT_REQUESTS=200   requests per Management API / dashboard query
#   BENCH_TENANT_DURATION=5     seconds of the client-credentials wrk run (after 2 s warm-up)
#   BENCH_TENANT_ROUNDS=3       rounds of the loads, small and large in turn; the best counts
#   BENCH_SKIP_BUILD=1          use target/release/tessera and examples/seed_users as they are
#   BENCH_TESSERA_BIN=PATH      measure that binary instead (implies no build of it)
#   BENCH_SEED_BIN=PATH         the seed_users example to use (implies no build of it)
#   BENCH_OUT=BENCHMARKS.md     report path, relative to the repository root
set -euo pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd -- "$BENCH_DIR/.." && pwd)
cd "$ROOT"

LARGE=${BENCH_TENANT_USERS:-1000000}
SMALL=${BENCH_TENANT_SMALL:-1000}
HASHES=${BENCH_TENANT_HASHES:-1000}
BATCH=${BENCH_TENANT_BATCH:-500}
LOGINS=${BENCH_TENANT_LOGINS:-200}
CLIENTS=${BENCH_TENANT_CLIENTS:-4}
REQUESTS=${BENCH_TENANT_REQUESTS:-200}
DURATION=${BENCH_TENANT_DURATION:-5}
ROUNDS=${BENCH_TENANT_ROUNDS:-3}
OUT=${BENCH_OUT:-BENCHMARKS.md}
[[ $OUT == /* ]] || OUT="$ROOT/$OUT"
for pair in USERS:LARGE SMALL:SMALL HASHES:HASHES BATCH:BATCH LOGINS:LOGINS CLIENTS:CLIENTS \
  REQUESTS:REQUESTS DURATION:DURATION ROUNDS:ROUNDS; do
  v=${pair#*:}
  [[ ${!v} =~ ^[0-9]+$ ]] \
    || { echo "bench/tenant: BENCH_TENANT_${pair%%:*} must be a whole number (got '${!v}')" >&2; exit 2; }
done
(( SMALL >= 1000 && LARGE >= SMALL && LARGE <= 10000000 && HASHES >= 1 && HASHES <= 100000 \
  && BATCH >= 1 && BATCH <= 2000 && LOGINS >= 10 && LOGINS <= 2000 && ROUNDS >= 1 && ROUNDS <= 5 && CLIENTS >= 1 && CLIENTS <= 64 \
  && REQUESTS >= 3 && REQUESTS <= 1000 && DURATION >= 1 && DURATION <= 120 )) \
  || { echo "bench/tenant: need 1000 <= BENCH_TENANT_SMALL <= BENCH_TENANT_USERS <= 10000000, 1..100000 hashes, batches of 1..2000, 10..2000 logins, 1..5 rounds, 1..64 clients, 3..1000 requests, 1..120 s" >&2; exit 2; }

log() { printf '[bench/tenant %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf '[bench/tenant] FAILED: %s\n' "$*" >&2; exit 1; }
for tool in sqlite3 curl node wrk; do
  command -v "$tool" >/dev/null || die "$tool is needed (Debian: apt-get install -y sqlite3 curl nodejs wrk)"
done

BIN=${BENCH_TESSERA_BIN:-$ROOT/target/release/tessera}
SEED_BIN=${BENCH_SEED_BIN:-$ROOT/target/release/examples/seed_users}
BUILD="none"
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  # Two invocations: built together, feature unification would change the server binary.
  if [[ -z ${BENCH_TESSERA_BIN:-} ]]; then
    log "cargo build --release -p tessera"
    cargo build --release -p tessera >&2 || die "the build failed"
    BUILD="cargo build --release -p tessera"
  fi
  if [[ -z ${BENCH_SEED_BIN:-} ]]; then
    log "cargo build --release -p tessera-server --example seed_users"
    cargo build --release -p tessera-server --example seed_users >&2 || die "the build of seed_users failed"
  fi
fi
[[ -x $BIN ]] || die "no binary at $BIN"
[[ -x $SEED_BIN ]] || die "no seed_users at $SEED_BIN (cargo build --release -p tessera-server --example seed_users)"

mkdir -p "$BENCH_DIR/results"
RUN_DIR=$(mktemp -d "$BENCH_DIR/results/tenant-$(date +%Y%m%d-%H%M%S)-XXXX")
RESULTS="$RUN_DIR/results.txt"
: >"$RESULTS"
record() { printf '%s=%s\n' "$1" "$2" >>"$RESULTS"; }
log "run directory: ${RUN_DIR#"$ROOT"/}"

# Both servers run at once, measured in alternating rounds (small, large, small, …): the
# machine's other work then weighs on both alike. SERVER_PID: the server started last.
SERVER_PID=""
declare -A PID_OF=() PORT_OF=()
cleanup() {
  local pid
  for pid in $SERVER_PID "${PID_OF[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  local port fd i
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + RANDOM % 12000))
    if ! { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
      echo "$port"
      return 0
    fi
    exec {fd}>&-
  done
  die "no free port found"
}

# start_server DIR PORT LOG: `tessera serve` on DIR's database at PORT (the issuer names it,
# so a tenant keeps its port); sets SERVER_PID and START_MS (exec → first 200 of /healthz).
start_server() {
  local t0=$EPOCHREALTIME i
  RUST_LOG=warn "$BIN" serve --database-url "sqlite://$1/tessera.db" --listen "127.0.0.1:$2" \
    --issuer "http://127.0.0.1:$2/" >"$3" 2>&1 &
  SERVER_PID=$!
  for ((i = 0; i < 12000; i++)); do
    if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$2/healthz" 2>/dev/null; then
      START_MS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || die "tessera serve exited: $(tail -5 "$3")"
    sleep 0.01
  done
  die "tessera serve was not ready within 2 minutes: $(tail -5 "$3")"
}

stop_server() { # stop_server PID
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

kb() { awk -v key="$2:" '$1 == key {print $2}' "/proc/$1/status"; } # kb PID KEY
# `--`: a value may begin with "-" (a random secret), which node would take for an option.
json() { node -p "const v = JSON.parse(process.argv[1])$2; v" -- "$1"; }
urlencode() { node -p 'encodeURIComponent(process.argv[1])' -- "$1"; }

CALLBACK=http://127.0.0.1:9/callback
ADMIN_EMAIL=admin@tenant.bench.example
ADMIN_PASSWORD=bench-admin-$RANDOM$RANDOM$RANDOM
AUDIENCE=https://tenant.bench/
declare -A COUNT_OF=() SPA_OF=() TOKEN_BODY_OF=() API_TOKEN_OF=()

# The queries, as kind|label|path (users are user0000000@bench.example…: the middle one is
# found exactly; the prefix user00 matches the first 100,000 users, or all of a smaller
# database).
queries() { # queries COUNT
  local middle
  middle=$(printf 'user%07d@bench.example' $(( $1 / 2 )))
  printf '%s\n' \
    "api|deepest page (950-999)|/api/v2/users?per_page=50&page=19" \
    "api|first page with include_totals|/api/v2/users?per_page=50&include_totals=true" \
    "api|q=email:\"…\" (exact)|/api/v2/users?q=email%3A%22$middle%22" \
    "api|q=email:user00* (prefix)|/api/v2/users?per_page=50&q=email%3Auser00*" \
    "dash|users, first page|/admin/users" \
    "dash|users, page 50 (981-1000)|/admin/users?page=49" \
    "dash|search email \"user00\" (prefix)|/admin/users?field=email&term=user00" \
    "dash|search a whole email|/admin/users?field=email&term=$middle"
}

# prepare NAME COUNT: a fresh data directory with COUNT users, an administrator and the
# applications; its size on disk.
prepare() {
  local name=$1 count=$2 dir="$RUN_DIR/$1" out app port
  mkdir -p "$dir"
  port=$(free_port)
  PORT_OF[$name]=$port
  COUNT_OF[$name]=$count
  export TESSERA_DATABASE_URL="sqlite://$dir/tessera.db"
  log "$name: migrating a fresh database (first start)"
  start_server "$dir" "$port" "$dir/first-start.log"
  record "${name}_first_start_ms" "$START_MS"
  stop_server "$SERVER_PID"
  SERVER_PID=""
  log "$name: seeding $count users through Store::import_users"
  out=$("$SEED_BIN" "$TESSERA_DATABASE_URL" "$count" "$HASHES" "$BATCH" 2> >(tee "$dir/seed.log" >&2)) \
    || die "$name: seed_users failed"
  record "${name}_seed" "$out"
  # The administrator, an SPA for the logins, an API and an M2M application for the
  # client credentials and the Management API.
  printf '%s\n' "$ADMIN_PASSWORD" | RUST_LOG=warn "$BIN" users create --email "$ADMIN_EMAIL" \
    --password-stdin --email-verified --json >/dev/null || die "tessera users create failed"
  RUST_LOG=warn "$BIN" admins add "$ADMIN_EMAIL" >/dev/null || die "tessera admins add failed"
  app=$(RUST_LOG=warn "$BIN" apps create --name tenant-spa --type spa --callbacks "$CALLBACK" --json) \
    || die "tessera apps create (spa) failed"
  SPA_OF[$name]=$(json "$app" .client_id)
  RUST_LOG=warn "$BIN" apis create --name "Tenant bench API" --identifier "$AUDIENCE" --scopes read:bench --json \
    >/dev/null || die "tessera apis create failed"
  app=$(RUST_LOG=warn "$BIN" apps create --name tenant-m2m --type m2m --json) || die "tessera apps create (m2m) failed"
  local client_id client_secret
  client_id=$(json "$app" .client_id)
  client_secret=$(json "$app" .client_secret)
  RUST_LOG=warn "$BIN" grants create --app "$client_id" --api "$AUDIENCE" --scopes read:bench --json >/dev/null \
    || die "tessera grants create failed"
  RUST_LOG=warn "$BIN" grants create --app "$client_id" --api "http://127.0.0.1:$port/api/v2/" --scopes read:users \
    --json >/dev/null || die "tessera grants create (Management API) failed"
  TOKEN_BODY_OF[$name]="grant_type=client_credentials&client_id=$(urlencode "$client_id")&client_secret=$(urlencode "$client_secret")"
  unset TESSERA_DATABASE_URL
  # The size on disk: the WAL checkpointed into the main file, both counted.
  sqlite3 "$dir/tessera.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null || die "$name: the checkpoint failed"
  record "${name}_db_bytes" "$(( $(stat -c %s "$dir/tessera.db") + $( [[ -f $dir/tessera.db-wal ]] && stat -c %s "$dir/tessera.db-wal" || echo 0) ))"
}

# serve NAME: the measured server of NAME, started fresh; its start time and idle RSS.
serve() {
  local name=$1 dir="$RUN_DIR/$1" base
  start_server "$dir" "${PORT_OF[$name]}" "$dir/serve.log"
  PID_OF[$name]=$SERVER_PID
  SERVER_PID=""
  record "${name}_start_ms" "$START_MS"
  sleep 1
  record "${name}_idle_rss_kb" "$(kb "${PID_OF[$name]}" VmRSS)"
  base="http://127.0.0.1:${PORT_OF[$name]}"
  API_TOKEN_OF[$name]=$(curl -fsS --max-time 10 -d "${TOKEN_BODY_OF[$name]}" \
    --data-urlencode "audience=$base/api/v2/" "$base/oauth/token" \
    | node -p "JSON.parse(require('fs').readFileSync(0)).access_token") || die "$name: no Management API token"
}

# measure NAME ROUND: one round of NAME's loads.
measure() {
  local name=$1 round=$2 dir="$RUN_DIR/$1" count=${COUNT_OF[$1]} out base="http://127.0.0.1:${PORT_OF[$1]}"
  out=$(queries "$count" | node "$BENCH_DIR/tenant.mjs" pages "$base" "$REQUESTS" "$ADMIN_EMAIL" "$ADMIN_PASSWORD" \
    "${API_TOKEN_OF[$name]}") || die "$name: the Management API / dashboard queries failed"
  record "${name}_pages_r$round" "$out"
  # Each round signs in from its own loopback addresses (the form's per-address throttle).
  out=$(node "$BENCH_DIR/tenant.mjs" logins "$base" "${SPA_OF[$name]}" "$CALLBACK" "$count" \
    "$(( HASHES < count ? HASHES : count ))" "$LOGINS" "$CLIENTS" "$(( 2 + (round - 1) * ((LOGINS + 49) / 50) ))") \
    || die "$name: the logins failed"
  record "${name}_logins_r$round" "$out"
  log "$name round $round: logins $out"
  local body="${TOKEN_BODY_OF[$name]}&audience=$(urlencode "$AUDIENCE")" wrk_out="$dir/wrk-r$round.txt"
  BENCH_TOKEN_BODY=$body wrk -d2s -t2 -c16 --timeout 5s -s "$BENCH_DIR/token.lua" "$base" >"$wrk_out.warmup" 2>&1 \
    || die "$name: wrk warm-up failed: $(tail -3 "$wrk_out.warmup")"
  BENCH_TOKEN_BODY=$body wrk -d"${DURATION}s" -t2 -c16 --latency --timeout 5s -s "$BENCH_DIR/token.lua" "$base" \
    >"$wrk_out" 2>&1 || die "$name: wrk failed: $(tail -3 "$wrk_out")"
  grep -q 'err_status=0 ' "$wrk_out" || die "$name: token requests failed: $(grep BENCH_RESULT "$wrk_out")"
  record "${name}_tokens_r$round" "$(grep -o 'rps=[0-9.]*' "$wrk_out" | cut -d= -f2)"
  log "$name round $round: client credentials $(grep BENCH_RESULT "$wrk_out")"
}

record users_small "$SMALL"
record users_large "$LARGE"
record hashes "$HASHES"
record batch "$BATCH"
record logins "$LOGINS"
record clients "$CLIENTS"
record requests "$REQUESTS"
record duration "$DURATION"
record rounds "$ROUNDS"
record build "$BUILD"
record binary "${BIN#"$ROOT"/}"
record seed_binary "${SEED_BIN#"$ROOT"/}"
record machine "$(nproc) cores, $(awk '/^MemTotal:/ {printf "%.1f GB", $2 / 1048576}' /proc/meminfo)"
record loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"

prepare small "$SMALL"
prepare large "$LARGE"
log "measuring, $ROUNDS rounds, small and large in turn"
# Start times first (one sample is mostly the machine's noise): a start and a stop each
# round, then the measured servers' own starts.
for ((round = 1; round <= ROUNDS; round++)); do
  for name in small large; do
    start_server "$RUN_DIR/$name" "${PORT_OF[$name]}" "$RUN_DIR/$name/start-r$round.log"
    record "${name}_start_ms_r$round" "$START_MS"
    stop_server "$SERVER_PID"
    SERVER_PID=""
  done
done
serve small
serve large
for ((round = 1; round <= ROUNDS; round++)); do
  measure small "$round"
  measure large "$round"
done
for name in small large; do
  record "${name}_rss_kb" "$(kb "${PID_OF[$name]}" VmRSS)"
  record "${name}_hwm_kb" "$(kb "${PID_OF[$name]}" VmHWM)"
done
record loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

node "$BENCH_DIR/tenant-report.mjs" "$RESULTS" "$OUT" || die "writing the report failed"
log "wrote the tenant section of ${OUT#"$ROOT"/} (raw outputs in ${RUN_DIR#"$ROOT"/})"
