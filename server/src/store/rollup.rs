//! Rollups: per series, a summary (min, max, sum, count, last) of every minute and every hour
//! with readings, kept current by each commit. A chart over a long range reads these, not
//! the readings: a bucket width that is a whole number of minutes (or hours) is answered from
//! minute (or hour) rollups, with only the partial periods at either end read raw.

use std::collections::BTreeMap;

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use telemetry::Millis;
use telemetry::history::{Bucket, Downsampler, ROLLUP_PERIODS, Summary};

use super::StoreError;
use super::chunks::{self, CHUNKS, POINTS};

/// min, max, sum, count, last value, and the last reading's time as an offset into the period
/// (40 bytes).
type Row = (f64, f64, f64, u32, f64, u32);

/// (series id, period start) → summary; one table per entry of [`ROLLUP_PERIODS`].
const TABLES: [TableDefinition<(u32, i64), Row>; 2] =
    [TableDefinition::new("rollup_1m"), TableDefinition::new("rollup_1h")];

fn row(s: &Summary, start: Millis) -> Row {
    let count = u32::try_from(s.count).unwrap_or(u32::MAX);
    (s.min, s.max, s.sum, count, s.last, u32::try_from(s.last_t - start).unwrap_or(0))
}

fn summary(r: Row, start: Millis) -> Summary {
    Summary { min: r.0, max: r.1, sum: r.2, count: u64::from(r.3), last: r.4, last_t: start + i64::from(r.5) }
}

/// Creates the tables.
pub(super) fn init(tx: &WriteTransaction) -> Result<(), StoreError> {
    for table in TABLES {
        tx.open_table(table)?;
    }
    Ok(())
}

/// One commit's new readings, summarised per period before they are written.
#[derive(Default)]
pub(super) struct Pending {
    rows: [BTreeMap<(u32, i64), Summary>; 2],
}

impl Pending {
    pub fn add(&mut self, sid: u32, t: Millis, v: f64) {
        for (rows, period) in self.rows.iter_mut().zip(ROLLUP_PERIODS) {
            let s = Summary::of(t, v);
            rows.entry((sid, t.div_euclid(period) * period)).and_modify(|r| r.merge(&s)).or_insert(s);
        }
    }

    /// Folds the summaries into the stored rollups.
    pub fn write(self, tx: &WriteTransaction) -> Result<(), StoreError> {
        for (rows, def) in self.rows.into_iter().zip(TABLES) {
            let mut table = tx.open_table(def)?;
            for (key, mut s) in rows {
                let stored = table.get(key)?.map(|r| summary(r.value(), key.1));
                if let Some(stored) = stored {
                    s.merge(&stored);
                }
                table.insert(key, row(&s, key.1))?;
            }
        }
        Ok(())
    }
}

/// Builds every rollup from the head's readings (for a file from before rollups existed).
pub(super) fn rebuild(tx: &WriteTransaction) -> Result<(), StoreError> {
    let head = tx.open_table(POINTS)?;
    let mut pending = Pending::default();
    for (i, entry) in head.iter()?.enumerate() {
        let (k, v) = entry?;
        let (sid, t) = k.value();
        pending.add(sid, t, v.value());
        if i % 100_000 == 99_999 {
            std::mem::take(&mut pending).write(tx)?;
        }
    }
    pending.write(tx)
}

/// Deletes `sid`'s rollups of periods that ended by `before`.
pub(super) fn prune(tx: &WriteTransaction, sid: u32, before: Millis) -> Result<(), StoreError> {
    for (def, period) in TABLES.into_iter().zip(ROLLUP_PERIODS) {
        let last = before.saturating_sub(period);
        tx.open_table(def)?.retain_in((sid, i64::MIN)..=(sid, last), |_, _| false)?;
    }
    Ok(())
}

/// Deletes all of `sid`'s rollups.
pub(super) fn delete(tx: &WriteTransaction, sid: u32) -> Result<(), StoreError> {
    for def in TABLES {
        tx.open_table(def)?.retain_in((sid, i64::MIN)..=(sid, i64::MAX), |_, _| false)?;
    }
    Ok(())
}

/// `sid`'s readings in `[from, to]` as buckets of `width`, from the coarsest rollups whose
/// period divides the width, and raw readings where no whole period fits.
pub(super) fn buckets(
    rx: &ReadTransaction,
    sid: u32,
    from: Millis,
    to: Millis,
    width: Millis,
) -> Result<Vec<Bucket>, StoreError> {
    let mut fold = Downsampler::new(width);
    let level = ROLLUP_PERIODS.iter().rposition(|p| width % p == 0);
    fold_range(rx, sid, from, to, level, &mut fold)?;
    Ok(fold.finish())
}

fn fold_range(
    rx: &ReadTransaction,
    sid: u32,
    from: Millis,
    to: Millis,
    level: Option<usize>,
    fold: &mut Downsampler,
) -> Result<(), StoreError> {
    if from > to {
        return Ok(());
    }
    let Some(level) = level else {
        let (chunks, head) = (rx.open_table(CHUNKS)?, rx.open_table(POINTS)?);
        return chunks::scan(&chunks, &head, sid, from, to, |t, v| {
            fold.point(t, v);
            true
        });
    };
    let finer = level.checked_sub(1);
    let period = ROLLUP_PERIODS[level];
    // Whole periods: [first, end).
    let first = from
        .div_euclid(period)
        .saturating_add(i64::from(from.rem_euclid(period) != 0))
        .saturating_mul(period);
    let end = to.saturating_add(1).div_euclid(period).saturating_mul(period);
    if first >= end {
        return fold_range(rx, sid, from, to, finer, fold);
    }
    fold_range(rx, sid, from, first - 1, finer, fold)?;
    let table = rx.open_table(TABLES[level])?;
    for entry in table.range((sid, first)..(sid, end))? {
        let (k, v) = entry?;
        let start = k.value().1;
        fold.summary(start, &summary(v.value(), start));
    }
    fold_range(rx, sid, end, to, finer, fold)
}
