#!/usr/bin/env bash
# Finishes the site scripts/build.sh (or cargo-leptos) built in target/site, which each build
# starts afresh:
# PNG icons rendered from the one SVG source, uPlot for the charts, content hashes in the
# names of the scripts, stylesheets and WASM (asset-manifest.json, read by the server at start),
# the Workbox service worker over it all, then brotli and gzip copies the server sends to
# browsers that accept them.
#   scripts/site.sh [SITE] [fast|best]     best for release builds (make release), fast by default
set -euo pipefail
cd "$(dirname "$0")/.."
SITE="${1:-target/site}"

mkdir -p "$SITE/icons"
for size in 192 512; do
  rsvg-convert -w $size -h $size public/icon.svg -o "$SITE/icons/icon-$size.png"
done
# The art is full-bleed with the glyph inside the safe zone, so it is also the maskable icon.
cp "$SITE/icons/icon-512.png" "$SITE/icons/maskable-512.png"
rsvg-convert -w 180 -h 180 public/icon.svg -o "$SITE/icons/apple-touch-icon.png"

# uPlot, which charts.js draws interactive charts with.
mkdir -p "$SITE/vendor"
cp tools/node_modules/uplot/dist/uPlot.iife.min.js tools/node_modules/uplot/dist/uPlot.min.css "$SITE/vendor/"

node tools/hash-assets.mjs "$SITE"
node tools/build-sw.mjs "$SITE"
node tools/precompress.mjs "$SITE" "${2:-fast}"
