#!/usr/bin/env bash
# Ingest figure: readings durably stored per second through the embedded broker (simulator
# burst at QoS 1; each PUBACK waits for the commit), side by side with the same burst through
# Mosquitto alone to one QoS 1 mosquitto_sub, and through Mosquitto into the server in
# external-broker mode (until every message is stored). Median of RUNS runs.
#   scripts/bench-ingest.sh            TOTAL=100000 CONNECTIONS=200 RUNS=3 by default
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
TOTAL=${TOTAL:-100000}
CONNECTIONS=${CONNECTIONS:-200}
RUNS=${RUNS:-3}
BIN=target/release

source scripts/lib.sh
cargo_same build --release -q -p server -p simulator
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

embedded=()
mosq=()
external=()
stored() { curl -fsS "http://127.0.0.1:$1/metrics" | awk '/^iot_messages_stored_total /{print $2}'; }
for run in $(seq 1 "$RUNS"); do
  # The dashboard with its embedded broker, on a fresh database.
  mkdir -p "$work/run$run"
  start_server "$BIN" "$work/run$run"
  line=$("$BIN/simulator" --port "$MQTT" --total "$TOTAL" --connections "$CONNECTIONS" 2>/dev/null)
  stored=$(curl -fsS "http://127.0.0.1:$WEB/metrics" | awk '/^iot_messages_stored_total /{print $2}')
  kill $SERVER; wait $SERVER 2>/dev/null || true
  [ "$stored" = "$TOTAL" ] || { echo "run $run: stored $stored of $TOTAL" >&2; exit 1; }
  rate=$(sed -E 's/.* = ([0-9]+) msg\/s/\1/' <<<"$line")
  embedded+=("$rate")
  echo "run $run  embedded broker + redb:  $line  (stored: $stored)"

  # Mosquitto alone, forwarding to one QoS 1 subscriber.
  port=$(free_port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n' "$port" >"$work/m.conf"
  mosquitto -c "$work/m.conf" >/dev/null 2>&1 &
  broker=$!
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.1; done
  mosquitto_sub -p "$port" -q 1 -t 'app/device/+/telemetry' -C "$TOTAL" -i bench-sub >/dev/null &
  sub=$!
  sleep 0.5
  start=$(date +%s.%N)
  "$BIN/simulator" --port "$port" --total "$TOTAL" --connections "$CONNECTIONS" >/dev/null 2>&1
  wait $sub
  end=$(date +%s.%N)
  kill $broker; wait $broker 2>/dev/null || true
  rate=$(awk -v n="$TOTAL" -v a="$start" -v b="$end" 'BEGIN {printf "%.0f", n / (b - a)}')
  mosq+=("$rate")
  echo "run $run  mosquitto -> mosquitto_sub:  $TOTAL messages delivered at $rate msg/s"

  # Mosquitto, with the server subscribed to it (persistent QoS 1 session, ack after commit).
  mosquitto -c "$work/m.conf" >/dev/null 2>&1 &
  broker=$!
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.1; done
  web=$(free_port)
  mkdir -p "$work/ext$run"
  IOT_DEVICE_MESSAGES_PER_SEC=0 IOT_MQTT_MODE=external IOT_MQTT_HOST=127.0.0.1 IOT_MQTT_PORT="$port" \
    IOT_WEB_LISTEN="127.0.0.1:$web" IOT_MQTT_LISTEN="127.0.0.1:$(free_port)" \
    IOT_STORAGE_PATH="$work/ext$run/b.redb" RUST_LOG=warn "$BIN/server" >/dev/null &
  server=$!
  wait_listening "$web" "$server"
  until curl -fsS "http://127.0.0.1:$web/healthz" | grep -q '"mqtt":"up"'; do sleep 0.1; done
  start=$(date +%s.%N)
  "$BIN/simulator" --port "$port" --total "$TOTAL" --connections "$CONNECTIONS" --prefix EXT >/dev/null 2>&1
  until [ "$(stored "$web")" = "$TOTAL" ]; do sleep 0.02; done
  end=$(date +%s.%N)
  kill $server $broker; wait $server $broker 2>/dev/null || true
  rate=$(awk -v n="$TOTAL" -v a="$start" -v b="$end" 'BEGIN {printf "%.0f", n / (b - a)}')
  external+=("$rate")
  echo "run $run  mosquitto -> server (external mode):  $TOTAL messages stored at $rate msg/s"
done

e=$(printf '%s\n' "${embedded[@]}" | median)
m=$(printf '%s\n' "${mosq[@]}" | median)
x=$(printf '%s\n' "${external[@]}" | median)
echo
echo "| path (QoS 1, $CONNECTIONS publishers, $TOTAL messages x 3 readings) | median msg/s | readings/s |"
echo "|---|---|---|"
echo "| embedded broker, PUBACK after durable commit | $e | $((e * 3)) |"
echo "| Mosquitto alone to one QoS 1 mosquitto_sub | $m | $((m * 3)) |"
echo "| Mosquitto, server subscribed (external mode), until all stored | $x | $((x * 3)) |"
awk -v e="$e" -v m="$m" 'BEGIN {printf "ratio embedded / mosquitto: %.2f\n", e / m}'
