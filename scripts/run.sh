#!/usr/bin/env bash
# The README's run command: installs what is missing, builds the server and
# the web client, and starts the server, which serves the client.
# Pass server flags after it, e.g. ./scripts/run.sh --port 8080
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh run
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p signal-server
./scripts/build-client.sh
# Every mode the lobby offers works out of the box: SFU rooms are on, their
# media bound to loopback (SFU_IP), unless SFU=false. Serving other machines:
# docs/deploy.md (SFU_IP, SFU_PUBLIC_IP, SFU_PORTS).
export SFU="${SFU:-true}"
exec ./target/release/signal-server --static-dir dist "$@"
