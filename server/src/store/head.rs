//! The head: readings not yet sealed into chunks. On disk they are keyed by (time, series),
//! so one commit's readings from every device land on a few neighbouring pages rather than a
//! page per series; in memory they are indexed per series, for reads and for spotting
//! redeliveries. Sealing empties it every `storage.seal_interval_secs`, so it stays small;
//! opening the store reloads the index from disk.
//!
//! Each series' index is a vector sorted by time (16 bytes a reading, against about 60 in a
//! B-tree map): readings nearly always arrive in order, so an insert is a push, and a late
//! one shifts at most a seal interval's worth.

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use telemetry::Millis;

use super::StoreError;

/// (reading time ms, series id) → value.
pub(super) const HEAD: TableDefinition<(i64, u32), f64> = TableDefinition::new("head");

#[derive(Default)]
pub(super) struct Head {
    series: super::FastMap<u32, Series>,
    len: u64,
}

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
            let (k, v) = entry?;
            let (t, sid) = k.value();
            head.insert(sid, t, v.value());
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

    /// Removes from disk the readings of `sid`, or of every series when `None`, older than
    /// `before`; returns how many.
    pub fn delete(&self, tx: &WriteTransaction, sid: Option<u32>, before: Millis) -> Result<u64, StoreError> {
        let mut table = tx.open_table(HEAD)?;
        let mut n = 0;
        match sid {
            None => table.retain_in((i64::MIN, 0)..(before, 0), |_, _| {
                n += 1;
                false
            })?,
            Some(sid) => {
                let series = self.series.get(&sid).map(|s| &s.0[..s.from(before)]).unwrap_or_default();
                for (t, _) in series {
                    n += u64::from(table.remove((*t, sid))?.is_some());
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
