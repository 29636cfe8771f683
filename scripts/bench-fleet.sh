#!/usr/bin/env bash
# Fleet figures (end2end/bench/fleet.mjs) against the release build (`make bench` builds it
# first): 10,000 devices, then /fleet's first page: the server's time for the whole page
# (server-rendered HTML) and its JSON, plain, filtered and sorted, and the list as CSV; and
# Chromium's time to an interactive page (hydrated, live feed open). Target: under 300 ms
# server time, under 1 s to interactive. The page loads the site in target/site (or
# IOT_SITE_ROOT's): the release one, as `make release` builds it, or the figure is a debug WASM's.
#   scripts/bench-fleet.sh            DEVICES=10000 RUNS=11 by default
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
cargo_same build --release -q -p server
data=$(mktemp -d)
start_server target/release "$data"
trap 'kill $SERVER; rm -rf "$data"' EXIT
cd end2end
BASE_URL="http://127.0.0.1:$WEB" DEVICES=${DEVICES:-10000} RUNS=${RUNS:-11} node bench/fleet.mjs
