#!/usr/bin/env bash
# The build step that the Rust buildpack alone cannot do: the Leptos web
# client (WASM, Trunk) into dist/, next to the server binary the Procfile runs.
#
# On Heroku it runs from the root package.json's `heroku-postbuild` script,
# i.e. inside the heroku/nodejs buildpack, which is added AFTER
# emk/heroku-buildpack-rust (docs/deploy.md, "Heroku"). By then:
#   - the Rust buildpack has installed rustup + cargo in the build cache and
#     exported RUSTUP_HOME, CARGO_HOME (= <cache>/cargo) and PATH to later
#     buildpacks, and has built `signal-server` (RustConfig) and copied it to
#     target/release/, the path the Procfile runs;
#   - the nodejs buildpack has put node and npm on PATH. Node is required:
#     index.html copies socket.io-client out of web-client/node_modules, and
#     Trunk.toml pins wasm-opt version_132, which comes from the npm package
#     binaryen (there is no switch to skip wasm-opt in a release build short
#     of editing index.html's data-wasm-opt).
#
# Also runs locally (no --heroku) as a rehearsal of the Heroku build: it
# installs what is missing, builds the client and the release server.
#
# Idempotent: tools are installed only when missing or at another version
# (on Heroku they live in the build cache, so only the first build pays).
#
# Usage: scripts/heroku-build.sh [--heroku] [--dry-run]
#   --heroku   Heroku build: cargo target dir of the client in the build
#              cache (not in the slug), the server binary checked (built
#              only if the Rust buildpack did not), build-only
#              node_modules removed from the slug afterwards.
#   --dry-run  print what would run; change nothing.
# Environment:
#   HEROKU_BUILD_TOOLS_ONLY=1  install/cache the tools, then stop: a first
#              deploy that hits Heroku's 15-minute build limit can be split
#              in two pushes (docs/deploy.md).
set -euo pipefail
cd "$(dirname "$0")/.."

heroku=false
dry=false
for arg in "$@"; do
  case "$arg" in
    --heroku) heroku=true ;;
    --dry-run|-n) dry=true ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) printf 'unknown argument: %s (try --help)\n' "$arg" >&2; exit 2 ;;
  esac
done

# Heroku's build log style.
log() { printf -- '-----> %s\n' "$*"; }
note() { printf -- '       %s\n' "$*"; }
die() { printf -- ' !     %s\n' "$*" >&2; exit 1; }
run() {
  printf -- '       $ %s\n' "$*"
  if ! $dry; then "$@"; fi
}

# Same pins as scripts/setup.sh (why: ../shared/TOOLCHAIN.md). trunk 0.22
# needs a newer rustc than the workspace's 1.95.
TRUNK_VERSION=0.21.14
# wasm-bindgen-cli must equal the wasm-bindgen in Cargo.lock, or Trunk tries
# to download one (and fails: Trunk.toml says offline).
WBG_VERSION=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/"/, "", $3); print $3; exit}' Cargo.lock)
[ -n "$WBG_VERSION" ] || die "no wasm-bindgen in Cargo.lock"
WASM_OPT_VERSION=132   # Trunk.toml: [tools] wasm_opt = "version_132"

export PATH="$PWD/web-client/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# --- Preconditions ------------------------------------------------------------
for tool in cargo rustup; do
  command -v "$tool" >/dev/null ||
    die "$tool not found. On Heroku the Rust buildpack must come BEFORE heroku/nodejs (heroku buildpacks)."
done
for tool in node npm; do
  command -v "$tool" >/dev/null ||
    die "$tool not found. The client build needs Node (socket.io-client and wasm-opt come from npm): add the heroku/nodejs buildpack."
done
if $heroku; then
  # The Rust buildpack exports CARGO_HOME=<build cache>/cargo; the cache
  # survives between builds and is not part of the slug.
  [ -n "${CARGO_HOME:-}" ] || die "CARGO_HOME unset: the Rust buildpack's export did not run (buildpack order?)"
  cache_dir=$(dirname "$CARGO_HOME")
  client_target="$cache_dir/target-web-client"
  server_target="$cache_dir/target"   # where the Rust buildpack builds (CARGO_TARGET_DIR)
else
  client_target="${CARGO_TARGET_DIR:-$PWD/target}"
  server_target="$client_target"
fi
log "rustc $(rustc --version | cut -d' ' -f2), node $(node --version), npm $(npm --version)"

# --- Tools (cached in CARGO_HOME / RUSTUP_HOME) -----------------------------------
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  note "wasm32-unknown-unknown target: installed"
else
  log "Adding the wasm32-unknown-unknown target"
  run rustup target add wasm32-unknown-unknown
fi

if [ "$(trunk --version 2>/dev/null)" = "trunk $TRUNK_VERSION" ]; then
  note "trunk $TRUNK_VERSION: installed"
else
  log "Installing trunk $TRUNK_VERSION (compiles from source: minutes, once; cached afterwards)"
  run cargo install trunk --version "$TRUNK_VERSION" --locked
fi

if [ "$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $WBG_VERSION" ]; then
  note "wasm-bindgen-cli $WBG_VERSION: installed"
else
  log "Installing wasm-bindgen-cli $WBG_VERSION"
  # --locked first; its lockfile may name a crate version the registry has
  # yanked, then unlocked works (TOOLCHAIN.md).
  if $dry; then
    run cargo install wasm-bindgen-cli --version "$WBG_VERSION" --locked
  else
    run cargo install wasm-bindgen-cli --version "$WBG_VERSION" --locked ||
      run cargo install wasm-bindgen-cli --version "$WBG_VERSION"
  fi
fi

if [ "${HEROKU_BUILD_TOOLS_ONLY:-}" = 1 ]; then
  log "HEROKU_BUILD_TOOLS_ONLY=1: tools are installed (and cached); skipping the client build"
  note "This slug has NO web client. Unset HEROKU_BUILD_TOOLS_ONLY and push again."
  exit 0
fi

# --- Crates and npm packages ------------------------------------------------------
# Trunk.toml sets offline = true (Trunk then passes --offline to cargo), so
# every crate, wasm32-only ones included, must be fetched first.
log "Fetching crates"
run cargo fetch --locked

# The nodejs buildpack builds with NODE_ENV=production, under which `npm ci`
# would skip devDependencies, and binaryen (wasm-opt) is one: --include=dev.
lock=web-client/package-lock.json
if [ -d web-client/node_modules ] && ! [ "$lock" -nt web-client/node_modules/.package-lock.json ]; then
  note "web-client/node_modules: up to date"
else
  log "Installing the client's npm packages (socket.io-client, binaryen)"
  run npm --prefix web-client ci --include=dev --no-audit --no-fund --loglevel=error
fi
if ! $dry; then
  wasm_opt=$(wasm-opt --version 2>/dev/null || true)
  # Never let Trunk use another wasm-opt: Debian's 108 silently breaks the module.
  case "$wasm_opt" in
    *"version_$WASM_OPT_VERSION"*) note "$wasm_opt" ;;
    *) die "wasm-opt from web-client/node_modules is not version $WASM_OPT_VERSION (got: ${wasm_opt:-none})" ;;
  esac
fi

# --- The web client ----------------------------------------------------------
log "Building the web client into dist/ (trunk build --release)"
run env CARGO_TARGET_DIR="$client_target" ./scripts/build-client.sh
if ! $dry; then
  if ! [ -f dist/index.html ] || ! compgen -G 'dist/*.wasm' >/dev/null; then
    die "dist/ has no index.html or .wasm after the client build"
  fi
fi

# --- The server ----------------------------------------------------------------
server=target/release/signal-server   # the Procfile's path, relative to the app root
if $heroku && [ -x "$server" ]; then
  note "$server: built by the Rust buildpack"
else
  log "Building signal-server (release)"
  run env CARGO_TARGET_DIR="$server_target" cargo build --release --locked -p signal-server
  if [ "$server_target/release/signal-server" != "$PWD/$server" ]; then
    run mkdir -p target/release
    run cp "$server_target/release/signal-server" "$server"
  fi
fi
if ! $dry; then
  [ -x "$server" ] || die "$server is missing: the Procfile would fail at boot"
fi

# --- Slug hygiene (Heroku only) --------------------------------------------------
if $heroku; then
  # binaryen alone is ~100 MB and only needed at build time; dist/ already
  # holds the copied socket.io.min.js.
  log "Removing build-only files from the slug"
  run rm -rf web-client/node_modules
fi

if $dry; then
  log "Dry run: nothing was changed"
else
  log "Done: $server ($(du -h "$server" | cut -f1)), dist/ ($(du -sh dist | cut -f1))"
fi
