#!/usr/bin/env bash
# Bulk user import: BENCH_IMPORT_USERS users with bcrypt hashes (cost BENCH_IMPORT_COST, 4 by
# default so that generating the file takes a minute) imported through
# POST /api/v2/jobs/users-imports, from the request to the job's `completed`, as a ratio
# against the raw insert rate of the same rows into the same SQLite schema by the sqlite3
# shell in one transaction (no checks, no API) measured in the same run. Then a sample of the
# imported users signs in through the hosted login page with their old passwords, and each
# one's stored hash is checked to have become Tessera's Argon2id.
#
# Writes (or replaces) the section between the `imports` markers of BENCHMARKS.md;
# bench/run.sh keeps that section when it rewrites the file. See bench/README.md.
#
# Usage: bench/imports.sh
# Knobs (environment, all optional):
#   BENCH_IMPORT_USERS=100000  users in the file (at most what fits in 16 MiB, ~110,000)
#   BENCH_IMPORT_COST=4        bcrypt cost of the generated hashes
#   BENCH_IMPORT_SAMPLE=20     users who sign in afterwards
#   BENCH_SKIP_BUILD=1         use target/release/tessera and the generator as they are
#   BENCH_TESSERA_BIN=PATH     measure that binary instead, with the generator beside it in
#                              examples/ (implies no build); e.g. target/debug/tessera with a
#                              small BENCH_IMPORT_USERS to try the script
#   BENCH_OUT=BENCHMARKS.md    report path, relative to the repository root
set -euo pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd -- "$BENCH_DIR/.." && pwd)
cd "$ROOT"

COUNT=${BENCH_IMPORT_USERS:-100000}
COST=${BENCH_IMPORT_COST:-4}
SAMPLE=${BENCH_IMPORT_SAMPLE:-20}
OUT=${BENCH_OUT:-BENCHMARKS.md}
[[ $OUT == /* ]] || OUT="$ROOT/$OUT"
for v in COUNT COST SAMPLE; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench/imports: $v must be a whole number (got '${!v}')" >&2; exit 2; }
done
(( COUNT >= 1000 && COST >= 4 && COST <= 14 && SAMPLE >= 1 && SAMPLE <= COUNT )) \
  || { echo "bench/imports: need 1000+ users, a bcrypt cost of 4..14, 1..users sample" >&2; exit 2; }

log() { printf '[bench/imports %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf '[bench/imports] FAILED: %s\n' "$*" >&2; exit 1; }
for tool in sqlite3 curl node; do
  command -v "$tool" >/dev/null || die "$tool is needed (Debian: apt-get install -y sqlite3 curl nodejs)"
done

BIN=${BENCH_TESSERA_BIN:-$ROOT/target/release/tessera}
GENERATOR=$(dirname -- "$BIN")/examples/bench_import_users
if [[ -n ${BENCH_TESSERA_BIN:-} ]]; then
  BUILD="none (BENCH_TESSERA_BIN)"
elif [[ ${BENCH_SKIP_BUILD:-0} == 1 ]]; then
  BUILD="none (BENCH_SKIP_BUILD)"
else
  BUILD="cargo build --release -p tessera --bins --example bench_import_users"
  log "$BUILD"
  $BUILD >&2 || die "the build failed"
fi
[[ -x $BIN && -x $GENERATOR ]] || die "no binary at $BIN or $GENERATOR"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$BENCH_DIR/results"
RUN_DIR=$(mktemp -d "$BENCH_DIR/results/imports-$(date +%Y%m%d-%H%M%S)-XXXX")
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

ISSUER=http://imports.bench.invalid/
AUDIENCE=${ISSUER}api/v2/
CALLBACK=http://127.0.0.1/callback

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

seconds_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }

# ---- the file ----------------------------------------------------------------------------
FILE=$RUN_DIR/users.json
log "generating $COUNT users with bcrypt cost $COST"
t0=$EPOCHREALTIME
"$GENERATOR" "$COUNT" "$FILE" "$COST" || die "generating the users file failed"
GENERATE_SECONDS=$(seconds_since "$t0")
FILE_BYTES=$(stat -c %s "$FILE")

# ---- reference: the same rows by the sqlite3 shell, one transaction ----------------------
REF_DB=$RUN_DIR/reference.db
log "reference: migrating a database, then inserting the file's rows with sqlite3"
start_server "sqlite://$REF_DB" "$RUN_DIR/reference-serve.log"
stop_server
t0=$EPOCHREALTIME
sqlite3 "$REF_DB" >/dev/null <<SQL || die "the reference insert failed"
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
BEGIN;
INSERT INTO users (tenant_id, user_id, connection, email, email_verified, password_hash, name,
  nickname, picture, blocked, created_at, updated_at, last_login, logins_count,
  user_metadata, app_metadata)
SELECT 'default', 'auth0|' || json_extract(value, '$.user_id'), 'Username-Password-Authentication',
  lower(json_extract(value, '$.email')), json_extract(value, '$.email_verified'),
  json_extract(value, '$.password_hash'), json_extract(value, '$.email'),
  json_extract(value, '$.email'), '', 0, 1700000000, 1700000000, NULL, 0, '{}', '{}'
FROM json_each(readfile('$FILE'));
COMMIT;
SQL
REF_SECONDS=$(seconds_since "$t0")
REF_ROWS=$(sqlite3 "$REF_DB" "SELECT count(*) FROM users")
(( REF_ROWS == COUNT )) || die "the reference inserted $REF_ROWS rows, not $COUNT"

# ---- Tessera: POST /api/v2/jobs/users-imports --------------------------------------------
DB=$RUN_DIR/tessera.db
DB_URL=sqlite://$DB
log "tessera: migrating a fresh database, registering a Management API client and a SPA"
start_server "$DB_URL" "$RUN_DIR/first-start.log"
stop_server
app=$(RUST_LOG=warn "$BIN" apps create --name bench-imports --type m2m --json --database-url "$DB_URL") \
  || die "tessera apps create failed"
CLIENT_ID=$(node -p "JSON.parse(process.argv[1]).client_id" "$app")
CLIENT_SECRET=$(node -p "JSON.parse(process.argv[1]).client_secret" "$app")
RUST_LOG=warn "$BIN" grants create --app "$CLIENT_ID" --api "$AUDIENCE" --scopes create:users,read:users --json \
  --database-url "$DB_URL" >/dev/null || die "tessera grants create failed"
spa=$(RUST_LOG=warn "$BIN" apps create --name bench-spa --type spa --callbacks "$CALLBACK" --json \
  --database-url "$DB_URL") || die "tessera apps create (spa) failed"
SPA_ID=$(node -p "JSON.parse(process.argv[1]).client_id" "$spa")

start_server "$DB_URL" "$RUN_DIR/serve.log"
BASE=http://127.0.0.1:$PORT
TOKEN=$(curl -fsS --max-time 10 -d grant_type=client_credentials -d "client_id=$CLIENT_ID" \
  -d "client_secret=$CLIENT_SECRET" --data-urlencode "audience=$AUDIENCE" "$BASE/oauth/token" \
  | node -p "JSON.parse(require('fs').readFileSync(0)).access_token") || die "no Management API token"
log "tessera: importing $COUNT users ($FILE_BYTES bytes)"
t0=$EPOCHREALTIME
job=$(curl -sS --fail-with-body --max-time 120 -H "Authorization: Bearer $TOKEN" -F "users=@$FILE;type=application/json" \
  -F connection_id=con_TesseraDatabase1 -F upsert=false "$BASE/api/v2/jobs/users-imports") \
  || die "the import request failed: $job"
JOB_ID=$(node -p "JSON.parse(process.argv[1]).id" "$job")
while :; do
  state=$(curl -fsS --max-time 10 -H "Authorization: Bearer $TOKEN" "$BASE/api/v2/jobs/$JOB_ID")
  status=$(node -p "JSON.parse(process.argv[1]).status" "$state")
  [[ $status == completed || $status == failed ]] && break
  sleep 0.05
done
IMPORT_SECONDS=$(seconds_since "$t0")
echo "$state" >"$RUN_DIR/job.json"
[[ $status == completed ]] || die "the import job failed: $state"
INSERTED=$(node -p "JSON.parse(process.argv[1]).summary.inserted" "$state")
(( INSERTED == COUNT )) || die "the job inserted $INSERTED users, not $COUNT: $state"

# ---- a sample signs in with the passwords they had ---------------------------------------
log "tessera: $SAMPLE imported users sign in through the hosted login page"
SIGNED_IN=0
UPGRADED=0
for ((s = 0; s < SAMPLE; s++)); do
  i=$(( s * (COUNT / SAMPLE) ))
  email=$(printf 'user%07d@bench.example' "$i")
  jar=$RUN_DIR/cookies-$s.txt
  login=$(curl -sS -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' --get \
    --data-urlencode "client_id=$SPA_ID" --data-urlencode "redirect_uri=$CALLBACK" \
    --data-urlencode response_type=code --data-urlencode scope=openid \
    --data-urlencode code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM \
    --data-urlencode code_challenge_method=S256 "$BASE/authorize")
  page=$(curl -sS -c "$jar" -b "$jar" "$login")
  field() { grep -o "name=\"$1\" value=\"[^\"]*\"" <<<"$page" | head -1 | sed 's/.*value="//; s/"$//'; }
  code=$(curl -sS -c "$jar" -b "$jar" -o /dev/null -w '%{http_code}' \
    --data-urlencode "state=$(field state)" --data-urlencode "csrf=$(field csrf)" \
    --data-urlencode "username=$email" --data-urlencode "password=bench-password-$i" "$BASE/u/login")
  [[ $code == 303 ]] && SIGNED_IN=$((SIGNED_IN + 1))
  hash=$(sqlite3 "$DB" "SELECT substr(password_hash, 1, 10) FROM users WHERE email = '$email'")
  [[ $hash == '$argon2id$' ]] && UPGRADED=$((UPGRADED + 1))
done
stop_server
(( SIGNED_IN == SAMPLE && UPGRADED == SAMPLE )) \
  || die "$SIGNED_IN of $SAMPLE signed in, $UPGRADED of $SAMPLE hashes became Argon2id"

# ---- report ------------------------------------------------------------------------------
node - "$OUT" <<NODE || die "writing the report failed"
const fs = require("fs");
const out = process.argv[2];
const n = (x, d = 0) => Number(x).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const rate = $COUNT / $IMPORT_SECONDS, ref = $COUNT / $REF_SECONDS;
const section = \`<!-- imports:begin (bench/imports.sh) -->
## Bulk user import

\\\`bench/imports.sh\\\` on $(date -u '+%Y-%m-%d %H:%M:%S') UTC: **\${n($COUNT)} users** with bcrypt hashes (cost $COST, generated for
the run: \${n($GENERATE_SECONDS, 1)} s; a \${n($FILE_BYTES / 1048576, 1)} MB file) imported through
\\\`POST /api/v2/jobs/users-imports\\\` into a fresh SQLite database, timed from the request to the job's \\\`completed\\\`.

| Metric | Tessera | Reference | Ratio |
| --- | --- | --- | --- |
| Import rate | \${n(rate)} users/s (\${n($IMPORT_SECONDS, 2)} s) | \${n(ref)} rows/s (\${n($REF_SECONDS, 2)} s): the same rows inserted by the sqlite3 shell, one transaction, no checks | \${(rate / ref).toFixed(2)}× |
| Imported users who sign in with their Auth0 password (hosted login) | $SIGNED_IN of $SAMPLE | — | — |
| … whose hash became Tessera's Argon2id at that login | $UPGRADED of $SAMPLE | — | — |

What the import does beyond the reference: it reads the multipart upload, parses the file
refusing repeated members, checks every user against Auth0's schema and Tessera's rules (email,
names, picture, metadata, the bcrypt hash's form and cost), finds duplicates in the file and in
the database, and writes 500 users per transaction (one lookup and one insert statement each),
every commit durable (\\\`synchronous=FULL\\\`). Machine: $(nproc) cores; sqlite3 $(sqlite3 --version | cut -d' ' -f1);
load average $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (a load above the core count means other
work shared the machine, and both rates with it).

Reproduce: \\\`bench/imports.sh\\\` (knobs: \\\`BENCH_IMPORT_USERS\\\`, \\\`BENCH_IMPORT_COST\\\`,
\\\`BENCH_IMPORT_SAMPLE\\\`; raw outputs in \\\`bench/results/imports-*/\\\`).
<!-- imports:end -->\`;
let text = fs.existsSync(out) ? fs.readFileSync(out, "utf8") : "# Benchmarks\n";
const re = /<!-- imports:begin[\s\S]*?<!-- imports:end -->/;
text = re.test(text) ? text.replace(re, section) : text.trimEnd() + "\n\n" + section + "\n";
fs.writeFileSync(out, text);
NODE
log "wrote the imports section of ${OUT#"$ROOT"/} (import: $IMPORT_SECONDS s, reference: $REF_SECONDS s)"
