#!/usr/bin/env bash
# Command figures (issue 16), with DEVICES simulated devices connected to the embedded broker,
# each publishing a reading every INTERVAL s and answering commands at once (QoS 1): COUNT
# command round trips one after another, API call → device → SUCCEEDED on /ws/live (what the
# browser shows), p50 / p99 / max; then one bulk request to every device: the time until it is
# answered (every command stored) and until every command has ended, and the messages stored a
# second meanwhile against the same length of time just before, without commands.
#   scripts/bench-commands.sh            DEVICES=1000 INTERVAL=1 COUNT=200 by default
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=${DEVICES:-1000}
INTERVAL=${INTERVAL:-1}
COUNT=${COUNT:-200}
source scripts/lib.sh
cargo_same build --release -q -p server -p simulator -p bench
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

metric() { curl -fsS "http://127.0.0.1:$WEB/metrics" | awk -v m="$1" '$1 == m {print int($2)}'; }
start_server target/release "$work"
target/release/simulator --port "$MQTT" -n "$DEVICES" --interval "$INTERVAL" --prefix CMD >/dev/null 2>&1 &
sim=$!
# Every device connected and known (its first reading stored; it subscribed to its commands
# before that), then a moment to settle.
for _ in $(seq 1 600); do
  [ "$(metric iot_devices)" -ge "$DEVICES" ] && break
  sleep 0.5
done
[ "$(metric iot_devices)" -ge "$DEVICES" ] || { echo "only $(metric iot_devices) of $DEVICES devices came" >&2; exit 1; }
sleep 5
load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $load"
echo
echo "| commands, $DEVICES devices connected at 1 reading / ${INTERVAL} s | p50 | p99 | max |"
echo "|---|---|---|---|"
target/release/bench commands "127.0.0.1:$WEB" "$DEVICES" CMD "$COUNT"
# The devices first, so the server is not stopped under their publishes.
kill $sim; wait $sim 2>/dev/null || true
kill $SERVER; wait $SERVER 2>/dev/null || true
