//! The head: readings not yet sealed into chunks. On disk they are keyed by (time, series),
//! so one commit's readings from every device land on a few neighbouring pages rather than a
//! page per series; in memory they are indexed per series, for reads and for spotting
//! redeliveries. Sealing empties it every `storage.seal_interval_secs`, so it stays small;
//! opening the store reloads the index from disk.

use std::collections::{BTreeMap, HashMap};

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use telemetry::Millis;

use super::StoreError;

/// (reading time ms, series id) → value.
pub(super) const HEAD: TableDefinition<(i64, u32), f64> = TableDefinition::new("head");

#[derive(Default)]
pub(super) struct Head {
    series: HashMap<u32, BTreeMap<Millis, f64>>,
    len: u64,
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
        self.series.get(&sid).is_some_and(|s| s.contains_key(&t))
    }

    /// Adds a reading (call once its commit is durable).
    pub fn insert(&mut self, sid: u32, t: Millis, v: f64) {
        if self.series.entry(sid).or_default().insert(t, v).is_none() {
            self.len += 1;
        }
    }

    /// `sid`'s readings in `[from, to]`, in time order.
    pub fn range(&self, sid: u32, from: Millis, to: Millis) -> Vec<(Millis, f64)> {
        match self.series.get(&sid) {
            Some(s) if from <= to => s.range(from..=to).map(|(t, v)| (*t, *v)).collect(),
            _ => Vec::new(),
        }
    }

    /// Every series' readings older than `before`, in time order per series.
    pub fn before(&self, before: Millis) -> Vec<(u32, Vec<(Millis, f64)>)> {
        self.series
            .iter()
            .map(|(sid, s)| (*sid, s.range(..before).map(|(t, v)| (*t, *v)).collect::<Vec<_>>()))
            .filter(|(_, points)| !points.is_empty())
            .collect()
    }

    /// Forgets readings older than `before` (once a commit has removed them from disk).
    pub fn drop_before(&mut self, before: Millis) {
        for s in self.series.values_mut() {
            let keep = s.split_off(&before);
            self.len -= s.len() as u64;
            *s = keep;
        }
        self.series.retain(|_, s| !s.is_empty());
    }

    /// Forgets a series (once a commit has removed it from disk).
    pub fn drop_series(&mut self, sid: u32) {
        if let Some(s) = self.series.remove(&sid) {
            self.len -= s.len() as u64;
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
                for t in self.series.get(&sid).into_iter().flat_map(|s| s.range(..before).map(|(t, _)| *t)) {
                    n += u64::from(table.remove((t, sid))?.is_some());
                }
            }
        }
        Ok(n)
    }
}
