#!/usr/bin/env bash
# Sign-in storm figure: a device's PUBACK round trips (QoS 1, 20/s, one at a time) on a quiet
# server, then while 64 clients send wrong passwords from addresses of their own (the server
# trusts 127.0.0.1 as a proxy, so no throttle stops the Argon2 work), into the release build.
#   scripts/bench-login-storm.sh            SECS=10 by default
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-10}
source scripts/lib.sh
cargo_same build --release -q -p server -p bench
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
# A user exists, so sign-in is required: every wrong password is checked, and the device signs
# in with its key.
IOT_STORAGE_PATH="$work/b.redb" IOT_PASSWORD="the admin password" target/release/server user add ann >/dev/null
key=$(IOT_STORAGE_PATH="$work/b.redb" target/release/server device key STORM_1)
IOT_TRUSTED_PROXIES=127.0.0.1 start_server target/release "$work"
target/release/bench login-storm "127.0.0.1:$WEB" "127.0.0.1:$MQTT" "$SECS" "$key"
