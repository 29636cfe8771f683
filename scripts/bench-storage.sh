#!/usr/bin/env bash
# Storage figures: history queries against SQLite on the same million readings, and bytes on
# disk per reading after ten million (bench/src).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
cargo_same build --release -q -p bench
target/release/bench history
echo
target/release/bench storage
