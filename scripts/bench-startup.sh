#!/usr/bin/env bash
# Start-up figure: time from launching the server to its listening on a database of MB
# megabytes (1024), after a clean stop and after kill -9 (when redb first checks and repairs
# the file). The database is filled by `bench fill` (readings that do not compress).
#   scripts/bench-startup.sh            MB=1024 by default
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${MB:-1024}
source scripts/lib.sh
cargo_same build --release -q -p server -p simulator -p bench
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
target/release/bench fill "$work/b.redb" "$MB"

# Launches the server; SECS: seconds until the dashboard answered.
launch() {
  local t0 t1
  t0=$(date +%s.%N)
  start_server target/release "$work"
  until curl -fsS "http://127.0.0.1:$WEB/healthz" >/dev/null 2>&1; do sleep 0.01; done
  t1=$(date +%s.%N)
  SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
}
echo "| start-up, $(($(stat -c %s "$work/b.redb") >> 20)) MB database | seconds until it answers |"
echo "|---|---|"
launch
echo "| first open after filling | $SECS |"
kill $SERVER; wait $SERVER 2>/dev/null || true
launch
echo "| after a clean stop | $SECS |"
# Written to, then killed: the next open must check the file.
target/release/simulator --port "$MQTT" --total 100 --connections 1 >/dev/null 2>&1
kill -9 $SERVER; wait $SERVER 2>/dev/null || true
launch
echo "| after kill -9 (file checked and repaired) | $SECS |"
kill $SERVER; wait $SERVER 2>/dev/null || true
