#!/usr/bin/env bash
# Management API lists at scale: GET /api/v2/users (first page, the deepest page Auth0
# serves, with a total, sorted, an exact email, email and name prefixes) on a database of
# BENCH_LIST_USERS users, each as a ratio against the same query on BENCH_LIST_SMALL
# users in the same run, and the server's memory (VmRSS after the queries, VmHWM) the same
# way. Users are written straight into a fresh SQLite database that `tessera serve`
# migrated (large INSERT … SELECT transactions through the sqlite3 shell), so seeding a
# million takes a minute, not the hours of Argon2 hashing an API call would.
#
# Writes (or replaces) the section between the `lists` markers of BENCHMARKS.md; bench/run.sh
# keeps that section when it rewrites the file. See bench/README.md.
#
# Usage: bench/lists.sh
# Knobs (environment, all optional):
#   BENCH_LIST_USERS=1000000   users in the large database
#   BENCH_LIST_SMALL=1000      users in the reference database
#   BENCH_LIST_REQUESTS=30     requests per query (median and slowest reported)
#   BENCH_LIST_BATCH=100000    users per INSERT transaction
#   BENCH_SKIP_BUILD=1         use target/release/tessera as it is
#   BENCH_TESSERA_BIN=PATH     measure that binary instead (implies no build); e.g. the
#                              debug binary with a small BENCH_LIST_USERS to try the script
#   BENCH_OUT=BENCHMARKS.md    report path, relative to the repository root
set -euo pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd -- "$BENCH_DIR/.." && pwd)
cd "$ROOT"

LARGE=${BENCH_LIST_USERS:-1000000}
SMALL=${BENCH_LIST_SMALL:-1000}
REQUESTS=${BENCH_LIST_REQUESTS:-30}
BATCH=${BENCH_LIST_BATCH:-100000}
OUT=${BENCH_OUT:-BENCHMARKS.md}
[[ $OUT == /* ]] || OUT="$ROOT/$OUT"
for v in LARGE SMALL REQUESTS BATCH; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench/lists: $v must be a whole number (got '${!v}')" >&2; exit 2; }
done
(( SMALL >= 1000 && LARGE >= SMALL && REQUESTS >= 3 && REQUESTS <= 1000 && BATCH >= 1000 )) \
  || { echo "bench/lists: need 1000 <= BENCH_LIST_SMALL <= BENCH_LIST_USERS, 3..1000 requests, batches of 1000+" >&2; exit 2; }

log() { printf '[bench/lists %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf '[bench/lists] FAILED: %s\n' "$*" >&2; exit 1; }
for tool in sqlite3 curl node; do
  command -v "$tool" >/dev/null || die "$tool is needed (Debian: apt-get install -y sqlite3 curl nodejs)"
done

if [[ -n ${BENCH_TESSERA_BIN:-} ]]; then
  BIN=$BENCH_TESSERA_BIN
  BUILD="none (BENCH_TESSERA_BIN)"
elif [[ ${BENCH_SKIP_BUILD:-0} == 1 ]]; then
  BIN=$ROOT/target/release/tessera
  BUILD="none (BENCH_SKIP_BUILD)"
else
  BIN=$ROOT/target/release/tessera
  BUILD="cargo build --release -p tessera"
  log "$BUILD"
  $BUILD >&2 || die "the build failed"
fi
[[ -x $BIN ]] || die "no binary at $BIN"

mkdir -p "$BENCH_DIR/results"
RUN_DIR=$(mktemp -d "$BENCH_DIR/results/lists-$(date +%Y%m%d-%H%M%S)-XXXX")
RESULTS="$RUN_DIR/results.txt"
: >"$RESULTS"
record() { printf '%s=%s\n' "$1" "$2" >>"$RESULTS"; }
log "run directory: ${RUN_DIR#"$ROOT"/}"

SERVER_PID=""
cleanup() {
  [[ -n $SERVER_PID ]] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
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

# The issuer names the Management API (<issuer>api/v2/): the same for every start.
ISSUER=http://lists.bench.invalid/
AUDIENCE=${ISSUER}api/v2/

start_server() { # start_server DB_URL LOG: sets SERVER_PID, PORT
  PORT=$(free_port)
  RUST_LOG=warn "$BIN" serve --database-url "$1" --listen "127.0.0.1:$PORT" --issuer "$ISSUER" >"$2" 2>&1 &
  SERVER_PID=$!
  local i
  for ((i = 0; i < 600; i++)); do
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/healthz" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || die "tessera serve exited: $(tail -5 "$2")"
    sleep 0.1
  done
  die "tessera serve was not ready within 60 s: $(tail -5 "$2")"
}

stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

kb() { awk -v key="$1:" '$1 == key {print $2}' "/proc/$SERVER_PID/status"; }

# seed NAME COUNT: a migrated database with COUNT users and a Management API client;
# sets DB_FILE, DB_URL, CLIENT_ID, CLIENT_SECRET.
seed() {
  local name=$1 count=$2 dir="$RUN_DIR/$1" done=0 upto
  mkdir -p "$dir"
  DB_FILE="$dir/tessera.db"
  DB_URL="sqlite://$DB_FILE"
  log "$name: migrating a fresh database and registering the Management API"
  start_server "$DB_URL" "$dir/first-start.log"
  stop_server
  log "$name: writing $count users in transactions of $BATCH"
  local t0=$EPOCHREALTIME
  while (( done < count )); do
    upto=$(( done + BATCH < count ? done + BATCH : count ))
    # user_id auth0|<12 hex digits>, emails and names in the same order as created_at.
    sqlite3 "$DB_FILE" >/dev/null <<SQL || die "seeding users $done..$upto failed"
PRAGMA busy_timeout = 10000;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT $done UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $upto)
INSERT INTO users (tenant_id, user_id, connection, email, email_verified, password_hash, name,
  nickname, picture, blocked, created_at, updated_at, last_login, logins_count,
  user_metadata, app_metadata)
SELECT 'default', printf('auth0|%012x', i), 'Username-Password-Authentication',
  printf('user%07d@bench.example', i), 1, NULL, printf('User%07d', i), printf('user%07d', i),
  '', 0, 1700000000 + i, 1700000000 + i,
  CASE WHEN i % 3 = 0 THEN 1700000000 + (i * 7919) % 1000000 END, i % 5, '{}', '{}'
FROM n;
COMMIT;
SQL
    done=$upto
  done
  record "${name}_seed_seconds" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
  record "${name}_db_mb" "$(( $(stat -c %s "$DB_FILE") / 1048576 ))"
  local app
  app=$(RUST_LOG=warn "$BIN" apps create --name bench-lists --type m2m --json --database-url "$DB_URL") \
    || die "tessera apps create failed"
  CLIENT_ID=$(node -p "JSON.parse(process.argv[1]).client_id" "$app")
  CLIENT_SECRET=$(node -p "JSON.parse(process.argv[1]).client_secret" "$app")
  RUST_LOG=warn "$BIN" grants create --app "$CLIENT_ID" --api "$AUDIENCE" --scopes read:users --json \
    --database-url "$DB_URL" >/dev/null || die "tessera grants create failed"
}

# The queries, as name|path (users are named user0000000…: the middle one is found exactly,
# the prefixes match the first 100,000 users, or all of a smaller database).
queries() { # queries COUNT
  local middle
  middle=$(printf 'user%07d@bench.example' $(( $1 / 2 )))
  printf '%s\n' \
    "first page|/api/v2/users?per_page=50" \
    "deepest page (950-999)|/api/v2/users?per_page=50&page=19" \
    "first page with include_totals|/api/v2/users?per_page=50&include_totals=true" \
    "sorted by last_login:-1|/api/v2/users?per_page=50&sort=last_login:-1" \
    "q=email:\"…\" (exact)|/api/v2/users?q=email%3A%22$middle%22" \
    "q=email:user00* (prefix)|/api/v2/users?per_page=50&q=email%3Auser00*" \
    "q=name:user00* (prefix)|/api/v2/users?per_page=50&q=name%3Auser00*" \
    "q=email:user00* sorted by created_at:-1 (sorts every match)|/api/v2/users?per_page=50&q=email%3Auser00*&sort=created_at:-1"
}

# measure NAME COUNT: start the server on NAME's database, time every query.
measure() {
  local name=$1 count=$2 dir="$RUN_DIR/$1" token label path i code times
  start_server "$DB_URL" "$dir/serve.log"
  record "${name}_idle_rss_kb" "$(kb VmRSS)"
  token=$(curl -fsS --max-time 10 -d grant_type=client_credentials -d "client_id=$CLIENT_ID" \
    -d "client_secret=$CLIENT_SECRET" --data-urlencode "audience=$AUDIENCE" \
    "http://127.0.0.1:$PORT/oauth/token" | node -p "JSON.parse(require('fs').readFileSync(0)).access_token") \
    || die "$name: no Management API token"
  local n=0
  while IFS='|' read -r label path; do
    # Each query finds users: an empty answer would time nothing worth knowing.
    curl -fsS --max-time 120 -H "Authorization: Bearer $token" "http://127.0.0.1:$PORT$path" \
      | node -e 'const b = JSON.parse(require("fs").readFileSync(0)); process.exit((b.users ?? b).length > 0 ? 0 : 1)' \
      || die "$name: $label found no user"
    # One curl for all the requests of a query: one kept-alive connection.
    : >"$dir/q$n.curl"
    for ((i = 0; i < REQUESTS; i++)); do
      printf 'url = "http://127.0.0.1:%s%s"\noutput = "/dev/null"\n' "$PORT" "$path" >>"$dir/q$n.curl"
    done
    curl -sS --max-time 120 -H "Authorization: Bearer $token" -K "$dir/q$n.curl" \
      -w '%{http_code} %{time_total}\n' >"$dir/q$n.times" || die "$name: $label: curl failed"
    code=$(awk '$1 != 200 {print $1; exit}' "$dir/q$n.times")
    [[ -z $code ]] || die "$name: $label answered HTTP $code"
    times=$(awk '{print $2 * 1000}' "$dir/q$n.times" | sort -n | awk '{a[NR]=$1} END {printf "%.2f %.2f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), a[NR]}')
    record "${name}_q${n}_label" "$label"
    record "${name}_q${n}_median_ms" "${times% *}"
    record "${name}_q${n}_max_ms" "${times#* }"
    n=$((n + 1))
  done < <(queries "$count")
  record "${name}_rss_kb" "$(kb VmRSS)"
  record "${name}_hwm_kb" "$(kb VmHWM)"
  stop_server
}

record users_small "$SMALL"
record users_large "$LARGE"
record requests "$REQUESTS"
record build "$BUILD"
record binary "${BIN#"$ROOT"/}"
record sqlite3_version "$(sqlite3 --version | cut -d' ' -f1)"
record machine "$(nproc) cores, $(awk '/^MemTotal:/ {printf "%.1f GB", $2 / 1048576}' /proc/meminfo)"
record loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"

seed small "$SMALL"
measure small "$SMALL"
seed large "$LARGE"
measure large "$LARGE"
record loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

node "$BENCH_DIR/lists-report.mjs" "$RESULTS" "$OUT" || die "writing the report failed"
log "wrote the lists section of ${OUT#"$ROOT"/} (raw outputs in ${RUN_DIR#"$ROOT"/})"
