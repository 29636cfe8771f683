#!/usr/bin/env bash
# Dashboard figures (24 h chart points, 10k-point draw time, 50 widgets under 500 readings/s)
# against the release build (`make bench` builds it first).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
cargo_same build --release -q -p simulator
data=$(mktemp -d)
start_server target/release "$data"
trap 'kill $SERVER; rm -rf "$data"' EXIT
cd end2end
BASE_URL="http://127.0.0.1:$WEB" MQTT_PORT=$MQTT SIMULATOR="$PWD/../target/release/simulator" node bench/ui.mjs
