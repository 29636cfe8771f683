//! The head: readings not yet sealed into chunks. On disk each commit writes its new readings
//! in rows of up to [`BATCH_READINGS`], batches, so a commit of a thousand readings is two
//! B-tree inserts rather than a thousand; in memory they are indexed per series, for reads and
//! for spotting redeliveries. Every `storage.seal_interval_secs` sealing empties it of all but
//! the last [`SEAL_AGE`](crate::upkeep::SEAL_AGE), so it stays small; opening the store
//! reloads the index from disk.
//!
//! Each series' index is a vector sorted by time (16 bytes a reading, against about 60 in a
//! B-tree map): readings nearly always arrive in order, so an insert is a push, and a late
//! one shifts at most a seal interval's worth.

use redb::{ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction};
use telemetry::Millis;

use super::error::StoreError;

/// (earliest reading time in the batch, batch number) → the batch's readings, [`READING`]
/// bytes each: series id (u32), time (i64), value (f64), little-endian. Keyed by the earliest
/// time so sealing finds every batch it empties in one range.
pub(super) const HEAD: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("head_batches");
/// Schema version 2's head, a row per reading: (time, series id) → value.
pub(super) const HEAD_V2: TableDefinition<(i64, u32), f64> = TableDefinition::new("head");
/// META key: the next batch number.
const NEXT_BATCH: &str = "next_head_batch";
/// Bytes per reading in a batch.
const READING: usize = 20;
/// Readings per batch at most (16,000 bytes). redb keeps a row larger than a page on pages of
/// a power of two, so a commit's readings go in rows that share pages instead.
const BATCH_READINGS: usize = 800;

/// A reading as a batch holds it: (series id, time, value).
pub(super) type Reading = (u32, Millis, f64);

fn encode(readings: &[Reading]) -> Vec<u8> {
    let mut out = Vec::with_capacity(readings.len() * READING);
    for (sid, t, v) in readings {
        out.extend_from_slice(&sid.to_le_bytes());
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn decode(bytes: &[u8]) -> Result<impl Iterator<Item = Reading> + '_, StoreError> {
    if !bytes.len().is_multiple_of(READING) {
        return Err(StoreError::Corrupt(format!("a head batch of {} bytes", bytes.len())));
    }
    Ok(bytes.chunks_exact(READING).map(|r| {
        let (sid, rest) = r.split_at(4);
        let (t, v) = rest.split_at(8);
        (
            u32::from_le_bytes(sid.try_into().expect("4 bytes")),
            i64::from_le_bytes(t.try_into().expect("8 bytes")),
            f64::from_le_bytes(v.try_into().expect("8 bytes")),
        )
    }))
}

/// Writes `readings` (not empty) as one batch numbered `number`.
fn put(table: &mut Table<(i64, u64), &[u8]>, number: u64, readings: &[Reading]) -> Result<(), StoreError> {
    let earliest = readings.iter().map(|r| r.1).min().expect("a batch is not empty");
    table.insert((earliest, number), encode(readings).as_slice())?;
    Ok(())
}

/// Writes one commit's new readings as batches, numbered from `meta`'s counter.
pub(super) fn append(
    table: &mut Table<(i64, u64), &[u8]>,
    meta: &mut Table<&str, u64>,
    readings: &[Reading],
) -> Result<(), StoreError> {
    if readings.is_empty() {
        return Ok(());
    }
    let mut number = meta.get(NEXT_BATCH)?.map_or(0, |v| v.value());
    for batch in readings.chunks(BATCH_READINGS) {
        put(table, number, batch)?;
        number += 1;
    }
    meta.insert(NEXT_BATCH, number)?;
    Ok(())
}

/// Moves a version 2 file's head, a row per reading, into batches.
pub(super) fn migrate_v2(tx: &WriteTransaction) -> Result<(), StoreError> {
    let readings = {
        let old = tx.open_table(HEAD_V2)?;
        let mut readings = Vec::new();
        for entry in old.iter()? {
            let (k, v) = entry?;
            let (t, sid) = k.value();
            readings.push((sid, t, v.value()));
        }
        readings
    };
    {
        let mut table = tx.open_table(HEAD)?;
        let mut meta = tx.open_table(super::registry::META)?;
        append(&mut table, &mut meta, &readings)?;
    }
    tx.delete_table(HEAD_V2)?;
    Ok(())
}

#[derive(Default)]
pub(super) struct Head {
    series: super::maps::FastMap<u32, Series>,
    len: u64,
}

/// Slots a series' vector grows by at least.
const GROWTH: usize = 8;

/// One series' unsealed readings, sorted by time, one per time.
#[derive(Default)]
struct Series(Vec<(Millis, f64)>);

impl Series {
    /// Where readings at `t` or later start.
    fn from(&self, t: Millis) -> usize {
        self.0.partition_point(|p| p.0 < t)
    }

    /// Where readings after `t` start.
    fn after(&self, t: Millis) -> usize {
        self.0.partition_point(|p| p.0 <= t)
    }

    fn contains(&self, t: Millis) -> bool {
        self.0.binary_search_by_key(&t, |p| p.0).is_ok()
    }

    /// Adds a reading, or replaces the value at its time; true when it is new.
    fn insert(&mut self, t: Millis, v: f64) -> bool {
        self.make_room();
        if self.0.last().is_none_or(|last| last.0 < t) {
            self.0.push((t, v));
            return true;
        }
        match self.0.binary_search_by_key(&t, |p| p.0) {
            Ok(i) => {
                self.0[i].1 = v;
                false
            }
            Err(i) => {
                self.0.insert(i, (t, v));
                true
            }
        }
    }

    /// Grows a full vector by a quarter (at least [`GROWTH`] slots) rather than doubling it:
    /// thousands of series each hold up to a seal interval of readings, and doubling left
    /// them a third empty on average (docs/benchmarks.md, "Memory"). Still amortised O(1).
    fn make_room(&mut self) {
        let len = self.0.len();
        if len == self.0.capacity() {
            self.0.reserve_exact((len / 4).max(GROWTH));
        }
    }

    /// Drops readings older than `before`; returns how many.
    fn drop_before(&mut self, before: Millis) -> usize {
        let n = self.from(before);
        self.0.drain(..n);
        // What is left is a fraction of a seal interval: give back what sealing emptied.
        if self.0.capacity() > 2 * self.0.len() + 16 {
            self.0.shrink_to(self.0.len() + self.0.len() / 2);
        }
        n
    }
}

impl Head {
    pub fn load(rx: &ReadTransaction) -> Result<Head, StoreError> {
        let mut head = Head::default();
        for entry in rx.open_table(HEAD)?.iter()? {
            let (_, batch) = entry?;
            for (sid, t, v) in decode(batch.value())? {
                head.insert(sid, t, v);
            }
        }
        Ok(head)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn contains(&self, sid: u32, t: Millis) -> bool {
        self.series.get(&sid).is_some_and(|s| s.contains(t))
    }

    /// Adds a reading (call once its commit is durable).
    pub fn insert(&mut self, sid: u32, t: Millis, v: f64) {
        if self.series.entry(sid).or_default().insert(t, v) {
            self.len += 1;
        }
    }

    /// `sid`'s readings in `[from, to]`, in time order.
    pub fn range(&self, sid: u32, from: Millis, to: Millis) -> Vec<(Millis, f64)> {
        match self.series.get(&sid) {
            Some(s) if from <= to => s.0[s.from(from)..s.after(to)].to_vec(),
            _ => Vec::new(),
        }
    }

    /// Every series' readings older than `before`, in time order per series.
    pub fn before(&self, before: Millis) -> Vec<(u32, Vec<(Millis, f64)>)> {
        self.series
            .iter()
            .map(|(sid, s)| (*sid, s.0[..s.from(before)].to_vec()))
            .filter(|(_, points)| !points.is_empty())
            .collect()
    }

    /// The series holding readings older than `before`.
    pub fn due(&self, before: Millis) -> Vec<u32> {
        self.series
            .iter()
            .filter(|(_, s)| s.0.first().is_some_and(|p| p.0 < before))
            .map(|(sid, _)| *sid)
            .collect()
    }

    /// `sid`'s readings older than `before`, in time order: sealing copies one series at a
    /// time, rather than a seal interval of every series at once as [`Head::before`] does.
    pub fn before_of(&self, sid: u32, before: Millis) -> Vec<(Millis, f64)> {
        self.series.get(&sid).map(|s| s.0[..s.from(before)].to_vec()).unwrap_or_default()
    }

    /// Forgets readings older than `before` (once a commit has removed them from disk).
    pub fn drop_before(&mut self, before: Millis) {
        for s in self.series.values_mut() {
            self.len -= s.drop_before(before) as u64;
        }
        self.series.retain(|_, s| !s.0.is_empty());
    }

    /// Forgets a series (once a commit has removed it from disk).
    pub fn drop_series(&mut self, sid: u32) {
        if let Some(s) = self.series.remove(&sid) {
            self.len -= s.0.len() as u64;
        }
    }

    /// Removes from disk the readings of `series`, or of every series when `None`, older than
    /// `before`; returns how many. A batch keeps the readings it still holds. One pass over
    /// the head, however many series go.
    pub fn delete(tx: &WriteTransaction, series: Option<&[u32]>, before: Millis) -> Result<u64, StoreError> {
        let mut table = tx.open_table(HEAD)?;
        let (mut n, mut partial, mut corrupt) = (0, Vec::new(), None);
        // Every batch with a reading older than `before` starts before it. Emptied batches go
        // in this one pass; only what is left of the few it cuts into is held and rewritten.
        table.retain_in(..(before, 0), |(_, number), batch| {
            let readings = match decode(batch) {
                Ok(readings) => readings,
                Err(e) => {
                    corrupt = Some(e);
                    return true;
                }
            };
            let (mut all, mut kept) = (0, Vec::new());
            for r in readings {
                all += 1;
                if r.1 >= before || series.is_some_and(|series| !series.contains(&r.0)) {
                    kept.push(r);
                }
            }
            if kept.len() == all {
                return true;
            }
            n += (all - kept.len()) as u64;
            if !kept.is_empty() {
                partial.push((number, kept));
            }
            false
        })?;
        if let Some(e) = corrupt {
            return Err(e);
        }
        for (number, kept) in partial {
            put(&mut table, number, &kept)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, ReadableTableMetadata};

    #[test]
    fn late_and_repeated_readings_keep_one_reading_per_time_in_order() {
        let mut head = Head::default();
        for (t, v) in [(10, 1.0), (30, 3.0), (20, 2.0), (5, 0.5), (30, 3.5)] {
            head.insert(7, t, v);
        }
        assert_eq!(head.len(), 4);
        assert_eq!(head.range(7, 0, 100), vec![(5, 0.5), (10, 1.0), (20, 2.0), (30, 3.5)]);
        assert_eq!(head.range(7, 10, 20), vec![(10, 1.0), (20, 2.0)]);
        assert!(head.contains(7, 20) && !head.contains(7, 21) && !head.contains(8, 20));
    }

    /// The disk side of a head, as opening the store reads it.
    fn reload(db: &redb::Database) -> Vec<(u32, Vec<(Millis, f64)>)> {
        let head = Head::load(&db.begin_read().unwrap()).unwrap();
        let mut all = head.before(Millis::MAX);
        all.sort_by_key(|(sid, _)| *sid);
        all
    }

    #[test]
    fn batches_reload_and_deletes_keep_what_is_left_of_a_batch() {
        const LARGE: i64 = 2 * BATCH_READINGS as i64 + 50;
        let db =
            redb::Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let (mut table, mut meta) =
                (tx.open_table(HEAD).unwrap(), tx.open_table(super::super::registry::META).unwrap());
            // Two commits: series 1 and 2 interleaved, one late reading in the second.
            append(&mut table, &mut meta, &[(1, 10, 1.0), (2, 10, 2.0), (1, 20, 1.5)]).unwrap();
            append(&mut table, &mut meta, &[(2, 30, 3.0), (1, 5, 0.5), (1, 40, 4.0)]).unwrap();
            append(&mut table, &mut meta, &[]).unwrap();
            // A large commit: rows of at most BATCH_READINGS, numbered on.
            let many: Vec<Reading> = (0..LARGE).map(|i| (3, 1_000 + i, i as f64)).collect();
            append(&mut table, &mut meta, &many).unwrap();
            let rows: Vec<usize> =
                table.iter().unwrap().map(|e| e.unwrap().1.value().len() / READING).collect();
            assert_eq!(rows, [3, 3, BATCH_READINGS, BATCH_READINGS, 50]);
        }
        tx.commit().unwrap();
        let mut expected =
            vec![(1, vec![(5, 0.5), (10, 1.0), (20, 1.5), (40, 4.0)]), (2, vec![(10, 2.0), (30, 3.0)])];
        expected.push((3, (0..LARGE).map(|i| (1_000 + i, i as f64)).collect()));
        assert_eq!(reload(&db), expected);
        let tx = db.begin_write().unwrap();
        assert_eq!(Head::delete(&tx, Some(&[3]), Millis::MAX).unwrap(), LARGE as u64);
        tx.commit().unwrap();

        let tx = db.begin_write().unwrap();
        assert_eq!(Head::delete(&tx, None, 20).unwrap(), 3, "sealed: everything before 20");
        tx.commit().unwrap();
        assert_eq!(reload(&db), [(1, vec![(20, 1.5), (40, 4.0)]), (2, vec![(30, 3.0)])]);

        let tx = db.begin_write().unwrap();
        assert_eq!(Head::delete(&tx, Some(&[1]), Millis::MAX).unwrap(), 2, "a deleted device's series");
        tx.commit().unwrap();
        assert_eq!(reload(&db), [(2, vec![(30, 3.0)])]);
        let rx = db.begin_read().unwrap();
        assert_eq!(rx.open_table(HEAD).unwrap().len().unwrap(), 1, "emptied batches are gone");
    }

    #[test]
    fn a_series_grows_by_a_quarter_not_by_doubling() {
        let mut series = Series::default();
        for t in 0..1_000 {
            series.insert(t, 0.0);
            let (len, capacity) = (series.0.len(), series.0.capacity());
            assert!(capacity <= len + (len / 4).max(GROWTH), "{len} readings in {capacity} slots");
        }
        // A late reading into a full vector.
        series.0.shrink_to_fit();
        assert!(series.insert(-1, 1.0));
        assert_eq!(series.0.first(), Some(&(-1, 1.0)));
    }

    #[test]
    fn a_batch_of_the_wrong_length_is_reported_not_misread() {
        assert!(matches!(decode(&[0; 21]), Err(StoreError::Corrupt(_))));
        assert_eq!(decode(&encode(&[(7, -3, 2.5)])).unwrap().collect::<Vec<_>>(), [(7, -3, 2.5)]);
    }

    #[test]
    fn dropping_sealed_readings_keeps_the_rest_and_forgets_empty_series() {
        let mut head = Head::default();
        for t in 0..1_000 {
            head.insert(1, t, t as f64);
        }
        head.insert(2, 5, 1.0);
        assert_eq!(head.before(990).iter().map(|(_, p)| p.len()).sum::<usize>(), 991);
        head.drop_before(990);
        assert_eq!(head.len(), 10);
        assert_eq!(head.range(1, 0, i64::MAX).first(), Some(&(990, 990.0)));
        assert!(head.range(2, 0, i64::MAX).is_empty());
        assert!(head.before(i64::MAX).iter().all(|(sid, _)| *sid == 1));
    }

    #[test]
    fn one_series_at_a_time_gives_what_every_series_at_once_does() {
        let mut head = Head::default();
        for sid in 1..=50 {
            for t in 0..200 {
                // Series 7 starts late: nothing of it is due before 100.
                if sid != 7 || t >= 150 {
                    head.insert(sid, t, f64::from(sid) + t as f64);
                }
            }
        }
        head.insert(3, 20, -1.0);
        for before in [0, 1, 100, 150, 151, 1_000] {
            let mut all = head.before(before);
            all.sort_by_key(|(sid, _)| *sid);
            let mut due = head.due(before);
            due.sort_unstable();
            assert_eq!(due, all.iter().map(|(sid, _)| *sid).collect::<Vec<_>>(), "due before {before}");
            let one_by_one: Vec<_> = due.iter().map(|&sid| (sid, head.before_of(sid, before))).collect();
            assert_eq!(one_by_one, all, "readings before {before}");
        }
        assert_eq!(head.due(150).len(), 49, "series 7 is not due before its first reading");
        assert!(head.before_of(99, 1_000).is_empty(), "an unknown series has nothing due");
    }
}
