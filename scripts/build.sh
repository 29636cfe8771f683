#!/usr/bin/env bash
# Builds the server and the site in target/site, as `cargo leptos build [--release]` does with
# the [[workspace.metadata.leptos]] settings in Cargo.toml, from the tools a build needs anyway
# (cargo, wasm-bindgen, and npm's wasm-opt, lightningcss and terser), so `make run` and
# `make test` do not wait for cargo-leptos to compile (about 15 minutes on a fresh machine).
# `make dev` still uses cargo-leptos, for its watch-and-reload loop; both share one build.
#   scripts/build.sh [debug|release]      then scripts/site.sh finishes the site
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

MODE="${1:-debug}"
NAME=iot-dashboard                  # output-name: LEPTOS_OUTPUT_NAME in .cargo/config.toml
SITE=target/site
PKG="$SITE/pkg"
FRONT_TARGET=target/front           # cargo-leptos's front-end target folder, shared with it
case "$MODE" in
  debug) FRONT_PROFILE=(); WASM_DIR=debug; SERVER_PROFILE=() ;;
  release) FRONT_PROFILE=(--profile wasm-release); WASM_DIR=wasm-release; SERVER_PROFILE=(--release) ;;
  *) echo "usage: $0 [debug|release]" >&2; exit 2 ;;
esac

# The browser's WASM (lib-package, lib-features) and the server (bin-package, no default
# features), each with the flags cargo-leptos uses (scripts/lib.sh).
cargo_same build --package frontend --lib --target-dir "$FRONT_TARGET" --target wasm32-unknown-unknown \
  --no-default-features --features hydrate "${FRONT_PROFILE[@]}"
cargo_same build --package server --bin server --no-default-features "${SERVER_PROFILE[@]}"

# The site: static files (assets-dir), then the JS and WASM, then the stylesheet.
rm -rf "$SITE"
mkdir -p "$PKG"
cp -R public/. "$SITE/"
wasm-bindgen --target web --no-typescript --out-name "$NAME" --out-dir "$PKG" \
  "$FRONT_TARGET/wasm32-unknown-unknown/$WASM_DIR/frontend.wasm"
# Leptos's hydration script loads <name>.wasm (cargo-leptos renames it the same way).
mv "$PKG/${NAME}_bg.wasm" "$PKG/$NAME.wasm"
CSS=(--targets "$(sed -n 's/^browserquery = "\(.*\)"/\1/p' Cargo.toml)")
if [ "$MODE" = release ]; then
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int "$PKG/$NAME.wasm" -o "$PKG/$NAME.wasm"
  terser "$PKG/$NAME.js" --module --compress --mangle -o "$PKG/$NAME.js"
  CSS+=(--minify)
fi
lightningcss "${CSS[@]}" style/main.css -o "$PKG/$NAME.css"
