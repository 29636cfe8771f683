#!/usr/bin/env bash
# Everything `make test` runs: the build, lint, dependency rules, Rust unit and integration
# tests (real broker, real redb, real Mosquitto, real PostgreSQL), then Playwright in Debian's
# Chromium against the real server.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
source scripts/lib.sh

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "build (server, WASM, site: icons, service worker)"
export PATH="$PWD/tools/node_modules/.bin:$PATH"
scripts/build.sh
scripts/site.sh

step "lint (rustfmt, the icons file, import circles, clippy with warnings as errors: make lint)"
make --no-print-directory lint

step "dependencies: licenses, bans, sources (cargo deny, deny.toml)"
cargo deny check bans licenses sources

step "Rust tests"
cargo_same test --workspace
# The end2end demo spec runs scripts/run.sh, which starts the simulator too.
cargo_same build -p simulator

step "cluster: 1,000 msg/s for 60 s into three nodes on PostgreSQL, one killed -9 (issue 18)"
# Every acknowledged reading stored once, every surviving node's live client got each once.
AUDIT_ONLY=1 scripts/bench-cluster.sh target/debug

step "end2end (Playwright, Chromium)"
E2E_DATA="$(mktemp -d)"
trap 'rm -rf "$E2E_DATA"' EXIT
# Assigned before the export, so a failure stops the script instead of exporting nothing.
E2E_WEB_PORT="$(free_port)"
E2E_MQTT_PORT="$(free_port)"
export E2E_WEB_PORT E2E_MQTT_PORT E2E_DATA
(cd end2end && npx playwright test)
