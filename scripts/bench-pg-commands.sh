#!/usr/bin/env bash
# Commands on the PostgreSQL store (issue 18) against the redb store: made in bulk slices,
# moved one call each (as the writer stores a lone PUBACK), moved by 4 nodes at once, and
# answered by 2 nodes racing on every command; on a throwaway PostgreSQL (scripts/pg.sh) with
# its default settings but for the shared buffers. COMMANDS (10,000) sets the count.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/pg.sh
cargo_same build --release -q -p bench
pg_start_for_bench "redb in a file on the same disk"
target/release/bench pg-commands "$PG_URL" "${COMMANDS:-10000}"
