#!/usr/bin/env bash
# The README's run command: installs what is missing, builds, and starts the
# server (serving the web client from dist/ once it is built).
# Pass server flags after it, e.g. ./scripts/run.sh --port 8080
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --locked -p signal-server
exec ./target/release/signal-server "$@"
