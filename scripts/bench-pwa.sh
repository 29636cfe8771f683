#!/usr/bin/env bash
# PWA figures (offline cold reload, reconnect bytes, precache size) against the release build
# (`make bench` builds it first).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
data=$(mktemp -d)
start_server target/release "$data"
trap 'kill $SERVER; rm -rf "$data"' EXIT
cd end2end
BASE_URL="http://127.0.0.1:$WEB" MQTT_PORT=$MQTT SITE_DIR="$PWD/../target/site" node bench/pwa.mjs
