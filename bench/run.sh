#!/usr/bin/env bash
# Tessera benchmark harness, two sections, each against references measured in the
# same run:
#  1. issuance: client_credentials (RS256) token issuance under load, against the raw
#     RSA-2048 signing rate of this machine's cores and node `oidc-provider`;
#  2. api: GET /api/private on the sample API (tessera-guard) with a valid RS256 token,
#     against the same API's unprotected route, the raw RSA-2048 verification rate of the
#     same core (`openssl speed`) and Express + express-oauth2-jwt-bearer on the same route;
#     and with a DPoP-bound token and a proof per request, against the bearer token and the
#     raw ES256 verification rate.
# Writes BENCHMARKS.md at the repository root. See bench/README.md.
#
# Usage: bench/run.sh            (from anywhere; about 5 minutes plus the build)
# Knobs (environment, all optional):
#   BENCH_DURATION=10     seconds of each measured wrk run
#   BENCH_WARMUP=3        seconds of the wrk warm-up before each measured run
#   BENCH_CONNECTIONS=16  concurrent wrk connections (clients), issuance
#   BENCH_THREADS=2       wrk threads, issuance
#   BENCH_API_CONNECTIONS=16  concurrent wrk connections, api
#   BENCH_API_THREADS=1   wrk threads, api (wrk gets one core when pinned)
#   BENCH_ROUNDS=2        rounds of each section; the best round counts
#   BENCH_OPENSSL_SECONDS=3  seconds per openssl speed phase (sign, then verify)
#   BENCH_STARTS=5        timed starts for start-to-ready (median)
#   BENCH_PEER_WORKERS=$(nproc)  processes of the clustered peer (0 skips it)
#   BENCH_PIN=auto        api section: servers and openssl on core BENCH_SERVER_CPU (0),
#                         wrk on core BENCH_LOAD_CPU (1), with taskset; auto = when taskset
#                         exists and there are 2+ cores; 0 = no pinning
#   BENCH_PROFILE=auto    api section: one extra perf-profiled run per Tessera route (not
#                         counted) to show where the CPU goes; auto = when perf works; 0 = skip
#   BENCH_QUIET_WAIT=30   before each measured run, wait up to this many seconds for the machine
#                         to be idle (other processes using < 0.3 cores); 0 = never wait
#   BENCH_SKIP_ISSUANCE=1 skip section 1      BENCH_SKIP_API=1  skip section 2
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
API_CONNECTIONS=${BENCH_API_CONNECTIONS:-16}
API_THREADS=${BENCH_API_THREADS:-1}
SKIP_ISSUANCE=${BENCH_SKIP_ISSUANCE:-0}
SKIP_API=${BENCH_SKIP_API:-0}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
QUIET_WAIT=${BENCH_QUIET_WAIT:-30}
ROUNDS=${BENCH_ROUNDS:-2}
OPENSSL_SECONDS=${BENCH_OPENSSL_SECONDS:-3}
STARTS=${BENCH_STARTS:-5}
NPROC=$(nproc)
PEER_WORKERS=${BENCH_PEER_WORKERS:-$NPROC}
OUT=${BENCH_OUT:-BENCHMARKS.md}
[[ $OUT == /* ]] || OUT="$ROOT/$OUT"
AUDIENCE=https://bench/api
AUDIENCE_ENC=https%3A%2F%2Fbench%2Fapi
API_AUDIENCE=https://quickstarts/api
API_AUDIENCE_ENC=https%3A%2F%2Fquickstarts%2Fapi
KNOBS=(DURATION WARMUP CONNECTIONS THREADS API_CONNECTIONS API_THREADS ROUNDS OPENSSL_SECONDS STARTS PEER_WORKERS
  SKIP_ISSUANCE SKIP_API SERVER_CPU LOAD_CPU QUIET_WAIT)
for v in "${KNOBS[@]}"; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench: $v must be a whole number (got '${!v}')" >&2; exit 2; }
done
(( DURATION >= 1 && DURATION <= 120 && WARMUP <= 60 && ROUNDS >= 1 && ROUNDS <= 5 && STARTS >= 1 && STARTS <= 50 && QUIET_WAIT <= 300 )) \
  || { echo "bench: a knob is out of its bounds (duration 1..120, warm-up <= 60, rounds 1..5, starts 1..50, quiet wait <= 300)" >&2; exit 2; }
(( SKIP_ISSUANCE == 0 || SKIP_API == 0 )) || { echo "bench: BENCH_SKIP_ISSUANCE=1 and BENCH_SKIP_API=1 leave nothing to measure" >&2; exit 2; }

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

# npm_deps DIR PACKAGE...: `npm ci` in bench/DIR unless every pinned PACKAGE is installed.
npm_deps() {
  local dir=$BENCH_DIR/$1 pkg pin have missing=""
  shift
  for pkg in "$@"; do
    pin=$(node -p "require('$dir/package.json').dependencies['$pkg']")
    have=$(node -p "try { require('$dir/node_modules/$pkg/package.json').version } catch { '' }")
    [[ $have == "$pin" ]] || missing+=" $pkg@$pin"
  done
  [[ -n $missing ]] || return 0
  log "installing npm packages in bench/${dir##*/}:$missing"
  if [[ -f "$dir/package-lock.json" ]]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci in $dir failed"
  else
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error >&2) || die "npm install in $dir failed"
  fi
}
(( SKIP_ISSUANCE )) || npm_deps peer oidc-provider
(( SKIP_API )) || npm_deps peer-api express express-oauth2-jwt-bearer

# Pinning (api section): the server and openssl on one core, wrk on another, so that
# "requests/s of one server core" and "verifications/s of one core" compare like for like.
PIN=${BENCH_PIN:-auto}
if [[ $PIN == auto ]]; then
  if command -v taskset >/dev/null && (( NPROC >= 2 )); then PIN=1; else PIN=0; fi
fi
[[ $PIN == [01] ]] || die "BENCH_PIN must be auto, 0 or 1 (got '$PIN')"
if (( PIN && SKIP_API == 0 )); then
  need taskset util-linux
  (( SERVER_CPU < NPROC && LOAD_CPU < NPROC && SERVER_CPU != LOAD_CPU )) \
    || die "BENCH_SERVER_CPU ($SERVER_CPU) and BENCH_LOAD_CPU ($LOAD_CPU) must be two different cores below $NPROC"
  SERVER_PIN=(taskset -c "$SERVER_CPU")
  LOAD_PIN=(taskset -c "$LOAD_CPU")
else
  PIN=0
  SERVER_PIN=()
  LOAD_PIN=()
fi
PROFILE=${BENCH_PROFILE:-auto}
if [[ $PROFILE == auto ]]; then
  if command -v perf >/dev/null && perf record -q -o /dev/null -- true >/dev/null 2>&1; then PROFILE=1; else PROFILE=0; fi
fi
[[ $PROFILE == [01] ]] || die "BENCH_PROFILE must be auto, 0 or 1 (got '$PROFILE')"

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

# A free port on 127.0.0.1: random, below the kernel's ephemeral range (so no outgoing
# connection holds it), and nothing answers a connect there.
read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LOW=32768
(( EPHEMERAL_LOW > 12000 )) || EPHEMERAL_LOW=60000
free_port() {
  local port fd i
  for ((i = 0; i < 200; i++)); do
    port=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
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

# token_check NAME URL BODY [AUDIENCE [ISSUER]]: one request; HTTP 200 and a real RS256 JWT
# (for AUDIENCE, issued by ISSUER when given), or die. The response stays in $RUN_DIR/NAME-token.json.
token_check() {
  local name=$1 url=$2 body=$3 audience=${4:-$AUDIENCE} issuer=${5:-} code info
  code=$(curl -sS --max-time 10 -o "$RUN_DIR/$name-token.json" -w '%{http_code}' \
    -H 'Content-Type: application/x-www-form-urlencoded' --data "$body" "$url") \
    || die "$name: the token request failed"
  [[ $code == 200 ]] || die "$name: token endpoint answered HTTP $code: $(head -c 400 "$RUN_DIR/$name-token.json")"
  info=$(node "$BENCH_DIR/check_token.mjs" "$audience" $issuer <"$RUN_DIR/$name-token.json") \
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

# quiet_gate NAME: wait (at most QUIET_WAIT seconds) until the whole machine used less than 0.3
# cores over half a second: the servers are idle between runs, so that is other people's work.
# Records how long it waited; the report warns about runs that started on a busy machine.
quiet_gate() {
  local name=$1 b0 b1 t0 t1 start now busy
  now_us start
  while :; do
    b0=$(cpu_busy_ticks); now_us t0; nap 0.5; b1=$(cpu_busy_ticks); now_us t1
    busy=$(cores $((b1 - b0)) $((t1 - t0)))
    now_us now
    if awk -v b="$busy" 'BEGIN { exit !(b < 0.3) }' || (( now - start >= QUIET_WAIT * 1000000 )); then break; fi
    (( now - start >= 1000000 )) || log "$name: the machine is busy (${busy} cores); waiting up to ${QUIET_WAIT}s for it to quiet down"
  done
  record "${name}_busy_before_cores" "$busy"
  record "${name}_quiet_wait_ms" "$(((now - start) / 1000))"
}

# measure NAME PID ROUND URL LUA THREADS CONNECTIONS [VAR=VALUE...]: a wrk warm-up, then the
# measured run (wrk pinned with MEASURE_PIN when set; the VARs go to the Lua script). Records
# requests/s, latencies, requests, the CPU ticks the server's process group used, and how many
# cores the server, wrk and everything else used meanwhile. Non-2xx responses fail the run.
MEASURE_PIN=()
measure() {
  local name=$1 pid=$2 round=$3 url=$4 lua=$5 threads=$6 conns=$7 out line key kv
  shift 7
  local vars=("$@")
  local wrk_args=(-t"$threads" -c"$conns" --latency --timeout 5s -s "$lua" "$url")
  (( QUIET_WAIT == 0 )) || quiet_gate "${name}_r$round"
  if (( WARMUP > 0 )); then
    env "${vars[@]}" timeout $((WARMUP + 30)) "${MEASURE_PIN[@]}" \
      wrk -d"${WARMUP}s" "${wrk_args[@]}" >"$RUN_DIR/$name-r$round-warmup.txt" 2>&1 \
      || die "$name: wrk warm-up failed: $(tail -3 "$RUN_DIR/$name-r$round-warmup.txt")"
  fi
  out="$RUN_DIR/$name-r$round-wrk.txt"
  local b0 b1 s0 s1 t0 t1 wu ws TIMEFORMAT='%3U %3S'
  b0=$(cpu_busy_ticks); s0=$(group_ticks "$pid"); now_us t0
  { time env "${vars[@]}" timeout $((DURATION + 30)) "${MEASURE_PIN[@]}" \
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
  local wall=$((t1 - t0)) server_cores wrk_cores all_cores cpu_us
  server_cores=$(cores $((s1 - s0)) "$wall")
  all_cores=$(cores $((b1 - b0)) "$wall")
  wrk_cores=$(awk -v u="$wu" -v s="$ws" -v us="$wall" 'BEGIN { printf "%.2f", (u + s) / (us / 1e6) }')
  # CPU per request: the server's ticks over the requests wrk completed in the same window.
  cpu_us=$(awk -v t=$((s1 - s0)) -v hz="$CLK_TCK" -v n="${r[requests]}" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
  record "${name}_r${round}_server_ticks" "$((s1 - s0))"
  record "${name}_r${round}_cpu_us_per_req" "$cpu_us"
  record "${name}_r${round}_server_cores" "$server_cores"
  record "${name}_r${round}_wrk_cores" "$wrk_cores"
  record "${name}_r${round}_other_cores" "$(awk -v a="$all_cores" -v s="$server_cores" -v w="$wrk_cores" 'BEGIN { o = a - s - w; printf "%.2f", o < 0 ? 0 : o }')"
  log "$name round $round: ${r[rps]} req/s, p50 $((r[p50_us] / 1000)).$(((r[p50_us] % 1000) / 100)) ms, p99 $((r[p99_us] / 1000)).$(((r[p99_us] % 1000) / 100)) ms; server CPU ${cpu_us} us/request; cores: server $server_cores, wrk $wrk_cores, all $all_cores"
}

# load NAME PID PORT PATH BODY ROUND: token issuance under wrk + token.lua (section 1).
load() {
  local name=$1 pid=$2 port=$3 path=$4 body=$5 round=$6
  if (( round == 1 )); then
    cmdlog "# $name"
    local shown=${body//"$(urlencode "$CLIENT_SECRET")"/CLIENT_SECRET}
    shown=${shown//"$(urlencode "$CLIENT_ID")"/CLIENT_ID}
    shown=${shown//"$PEER_SECRET"/SECRET}
    cmdlog "BENCH_TOKEN_PATH=$path BENCH_TOKEN_BODY='$shown' wrk -d${DURATION}s -t$THREADS -c$CONNECTIONS --latency --timeout 5s -s bench/token.lua http://127.0.0.1:PORT   # after a ${WARMUP}s warm-up run"
  fi
  measure "$name" "$pid" "$round" "http://127.0.0.1:$port" "$BENCH_DIR/token.lua" "$THREADS" "$CONNECTIONS" \
    BENCH_TOKEN_BODY="$body" BENCH_TOKEN_PATH="$path"
}

openssl_rate() { # openssl_rate COLUMN (sign/s or verify/s); stdin: openssl speed output
  awk -v want="$1" '/sign\/s/ && /verify\/s/ { for (i = 1; i <= NF; i++) if ($i == want) col = i + 3; next }
       col && $1 == "rsa" && $2 == "2048" { print $col; exit }'
}

openssl_speed() { # openssl_speed KEY [-multi N]: records the sign/s column as KEY
  local key=$1 rate
  shift
  local cmd=(openssl speed -seconds "$OPENSSL_SECONDS" "$@" rsa2048)
  timeout $((OPENSSL_SECONDS * 2 + 60)) "${cmd[@]}" >"$RUN_DIR/$key.txt" 2>&1 || die "${cmd[*]} failed"
  rate=$(openssl_rate sign/s <"$RUN_DIR/$key.txt")
  [[ $rate =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "could not parse sign/s from ${cmd[*]} (see $RUN_DIR/$key.txt)"
  record "$key" "$rate"
  log "${cmd[*]}: $rate sign/s"
  OPENSSL_CMDS+=("${cmd[*]}")
}

openssl_verify() { # openssl_verify KEY: RSA-2048 verify/s on one core (the servers' core when pinned)
  local key=$1 rate
  local cmd=(openssl speed -seconds "$OPENSSL_SECONDS" rsa2048)
  timeout $((OPENSSL_SECONDS * 2 + 60)) "${SERVER_PIN[@]}" "${cmd[@]}" >"$RUN_DIR/$key.txt" 2>&1 \
    || die "${SERVER_PIN[*]} ${cmd[*]} failed"
  rate=$(openssl_rate verify/s <"$RUN_DIR/$key.txt")
  [[ $rate =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "could not parse verify/s from ${cmd[*]} (see $RUN_DIR/$key.txt)"
  record "$key" "$rate"
  log "${SERVER_PIN[*]}${SERVER_PIN[*]:+ }${cmd[*]}: $rate verify/s"
}

# ---- environment -------------------------------------------------------------------------
record date "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
record nproc "$NPROC"
record cpu "$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
record kernel "$(uname -sr)"
# How an idle core waits decides what waking a sleeping process on it costs (see the report).
record cpuidle_driver "$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo unknown)"
record guest_halt_poll_ns "$(cat /sys/module/haltpoll/parameters/guest_halt_poll_ns 2>/dev/null || echo none)"
record virtual_machine "$(grep -qw hypervisor /proc/cpuinfo && echo yes || echo no)"
record memory "$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
record loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
idle_t0=0 idle_t1=0
busy0=$(cpu_busy_ticks); now_us idle_t0; nap 1; busy1=$(cpu_busy_ticks); now_us idle_t1
record busy_before_cores "$(cores $((busy1 - busy0)) $((idle_t1 - idle_t0)))"
record git_rev "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' (with uncommitted changes)' || true)"
record tessera_version "$("$BIN" --version 2>/dev/null | head -1 || echo unknown)"
record node_version "$(node --version)"
npm_version() { node -p "try { require('$BENCH_DIR/$1/node_modules/$2/package.json').version } catch { 'n/a' }"; }
(( SKIP_ISSUANCE )) || record oidc_provider_version "$(npm_version peer oidc-provider)"
if (( SKIP_API == 0 )); then
  record express_version "$(npm_version peer-api express)"
  record express_jwt_version "$(npm_version peer-api express-oauth2-jwt-bearer)"
  record jose_version "$(npm_version peer-api jose)"
fi
record wrk_version "$(wrk --version 2>&1 | head -1 | awk '{print $2}')"
record openssl_version "$(openssl version)"
record clk_tck "$CLK_TCK"
for v in "${KNOBS[@]}" PIN PROFILE; do record "cfg_$v" "${!v}"; done
declare -a OPENSSL_CMDS=()
export RUST_LOG=warn

if (( SKIP_ISSUANCE == 0 )); then
log "section 1: token issuance"

# ---- tessera: setup, token check, idle RSS, start-to-ready --------------------------------
DATA="$RUN_DIR/tessera"
mkdir -p "$DATA"
DB_URL="sqlite://$DATA/tessera.db"
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
for c in "${OPENSSL_CMDS[@]:0:2}"; do cmdlog "$c"; done
fi # section 1

# =========================================================================================
# Section 2: protecting an API. GET /api/private on the sample API (tessera-guard) with a
# valid RS256 token, against its unprotected /api/public, the raw RSA-2048 verification rate
# of the same core, and Express + express-oauth2-jwt-bearer on the same route with the same
# token. `tessera dev` serves the authorization server and the sample API; the token comes
# from an m2m application created with the CLI on the same database.
# =========================================================================================
if (( SKIP_API == 0 )); then
log "section 2: protecting an API (pinning: $( (( PIN )) && echo "servers and openssl on core $SERVER_CPU, wrk on core $LOAD_CPU" || echo none))"
API_DATA="$RUN_DIR/api-dev"
mkdir -p "$API_DATA"
API_DB="sqlite://$API_DATA/tessera.db"
API_COMMANDS="$RUN_DIR/commands-api.txt"
: >"$API_COMMANDS"
apicmd() { printf '%s\n' "$*" >>"$API_COMMANDS"; }
pin_shown() { (( PIN )) && printf 'taskset -c %s ' "$1" || true; }

# four distinct free ports: authorization server, SPA, sample API, Express peer
declare -a PORTS=()
while (( ${#PORTS[@]} < 4 )); do
  port=$(free_port)
  [[ " ${PORTS[*]} " == *" $port "* ]] || PORTS+=("$port")
done
AS_PORT=${PORTS[0]} SPA_PORT=${PORTS[1]} API_PORT=${PORTS[2]} PEERAPI_PORT=${PORTS[3]}
API_ISSUER="http://localhost:$AS_PORT/"
DEMO_PASSWORD="Bench-$(openssl rand -hex 12)"

log "tessera dev: authorization server on $AS_PORT, sample API on $API_PORT"
spawn "$RUN_DIR/api-dev.log" env TESSERA_DEMO_PASSWORD="$DEMO_PASSWORD" "${SERVER_PIN[@]}" \
  "$BIN" dev --data-dir "$API_DATA" --port "$AS_PORT" --spa-port "$SPA_PORT" --api-port "$API_PORT"
DEV_PID=$SPAWN_PID
wait_ready "$DEV_PID" "$AS_PORT" /healthz 30000 \
  || die "tessera dev did not become ready on $AS_PORT: $(tail -20 "$RUN_DIR/api-dev.log")"
API_PID=$DEV_PID   # the sample API runs inside `tessera dev`
wait_ready "$API_PID" "$API_PORT" /api/public 30000 \
  || die "tessera dev does not serve the sample API on $API_PORT (GET /api/public): $(tail -20 "$RUN_DIR/api-dev.log")"
record api_dev_ready_ms "$((READY_US / 1000))"
apicmd "export RUST_LOG=warn TESSERA_DEMO_PASSWORD=SOME-PASSWORD DIR=\$PWD/bench-dev   # then, in another shell:"
apicmd "$(pin_shown "$SERVER_CPU")target/release/tessera dev --data-dir \$DIR --port P --spa-port S --api-port A   # prints \"tessera dev ready: server=... spa=... api=...\""

tessera_dev_cli() { "$BIN" "$@" --database-url "$API_DB"; }
tessera_dev_cli apps create --name bench-api-m2m --type m2m --json >"$RUN_DIR/api-app.json" 2>"$RUN_DIR/api-cli.log" \
  || die "tessera apps create failed: $(cat "$RUN_DIR/api-cli.log")"
API_CLIENT_ID=$(node -p "JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')).client_id ?? ''" "$RUN_DIR/api-app.json")
API_CLIENT_SECRET=$(node -p "JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')).client_secret ?? ''" "$RUN_DIR/api-app.json")
[[ -n $API_CLIENT_ID && -n $API_CLIENT_SECRET ]] || die "no client_id/client_secret from tessera apps create: $(cat "$RUN_DIR/api-app.json")"
tessera_dev_cli grants create --app "$API_CLIENT_ID" --api "$API_AUDIENCE" --scopes read:messages --json \
  >"$RUN_DIR/api-grant.json" 2>>"$RUN_DIR/api-cli.log" || die "tessera grants create failed: $(cat "$RUN_DIR/api-cli.log")"
API_TOKEN_BODY="grant_type=client_credentials&client_id=$(urlencode "$API_CLIENT_ID")&client_secret=$(urlencode "$API_CLIENT_SECRET")&audience=$API_AUDIENCE_ENC"
token_check api "http://127.0.0.1:$AS_PORT/oauth/token" "$API_TOKEN_BODY" "$API_AUDIENCE" "$API_ISSUER"
API_TOKEN=$(node -p "JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')).access_token" "$RUN_DIR/api-token.json")
apicmd "target/release/tessera apps create --name bench-api-m2m --type m2m --json --database-url sqlite://\$DIR/tessera.db   # prints client_id, client_secret"
apicmd "target/release/tessera grants create --app CLIENT_ID --api $API_AUDIENCE --scopes read:messages --json --database-url sqlite://\$DIR/tessera.db"
apicmd "TOKEN=\$(curl -s -d 'grant_type=client_credentials&client_id=CLIENT_ID&client_secret=CLIENT_SECRET&audience=$API_AUDIENCE_ENC' http://127.0.0.1:P/oauth/token | node -p 'JSON.parse(require(\"fs\").readFileSync(0)).access_token')"

# A copy of the token with one signature character changed: must be refused.
sig=${API_TOKEN##*.}
i=$(( ${#sig} / 2 ))
c=${sig:i:1}
[[ $c == A ]] && c=B || c=A
BAD_TOKEN="${API_TOKEN%.*}.${sig:0:i}$c${sig:i+1}"

# route_check NAME PORT: /api/public 200; /api/private 200 with the token, 401 without it and
# 401 with an altered signature; or die. Also warms the server up (a first JWKS fetch, if any).
route_check() {
  local name=$1 port=$2 url="http://127.0.0.1:$2" code
  code=$(curl -sS --max-time 10 -o "$RUN_DIR/$name-public.json" -w '%{http_code}' "$url/api/public") || die "$name: GET /api/public failed"
  [[ $code == 200 ]] || die "$name: GET /api/public answered HTTP $code: $(head -c 300 "$RUN_DIR/$name-public.json")"
  code=$(curl -sS --max-time 15 -o "$RUN_DIR/$name-private.json" -w '%{http_code}' -H "Authorization: Bearer $API_TOKEN" "$url/api/private") \
    || die "$name: GET /api/private failed"
  [[ $code == 200 ]] || die "$name: GET /api/private with a valid token answered HTTP $code, not 200: $(head -c 300 "$RUN_DIR/$name-private.json")"
  code=$(curl -sS --max-time 10 -o "$RUN_DIR/$name-private-none.json" -w '%{http_code}' "$url/api/private") || die "$name: GET /api/private failed"
  [[ $code == 401 ]] || die "$name: GET /api/private without a token answered HTTP $code, not 401"
  code=$(curl -sS --max-time 10 -o "$RUN_DIR/$name-private-bad.json" -w '%{http_code}' -H "Authorization: Bearer $BAD_TOKEN" "$url/api/private") \
    || die "$name: GET /api/private failed"
  [[ $code == 401 ]] || die "$name: GET /api/private with an altered signature answered HTTP $code, not 401"
  record "${name}_routes" "public 200; private: 200 with the token, 401 without, 401 with an altered signature"
  log "$name: /api/public 200; /api/private 200 with the token, 401 without, 401 with an altered signature"
}
route_check api "$API_PORT"

log "Express peer (express-oauth2-jwt-bearer) on $PEERAPI_PORT"
spawn "$RUN_DIR/peerapi.log" env PEER_API_PORT="$PEERAPI_PORT" PEER_API_ISSUER="$API_ISSUER" PEER_API_AUDIENCE="$API_AUDIENCE" \
  NODE_ENV=production "${SERVER_PIN[@]}" node "$BENCH_DIR/peer-api/server.mjs"
PEERAPI_PID=$SPAWN_PID
wait_ready "$PEERAPI_PID" "$PEERAPI_PORT" /api/public 15000 || die "the Express peer did not become ready: $(tail -20 "$RUN_DIR/peerapi.log")"
route_check peerapi "$PEERAPI_PORT"
apicmd "(cd bench/peer-api && npm ci)"
apicmd "PEER_API_PORT=E PEER_API_ISSUER=http://localhost:P/ PEER_API_AUDIENCE=$API_AUDIENCE NODE_ENV=production $(pin_shown "$SERVER_CPU")node bench/peer-api/server.mjs"
apicmd "$(pin_shown "$SERVER_CPU")openssl speed -seconds $OPENSSL_SECONDS rsa2048   # the verify/s column"
for shown in "A /api/public" "A /api/private" "E /api/public" "E /api/private"; do
  set -- $shown
  apicmd "BENCH_API_PATH=$2$([[ $2 == /api/private ]] && echo ' BENCH_API_TOKEN=$TOKEN' || true) $(pin_shown "$LOAD_CPU")wrk -d${DURATION}s -t$API_THREADS -c$API_CONNECTIONS --latency --timeout 5s -s bench/api.lua http://127.0.0.1:$1   # after a ${WARMUP}s warm-up run"
done
(( PIN )) && apicmd "# the same four runs again with wrk on core $SERVER_CPU too (taskset -c $SERVER_CPU wrk ...): no cross-core wake-ups"
apicmd "$(pin_shown "$SERVER_CPU")openssl speed -seconds $OPENSSL_SECONDS ecdsap256   # the verify/s column: one DPoP proof's signature"
apicmd "node bench/dpop_proofs.mjs http://localhost:P/ http://127.0.0.1:P/oauth/token http://127.0.0.1:A/api/private COUNT \$PWD/dpop <<<'grant_type=client_credentials&client_id=CLIENT_ID&client_secret=CLIENT_SECRET&audience=$API_AUDIENCE_ENC'   # a DPoP-bound token and COUNT proofs"
apicmd "BENCH_API_PATH=/api/private BENCH_DPOP_PREFIX=\$PWD/dpop BENCH_DPOP_THREADS=$API_THREADS $(pin_shown "$LOAD_CPU")wrk -d${DURATION}s -t$API_THREADS -c$API_CONNECTIONS --latency --timeout 5s -s bench/api_dpop.lua http://127.0.0.1:A   # after a ${WARMUP}s warm-up run with the same proofs file"
set --

# api_load NAME PID PORT PATH ROUND: GET PATH under wrk + api.lua, with the token on /api/private.
api_load() {
  local token=""
  [[ $4 == /api/private ]] && token=$API_TOKEN
  measure "$1" "$2" "$5" "http://127.0.0.1:$3" "$BENCH_DIR/api.lua" "$API_THREADS" "$API_CONNECTIONS" \
    BENCH_API_PATH="$4" BENCH_API_TOKEN="$token"
}

# openssl_ecdsa_verify KEY: ECDSA P-256 (ES256) verify/s on the servers' core: what checking a
# DPoP proof's signature costs at the least.
openssl_ecdsa_verify() {
  local key=$1 rate
  local cmd=(openssl speed -seconds "$OPENSSL_SECONDS" ecdsap256)
  timeout $((OPENSSL_SECONDS * 2 + 60)) "${SERVER_PIN[@]}" "${cmd[@]}" >"$RUN_DIR/$key.txt" 2>&1 \
    || die "${SERVER_PIN[*]} ${cmd[*]} failed"
  rate=$(awk '/nistp256/ { print $NF; exit }' "$RUN_DIR/$key.txt")
  [[ $rate =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "could not parse verify/s from ${cmd[*]} (see $RUN_DIR/$key.txt)"
  record "$key" "$rate"
  log "${SERVER_PIN[*]}${SERVER_PIN[*]:+ }${cmd[*]}: $rate verify/s"
}

# dpop_load ROUND: GET /api/private with a DPoP-bound token and a fresh proof per request, wrk
# as for api_private. The proofs are signed beforehand (bench/dpop_proofs.mjs), enough for this
# round's warm-up and run at the bearer rate just measured (a proof only adds work); they stay
# fresh for a minute, so the quiet wait comes before they are made.
dpop_load() {
  local round=$1 prefix="$RUN_DIR/api_dpop-r$1" bearer count
  bearer=$(sed -n 's/^BENCH_RESULT .*rps=\([0-9.]*\).*/\1/p' "$RUN_DIR/api_private-r$round-wrk.txt")
  [[ -n $bearer ]] || die "api_dpop: no bearer rate for round $round"
  count=$(awk -v r="$bearer" -v s=$((WARMUP + DURATION)) 'BEGIN { printf "%d", r * s + 5000 }')
  (( QUIET_WAIT == 0 )) || quiet_gate "api_dpop_r$round"
  node "$BENCH_DIR/dpop_proofs.mjs" "$API_ISSUER" "http://127.0.0.1:$AS_PORT/oauth/token" \
    "http://127.0.0.1:$API_PORT/api/private" "$count" "$prefix" <<<"$API_TOKEN_BODY" \
    >"$prefix-proofs.log" 2>&1 || die "api_dpop: could not prepare proofs: $(tail -3 "$prefix-proofs.log")"
  record "api_dpop_r${round}_proofs" "$(cat "$prefix-proofs.log")"
  QUIET_WAIT=0 measure api_dpop "$API_PID" "$round" "http://127.0.0.1:$API_PORT" "$BENCH_DIR/api_dpop.lua" \
    "$API_THREADS" "$API_CONNECTIONS" BENCH_API_PATH=/api/private BENCH_DPOP_PREFIX="$prefix" BENCH_DPOP_THREADS="$API_THREADS"
  rm -f "$prefix.proofs"
}

MEASURE_PIN=("${LOAD_PIN[@]}")
for ((round = 1; round <= ROUNDS; round++)); do
  log "api round $round/$ROUNDS"
  openssl_verify "api_openssl_verify_r$round"
  openssl_ecdsa_verify "api_openssl_ecdsa_verify_r$round"
  api_load api_public "$API_PID" "$API_PORT" /api/public "$round"
  api_load api_private "$API_PID" "$API_PORT" /api/private "$round"
  dpop_load "$round"
  if (( PIN )); then
    # The same two runs with wrk on the server's core: no cross-core wake-ups (informational).
    MEASURE_PIN=("${SERVER_PIN[@]}")
    api_load api_public_samecore "$API_PID" "$API_PORT" /api/public "$round"
    api_load api_private_samecore "$API_PID" "$API_PORT" /api/private "$round"
    api_load peerapi_public_samecore "$PEERAPI_PID" "$PEERAPI_PORT" /api/public "$round"
    api_load peerapi_private_samecore "$PEERAPI_PID" "$PEERAPI_PORT" /api/private "$round"
    MEASURE_PIN=("${LOAD_PIN[@]}")
  fi
  api_load peerapi_public "$PEERAPI_PID" "$PEERAPI_PORT" /api/public "$round"
  api_load peerapi_private "$PEERAPI_PID" "$PEERAPI_PORT" /api/private "$round"
done

# tessera proxy (informational): two proxies in front of the sample API's unprotected
# /api/public, one forwarding it as public, one checking the token first; the proxies, the
# sample API and wrk all on the server core, like the counted API runs. The difference in
# the proxy's CPU per request is what checking the token costs there.
PROXY_PUBLIC_PORT=$(free_port)
while :; do PROXY_TOKEN_PORT=$(free_port); [[ $PROXY_TOKEN_PORT != "$PROXY_PUBLIC_PORT" ]] && break; done
proxy_args=(proxy --issuer "$API_ISSUER" --audience "$API_AUDIENCE" --upstream "http://127.0.0.1:$API_PORT")
spawn "$RUN_DIR/proxy-public.log" "${SERVER_PIN[@]}" "$BIN" "${proxy_args[@]}" --listen "127.0.0.1:$PROXY_PUBLIC_PORT" --public /api/public
PROXY_PUBLIC_PID=$SPAWN_PID
wait_ready "$PROXY_PUBLIC_PID" "$PROXY_PUBLIC_PORT" /api/public 15000 \
  || die "tessera proxy (public) did not become ready: $(tail -20 "$RUN_DIR/proxy-public.log")"
spawn "$RUN_DIR/proxy-token.log" "${SERVER_PIN[@]}" "$BIN" "${proxy_args[@]}" --listen "127.0.0.1:$PROXY_TOKEN_PORT" --require /api/public=
PROXY_TOKEN_PID=$SPAWN_PID
for ((i = 0; i < 300; i++)); do
  grep -q "tessera proxy ready:" "$RUN_DIR/proxy-token.log" 2>/dev/null && break
  nap 0.05
done
grep -q "tessera proxy ready:" "$RUN_DIR/proxy-token.log" \
  || die "tessera proxy (token) did not become ready: $(tail -20 "$RUN_DIR/proxy-token.log")"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PROXY_TOKEN_PORT/api/public") || die "proxy: GET /api/public failed"
[[ $code == 401 ]] || die "proxy: GET /api/public without a token answered $code, not 401"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $API_TOKEN" "http://127.0.0.1:$PROXY_TOKEN_PORT/api/public") || die "proxy: GET /api/public failed"
[[ $code == 200 ]] || die "proxy: GET /api/public with the token answered $code, not 200"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BAD_TOKEN" "http://127.0.0.1:$PROXY_TOKEN_PORT/api/public") || die "proxy: GET /api/public failed"
[[ $code == 401 ]] || die "proxy: GET /api/public with an altered signature answered $code, not 401"
record proxy_routes "through the token-checking proxy: 200 with the token, 401 without, 401 with an altered signature"
apicmd "$(pin_shown "$SERVER_CPU")target/release/tessera proxy --issuer http://localhost:P/ --audience $API_AUDIENCE --upstream http://127.0.0.1:A --listen 127.0.0.1:X --public /api/public      # forwarding only"
apicmd "$(pin_shown "$SERVER_CPU")target/release/tessera proxy --issuer http://localhost:P/ --audience $API_AUDIENCE --upstream http://127.0.0.1:A --listen 127.0.0.1:Y --require /api/public=   # token checked, then forwarded"
apicmd "BENCH_API_PATH=/api/public [BENCH_API_TOKEN=\$TOKEN] $(pin_shown "$SERVER_CPU")wrk -d${DURATION}s -t$API_THREADS -c$API_CONNECTIONS --latency --timeout 5s -s bench/api.lua http://127.0.0.1:X|Y"
MEASURE_PIN=("${SERVER_PIN[@]}")
for ((round = 1; round <= ROUNDS; round++)); do
  log "proxy round $round/$ROUNDS"
  measure proxy_public "$PROXY_PUBLIC_PID" "$round" "http://127.0.0.1:$PROXY_PUBLIC_PORT" "$BENCH_DIR/api.lua" \
    "$API_THREADS" "$API_CONNECTIONS" BENCH_API_PATH=/api/public BENCH_API_TOKEN=
  measure proxy_token "$PROXY_TOKEN_PID" "$round" "http://127.0.0.1:$PROXY_TOKEN_PORT" "$BENCH_DIR/api.lua" \
    "$API_THREADS" "$API_CONNECTIONS" BENCH_API_PATH=/api/public BENCH_API_TOKEN="$API_TOKEN"
done
MEASURE_PIN=("${LOAD_PIN[@]}")
stop_server "$PROXY_PUBLIC_PID"
stop_server "$PROXY_TOKEN_PID"

# Where the CPU goes: one extra run per Tessera route under `perf record` (not counted).
if (( PROFILE )); then
  for route in public private; do
    token=""
    [[ $route == private ]] && token=$API_TOKEN
    prof_secs=5
    env BENCH_API_PATH="/api/$route" BENCH_API_TOKEN="$token" timeout $((prof_secs + 32)) "${LOAD_PIN[@]}" \
      wrk -d"$((prof_secs + 2))s" -t"$API_THREADS" -c"$API_CONNECTIONS" --timeout 5s -s "$BENCH_DIR/api.lua" \
      "http://127.0.0.1:$API_PORT" >"$RUN_DIR/profile-$route-wrk.txt" 2>&1 &
    wrk_pid=$!
    LIVE[$wrk_pid]=1
    nap 1
    if timeout $((prof_secs + 30)) perf record -q -F 999 -g -p "$API_PID" -o "$RUN_DIR/profile-$route.data" -- sleep "$prof_secs" \
      >"$RUN_DIR/profile-$route.log" 2>&1; then
      perf script -i "$RUN_DIR/profile-$route.data" 2>/dev/null | node "$BENCH_DIR/profile.mjs" "profile_$route" >>"$RESULTS" \
        || log "profile of /api/$route: perf script failed (see $RUN_DIR/profile-$route.log)"
    else
      log "profile of /api/$route: perf record failed (see $RUN_DIR/profile-$route.log); no profile in the report"
    fi
    wait "$wrk_pid" || log "profile of /api/$route: wrk exited with $?"
    unset "LIVE[$wrk_pid]"
  done
  apicmd "BENCH_API_PATH=/api/private BENCH_API_TOKEN=\$TOKEN $(pin_shown "$LOAD_CPU")wrk -d7s -t$API_THREADS -c$API_CONNECTIONS -s bench/api.lua http://127.0.0.1:A &  perf record -F 999 -g -p PID_OF_TESSERA_DEV -- sleep 5; perf script | node bench/profile.mjs profile"
fi
stop_server "$PEERAPI_PID"
stop_server "$DEV_PID"
fi # section 2
record loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- report ------------------------------------------------------------------------------
node "$BENCH_DIR/report.mjs" "$RESULTS" "$COMMANDS" "${API_COMMANDS:-/dev/null}" >"$OUT.tmp" || die "writing the report failed"
# The sections bench/lists.sh, imports.sh, actions.sh, cluster.sh, writes.sh and tenant.sh write
# (between their markers) are their own: carried over.
for section in lists imports actions cluster writes tenant; do
  if [[ -f $OUT ]] && grep -q "^<!-- $section:begin" "$OUT"; then
    { printf '\n'; sed -n "/^<!-- $section:begin/,/^<!-- $section:end -->/p" "$OUT"; } >>"$OUT.tmp"
  fi
done
mv "$OUT.tmp" "$OUT"
log "wrote ${OUT#"$ROOT"/} (raw outputs in ${RUN_DIR#"$ROOT"/})"
grep -E '^In this run|\| (\*\*(yes|no)\*\*|n/a) \|$' "$OUT" >&2 || true
