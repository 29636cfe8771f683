#!/usr/bin/env bash
# PostgreSQL ingest (issue 18): readings per second through the PostgreSQL store's ingest
# (binary COPY straight into the readings, or into a staging table merged skipping
# duplicates; change log, rollup queue, devices; one committed transaction per 4,096
# readings) against PostgreSQL's own COPY of the same
# readings, on a throwaway PostgreSQL (scripts/pg.sh) with its default settings but for the
# shared buffers. READINGS (1,000,000) sets the count. Then history: POINTS (1,000,000)
# readings of one series in 1,000 buckets on PostgreSQL against redb, and bytes per reading.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/pg.sh
cargo_same build --release -q -p bench
pg_start_for_bench
target/release/bench pg-ingest "$PG_URL" "${READINGS:-1000000}"
echo
# History, on the server's default database (pg-ingest makes databases of its own).
target/release/bench pg-history "$PG_URL" "${POINTS:-1000000}"
