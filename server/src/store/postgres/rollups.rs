//! Rollups: per series, a summary (min, max, sum, count, last with its time) of every minute
//! and every hour with readings, so a chart over a long range reads a row per period instead
//! of every reading (a million readings at 1 Hz in 1,000 buckets: 16,667 minute rows).
//!
//! # Queued by ingest, folded in by a roll-up pass
//! Ingest copies the readings a batch stored into `rollup_pending` ([`commit_rollups`], in
//! its transaction, with binary COPY): only the rows the merge reports as new, so a
//! redelivery is never counted twice. [`PgStore::roll_up`] (what `Store::seal` calls, as the
//! redb store seals its head) takes the pending readings before a time out of the queue and
//! folds them into their minutes and hours, all in one statement and one transaction: each
//! reading is in the queue or in the rollups, never both, never neither, whatever crashes.
//! Reads add the queue's readings to the rollups of their periods, so answers never wait for
//! a pass.
//!
//! Why not fold them in at ingest: that was the first design (an upsert per level per
//! batch), and scripts/bench-pg.sh measured ingest at a third of its rate without it (each
//! batch of 4,096 readings from 1,000 devices rewrote about 8,000 rollup rows), and slower
//! still with four nodes, whose batches held the same hot rows locked until commit. A pass
//! every few seconds rewrites each period's row once per pass instead of once per batch, and
//! ingest only appends. Passes (and pruning) take turns under an advisory lock; ingest never
//! waits for them: a pass deletes only rows committed before it looked.
//!
//! # Read as the redb store reads them
//! A range is cut as `rollup::fold_range` cuts it: whole periods of the coarsest level whose
//! period divides the bucket width, the partial periods at either end from the next level
//! down, raw readings where no whole minute fits. Here the cuts are collected first
//! ([`Plan`]) and each level is then read in one query over all its ranges, so a chart of
//! 5,000 local days is three queries, not a few per bucket; each query sums its rows up per
//! bucket in the database (`GROUP BY` the bucket), so a million readings in 1,000 buckets
//! send 1,000 rows, not the 16,667 minutes they are read from.

use std::time::SystemTime;

use deadpool_postgres::Transaction;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use telemetry::Millis;
use telemetry::history::{Downsampler, ROLLUP_PERIODS, Summary};

use super::error::PgError;
use super::store::PgStore;
use super::time;

/// Rollup levels, finest first: one per entry of [`ROLLUP_PERIODS`].
pub(super) const LEVELS: usize = ROLLUP_PERIODS.len();

/// Each level's table.
pub(super) const TABLES: [&str; LEVELS] = ["rollup_minutes", "rollup_hours"];

/// The advisory lock roll-up passes and pruning take turns under ("rollup" in ASCII).
pub(super) const LOCK: i64 = 0x0000_726f_6c6c_7570;

/// Queues readings just stored (series, time, value; each new, as the merge into `readings`
/// reported) for their minutes' and hours' rollups.
pub(super) async fn commit_rollups(
    tx: &Transaction<'_>,
    stored: &[(i32, Millis, f64)],
) -> Result<(), PgError> {
    if stored.is_empty() {
        return Ok(());
    }
    let statement =
        tx.prepare_cached("COPY rollup_pending (series, ts, value) FROM STDIN (FORMAT binary)").await?;
    let sink = tx.copy_in(&statement).await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT4, Type::TIMESTAMPTZ, Type::FLOAT8]);
    let mut writer = std::pin::pin!(writer);
    for (series, ts, value) in stored {
        writer.as_mut().write(&[series, &time::to_time(*ts)?, value]).await?;
    }
    writer.finish().await?;
    Ok(())
}

/// What an upsert of summaries into a level's table does with a period already there.
const MERGE: &str = "ON CONFLICT (series, start) DO UPDATE SET \
    min = least(r.min, excluded.min), max = greatest(r.max, excluded.max), \
    sum = r.sum + excluded.sum, count = r.count + excluded.count, \
    last = CASE WHEN excluded.last_ts >= r.last_ts THEN excluded.last ELSE r.last END, \
    last_ts = greatest(r.last_ts, excluded.last_ts)";

/// Folds the queued readings taken before `before` into the rollups, in `tx` (which holds
/// [`LOCK`]); answers how many.
pub(super) async fn roll_up_in(tx: &Transaction<'_>, before: Millis) -> Result<u64, PgError> {
    let before = time::to_time(before.clamp(time::EARLIEST, time::LATEST - 1))?;
    let fold = |table: &str, period: &str| {
        format!(
            "INSERT INTO {table} AS r (series, start, min, max, sum, count, last, last_ts) \
             SELECT series, date_bin('{period}', ts, '1970-01-01 00:00:00+00'), min(value), max(value), \
             sum(value), count(*), (array_agg(value ORDER BY ts DESC))[1], max(ts) \
             FROM gone GROUP BY 1, 2 ORDER BY 1, 2 {MERGE}"
        )
    };
    let statement = tx
        .prepare_cached(&format!(
            "WITH gone AS (DELETE FROM rollup_pending WHERE ts < $1 RETURNING series, ts, value), \
             minutes AS ({}), hours AS ({}) SELECT count(*) FROM gone",
            fold(TABLES[0], "1 minute"),
            fold(TABLES[1], "1 hour"),
        ))
        .await?;
    let n: i64 = tx.query_one(&statement, &[&before]).await?.get(0);
    u64::try_from(n).map_err(|_| PgError::Corrupt(format!("{n} rolled up")))
}

impl PgStore {
    /// Folds the readings taken before `before` that are still queued into their minutes' and
    /// hours' rollups (what `Store::seal` calls); answers how many. Any node may run it at any
    /// time; passes take turns.
    pub async fn roll_up(&self, before: Millis) -> Result<u64, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK]).await?;
        let n = roll_up_in(&tx, before).await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// Where each level's data is still kept: the first period start (or reading time) not
/// pruned, finest first (readings, minutes, hours).
#[derive(Debug, Clone, Copy)]
pub(super) struct Kept {
    pub readings: Millis,
    pub rollups: [Millis; LEVELS],
}

/// The ranges to read a series' buckets from: raw readings in `raw` (`[from, to]` each),
/// each level's whole periods in `levels` (period starts in `[first, end)` each).
#[derive(Debug, Default)]
pub(super) struct Plan {
    raw: Vec<(Millis, Millis)>,
    levels: [Vec<(Millis, Millis)>; LEVELS],
}

impl Plan {
    /// Cuts `[from, to]` as the redb store's `rollup::fold_range` does: whole periods of
    /// `level` (none: raw readings), the rest from the next level down.
    pub fn add(&mut self, from: Millis, to: Millis, level: Option<usize>) {
        let (from, to) = (from.max(time::EARLIEST), to.min(time::LATEST - 1));
        if from > to {
            return;
        }
        let Some(level) = level else {
            self.raw.push((from, to));
            return;
        };
        let finer = level.checked_sub(1);
        let period = ROLLUP_PERIODS[level];
        let first = from
            .div_euclid(period)
            .saturating_add(i64::from(from.rem_euclid(period) != 0))
            .saturating_mul(period);
        let end = to.saturating_add(1).div_euclid(period).saturating_mul(period);
        if first >= end {
            return self.add(from, to, finer);
        }
        self.add(from, first - 1, finer);
        self.levels[level].push((first, end));
        self.add(end, to, finer);
    }

    /// Reads the planned ranges of `series` into `fold`, leaving out what was pruned. Each
    /// query sums its rows up per bucket (`buckets`, as `fold` cuts them), so what comes back
    /// is a row per bucket and level, not a row per period or reading.
    pub async fn read(
        self,
        tx: &Transaction<'_>,
        series: i32,
        kept: Kept,
        buckets: Buckets<'_>,
        fold: &mut Downsampler,
    ) -> Result<(), PgError> {
        // A level's periods, and the queued readings in them (in no rollup yet).
        let tables = TABLES.map(|table| {
            format!(
                "(SELECT r.series, r.start, r.min, r.max, r.sum, r.count, r.last, r.last_ts FROM {table} r \
                 UNION ALL SELECT p.series, p.ts, p.value, p.value, p.value, 1, p.value, p.ts \
                 FROM rollup_pending p)"
            )
        });
        let sources = self.levels.into_iter().zip(tables).zip(kept.rollups).map(|((ranges, table), from)| {
            let summary = "min(r.start), min(r.min), max(r.max), sum(r.sum), sum(r.count)::int8, \
                           (array_agg(r.last ORDER BY r.last_ts DESC))[1], max(r.last_ts)";
            (ranges, table, "r.start", "r.start < q.b", summary, from)
        });
        let raw = (
            self.raw,
            "readings".to_owned(),
            "r.ts",
            "r.ts <= q.b",
            "min(r.ts), min(r.value), max(r.value), sum(r.value), count(*), \
             (array_agg(r.value ORDER BY r.ts DESC))[1], max(r.ts)",
            kept.readings,
        );
        for (ranges, table, at, before_end, summary, from) in sources.chain([raw]) {
            if ranges.is_empty() {
                continue;
            }
            let (firsts, ends) = times(&ranges)?;
            let from = time::to_time(from.clamp(time::EARLIEST, time::LATEST - 1))?;
            let (key, width, edges) = match buckets {
                // `date_part` is floating point (exact for milliseconds since 1970), far cheaper
                // than `extract`'s numeric; times are after 2000, so dividing is flooring.
                Buckets::Width(w) => (format!("(date_part('epoch', {at}) * 1000)::int8 / $5::int8"), w, None),
                Buckets::Edges(edges) => {
                    let edges = edges
                        .iter()
                        .map(|e| time::to_time((*e).clamp(time::EARLIEST, time::LATEST - 1)))
                        .collect::<Result<Vec<SystemTime>, PgError>>()?;
                    (format!("width_bucket({at}, $5::timestamptz[])"), 0, Some(edges))
                }
            };
            let statement = tx
                .prepare_cached(&format!(
                    "SELECT {summary} FROM {table} r \
                     JOIN unnest($2::timestamptz[], $3::timestamptz[]) AS q(a, b) \
                     ON {at} >= q.a AND {before_end} WHERE r.series = $1 AND {at} >= $4 GROUP BY {key}"
                ))
                .await?;
            let rows = match &edges {
                Some(edges) => tx.query(&statement, &[&series, &firsts, &ends, &from, edges]).await?,
                None => tx.query(&statement, &[&series, &firsts, &ends, &from, &width]).await?,
            };
            for row in rows {
                let count: i64 = row.get(4);
                let s = Summary {
                    min: row.get(1),
                    max: row.get(2),
                    sum: row.get(3),
                    count: u64::try_from(count)
                        .map_err(|_| PgError::Corrupt(format!("a rollup of {count}")))?,
                    last: row.get(5),
                    last_t: time::from_time(row.get::<_, SystemTime>(6))?,
                };
                // Any time in the bucket says which it is: its first.
                fold.summary(time::from_time(row.get::<_, SystemTime>(0))?, &s);
            }
        }
        Ok(())
    }
}

/// How a history's buckets are cut: widths aligned to multiples of it, or between edges.
#[derive(Debug, Clone, Copy)]
pub(super) enum Buckets<'a> {
    Width(Millis),
    Edges(&'a [Millis]),
}

/// Ranges as two arrays of times.
fn times(ranges: &[(Millis, Millis)]) -> Result<(Vec<SystemTime>, Vec<SystemTime>), PgError> {
    let mut a = Vec::with_capacity(ranges.len());
    let mut b = Vec::with_capacity(ranges.len());
    for &(from, to) in ranges {
        a.push(time::to_time(from)?);
        b.push(time::to_time(to.min(time::LATEST - 1))?);
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::history::{HOUR_MS, MINUTE_MS};

    #[test]
    fn a_range_is_cut_into_whole_periods_and_raw_ends() {
        let t0 = 1_765_000_000_000 - 1_765_000_000_000 % HOUR_MS;
        let mut plan = Plan::default();
        plan.add(t0 - 5_000, t0 + 2 * HOUR_MS + 90_000, Some(1));
        assert_eq!(plan.levels[1], [(t0, t0 + 2 * HOUR_MS)]);
        assert_eq!(plan.levels[0], [(t0 + 2 * HOUR_MS, t0 + 2 * HOUR_MS + MINUTE_MS)]);
        assert_eq!(
            plan.raw,
            [(t0 - 5_000, t0 - 1), (t0 + 2 * HOUR_MS + MINUTE_MS, t0 + 2 * HOUR_MS + 90_000)]
        );
        // No whole minute: raw only; times outside what is stored are left out.
        let mut plan = Plan::default();
        plan.add(t0 + 1, t0 + 59_000, Some(1));
        plan.add(i64::MIN, 5, Some(0));
        assert_eq!(plan.raw, [(t0 + 1, t0 + 59_000)]);
        assert!(plan.levels.iter().all(Vec::is_empty));
    }
}
