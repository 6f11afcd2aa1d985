#!/usr/bin/env bash
# Installs whatever the project needs and is missing; safe to run again.
# Used by run.sh and test.sh. Only the package registries are reached
# (Debian, crates.io, npm): nothing downloads binaries from elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
export PATH="$HOME/.cargo/bin:$PATH"

# What to install: `setup.sh` = everything (tests); `setup.sh run` = what
# serving the product needs (server + client build, no browsers).
purpose="${1:-test}"

# --- Debian packages --------------------------------------------------------
apt_needed=()
need_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || apt_needed+=("$1"); }
need_pkg pkg-config      # openssl-sys (rust_socketio's TLS) finds OpenSSL through it
need_pkg libssl-dev
need_pkg gzip
command -v node >/dev/null || need_pkg nodejs
command -v npm >/dev/null || need_pkg npm
if [ "$purpose" = test ]; then
  need_pkg chromium      # browser tests (Debian's build: no test tool may download one)
  need_pkg firefox-esr   # cross-browser call
  need_pkg fonts-noto-color-emoji  # reactions in the screenshots (headless Chromium has no emoji font otherwise)
  need_pkg iproute2      # `ip link set lo up` in the loopback-only test namespace
  need_pkg util-linux    # unshare
  command -v redis-server >/dev/null || need_pkg redis-server  # scale-out tests (Debian 12: 7.0)
  command -v openssl >/dev/null || need_pkg openssl  # a self-signed certificate for the Redis TLS test
fi
if [ ${#apt_needed[@]} -gt 0 ]; then
  log "apt-get install ${apt_needed[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq "${apt_needed[@]}" >/dev/null
fi

# --- Rust -------------------------------------------------------------------
command -v cargo >/dev/null || { log "cargo is missing: install Rust with rustup first"; exit 1; }
installed_components=$(rustup component list --installed 2>/dev/null || true)
grep -q '^clippy' <<<"$installed_components" || rustup component add clippy
grep -q '^rustfmt' <<<"$installed_components" || rustup component add rustfmt
rustup target list --installed | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown
log "cargo fetch"
cargo fetch --locked -q

# Trunk builds the client. 0.21.14 is the newest that builds with this rustc.
if [ "$(trunk --version 2>/dev/null)" != "trunk 0.21.14" ]; then
  log "cargo install trunk 0.21.14 (takes minutes, once)"
  cargo install trunk --version 0.21.14 --locked
fi
# wasm-bindgen-cli must match the wasm-bindgen in Cargo.lock exactly, or
# Trunk tries to download one.
wbg=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/"/, "", $3); print $3; exit}' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wbg" ]; then
  log "cargo install wasm-bindgen-cli $wbg"
  cargo install wasm-bindgen-cli --version "$wbg" --locked || cargo install wasm-bindgen-cli --version "$wbg"
fi

# --- npm packages -----------------------------------------------------------
npm_ci() {
  local dir=$1
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "npm ci ($dir)"
    (cd "$dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  fi
}
npm_ci web-client        # socket.io-client for the page, binaryen's wasm-opt
if [ "$purpose" = test ]; then
  npm_ci tests/js        # the official socket.io-client for the protocol tests
  npm_ci tests/browser   # puppeteer-core (drives Debian's Chromium and Firefox)
  npm_ci bench/node-server  # socket.io for the Node.js server the bench compares against
fi
log "ready"
