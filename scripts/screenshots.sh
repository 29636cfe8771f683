#!/usr/bin/env bash
# The README's screenshots (make screenshots, after a debug build): the screenshot spec against
# the real server in Chromium, then palette PNGs of them in docs/screenshots/, each under 150 KB.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH:/usr/sbin"
source scripts/lib.sh

# Playwright starts the shared test server too (its config); the spec starts one of its own.
E2E_DATA="$(mktemp -d)"
trap 'rm -rf "$E2E_DATA"' EXIT
E2E_WEB_PORT="$(free_port)"
E2E_MQTT_PORT="$(free_port)"
export E2E_WEB_PORT E2E_MQTT_PORT E2E_DATA
(cd end2end && npx playwright test tests/screenshots.hydrate.spec.ts --project hydrated)
node end2end/shrink-screenshots.mjs
