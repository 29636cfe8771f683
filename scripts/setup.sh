#!/usr/bin/env bash
# Installs what the dashboard needs to build, run and test, skipping whatever is present.
#   scripts/setup.sh build    Rust wasm target, wasm-bindgen-cli, rsvg-convert, and the build's
#                             npm tools (wasm-opt, lightningcss, terser, Workbox, uPlot)
#   scripts/setup.sh run      the same
#   scripts/setup.sh test     build + Chromium, Mosquitto, PostgreSQL, an SMTP server (aiosmtpd),
#                             the end2end npm packages, cargo-deny
#   scripts/setup.sh cluster  build + Mosquitto, PostgreSQL and haproxy (make cluster)
#   scripts/setup.sh dev      build + cargo-leptos (make dev's watch-and-reload; about 15 minutes
#                             to compile, once, so only make dev installs it)
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130
CARGO_LEPTOS_VERSION=0.3.11
CARGO_DENY_VERSION=0.20.2
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup: need root to run: $*" >&2; exit 1
  fi
}

# Installed, not merely known to dpkg (a removed package keeps its configuration).
installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

APT_UPDATED=
apt_install() {
  local missing=()
  for pkg in "$@"; do installed "$pkg" || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return
  say "installing ${missing[*]} (apt)"
  if [ -z "$APT_UPDATED" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

rust_tools() {
  # rustup brings no linker, and some crates compile C (ring, aws-lc-sys, and jemalloc, whose
  # build runs configure and make).
  apt_install gcc libc6-dev make
  if ! grep -qx wasm32-unknown-unknown <<<"$(rustup target list --installed)"; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  # make lint (which make test runs) needs rustfmt and clippy; rustup's minimal profile has neither.
  local missing=() have
  have=$(rustup component list --installed)
  for component in rustfmt clippy; do
    grep -q "^$component" <<<"$have" || missing+=("$component")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "adding ${missing[*]} (rustup)"
    rustup component add "${missing[@]}"
  fi
  if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
    say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
}

leptos_tool() {
  if [ "$(cargo leptos --version 2>/dev/null)" != "cargo-leptos $CARGO_LEPTOS_VERSION" ]; then
    say "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 15 minutes, once)"
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --ignore-rust-version
  fi
}

node_tools() {
  if ! command -v npm >/dev/null; then apt_install nodejs npm; fi
  # Playwright and Workbox need Node.js 20 or newer (Debian 13 has it; Debian 12 has 18).
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    echo "setup: Node.js $(node --version) is too old: install Node.js 20 or newer (e.g. from nodejs.org) and run again" >&2
    exit 1
  fi
}

# npm_ci DIR: installs DIR's npm packages when missing or older than its lockfile.
npm_ci() {
  if [ ! -f "$1/node_modules/.package-lock.json" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
    say "installing the npm packages of $1/"
    (cd "$1" && npm ci --silent --no-audit --no-fund)
  fi
}

build_tools() {
  # tzdata: the time-zone rules local-day charts and CSV exports use (the server reads
  # /usr/share/zoneinfo, which Debian's updates keep current; a built-in copy stands in
  # where it is missing).
  apt_install librsvg2-bin curl tzdata
  node_tools
  # The build's npm tools: binaryen's wasm-opt, lightningcss, terser, workbox-build, uPlot.
  npm_ci tools
}

test_tools() {
  local had_mosquitto=yes had_postgresql=yes had_haproxy=yes
  installed mosquitto || had_mosquitto=
  installed postgresql || had_postgresql=
  installed haproxy || had_haproxy=
  # util-linux: prlimit, for the disk-full test (present on Debian; listed so it is certain).
  # python3-aiosmtpd: the real SMTP server (STARTTLS) the mail notification test sends to.
  # postgresql: the PostgreSQL store's tests and scripts/bench-pg.sh start their own server
  # (initdb into a temporary folder, as the postgres user the package makes).
  # haproxy: the load balancer in front of make cluster's nodes, and the cluster tests'.
  apt_install chromium mosquitto mosquitto-clients util-linux python3-aiosmtpd postgresql haproxy
  # Debian starts a Mosquitto service on port 1883, which the dashboard's own broker needs;
  # the tests start their own Mosquitto. Only a service this script brought is stopped.
  if [ -z "$had_mosquitto" ] && command -v systemctl >/dev/null && systemctl is-enabled --quiet mosquitto 2>/dev/null; then
    say "disabling the mosquitto service Debian started (port 1883 is the dashboard's)"
    as_root systemctl disable --now mosquitto || true
  fi
  # Nor is the PostgreSQL service Debian starts needed (the tests start their own); only one
  # this script brought is stopped.
  if [ -z "$had_postgresql" ] && command -v systemctl >/dev/null && systemctl is-enabled --quiet postgresql 2>/dev/null; then
    say "disabling the postgresql service Debian started (the tests start their own)"
    as_root systemctl disable --now postgresql || true
  fi
  # Nor Debian's haproxy service (make cluster starts its own on port 3000).
  if [ -z "$had_haproxy" ] && command -v systemctl >/dev/null && systemctl is-enabled --quiet haproxy 2>/dev/null; then
    say "disabling the haproxy service Debian started (make cluster starts its own)"
    as_root systemctl disable --now haproxy || true
  fi
  node_tools
  npm_ci end2end
}

deny_tool() {
  if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
    say "installing cargo-deny $CARGO_DENY_VERSION (about 3 minutes, once)"
    cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked
  fi
}

case "${1:-build}" in
  build | run) build_tools; rust_tools ;;
  test) test_tools; build_tools; rust_tools; deny_tool ;;
  # The cluster's parts are the test tools' (the tests start the same ones).
  cluster) test_tools; build_tools; rust_tools ;;
  dev) build_tools; rust_tools; leptos_tool ;;
  *) echo "usage: $0 build|run|test|cluster|dev" >&2; exit 2 ;;
esac
