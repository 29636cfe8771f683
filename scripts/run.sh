#!/usr/bin/env bash
# Runs the dashboard (server with its embedded broker) and three simulated devices, until Ctrl-C.
#   scripts/run.sh [target/release]
#
# The simulated devices get keys of their own before they connect (kept in data/, beside the
# database), so they keep publishing when someone sets up sign-in: a real device does the same
# with `server device key <id>`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/release}"
WEB="${IOT_WEB_LISTEN:-127.0.0.1:3000}"
MQTT="${IOT_MQTT_LISTEN:-127.0.0.1:1883}"
DATA="$(dirname "${IOT_STORAGE_PATH:-data/telemetry.redb}")"
KEYS="$DATA/simulator-keys.txt"
DEVICES=(ESP32_SIM_01 ESP32_SIM_02 ESP32_SIM_03)

# Keys are shown once, so they are kept; made again only when one is missing from the server.
mkdir -p "$DATA"
have=$("$BIN/server" device keys)
for id in "${DEVICES[@]}"; do
  if ! grep -qx "$id" <<<"$have" || ! grep -q "^$id " "$KEYS" 2>/dev/null; then
    echo "giving the simulated devices keys of their own ($KEYS)"
    (umask 077 && for d in "${DEVICES[@]}"; do echo "$d $("$BIN/server" device key "$d")"; done >"$KEYS")
    break
  fi
done

OUT="$(mktemp)"
"$BIN/server" >"$OUT" &
SERVER=$!
trap 'kill $SERVER ${SIM:-} 2>/dev/null; wait; rm -f "$OUT"' EXIT INT TERM

# The server binds every listener and prints them (and, while no user exists, its one-time
# setup link) before it serves, so an open web port means ready.
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/${WEB%:*}/${WEB##*:}") 2>/dev/null && break
  kill -0 $SERVER 2>/dev/null || { echo "the server did not start (see above)" >&2; exit 1; }
  sleep 0.2
done
"$BIN/simulator" --host "${MQTT%:*}" --port "${MQTT##*:}" --keys "$KEYS" &
SIM=$!
echo
echo "  Dashboard: http://$WEB   (MQTT on $MQTT; Ctrl-C stops)"
setup=$(sed -n 's/^setup //p' "$OUT")
if [ -n "$setup" ]; then
  echo "  Open to anyone who can reach it until you set up sign-in:"
  echo "  $setup"
fi
echo
wait $SERVER
