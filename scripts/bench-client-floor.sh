#!/usr/bin/env bash
# The floor under the client's size: bench/client-floor, the smallest hydrated Leptos app with
# a router and a server function, built as the dashboard's client is (same profile, type-erased
# components, wasm-bindgen, wasm-opt -Oz), and its WASM measured as scripts/sizes.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
target="$PWD/target/client-floor"
out="$target/site"
(cd bench/client-floor && cargo_same build --quiet --lib --target wasm32-unknown-unknown \
  --profile wasm-release --target-dir "$target")
wasm-bindgen --target=web --out-name=floor --out-dir="$out" \
  "$target/wasm32-unknown-unknown/wasm-release/client_floor.wasm"
wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int "$out/floor_bg.wasm" -o "$out/floor.wasm"
node tools/sizes.mjs --title "client floor (bench/client-floor), WASM alone" "${out#"$PWD"/}/floor.wasm"
