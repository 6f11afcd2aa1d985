#!/usr/bin/env bash
# Builds the Leptos client into dist/ with Trunk, offline, using wasm-opt
# from the npm package binaryen (never Debian's, which breaks the module).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/web-client/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export TRUNK_SKIP_VERSION_CHECK=true
exec trunk build --release "$@"
