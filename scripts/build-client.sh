#!/usr/bin/env bash
# Builds the Leptos client into dist/ with Trunk, offline, using wasm-opt
# from the npm package binaryen (never Debian's, which breaks the module).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/web-client/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export TRUNK_SKIP_VERSION_CHECK=true
# Panic locations name source files; without this they carry this
# machine's registry path into the bundle (bytes, and a build that differs
# by machine).
remap=""
for src in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
  remap+=" --remap-path-prefix=${src%/}=crates"
done
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${remap# }"
exec trunk build --release "$@"
