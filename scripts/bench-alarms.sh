#!/usr/bin/env bash
# Alarm figures (bench/src/alarms.rs), into the release build with its embedded broker:
# - ingest (simulator burst, QoS 1, PUBACK after the durable commit) from 1,000 devices with 50
#   rules over every device, none firing, against the same burst without rules; 20 and 200
#   connections, each run on a fresh database, the two alternating (so both see the same load
#   from whatever else the machine runs), median of RUNS, with the load average before each run;
# - the alarm engine alone on the same messages and rules (bench alarm-engine): its time per
#   message, against which the ingest ratio can be read on a busy machine;
# - reading → alarm fired → webhook received at RATE msg/s for SECS (one reading in 20 breaches);
# - a backtest of one rule over 7 days of one reading a second.
#   scripts/bench-alarms.sh            TOTAL=100000 RUNS=3 RATE=1000 SECS=10 by default
set -euo pipefail
cd "$(dirname "$0")/.."
TOTAL=${TOTAL:-100000}
RUNS=${RUNS:-3}
RATE=${RATE:-1000}
SECS=${SECS:-10}
DEVICES=1000
source scripts/lib.sh
cargo_same build --release -q -p server -p simulator -p bench
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
post() { curl -fsS -X POST "http://127.0.0.1:$WEB$1" -H 'content-type: application/json' -d "$2"; }
rule() { post /api/alarm_rules "$1" >/dev/null; }

# 50 rules over every device that hold (what watching a healthy fleet costs): thresholds on
# each metric the simulator sends, a band, no data and offline.
fifty_rules() {
  for i in $(seq 1 20); do
    rule "{\"name\": \"hot $i\", \"kind\": \"threshold\", \"metric\": \"temperature\", \"op\": \">\",
      \"levels\": [{\"severity\": \"major\", \"value\": $((60 + i))}], \"for_secs\": 30}"
  done
  for i in $(seq 1 10); do
    rule "{\"name\": \"humidity $i\", \"kind\": \"threshold\", \"metric\": \"humidity\", \"op\": \"outside\",
      \"levels\": [{\"severity\": \"minor\", \"value\": 0, \"high\": $((100 + i))}]}"
  done
  for i in $(seq 1 10); do
    rule "{\"name\": \"battery $i\", \"kind\": \"threshold\", \"metric\": \"battery\", \"op\": \"<\",
      \"levels\": [{\"severity\": \"warning\", \"value\": 2.$i}], \"clear_for_secs\": 60}"
  done
  for i in $(seq 1 5); do
    rule "{\"name\": \"quiet $i\", \"kind\": \"no_data\", \"metric\": \"temperature\", \"after_secs\": $((600 + i))}"
    rule "{\"name\": \"offline $i\", \"kind\": \"offline\", \"after_secs\": $((600 + i))}"
  done
}

# ingest CONNECTIONS plain|rules RUN: the burst's acknowledged msg/s.
ingest() {
  local dir="$work/ingest-$1-$2-$3" line stored
  mkdir -p "$dir"
  start_server target/release "$dir"
  # The web port answers first: without this a burst may find the broker not yet listening.
  wait_listening "$MQTT" "$SERVER"
  if [ "$2" = rules ]; then fifty_rules; fi
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  line=$(target/release/simulator --port "$MQTT" --total "$TOTAL" --connections "$1" \
    --burst-devices "$DEVICES" --prefix DEV 2>"$dir/simulator.err") || true
  stored=$(curl -fsS "http://127.0.0.1:$WEB/metrics" | awk '/^iot_messages_stored_total /{print $2}')
  kill $SERVER; wait $SERVER 2>/dev/null || true
  [ "$stored" = "$TOTAL" ] || { echo "stored $stored of $TOTAL" >&2; tail -3 "$dir/simulator.err" >&2; exit 1; }
  echo "run $3  $2, $1 connections (load $load):  $line" >&2
  sed -E 's/.* = ([0-9]+) msg\/s/\1/' <<<"$line"
}

declare -A rates
for connections in 20 200; do
  plain=()
  rules=()
  for run in $(seq 1 "$RUNS"); do
    plain+=("$(ingest "$connections" plain "$run")")
    rules+=("$(ingest "$connections" rules "$run")")
  done
  rates[plain-$connections]=$(printf '%s\n' "${plain[@]}" | median)
  rates[rules-$connections]=$(printf '%s\n' "${rules[@]}" | median)
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "| ingest from $DEVICES devices, $TOTAL messages × 3 readings (QoS 1, embedded broker, median of $RUNS) | 20 connections | 200 connections |"
echo "|---|---|---|"
echo "| no alarm rules | ${rates[plain-20]} msg/s | ${rates[plain-200]} msg/s |"
echo "| 50 rules over every device (thresholds, a band, no data, offline; none firing) | ${rates[rules-20]} msg/s | ${rates[rules-200]} msg/s |"
echo "| with rules / without | $(ratio "${rates[rules-20]}" "${rates[plain-20]}") | $(ratio "${rates[rules-200]}" "${rates[plain-200]}") |"
echo
target/release/bench alarm-engine "$TOTAL"
echo

# Reading → alarm fired → webhook: every breach a new alarm (no flap guard), no rate limit.
mkdir -p "$work/latency"
IOT_NOTIFY_RATE_PER_10MIN=1000000 start_server target/release "$work/latency"
hook=$(free_port)
channel=$(post /api/notification_channels \
  "{\"kind\": \"webhook\", \"name\": \"bench\", \"url\": \"http://127.0.0.1:$hook/hook\"}" |
  sed -E 's/.*"id":"([^"]+)".*/\1/')
rule "{\"name\": \"trip\", \"kind\": \"threshold\", \"metric\": \"t\", \"op\": \">\",
  \"levels\": [{\"severity\": \"critical\", \"value\": 1000}], \"flap_window_secs\": 0, \"channels\": [\"$channel\"]}"
line=$(target/release/bench alarm-latency "127.0.0.1:$MQTT" "$hook" "$RATE" "$SECS")
kill $SERVER; wait $SERVER 2>/dev/null || true
# "alarm.fired webhooks for N breaching readings: p50 A ms, p99 B ms, max C ms"
read -r n p50 p99 max < <(sed -E 's/.*for ([0-9]+) breaching.*p50 ([0-9.]+) ms, p99 ([0-9.]+) ms, max ([0-9.]+) ms/\1 \2 \3 \4/' <<<"$line")
echo "| reading → alarm fired → webhook received (QoS 1, ${SECS} s, embedded broker, one reading in 20 breaching) | p50 | p99 | max |"
echo "|---|---|---|---|"
echo "| $RATE msg/s ($n alarms fired) | $p50 ms | $p99 ms | $max ms |"
echo

target/release/bench backtest
