#!/usr/bin/env bash
# Connection storm figure: a device's PUBACK round trips (QoS 1, 20/s, one at a time) on a quiet
# server, then while 1,000 client ids never seen connect and disconnect over and over (not
# logged), then while 1,000 known devices do (each connection made and ended an entry in its
# device's connection log, committed with the readings), into the release build.
#   scripts/bench-connections.sh            SECS=10 by default
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-10}
source scripts/lib.sh
cargo_same build --release -q -p server -p bench
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
start_server target/release "$work"
target/release/bench connection-storm "127.0.0.1:$MQTT" "$SECS"
kept=$(curl -fsS "http://127.0.0.1:$WEB/api/device_log?id=CONNSTORM_0000" \
  | node -e 'let s = ""; process.stdin.on("data", d => s += d).on("end", () => console.log(JSON.parse(s).connections.length))')
echo
echo "CONNSTORM_0000's connection log afterwards: $kept entries (at most 100 are kept)."
