#!/usr/bin/env bash
# Sizes of the client (raw, gzip -9, brotli q11) in the finished site (make release): every
# file a page loads (the WASM and its JS, the stylesheet, uPlot, our scripts), then the service
# worker, which the browser fetches once on its own.
set -euo pipefail
tools="$(cd "$(dirname "$0")/../tools" && pwd)"
cd "$(dirname "$0")/../${1:-target/site}"
[ -d vendor ] || { echo "no vendor/ here: run scripts/site.sh first" >&2; exit 1; }
shopt -s nullglob
page=(pkg/*.wasm pkg/*.js pkg/*.css vendor/*.js vendor/*.css)
for f in *.js; do [ "$f" = sw.js ] || page+=("$f"); done
after=()
[ -f sw.js ] && after=(--after sw.js)
node "$tools/sizes.mjs" --total "whole client, what a page loads" "${page[@]}" "${after[@]}"
