//! Version 8, history rollups and their queue ([`super::super::rollups`]) and how far
//! retention reached ([`super::super::retention`]):
//! - `rollup_minutes` and `rollup_hours`: per series and minute (hour) with readings, their
//!   min, max, sum, count and latest value with its time, kept up to date by roll-up passes.
//!   The primary key (series, start) is what a pass's upsert finds a period by and what a
//!   chart reads a series' range by. Rows are rewritten at every pass that adds to their
//!   period (an hour's row every few seconds), so pages are left 30 % free (`fillfactor = 70`): the new version of a row fits on the same
//!   page and, no indexed column changing, skips the indexes (a HOT update), which keeps the
//!   table and its indexes from bloating between vacuums. BRIN on `start` serves pruning
//!   (every series' periods before a horizon) at almost no cost, rows being made in about
//!   time order; it does not stop HOT updates (`start` never changes).
//! - `rollup_pending`: readings stored and not yet in the rollups (series, ts, value), the
//!   queue a roll-up pass empties (`Store::seal`'s turn, every few seconds), so it holds a
//!   few seconds of readings. Its key (series, ts) is what a chart reads a series' queued
//!   readings by (added to the rollups of their periods).
//! - `retention_horizons`: each level (readings, minute rollups, hour rollups) → the latest
//!   time it was pruned before (NULL: never). Reads leave out what lies before it (so a
//!   reading that arrives late for a pruned range is not shown, and a whole partition can
//!   wait for its drop), and charts starting there are widened to what is left. One row per
//!   level, made here, so pruning nodes lock them (`FOR UPDATE`) and take turns.

pub(super) const SQL: &str = "
CREATE TABLE rollup_minutes (
    series integer NOT NULL,
    start timestamptz NOT NULL,
    min double precision NOT NULL,
    max double precision NOT NULL,
    sum double precision NOT NULL,
    count bigint NOT NULL,
    last double precision NOT NULL,
    last_ts timestamptz NOT NULL,
    PRIMARY KEY (series, start)
) WITH (fillfactor = 70);
CREATE TABLE rollup_hours (LIKE rollup_minutes INCLUDING ALL) WITH (fillfactor = 70);
CREATE INDEX rollup_minutes_start ON rollup_minutes USING brin (start);
CREATE INDEX rollup_hours_start ON rollup_hours USING brin (start);
CREATE TABLE rollup_pending (
    series integer NOT NULL,
    ts timestamptz NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (series, ts)
);
CREATE TABLE retention_horizons (
    level text PRIMARY KEY,
    before timestamptz
);
INSERT INTO retention_horizons (level) VALUES ('readings'), ('minute_rollups'), ('hour_rollups');
";
