#!/usr/bin/env bash
# Installs whatever the project needs and is missing; safe to run again.
# Used by run.sh and test.sh. Only the package registries are reached
# (Debian, crates.io, npm): nothing downloads binaries from elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Debian packages --------------------------------------------------------
apt_needed=()
need_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || apt_needed+=("$1"); }
need_pkg pkg-config      # openssl-sys (rust_socketio's TLS) finds OpenSSL through it
need_pkg libssl-dev
command -v node >/dev/null || need_pkg nodejs
command -v npm >/dev/null || need_pkg npm
if [ ${#apt_needed[@]} -gt 0 ]; then
  log "apt-get install ${apt_needed[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq "${apt_needed[@]}" >/dev/null
fi

# --- Rust -------------------------------------------------------------------
command -v cargo >/dev/null || { log "cargo is missing: install Rust with rustup first"; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
log "cargo fetch"
cargo fetch --locked -q

# --- npm packages for the JavaScript end-to-end tests -----------------------
if [ ! -d tests/js/node_modules ] || [ tests/js/package-lock.json -nt tests/js/node_modules/.package-lock.json ]; then
  log "npm ci (tests/js)"
  (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
fi
log "ready"
