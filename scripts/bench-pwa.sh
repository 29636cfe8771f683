#!/usr/bin/env bash
# PWA figures (offline cold reload, reconnect bytes, precache size) against the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s release
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
web=$(free_port); mqtt=$(free_port); data=$(mktemp -d)
IOT_DEVICE_MESSAGES_PER_SEC=0 IOT_WEB_LISTEN=127.0.0.1:$web IOT_MQTT_LISTEN=127.0.0.1:$mqtt IOT_STORAGE_PATH="$data/b.redb" RUST_LOG=warn \
  target/release/server >/dev/null &
server=$!
trap 'kill $server; rm -rf "$data"' EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$web") 2>/dev/null; do sleep 0.1; done
cd end2end
BASE_URL="http://127.0.0.1:$web" MQTT_PORT=$mqtt SITE_DIR="$PWD/../target/site" node bench/pwa.mjs
