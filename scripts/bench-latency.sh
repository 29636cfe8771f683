#!/usr/bin/env bash
# Latency figure: publish → /ws/live delay (p50, p99, max) at 1,000 and 5,000 msg/s for 10 s,
# paced by the simulator (which stamps each reading with its send time), one connection per
# 50 msg/s, into the release build with its embedded broker.
#   scripts/bench-latency.sh            RATES="1000 5000" SECS=10 by default
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=${RATES:-1000 5000}
SECS=${SECS:-10}
source scripts/lib.sh
cargo_same build --release -q -p server -p simulator -p bench
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

echo "| publish → WebSocket (QoS 1, ${SECS} s, embedded broker) | p50 | p99 | max |"
echo "|---|---|---|---|"
for rate in $RATES; do
  mkdir -p "$work/$rate"
  start_server target/release "$work/$rate"
  total=$((rate * SECS))
  target/release/bench latency "127.0.0.1:$WEB" "$total" >"$work/$rate/out" &
  listener=$!
  until grep -q listening "$work/$rate/out" 2>/dev/null; do sleep 0.1; done
  target/release/simulator --port "$MQTT" --total "$total" --rate "$rate" \
    --connections $(((rate + 49) / 50)) --prefix "LAT$rate-" >/dev/null 2>&1
  wait $listener
  kill $SERVER; wait $SERVER 2>/dev/null || true
  line=$(tail -1 "$work/$rate/out")
  # "delay over N readings: p50 A ms, p99 B ms, max C ms"
  read -r p50 p99 max < <(sed -E 's/.*p50 ([0-9]+) ms, p99 ([0-9]+) ms, max ([0-9]+) ms/\1 \2 \3/' <<<"$line")
  echo "| $rate msg/s ($(sed -E 's/delay over ([0-9]+) readings.*/\1/' <<<"$line") readings) | $p50 ms | $p99 ms | $max ms |"
done
