#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh machine.
# Installs what it needs when missing, then runs: formatting and lint checks, the Rust
# tests (unit, integration over real HTTP with real SQLite), and the Node/browser suites.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

apt_updated=0
need_apt() {
  # need_apt COMMAND PACKAGE...: installs the packages when COMMAND is missing.
  local command=$1; shift
  if ! command -v "$command" >/dev/null 2>&1; then
    if [ "$apt_updated" = 0 ]; then
      log "apt-get update"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      apt_updated=1
    fi
    log "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
}

if ! command -v cargo-nextest >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "Rust tests (nextest)"
cargo nextest run --workspace --locked --no-fail-fast

log "Rust doc tests"
cargo test --workspace --locked --doc

if [ -d tests/node ]; then
  need_apt node nodejs
  need_apt chromium chromium
  log "Node interop and browser tests"
  cargo build --locked -p tessera
  (cd tests/node && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && node --test --test-concurrency=1)
fi
