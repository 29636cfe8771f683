#!/usr/bin/env bash
# Runs the dashboard (server with its embedded broker) and three simulated devices, until Ctrl-C.
#   scripts/run.sh [target/release]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/release}"
WEB="${IOT_WEB_LISTEN:-127.0.0.1:3000}"
MQTT="${IOT_MQTT_LISTEN:-127.0.0.1:1883}"

"$BIN/server" &
SERVER=$!
trap 'kill $SERVER ${SIM:-} 2>/dev/null; wait' EXIT INT TERM

# The server binds every listener before it serves, so an open web port means ready.
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/${WEB%:*}/${WEB##*:}") 2>/dev/null && break
  kill -0 $SERVER 2>/dev/null || { echo "the server did not start (see above)" >&2; exit 1; }
  sleep 0.2
done
"$BIN/simulator" --host "${MQTT%:*}" --port "${MQTT##*:}" &
SIM=$!
echo
echo "  Dashboard: http://$WEB   (MQTT on $MQTT; Ctrl-C stops)"
echo
wait $SERVER
