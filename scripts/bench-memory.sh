#!/usr/bin/env bash
# Memory figure: the server's resident memory with DEVICES simulated devices (each its own
# MQTT connection) reporting every second, at the start and after MINUTES minutes. The server
# seals its head every storage.seal_interval_secs (60): for a few seconds each time it holds
# more, so the last minute is sampled every second and its median is the figure, its highest
# the peak while sealing (a single sample at MINUTES * 60 s fell on a seal or not by chance).
# The thread count is read at the end: every idle blocking-pool thread keeps an allocator cache.
#   scripts/bench-memory.sh            DEVICES=1000 MINUTES=10 by default
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=${DEVICES:-1000}
MINUTES=${MINUTES:-10}
source scripts/lib.sh
cargo_same build --release -q -p server -p simulator
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
rss() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status"; }

start_server target/release "$work"
start=$(rss)
target/release/simulator --port "$MQTT" --devices "$DEVICES" --interval 1 >/dev/null 2>&1 &
sleep $((MINUTES * 60 - 60))
samples=$(for _ in $(seq 60); do rss; echo; sleep 1; done | sort -n)
median=$(sed -n 30p <<<"$samples")
peak=$(tail -1 <<<"$samples")
threads=$(ls "/proc/$SERVER/task" | wc -l)
stored=$(curl -fsS "http://127.0.0.1:$WEB/metrics" | awk '/^iot_messages_stored_total /{print $2}')
echo "| memory, $DEVICES devices at 1 Hz | server RSS |"
echo "|---|---|"
echo "| at start | $start MB |"
echo "| after $MINUTES min ($stored messages stored), median of the last minute | $median MB |"
echo "| highest in the last minute (while sealing) | $peak MB |"
echo "| server threads at the end (tokio workers and blocking pool, jemalloc, timers) | $threads |"
echo "| database file | $(du -m "$work/b.redb" | cut -f1) MB |"
