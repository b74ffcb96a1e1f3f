#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh machine.
# Installs what it needs when missing, then runs: formatting and lint checks, the Rust
# tests (unit, integration over real HTTP with real SQLite and PostgreSQL), the
# Node/browser suites and the Python interop tests.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

apt_updated=0
apt_install() {
  # apt_install PACKAGE...: apt-get update (once per run), then install.
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
need_apt() {
  # need_apt COMMAND PACKAGE...: installs the packages when COMMAND is missing.
  local command=$1; shift
  if ! command -v "$command" >/dev/null 2>&1; then
    apt_install "$@"
  fi
}

# A whole-suite run gains little from incremental caches, which take gigabytes of disk
# (CI once ran out of space); set CARGO_INCREMENTAL=1 to keep them.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# The build and the tests need a few GiB; say so plainly instead of failing in the linker.
target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir"
free_kib=$(df -Pk "$target_dir" | awk 'NR == 2 { print $4 }')
log "free disk space where the build goes: $((free_kib / 1024)) MiB"
if [ "$free_kib" -lt $((3 * 1024 * 1024)) ]; then
  echo "warning: less than 3 GiB free under $target_dir; the build may run out of space" >&2
fi

if ! command -v cargo-nextest >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

# The PostgreSQL tests start throwaway servers themselves (initdb + postgres, found on PATH
# or in /usr/lib/postgresql/*/bin, run as the `postgres` user when we are root); they need
# the server binaries, and fail saying so without them.
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  apt_install postgresql
fi
if ! command -v setpriv >/dev/null 2>&1; then
  apt_install util-linux
fi
# The cluster test (crates/cli/tests/it/cluster.rs) puts HAProxy in front of three nodes;
# it fails, saying so, without /usr/sbin/haproxy (not on PATH for non-root users).
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  apt_install haproxy
fi

# crates/cli/tests/it/sqlite_sync.rs watches SQLite's sync calls with strace.
need_apt strace strace

log "Rust tests (nextest)"
cargo nextest run --workspace --locked --no-fail-fast

log "Rust doc tests"
cargo test --workspace --locked --doc

if [ -d tests/node ]; then
  need_apt node nodejs
  need_apt npm npm
  need_apt chromium chromium
  # certutil: the HTTPS browser test trusts tessera dev's CA in a temporary NSS database.
  need_apt certutil libnss3-tools
  if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
    echo "tests/node needs Node.js >= 20.19 (found $(node --version)); install it from nodejs.org or NodeSource" >&2
    exit 1
  fi
  log "Node interop and browser tests"
  cargo build --locked -p tessera
  # Where tests/node/lib/page-audit.mjs saves its screenshots; emptied so it holds this run's.
  export TESSERA_ARTIFACTS="$PWD/target/artifacts/screenshots"
  rm -rf "$TESSERA_ARTIFACTS"
  mkdir -p "$TESSERA_ARTIFACTS"
  # npm ci when node_modules is missing or was installed from another package-lock.json.
  # One test file at a time (each starts its own Tessera); every test has a time limit.
  (
    cd tests/node
    if ! cmp -s package-lock.json node_modules/.installed-from-package-lock.json; then
      npm ci --no-audit --no-fund
      cp package-lock.json node_modules/.installed-from-package-lock.json
    fi
    node --test --test-concurrency=1 --test-timeout=300000
  )
fi

if [ -d tests/python ]; then
  need_apt python3 python3
  # The venv module's pip comes from python3-venv on Debian.
  if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv
  fi
  log "Python interop tests"
  cargo build --locked -p tessera
  tests/python/run.sh
fi

if [ -n "${TESSERA_ARTIFACTS:-}" ]; then
  log "Screenshots of the audited pages (desktop and phone width): $TESSERA_ARTIFACTS"
fi
