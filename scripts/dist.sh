#!/usr/bin/env bash
# `make dist`: one tarball of the release (server binary, simulator, web client, default
# configuration, a systemd unit and a start script) that runs on another Debian machine with no
# toolchain, then proves it: unpacked into an empty folder and started there, it answers a page,
# takes a reading over MQTT and stops cleanly.
#   scripts/dist.sh            after make release; writes target/dist/iot-dashboard-<version>-<arch>.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
version=$(sed -n 's/^version = "\(.*\)"/\1/p' server/Cargo.toml | head -1)
name="iot-dashboard-$version-$(uname -m)"
stage=$(mktemp -d)
check=$(mktemp -d)
trap 'kill ${SERVER:-} 2>/dev/null || true; rm -rf "$stage" "$check"' EXIT

build_installed_server
root="$stage/$name"
mkdir -p "$root/bin"
cp target/release-lto/server target/release/simulator "$root/bin/"
strip "$root/bin/server" "$root/bin/simulator"
cp -r target/site "$root/site"
cp dist/dashboard.toml dist/iot-dashboard.service dist/start.sh "$root/"
cp README.md "$root/README.md"
mkdir -p target/dist
tar -C "$stage" -czf "target/dist/$name.tar.gz" "$name"
echo "target/dist/$name.tar.gz: $(du -h "target/dist/$name.tar.gz" | cut -f1)"

# The check: an empty folder, the tarball, and nothing else of this checkout.
tar -C "$check" -xzf "target/dist/$name.tar.gz"
WEB=$(free_port)
MQTT=$(free_port)
# exec: the server is this very process, so the TERM below reaches it (not a subshell that
# would die and leave the server running).
(cd "$check/$name" && IOT_WEB_LISTEN="127.0.0.1:$WEB" IOT_MQTT_LISTEN="127.0.0.1:$MQTT" PATH=/usr/bin:/bin exec \
  ./start.sh >"$check/out" 2>"$check/log") &
SERVER=$!
wait_listening "$WEB" "$SERVER"
page=$(curl -fsS "http://127.0.0.1:$WEB/")
grep -q '/pkg/iot-dashboard' <<<"$page" || { echo "dist: the page does not load the web client" >&2; exit 1; }
# The WASM by its hashed name (tools/hash-assets.mjs), as the page links it.
wasm=$(grep -o '/pkg/iot-dashboard\.[0-9a-f]\{16\}\.wasm' <<<"$page" | head -1)
[ -n "$wasm" ] || { echo "dist: the page links no hashed WASM" >&2; exit 1; }
curl -fsS -o /dev/null "http://127.0.0.1:$WEB$wasm"
grep -q '^setup http://' "$check/out" || { echo "dist: no setup link printed" >&2; exit 1; }
"$check/$name/bin/simulator" --port "$MQTT" --total 100 --connections 2 --prefix DIST- >/dev/null
curl -fsS "http://127.0.0.1:$WEB/api/device?id=DIST-001" | grep -q '"message_count"' \
  || { echo "dist: the reading was not stored" >&2; exit 1; }
kill -TERM "$SERVER"
wait "$SERVER"
SERVER=
test -s "$check/$name/data/telemetry.redb"
echo "dist: unpacked into an empty folder, it served the dashboard, stored readings and stopped cleanly"
