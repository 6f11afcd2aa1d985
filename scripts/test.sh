#!/usr/bin/env bash
# The README's test command: installs what is missing, then runs every check
# and test. CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh test
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }
# More open files for the load-style tests (thousands of sockets).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy (workspace, all targets, -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo clippy (web client for wasm32, -D warnings)"
cargo clippy -p web-client --target wasm32-unknown-unknown --locked -- -D warnings
step "cargo test (unit + integration with rust_socketio)"
cargo test --workspace --locked
step "cargo test: the SFU room suite again on the webrtc engine (the shard is the default)"
SFU_ENGINE=webrtc cargo test --locked -p sfu --test room
step "build signal-server and the web client"
cargo build -p signal-server --locked
./scripts/build-client.sh
server="$PWD/target/debug/signal-server"
step "socket.io-client (official JS client) end-to-end tests"
(cd tests/js && SIGNAL_SERVER_BIN="$server" npm test)
step "browser end-to-end tests (Chromium, Firefox; loopback-only network namespace)"
(cd tests/browser && SIGNAL_SERVER_BIN="$server" WEB_DIST="$PWD/../../dist" npm test)
