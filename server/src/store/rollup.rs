//! Rollups: per series, a summary (min, max, sum, count, last) of every minute and every hour
//! with sealed readings, brought up to date by each sealing. A chart over a long range reads
//! these, not the readings: a bucket width that is a whole number of minutes (or hours) is
//! answered from minute (or hour) rollups plus the head's few unsealed readings, with only the
//! partial periods at either end read raw. Each level is pruned by its own
//! [`retention`](super::retention), so rollups outlive the readings they summarise.
//!
//! A row holds a group of one series' summaries, [packed](packed): the minutes of an hour, the
//! hours of a day. Sealing rewrites the rows it adds to (every minute, the current hour's).

mod packed;

use std::collections::BTreeMap;

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use telemetry::Millis;
use telemetry::history::{Bucket, Downsampler, HOUR_MS, ROLLUP_PERIODS, Summary};

use super::chunks::{self, CHUNKS};
use super::error::StoreError;
use super::retention::DAY_MS;
use packed::Group;

/// Rollup levels, finest first: one per entry of [`ROLLUP_PERIODS`].
pub(super) const LEVELS: usize = ROLLUP_PERIODS.len();

/// What a row of each level spans: an hour of minutes, a day of hours.
const GROUPS: [Millis; LEVELS] = [HOUR_MS, DAY_MS];

/// (series id, start of the group) → the group's summaries, packed; a table per level.
const TABLES: [TableDefinition<(u32, i64), &[u8]>; LEVELS] =
    [TableDefinition::new("rollup_1m_by_hour"), TableDefinition::new("rollup_1h_by_day")];

/// Schema versions 2 and 3: a row per series and period, (series id, period start) → min, max,
/// sum, count, last value, and the last reading's time as an offset into the period.
pub(super) type RowV3 = (f64, f64, f64, u32, f64, u32);
pub(super) const TABLES_V3: [TableDefinition<(u32, i64), RowV3>; LEVELS] =
    [TableDefinition::new("rollup_1m"), TableDefinition::new("rollup_1h")];

/// The group of `level` that holds the period starting at (or the time) `t`.
fn group(level: usize, t: Millis) -> Group {
    let (period, span) = (ROLLUP_PERIODS[level], GROUPS[level]);
    Group { start: t.div_euclid(span).saturating_mul(span), period, periods: (span / period) as u32 }
}

/// Summaries, each with the start of its period, in time order.
type Periods = Vec<(Millis, Summary)>;

fn decode(level: usize, start: Millis, bytes: &[u8]) -> Result<Periods, StoreError> {
    Ok(packed::decode(group(level, start), bytes)?)
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
        let mut summaries = 0;
        for entry in table.iter()? {
            summaries += packed::count(entry?.1.value())?;
        }
        let bytes = stats.stored_bytes() + stats.metadata_bytes() + stats.fragmented_bytes();
        *size = LevelSize { period, summaries, stored: stats.stored_bytes(), bytes };
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

/// Packs the rollups of a version 2 or 3 file, a row per series and period, into rows of a
/// group each, and drops the old tables.
pub(super) fn migrate_v3(tx: &WriteTransaction) -> Result<(), StoreError> {
    for (level, (old, new)) in TABLES_V3.into_iter().zip(TABLES).enumerate() {
        {
            let mut packed = tx.open_table(new)?;
            let mut row: Option<((u32, i64), Periods)> = None;
            for entry in tx.open_table(old)?.iter()? {
                let (k, v) = entry?;
                let (sid, start) = k.value();
                let (min, max, sum, count, last, offset) = v.value();
                let last_t = start.saturating_add(i64::from(offset));
                let s = Summary { min, max, sum, count: u64::from(count), last, last_t };
                let key = (sid, group(level, start).start);
                match &mut row {
                    Some((at, summaries)) if *at == key => summaries.push((start, s)),
                    _ => {
                        if let Some((at, summaries)) = row.replace((key, vec![(start, s)])) {
                            packed.insert(at, packed::encode(group(level, at.1), &summaries).as_slice())?;
                        }
                    }
                }
            }
            if let Some((at, summaries)) = row {
                packed.insert(at, packed::encode(group(level, at.1), &summaries).as_slice())?;
            }
        }
        tx.delete_table(old)?;
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

    /// Folds the summaries into the stored rollups, rewriting each row they fall in.
    pub fn write(self, tx: &WriteTransaction) -> Result<(), StoreError> {
        for (level, (rows, def)) in self.rows.into_iter().zip(TABLES).enumerate() {
            let mut table = tx.open_table(def)?;
            let mut rows = rows.into_iter().peekable();
            while let Some(((sid, start), s)) = rows.next() {
                let group = group(level, start);
                let mut adding = vec![(start, s)];
                while let Some(((_, start), s)) = rows
                    .next_if(|((next, t), _)| *next == sid && *t < group.start.saturating_add(GROUPS[level]))
                {
                    adding.push((start, s));
                }
                let stored = table.get((sid, group.start))?.map(|row| row.value().to_vec());
                let stored = match stored {
                    Some(bytes) => packed::decode(group, &bytes)?,
                    None => Vec::new(),
                };
                table
                    .insert((sid, group.start), packed::encode(group, &fold_in(stored, adding)).as_slice())?;
            }
        }
        Ok(())
    }
}

/// A row's stored summaries with new ones folded in (both in time order): a new summary of a
/// stored period is merged with the stored one.
fn fold_in(stored: Periods, adding: Periods) -> Periods {
    let mut out = Vec::with_capacity(stored.len() + adding.len());
    let mut stored = stored.into_iter().peekable();
    for (start, mut s) in adding {
        while let Some(before) = stored.next_if(|(t, _)| *t < start) {
            out.push(before);
        }
        if let Some((_, old)) = stored.next_if(|(t, _)| *t == start) {
            s.merge(&old);
        }
        out.push((start, s));
    }
    out.extend(stored);
    out
}

/// Deletes `sid`'s rollups of periods that ended by their level's horizon (an entry per
/// [`ROLLUP_PERIODS`]; `None` keeps that level); returns how many summaries went from each.
/// Rows wholly before the horizon go; the one it falls in keeps its later periods.
pub(super) fn prune(
    tx: &WriteTransaction,
    sid: u32,
    horizons: [Option<Millis>; LEVELS],
) -> Result<[u64; LEVELS], StoreError> {
    let mut pruned = [0; LEVELS];
    for (level, before) in horizons.into_iter().enumerate() {
        let Some(before) = before else { continue };
        // Periods starting at or before `last` ended by `before`.
        let last = before.saturating_sub(ROLLUP_PERIODS[level]);
        let cut = group(level, last);
        let mut table = tx.open_table(TABLES[level])?;
        let n = &mut pruned[level];
        let mut unreadable = None;
        table.retain_in((sid, i64::MIN)..(sid, cut.start), |_, row| {
            match packed::count(row) {
                Ok(count) => *n += count,
                Err(e) => unreadable = Some(e),
            }
            false
        })?;
        if let Some(e) = unreadable {
            return Err(e.into());
        }
        let row = table.get((sid, cut.start))?.map(|row| row.value().to_vec());
        if let Some(bytes) = row {
            let mut summaries = packed::decode(cut, &bytes)?;
            let had = summaries.len();
            summaries.retain(|(start, _)| *start > last);
            *n += (had - summaries.len()) as u64;
            if summaries.is_empty() {
                table.remove((sid, cut.start))?;
            } else if summaries.len() < had {
                table.insert((sid, cut.start), packed::encode(cut, &summaries).as_slice())?;
            }
        }
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

/// `sid`'s readings in `[from, to]` in the buckets between `edges` (local days, see
/// [`Downsampler::between`]), each read on its own: its whole hours from hour rollups, what is
/// left at its ends from minute rollups and readings (where a zone's midnight is not on a
/// whole hour).
pub(super) fn buckets_between(
    rx: &ReadTransaction,
    head: &[(Millis, f64)],
    sid: u32,
    from: Millis,
    to: Millis,
    edges: &[Millis],
) -> Result<Vec<Bucket>, StoreError> {
    let src = Source { rx, head, sid };
    let mut fold = Downsampler::between(edges.to_vec());
    for bucket in edges.windows(2).take_while(|w| w[0] <= to) {
        let (start, end) = (bucket[0].max(from), bucket[1].saturating_sub(1).min(to));
        fold_range(&src, start, end, Some(LEVELS - 1), &mut fold)?;
    }
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
    for entry in table.range((src.sid, group(level, first).start)..(src.sid, end))? {
        let (k, v) = entry?;
        for (start, s) in decode(level, k.value().1, v.value())? {
            if (first..end).contains(&start) {
                fold.summary(start, &s);
            }
        }
    }
    // Unsealed readings are in no rollup yet.
    for (t, v) in src.head(first, end - 1) {
        fold.point(*t, *v);
    }
    fold_range(src, end, to, finer, fold)
}
