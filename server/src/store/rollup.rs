//! Rollups: per series, a summary (min, max, sum, count, last) of every minute and every hour
//! with sealed readings, brought up to date by each sealing. A chart over a long range reads
//! these, not the readings: a bucket width that is a whole number of minutes (or hours) is
//! answered from minute (or hour) rollups plus the head's few unsealed readings, with only the
//! partial periods at either end read raw. Each level is pruned by its own
//! [`retention`](super::retention), so rollups outlive the readings they summarise.

use std::collections::BTreeMap;

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use telemetry::Millis;
use telemetry::history::{Bucket, Downsampler, ROLLUP_PERIODS, Summary};

use super::StoreError;
use super::chunks::{self, CHUNKS};

/// min, max, sum, count, last value, and the last reading's time as an offset into the period
/// (40 bytes).
type Row = (f64, f64, f64, u32, f64, u32);

/// Rollup levels, finest first: one per entry of [`ROLLUP_PERIODS`].
pub(super) const LEVELS: usize = ROLLUP_PERIODS.len();

/// (series id, period start) → summary; a table per level.
const TABLES: [TableDefinition<(u32, i64), Row>; LEVELS] =
    [TableDefinition::new("rollup_1m"), TableDefinition::new("rollup_1h")];

fn row(s: &Summary, start: Millis) -> Row {
    let count = u32::try_from(s.count).unwrap_or(u32::MAX);
    (s.min, s.max, s.sum, count, s.last, u32::try_from(s.last_t - start).unwrap_or(0))
}

fn summary(r: Row, start: Millis) -> Summary {
    Summary { min: r.0, max: r.1, sum: r.2, count: u64::from(r.3), last: r.4, last_t: start + i64::from(r.5) }
}

/// One level's rollups on disk: how many summaries, the bytes of its table's pages (`bytes`:
/// what its keys and values take, `stored`, the B-tree's own and what is left free on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelSize {
    pub period: Millis,
    pub summaries: u64,
    pub stored: u64,
    pub bytes: u64,
}

/// Each level's size, finest first.
pub(super) fn sizes(rx: &ReadTransaction) -> Result<[LevelSize; LEVELS], StoreError> {
    let mut out = [LevelSize { period: 0, summaries: 0, stored: 0, bytes: 0 }; LEVELS];
    for ((size, def), period) in out.iter_mut().zip(TABLES).zip(ROLLUP_PERIODS) {
        let table = rx.open_table(def)?;
        let stats = table.stats()?;
        let bytes = stats.stored_bytes() + stats.metadata_bytes() + stats.fragmented_bytes();
        *size = LevelSize { period, summaries: table.len()?, stored: stats.stored_bytes(), bytes };
    }
    Ok(out)
}

/// Creates the tables.
pub(super) fn init(tx: &WriteTransaction) -> Result<(), StoreError> {
    for table in TABLES {
        tx.open_table(table)?;
    }
    Ok(())
}

/// Readings being sealed, summarised per period before they are written.
#[derive(Default)]
pub(super) struct Pending {
    rows: [BTreeMap<(u32, i64), Summary>; LEVELS],
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

/// Deletes `sid`'s rollups of periods that ended by their level's horizon (an entry per
/// [`ROLLUP_PERIODS`]; `None` keeps that level); returns how many went from each.
pub(super) fn prune(
    tx: &WriteTransaction,
    sid: u32,
    horizons: [Option<Millis>; LEVELS],
) -> Result<[u64; LEVELS], StoreError> {
    let mut pruned = [0; LEVELS];
    for (level, before) in horizons.into_iter().enumerate() {
        let Some(before) = before else { continue };
        let last = before.saturating_sub(ROLLUP_PERIODS[level]);
        let n = &mut pruned[level];
        tx.open_table(TABLES[level])?.retain_in((sid, i64::MIN)..=(sid, last), |_, _| {
            *n += 1;
            false
        })?;
    }
    Ok(pruned)
}

/// Deletes all of `sid`'s rollups.
pub(super) fn delete(tx: &WriteTransaction, sid: u32) -> Result<(), StoreError> {
    for def in TABLES {
        tx.open_table(def)?.retain_in((sid, i64::MIN)..=(sid, i64::MAX), |_, _| false)?;
    }
    Ok(())
}

/// `sid`'s readings in `[from, to]` as buckets of `width`, from the coarsest rollups whose
/// period divides the width, and raw readings where no whole period fits. `head` holds the
/// series' unsealed readings in `[from, to]`, in time order.
pub(super) fn buckets(
    rx: &ReadTransaction,
    head: &[(Millis, f64)],
    sid: u32,
    from: Millis,
    to: Millis,
    width: Millis,
) -> Result<Vec<Bucket>, StoreError> {
    let mut fold = Downsampler::new(width);
    let level = ROLLUP_PERIODS.iter().rposition(|p| width % p == 0);
    fold_range(&Source { rx, head, sid }, from, to, level, &mut fold)?;
    Ok(fold.finish())
}

struct Source<'a> {
    rx: &'a ReadTransaction,
    head: &'a [(Millis, f64)],
    sid: u32,
}

impl Source<'_> {
    /// The head's readings in `[from, to]`.
    fn head(&self, from: Millis, to: Millis) -> &[(Millis, f64)] {
        let a = self.head.partition_point(|p| p.0 < from);
        let b = self.head.partition_point(|p| p.0 <= to);
        &self.head[a..b.max(a)]
    }
}

fn fold_range(
    src: &Source,
    from: Millis,
    to: Millis,
    level: Option<usize>,
    fold: &mut Downsampler,
) -> Result<(), StoreError> {
    if from > to {
        return Ok(());
    }
    let Some(level) = level else {
        let chunks = src.rx.open_table(CHUNKS)?;
        return chunks::scan(&chunks, src.head(from, to), src.sid, from, to, |t, v| {
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
        return fold_range(src, from, to, finer, fold);
    }
    fold_range(src, from, first - 1, finer, fold)?;
    let table = src.rx.open_table(TABLES[level])?;
    for entry in table.range((src.sid, first)..(src.sid, end))? {
        let (k, v) = entry?;
        let start = k.value().1;
        fold.summary(start, &summary(v.value(), start));
    }
    // Unsealed readings are in no rollup yet.
    for (t, v) in src.head(first, end - 1) {
        fold.point(*t, *v);
    }
    fold_range(src, end, to, finer, fold)
}
