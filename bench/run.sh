#!/usr/bin/env bash
# Tessera benchmark harness: client_credentials (RS256) token issuance under
# load, against references measured in the same run (the raw RSA-2048 signing
# rate of this machine's cores, and node `oidc-provider` doing the same grant).
# Writes BENCHMARKS.md at the repository root. See bench/README.md.
#
# Usage: bench/run.sh            (from anywhere; about 3 minutes plus the build)
# Knobs (environment, all optional):
#   BENCH_DURATION=10     seconds of each measured wrk run
#   BENCH_WARMUP=3        seconds of the wrk warm-up before each measured run
#   BENCH_CONNECTIONS=16  concurrent wrk connections (clients)
#   BENCH_THREADS=2       wrk threads
#   BENCH_ROUNDS=2        rounds of (openssl, tessera, peer, peer cluster); best round counts
#   BENCH_OPENSSL_SECONDS=3  seconds per openssl speed phase (sign, then verify)
#   BENCH_STARTS=5        timed starts for start-to-ready (median)
#   BENCH_PEER_WORKERS=$(nproc)  processes of the clustered peer (0 skips it)
#   BENCH_SKIP_BUILD=1    use target/release/tessera as it is
#   BENCH_TESSERA_BIN=PATH  benchmark that binary instead (implies no build)
#   BENCH_OUT=BENCHMARKS.md  report path, relative to the repository root
set -euo pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd -- "$BENCH_DIR/.." && pwd)
cd "$ROOT"

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_THREADS:-2}
ROUNDS=${BENCH_ROUNDS:-2}
OPENSSL_SECONDS=${BENCH_OPENSSL_SECONDS:-3}
STARTS=${BENCH_STARTS:-5}
NPROC=$(nproc)
PEER_WORKERS=${BENCH_PEER_WORKERS:-$NPROC}
OUT=${BENCH_OUT:-BENCHMARKS.md}
[[ $OUT == /* ]] || OUT="$ROOT/$OUT"
AUDIENCE=https://bench/api
AUDIENCE_ENC=https%3A%2F%2Fbench%2Fapi
for v in DURATION WARMUP CONNECTIONS THREADS ROUNDS OPENSSL_SECONDS STARTS PEER_WORKERS; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench: $v must be a whole number (got '${!v}')" >&2; exit 2; }
done
(( DURATION >= 1 && DURATION <= 120 && WARMUP <= 60 && ROUNDS >= 1 && ROUNDS <= 5 && STARTS >= 1 && STARTS <= 50 )) \
  || { echo "bench: a knob is out of its bounds (duration 1..120, warm-up <= 60, rounds 1..5, starts 1..50)" >&2; exit 2; }

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf '[bench] FAILED: %s\n' "$*" >&2; exit 1; }

# ---- dependencies ------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || die "missing $* and no apt-get to install it"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  if (( APT_UPDATED == 0 )); then
    log "apt-get update"
    $sudo apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
need() { # need COMMAND [DEBIAN_PACKAGE]
  command -v "$1" >/dev/null || apt_install "${2:-$1}"
  command -v "$1" >/dev/null || die "$1 is still missing after installing ${2:-$1}"
}
need wrk
need openssl
need curl
need node nodejs
need npm
[[ -n ${BENCH_TESSERA_BIN:-} ]] || command -v cargo >/dev/null || die "cargo is needed to build tessera"
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
(( NODE_MAJOR >= 20 )) || die "node >= 20 is needed for the peer (found $(node --version))"

PEER_PIN=$(node -p "require('$BENCH_DIR/peer/package.json').dependencies['oidc-provider']")
PEER_HAVE=$(node -p "try { require('$BENCH_DIR/peer/node_modules/oidc-provider/package.json').version } catch { '' }")
if [[ $PEER_HAVE != "$PEER_PIN" ]]; then
  log "installing the peer's npm packages (bench/peer: oidc-provider $PEER_PIN)"
  if [[ -f "$BENCH_DIR/peer/package-lock.json" ]]; then
    (cd "$BENCH_DIR/peer" && npm ci --no-audit --no-fund --loglevel=error >&2)
  else
    (cd "$BENCH_DIR/peer" && npm install --no-audit --no-fund --loglevel=error >&2)
  fi
fi

# ---- build -------------------------------------------------------------------------------
BIN=${BENCH_TESSERA_BIN:-"$ROOT/target/release/tessera"}
BUILD_CMD="cargo build --release -p tessera"
if [[ ${BENCH_SKIP_BUILD:-0} == 1 || -n ${BENCH_TESSERA_BIN:-} ]]; then
  [[ -x $BIN ]] || die "BENCH_SKIP_BUILD=1 but $BIN does not exist"
else
  log "$BUILD_CMD"
  $BUILD_CMD >&2 || die "the build failed"
fi
[[ -x $BIN ]] || die "no binary at $BIN"

# ---- run directory, process bookkeeping ------------------------------------------------
mkdir -p "$BENCH_DIR/results"
RUN_DIR=$(mktemp -d "$BENCH_DIR/results/run-$(date +%Y%m%d-%H%M%S)-XXXX")
RESULTS="$RUN_DIR/results.txt"
COMMANDS="$RUN_DIR/commands.txt"
: >"$RESULTS"
: >"$COMMANDS"
log "run directory: ${RUN_DIR#"$ROOT"/}"

# Servers started and not yet reaped (only those: a reaped pid may be reused).
declare -A LIVE=()
cleanup() {
  local pid i
  for pid in "${!LIVE[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${!LIVE[@]}"; do
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [[ -n ${SLEEP_FD:-} ]] && exec {SLEEP_FD}>&- || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A fifo held open read-write: `read -t` on it is a sleep without forking.
mkfifo "$RUN_DIR/.sleep"
exec {SLEEP_FD}<>"$RUN_DIR/.sleep"
nap() { read -r -t "$1" -u "$SLEEP_FD" _ || true; }

now_us() { printf -v "$1" '%s' "${EPOCHREALTIME//[.,]/}"; }

record() { printf '%s=%s\n' "$1" "$2" >>"$RESULTS"; }
cmdlog() { printf '%s\n' "$*" >>"$COMMANDS"; }

# A free port on 127.0.0.1: random, and nothing answers a connect there.
free_port() {
  local port fd i
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + RANDOM % 40000))
    if ! { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
      echo "$port"
      return 0
    fi
    exec {fd}>&-
  done
  die "no free port found"
}

# spawn LOGFILE CMD...: start a server in its own session (so its whole process
# group can be stopped); sets SPAWN_PID and SPAWN_T0 (microseconds, just before exec).
spawn() {
  local logfile=$1
  shift
  now_us SPAWN_T0
  setsid "$@" >"$logfile" 2>&1 &
  SPAWN_PID=$!
  LIVE[$SPAWN_PID]=1
}

stop_server() {
  local pid=$1 i
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    nap 0.05
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "LIVE[$pid]"
}

# wait_ready PID PORT PATH LIMIT_MS: poll GET PATH until a 200 (bash /dev/tcp, no forks);
# sets READY_US to the microseconds since SPAWN_T0. Returns 1 on timeout or exit.
wait_ready() {
  local pid=$1 port=$2 path=$3 limit_us=$(($4 * 1000)) fd line now
  while :; do
    if { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
      printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$path" "$port" >&"$fd"
      line=""
      read -r -t 2 -u "$fd" line || true
      exec {fd}>&-
      if [[ $line == HTTP/1.?" 200"* ]]; then
        now_us now
        READY_US=$((now - SPAWN_T0))
        return 0
      fi
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    now_us now
    (( now - SPAWN_T0 < limit_us )) || return 1
    nap 0.001
  done
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

urlencode() {
  local s=$1 out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in
      [A-Za-z0-9._~-]) out+=$c ;;
      *) printf -v c '%%%02X' "'$c"; out+=$c ;;
    esac
  done
  printf '%s' "$out"
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# token_check NAME URL BODY: one request; HTTP 200 and a real RS256 JWT, or die.
token_check() {
  local name=$1 url=$2 body=$3 code info
  code=$(curl -sS --max-time 10 -o "$RUN_DIR/$name-token.json" -w '%{http_code}' \
    -H 'Content-Type: application/x-www-form-urlencoded' --data "$body" "$url") \
    || die "$name: the token request failed"
  [[ $code == 200 ]] || die "$name: token endpoint answered HTTP $code: $(head -c 400 "$RUN_DIR/$name-token.json")"
  info=$(node "$BENCH_DIR/check_token.mjs" "$AUDIENCE" <"$RUN_DIR/$name-token.json") \
    || die "$name: the token endpoint did not issue a real RS256 JWT"
  log "$name token: $info"
  record "${name}_token" "$info"
}

# warm a server with a few sequential token requests (for the idle-RSS reading)
few_requests() {
  local url=$1 body=$2 i
  for ((i = 0; i < 10; i++)); do
    curl -sS --max-time 10 -o /dev/null -H 'Content-Type: application/x-www-form-urlencoded' \
      --data "$body" "$url" || die "request $i to $url failed"
  done
}

# CPU accounting, to tell how the cores were spent during a measured run.
CLK_TCK=$(getconf CLK_TCK)
cpu_busy_ticks() { # all CPUs, all processes: user nice system irq softirq steal
  local user nice system irq softirq steal
  read -r _ user nice system _ _ irq softirq steal _ </proc/stat
  echo $((user + nice + system + irq + softirq + steal))
}
group_ticks() { # user+system ticks of the live processes in process group $1
  local f line rest sum=0
  local -a a
  for f in /proc/[0-9]*/stat; do
    { read -r line <"$f"; } 2>/dev/null || continue
    rest=${line##*) }
    read -ra a <<<"$rest"
    [[ ${a[2]} == "$1" ]] && sum=$((sum + a[11] + a[12]))
  done
  echo "$sum"
}
cores() { awk -v t="$1" -v us="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz / (us / 1e6) }'; }

# load NAME PID PORT PATH BODY ROUND: wrk warm-up then measured run; records rps, latencies
# and how many cores the server, wrk and everything else used meanwhile.
load() {
  local name=$1 pid=$2 port=$3 path=$4 body=$5 round=$6 out line key kv
  local wrk_args=(-t"$THREADS" -c"$CONNECTIONS" --latency --timeout 5s -s "$BENCH_DIR/token.lua" "http://127.0.0.1:$port")
  if (( WARMUP > 0 )); then
    BENCH_TOKEN_BODY=$body BENCH_TOKEN_PATH=$path timeout $((WARMUP + 30)) \
      wrk -d"${WARMUP}s" "${wrk_args[@]}" >"$RUN_DIR/$name-r$round-warmup.txt" 2>&1 \
      || die "$name: wrk warm-up failed: $(tail -3 "$RUN_DIR/$name-r$round-warmup.txt")"
  fi
  out="$RUN_DIR/$name-r$round-wrk.txt"
  if (( round == 1 )); then
    cmdlog "# $name"
    local shown=${body//"$(urlencode "$CLIENT_SECRET")"/CLIENT_SECRET}
    shown=${shown//"$(urlencode "$CLIENT_ID")"/CLIENT_ID}
    shown=${shown//"$PEER_SECRET"/SECRET}
    cmdlog "BENCH_TOKEN_PATH=$path BENCH_TOKEN_BODY='$shown' wrk -d${DURATION}s -t$THREADS -c$CONNECTIONS --latency --timeout 5s -s bench/token.lua http://127.0.0.1:PORT   # after a ${WARMUP}s warm-up run"
  fi
  local b0 b1 s0 s1 t0 t1 wu ws TIMEFORMAT='%3U %3S'
  b0=$(cpu_busy_ticks); s0=$(group_ticks "$pid"); now_us t0
  { time BENCH_TOKEN_BODY=$body BENCH_TOKEN_PATH=$path timeout $((DURATION + 30)) \
      wrk -d"${DURATION}s" "${wrk_args[@]}" >"$out" 2>&1; } 2>"$out.cpu" || die "$name: wrk failed: $(tail -3 "$out")"
  now_us t1; s1=$(group_ticks "$pid"); b1=$(cpu_busy_ticks)
  read -r wu ws <"$out.cpu" || die "$name: no CPU time for wrk"
  line=$(grep '^BENCH_RESULT ' "$out") || die "$name: no result line from wrk: $(tail -5 "$out")"
  line=${line#BENCH_RESULT }
  local -A r=()
  for kv in $line; do r[${kv%%=*}]=${kv#*=}; done
  local errors=$((r[err_connect] + r[err_read] + r[err_write] + r[err_timeout]))
  (( r[err_status] == 0 )) || die "$name: ${r[err_status]} non-2xx responses under load (see ${out#"$ROOT"/})"
  (( errors * 1000 <= r[requests] )) || die "$name: $errors socket errors under load (see ${out#"$ROOT"/})"
  (( r[requests] > 0 )) || die "$name: no requests completed"
  for key in rps p50_us p90_us p99_us max_us requests; do record "${name}_r${round}_$key" "${r[$key]}"; done
  record "${name}_r${round}_socket_errors" "$errors"
  local wall=$((t1 - t0)) server_cores wrk_cores all_cores
  server_cores=$(cores $((s1 - s0)) "$wall")
  all_cores=$(cores $((b1 - b0)) "$wall")
  wrk_cores=$(awk -v u="$wu" -v s="$ws" -v us="$wall" 'BEGIN { printf "%.2f", (u + s) / (us / 1e6) }')
  record "${name}_r${round}_server_cores" "$server_cores"
  record "${name}_r${round}_wrk_cores" "$wrk_cores"
  record "${name}_r${round}_other_cores" "$(awk -v a="$all_cores" -v s="$server_cores" -v w="$wrk_cores" 'BEGIN { o = a - s - w; printf "%.2f", o < 0 ? 0 : o }')"
  log "$name round $round: ${r[rps]} req/s, p50 $((r[p50_us] / 1000)).$(((r[p50_us] % 1000) / 100)) ms, p99 $((r[p99_us] / 1000)).$(((r[p99_us] % 1000) / 100)) ms; cores: server $server_cores, wrk $wrk_cores, all $all_cores"
}

openssl_sign_rate() { # stdin: openssl speed output; prints the rsa2048 sign/s column
  awk '/sign\/s/ && /verify\/s/ { for (i = 1; i <= NF; i++) if ($i == "sign/s") col = i + 3; next }
       col && $1 == "rsa" && $2 == "2048" { print $col; exit }'
}

openssl_speed() { # openssl_speed KEY [-multi N]
  local key=$1 rate
  shift
  local cmd=(openssl speed -seconds "$OPENSSL_SECONDS" "$@" rsa2048)
  timeout $((OPENSSL_SECONDS * 2 + 60)) "${cmd[@]}" >"$RUN_DIR/$key.txt" 2>&1 || die "${cmd[*]} failed"
  rate=$(openssl_sign_rate <"$RUN_DIR/$key.txt")
  [[ $rate =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "could not parse sign/s from ${cmd[*]} (see $RUN_DIR/$key.txt)"
  record "$key" "$rate"
  log "${cmd[*]}: $rate sign/s"
  OPENSSL_CMDS+=("${cmd[*]}")
}

# ---- environment -------------------------------------------------------------------------
record date "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
record nproc "$NPROC"
record cpu "$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
record kernel "$(uname -sr)"
record memory "$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
record loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
idle_t0=0 idle_t1=0
busy0=$(cpu_busy_ticks); now_us idle_t0; nap 1; busy1=$(cpu_busy_ticks); now_us idle_t1
record busy_before_cores "$(cores $((busy1 - busy0)) $((idle_t1 - idle_t0)))"
record git_rev "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' (with uncommitted changes)' || true)"
record tessera_version "$("$BIN" --version 2>/dev/null | head -1 || echo unknown)"
record node_version "$(node --version)"
record oidc_provider_version "$(node -p "require('$BENCH_DIR/peer/node_modules/oidc-provider/package.json').version")"
record wrk_version "$(wrk --version 2>&1 | head -1 | awk '{print $2}')"
record openssl_version "$(openssl version)"
for v in DURATION WARMUP CONNECTIONS THREADS ROUNDS OPENSSL_SECONDS STARTS PEER_WORKERS; do record "cfg_$v" "${!v}"; done

# ---- tessera: setup, token check, idle RSS, start-to-ready --------------------------------
DATA="$RUN_DIR/tessera"
mkdir -p "$DATA"
DB_URL="sqlite://$DATA/tessera.db"
export RUST_LOG=warn
tessera() { TESSERA_DATABASE_URL=$DB_URL "$BIN" "$@" --database-url "$DB_URL"; }

log "tessera: creating the API, the m2m application and its grant"
tessera apis create --name "Bench API" --identifier "$AUDIENCE" --scopes read:bench,write:bench --json \
  >"$RUN_DIR/tessera-api.json" 2>"$RUN_DIR/tessera-cli.log" || die "tessera apis create failed: $(cat "$RUN_DIR/tessera-cli.log")"
tessera apps create --name bench-m2m --type m2m --json \
  >"$RUN_DIR/tessera-app.json" 2>>"$RUN_DIR/tessera-cli.log" || die "tessera apps create failed: $(cat "$RUN_DIR/tessera-cli.log")"
CLIENT_ID=$(node -p "JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')).client_id ?? ''" "$RUN_DIR/tessera-app.json")
CLIENT_SECRET=$(node -p "JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')).client_secret ?? ''" "$RUN_DIR/tessera-app.json")
[[ -n $CLIENT_ID && -n $CLIENT_SECRET ]] || die "no client_id/client_secret in the output of tessera apps create: $(cat "$RUN_DIR/tessera-app.json")"
tessera grants create --app "$CLIENT_ID" --api "$AUDIENCE" --scopes read:bench --json \
  >"$RUN_DIR/tessera-grant.json" 2>>"$RUN_DIR/tessera-cli.log" || die "tessera grants create failed: $(cat "$RUN_DIR/tessera-cli.log")"
TESSERA_BODY="grant_type=client_credentials&client_id=$(urlencode "$CLIENT_ID")&client_secret=$(urlencode "$CLIENT_SECRET")&audience=$AUDIENCE_ENC"
cmdlog "export RUST_LOG=warn DB=sqlite://\$PWD/bench.db"
cmdlog "target/release/tessera apis create --name 'Bench API' --identifier $AUDIENCE --scopes read:bench,write:bench --json --database-url \$DB"
cmdlog "target/release/tessera apps create --name bench-m2m --type m2m --json --database-url \$DB   # prints client_id, client_secret"
cmdlog "target/release/tessera grants create --app CLIENT_ID --api $AUDIENCE --scopes read:bench --json --database-url \$DB"
cmdlog "target/release/tessera serve --database-url \$DB --listen 127.0.0.1:PORT --issuer http://127.0.0.1:PORT/"
cmdlog "curl -d 'grant_type=client_credentials&client_id=CLIENT_ID&client_secret=CLIENT_SECRET&audience=$AUDIENCE_ENC' http://127.0.0.1:PORT/oauth/token"

start_tessera() { # sets T_PORT, T_PID; first arg: log file
  T_PORT=$(free_port)
  spawn "$1" "$BIN" serve --database-url "$DB_URL" --listen "127.0.0.1:$T_PORT" --issuer "http://127.0.0.1:$T_PORT/"
  T_PID=$SPAWN_PID
  wait_ready "$T_PID" "$T_PORT" /healthz "${2:-10000}"
}

log "tessera: first start, token check, idle RSS"
start_tessera "$RUN_DIR/tessera-first.log" 30000 || die "tessera did not become ready: $(tail -20 "$RUN_DIR/tessera-first.log")"
record tessera_first_start_ms "$((READY_US / 1000))"
token_check tessera "http://127.0.0.1:$T_PORT/oauth/token" "$TESSERA_BODY"
few_requests "http://127.0.0.1:$T_PORT/oauth/token" "$TESSERA_BODY"
nap 1
record tessera_idle_rss_kb "$(rss_kb "$T_PID")"
stop_server "$T_PID"

log "tessera: $STARTS timed starts on the existing database"
declare -a T_STARTS=()
for ((i = 1; i <= STARTS; i++)); do
  start_tessera "$RUN_DIR/tessera-start$i.log" 5000 || die "tessera start $i: not ready within 5 s: $(tail -20 "$RUN_DIR/tessera-start$i.log")"
  T_STARTS+=("$READY_US")
  stop_server "$T_PID"
done
record tessera_start_us_all "${T_STARTS[*]}"
record tessera_start_us "$(median "${T_STARTS[@]}")"

# ---- peer: setup, token check, idle RSS, start-to-ready -----------------------------------
PEER_SECRET=$(openssl rand -hex 32)
PEER_CLIENT=bench-peer-client
PEER_KEY="$RUN_DIR/peer-key.json"
PEER_BODY="grant_type=client_credentials&client_id=$PEER_CLIENT&client_secret=$PEER_SECRET&resource=$AUDIENCE_ENC&scope=read%3Abench"
PEER_DISCOVERY=/.well-known/openid-configuration
cmdlog "(cd bench/peer && npm ci)"
cmdlog "PEER_PORT=PORT PEER_KEY_FILE=peer-key.json PEER_WORKERS=1 PEER_CLIENT_SECRET=SECRET NODE_ENV=production node bench/peer/server.mjs   # PEER_WORKERS=$PEER_WORKERS for the clustered peer"
cmdlog "curl -d 'grant_type=client_credentials&client_id=$PEER_CLIENT&client_secret=SECRET&resource=$AUDIENCE_ENC&scope=read%3Abench' http://127.0.0.1:PORT/token"

start_peer() { # start_peer LOGFILE WORKERS [LIMIT_MS]; sets P_PORT, P_PID
  P_PORT=$(free_port)
  spawn "$1" env PEER_PORT="$P_PORT" PEER_KEY_FILE="$PEER_KEY" PEER_WORKERS="$2" PEER_CLIENT_ID="$PEER_CLIENT" \
    PEER_CLIENT_SECRET="$PEER_SECRET" NODE_ENV=production node "$BENCH_DIR/peer/server.mjs"
  P_PID=$SPAWN_PID
  wait_ready "$P_PID" "$P_PORT" "$PEER_DISCOVERY" "${3:-10000}"
}

log "peer: first start, token check, idle RSS"
start_peer "$RUN_DIR/peer-first.log" 1 30000 || die "the peer did not become ready: $(tail -20 "$RUN_DIR/peer-first.log")"
token_check peer "http://127.0.0.1:$P_PORT/token" "$PEER_BODY"
few_requests "http://127.0.0.1:$P_PORT/token" "$PEER_BODY"
nap 1
record peer_idle_rss_kb "$(rss_kb "$P_PID")"
stop_server "$P_PID"

log "peer: $STARTS timed starts with the existing key"
declare -a P_STARTS=()
for ((i = 1; i <= STARTS; i++)); do
  start_peer "$RUN_DIR/peer-start$i.log" 1 5000 || die "peer start $i: not ready within 5 s: $(tail -20 "$RUN_DIR/peer-start$i.log")"
  P_STARTS+=("$READY_US")
  stop_server "$P_PID"
done
record peer_start_us_all "${P_STARTS[*]}"
record peer_start_us "$(median "${P_STARTS[@]}")"

# ---- raw signing rate, one core (reference for context) -----------------------------------
declare -a OPENSSL_CMDS=()
openssl_speed openssl_1core

# ---- load rounds: all-core signing rate, tessera, peer, clustered peer, one after another --
for ((round = 1; round <= ROUNDS; round++)); do
  log "round $round/$ROUNDS"
  openssl_speed "openssl_multi_r$round" -multi "$NPROC"

  start_tessera "$RUN_DIR/tessera-load-r$round.log" || die "tessera did not become ready for round $round"
  load tessera "$T_PID" "$T_PORT" /oauth/token "$TESSERA_BODY" "$round"
  record "tessera_r${round}_hwm_kb" "$(hwm_kb "$T_PID")"
  stop_server "$T_PID"

  start_peer "$RUN_DIR/peer-load-r$round.log" 1 || die "the peer did not become ready for round $round"
  load peer "$P_PID" "$P_PORT" /token "$PEER_BODY" "$round"
  record "peer_r${round}_hwm_kb" "$(hwm_kb "$P_PID")"
  stop_server "$P_PID"

  if (( PEER_WORKERS > 1 )); then
    start_peer "$RUN_DIR/peercluster-load-r$round.log" "$PEER_WORKERS" || die "the clustered peer did not become ready for round $round"
    load peercluster "$P_PID" "$P_PORT" /token "$PEER_BODY" "$round"
    stop_server "$P_PID"
  fi
done
record loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
for c in "${OPENSSL_CMDS[@]:0:2}"; do cmdlog "$c"; done

# ---- report ------------------------------------------------------------------------------
node "$BENCH_DIR/report.mjs" "$RESULTS" "$COMMANDS" >"$OUT.tmp" || die "writing the report failed"
mv "$OUT.tmp" "$OUT"
log "wrote ${OUT#"$ROOT"/} (raw outputs in ${RUN_DIR#"$ROOT"/})"
grep -E '^\|' "$OUT" | head -9 >&2 || true
