#!/usr/bin/env bash
# Cluster (issue 18): three nodes on PostgreSQL taking devices' messages from Mosquitto through
# one shared subscription, behind haproxy (scripts/cluster.sh starts them, each restarted 1 s
# after it dies). Three figures, in one run:
# - acceptance: RATE (1000) msg/s from 50 devices, each message numbered per device, for SECS
#   (60) s, the node under the load balancer's /ws/live client killed -9 at KILL_AT (20) s; every
#   acknowledged message stored once in PostgreSQL, every surviving node's /ws/live client got
#   every reading once and in order, the moved client resumed by /api/changes (bench cluster);
# - failover: from the kill -9 to the moved client's first live reading (same run);
# - throughput: a burst of TOTAL (100000) messages (3 readings each, 100 connections) through
#   Mosquitto into the three nodes until PostgreSQL holds them, against PostgreSQL's own COPY
#   on the same server (bench pg-ingest, COPY_READINGS readings) and the same burst into one
#   node with its embedded broker and redb.
#   scripts/bench-cluster.sh [target/release|target/debug]
# AUDIT_ONLY=1 runs the first part alone and exits non-zero if it found a reading missing or
# twice: `make test` runs it so on the debug build (scripts/test.sh).
# The nodes run without the per-device rate limit (as the other benchmarks do).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/pg.sh
BIN="${1:-target/release}"
RATE=${RATE:-1000}
SECS=${SECS:-60}
KILL_AT=${KILL_AT:-20}
TOTAL=${TOTAL:-100000}
COPY_READINGS=${COPY_READINGS:-300000}
# NO_BUILD=1 takes the binaries as they are (when others are building in the same tree).
if [ -n "${NO_BUILD:-}" ]; then
  :
elif [ "$BIN" = target/release ]; then
  cargo_same build --release -q -p server -p simulator -p bench
else
  cargo_same build -q -p server -p simulator -p bench
fi

work=$(mktemp -d)
cluster=
SERVER=
stop() {
  [ -n "$cluster" ] && { kill "$cluster" 2>/dev/null || true; wait "$cluster" 2>/dev/null || true; }
  [ -n "$SERVER" ] && { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
  rm -rf "$work"
}
trap stop EXIT
web=127.0.0.1:$(free_port)
mqtt=127.0.0.1:$(free_port)
# Three consecutive ports for the nodes (cluster.sh refuses taken ones).
first=$((20000 + RANDOM % 20000))
export IOT_DEVICE_MESSAGES_PER_SEC=0 RUST_LOG=warn
CLUSTER_WEB=$web CLUSTER_MQTT=$mqtt CLUSTER_NODE_PORT=$first CLUSTER_DEVICES=0 \
  scripts/cluster.sh "$BIN" >"$work/cluster.out" 2>&1 &
cluster=$!
until grep -q 'Logs:' "$work/cluster.out"; do
  kill -0 "$cluster" 2>/dev/null || { cat "$work/cluster.out" >&2; exit 1; }
  sleep 0.5
done
dir=$(awk '/Logs:/ {print $2}' "$work/cluster.out")
pg=$(awk '/PostgreSQL:/ {print $2}' "$work/cluster.out")
nodes="127.0.0.1:$first,127.0.0.1:$((first + 1)),127.0.0.1:$((first + 2))"

echo "Three nodes ($BIN, per-device rate limit off) on PostgreSQL $("$(pg_bin)/postgres" --version | awk '{print $3}') (default settings), Mosquitto $(mosquitto -h 2>/dev/null | awk 'NR==1 {print $3}') (persistence on), haproxy $(haproxy -v | awk 'NR==1 {print $3}'), all on this machine ($(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg) at the start)."
echo
echo "### $RATE msg/s for $SECS s, one node killed -9 at $KILL_AT s"
echo
"$BIN/bench" cluster "$mqtt" "$web" "$nodes" "$dir" "$pg" "$RATE" "$SECS" "$KILL_AT" | sed 's/^/- /'
audit=${PIPESTATUS[0]}
echo
[ -n "${AUDIT_ONLY:-}" ] && exit "$audit"

# Throughput: a burst until every message is stored, by the nodes' own counters.
stored() {
  local sum=0 i n
  for i in 0 1 2; do
    n=$(curl -fsS "http://127.0.0.1:$((first + i))/metrics" | awk '/^iot_messages_stored_total /{print $2}')
    sum=$((sum + ${n:-0}))
  done
  echo "$sum"
}
burst() { # BIN HOST PORT: the simulator's burst line
  "$1/simulator" --host "$2" --port "$3" --total "$TOTAL" --connections 100 --prefix "burst-$RANDOM-" 2>/dev/null
}
before=$(stored)
start=$(date +%s.%N)
line=$(burst "$BIN" "${mqtt%:*}" "${mqtt##*:}")
until [ "$(stored)" -ge $((before + TOTAL)) ]; do
  sleep 0.1
  [ "$(echo "$(date +%s.%N) - $start > 120" | bc)" = 1 ] && { echo "not all stored within 120 s" >&2; break; }
done
took=$(echo "$(date +%s.%N) - $start" | bc)
cluster_rate=$(echo "$TOTAL / $took" | bc)
echo "### Throughput: $TOTAL messages × 3 readings, 100 connections"
echo
echo "- simulator into Mosquitto: $line"
echo "- three nodes: $((TOTAL)) messages stored in PostgreSQL in $(printf %.2f "$took") s = $cluster_rate msg/s, $((cluster_rate * 3)) readings/s"

"$BIN/bench" pg-ingest "$pg" "$COPY_READINGS" >"$work/copy.out"
copy=$(grep -m1 'COPY, BRIN only' "$work/copy.out")
copy_rate=$(awk -F'|' '{gsub(/ /, "", $4); print $4}' <<<"$copy")
echo "- PostgreSQL's own COPY of $COPY_READINGS such readings (bench pg-ingest, same server): $copy_rate readings/s; the three nodes reach $(echo "scale=3; $cluster_rate * 3 / $copy_rate" | bc) of it"
kill "$cluster"; wait "$cluster" 2>/dev/null || true
cluster=

mkdir -p "$work/redb"
start_server "$BIN" "$work/redb"
redb=$(burst "$BIN" 127.0.0.1 "$MQTT")
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
SERVER=
redb_rate=$(sed -E 's/.* = ([0-9]+) msg\/s/\1/' <<<"$redb")
echo "- one node, embedded broker + redb, same burst: $redb_rate msg/s (each acknowledged after its commit); the three nodes reach $(echo "scale=3; $cluster_rate / $redb_rate" | bc) of it"
exit "$audit"
