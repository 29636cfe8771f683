//! The device registry: a record per device (first and last seen, status, message count, the
//! latest value of each metric, name, note, attributes, how often it reports, tags). It lives in memory and reaches disk at
//! checkpoints (every sealing, and with every deletion or edit) rather than with every commit,
//! which would rewrite each device's record once per message. The change log keeps every change
//! since the last checkpoint, so after a crash replaying it restores the registry; each record
//! notes the last change it holds, so nothing is counted twice.

use std::collections::{BTreeMap, HashSet};

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use telemetry::tags::Tags;
use telemetry::{DeviceStatus, DeviceSummary, LiveEvent, MetricLatest, Millis};

use super::error::StoreError;

/// device id → JSON [`DeviceRecord`].
pub(super) const DEVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("devices");
/// Counters and the schema version.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// In META: every change up to this one is in the stored records.
pub(super) const CHECKPOINT: &str = "devices_seq";

/// A counter kept in META (0 until first set).
pub(super) fn counter(meta: &impl ReadableTable<&'static str, u64>, key: &str) -> Result<u64, StoreError> {
    Ok(meta.get(key)?.map_or(0, |v| v.value()))
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(super) struct DeviceRecord {
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub status: Option<DeviceStatus>,
    pub message_count: u64,
    /// metric → (value, reading time)
    pub metrics: BTreeMap<String, (f64, Millis)>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    /// The last change folded in.
    #[serde(default)]
    pub seq: u64,
    /// When its messages arrive, to learn its interval.
    #[serde(default)]
    pub rhythm: telemetry::rhythm::Rhythm,
    /// The interval someone set (it wins over the learned one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_set: Option<Millis>,
    /// What it says about itself, sorted by name (at most `attributes::MAX_ATTRIBUTES`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<telemetry::attributes::Attribute>,
}

impl DeviceRecord {
    pub fn summary(&self, id: &str) -> DeviceSummary {
        DeviceSummary {
            id: id.to_owned(),
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            status: self.status,
            message_count: self.message_count,
            metrics: self
                .metrics
                .iter()
                .map(|(name, (value, ts))| MetricLatest { name: name.clone(), value: *value, ts: *ts })
                .collect(),
            name: self.name.clone(),
            note: self.note.clone(),
            tags: self.tags.clone(),
            refused: None,
            interval: telemetry::device::Interval { learned: self.rhythm.learned(), set: self.interval_set },
            attributes: self.attributes.clone(),
        }
    }

    /// Registered means at least one reading was stored; a status alone does not register.
    pub fn registered(&self) -> bool {
        self.message_count > 0
    }

    /// Notes a message received at `received`, holding `values` read at `ts`.
    pub fn saw(&mut self, ts: Millis, received: Millis, values: &[(String, f64)]) {
        for (metric, value) in values {
            // Looked up first: a metric already known costs no key allocation.
            match self.metrics.get_mut(metric.as_str()) {
                Some(latest) if ts >= latest.1 => *latest = (*value, ts),
                Some(_) => {}
                None => {
                    self.metrics.insert(metric.clone(), (*value, ts));
                }
            }
        }
        if self.first_seen == 0 {
            self.first_seen = received;
        }
        self.last_seen = self.last_seen.max(received);
    }

    /// Notes a newly stored message read at `ts`, received at `received` (a redelivery is no
    /// arrival): what its interval is learned from.
    pub fn arrived(&mut self, ts: Millis, received: Millis) {
        self.rhythm.observe(ts, received);
    }

    /// Notes a status report, unless it is a last will (`offline`) numbered with an older
    /// session than the latest the device numbered a status with: a will delayed past the
    /// device's next connection, which must not mark it offline. Answers whether it was taken.
    /// A status without a session keeps the known one; an `online` with a lower one (a device
    /// that does not keep its counter, restarted) starts over from it.
    pub fn status(&mut self, online: bool, at: Millis, session: Option<u64>) -> bool {
        let known = self.status.and_then(|s| s.session);
        if !online && session.zip(known).is_some_and(|(will, current)| will < current) {
            return false;
        }
        if self.status.is_none_or(|s| at >= s.at) {
            self.status = Some(DeviceStatus { online, at, session: session.or(known) });
        }
        true
    }

    /// Folds in a change from the log, unless it holds it already.
    fn replay(&mut self, event: &LiveEvent) {
        match event {
            LiveEvent::Reading { seq, ts, received, values, .. } if *seq > self.seq => {
                let values: Vec<(String, f64)> = values.iter().map(|(k, v)| (k.clone(), *v)).collect();
                self.saw(*ts, *received, &values);
                self.arrived(*ts, *received);
                self.message_count += 1;
                self.seq = *seq;
            }
            LiveEvent::Status { seq, online, at, session, .. } if *seq > self.seq => {
                self.status(*online, *at, *session);
                self.seq = *seq;
            }
            LiveEvent::Attributes { seq, at, values, .. } if *seq > self.seq => {
                let values: Vec<_> = values.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                telemetry::attributes::merge(&mut self.attributes, &values, *at);
                self.seq = *seq;
            }
            LiveEvent::Tags { seq, tags, .. } if *seq > self.seq => {
                self.tags = tags.clone();
                self.seq = *seq;
            }
            _ => {}
        }
    }
}

#[derive(Default)]
pub(super) struct Registry {
    records: super::maps::FastMap<String, DeviceRecord>,
    /// Changed since the last checkpoint.
    dirty: HashSet<String>,
}

impl Registry {
    /// The stored records with the changes since the last checkpoint replayed onto them.
    pub fn load(rx: &ReadTransaction) -> Result<Registry, StoreError> {
        let mut registry = Registry::default();
        for entry in rx.open_table(DEVICES)?.iter()? {
            let (k, v) = entry?;
            let id = k.value();
            let rec = serde_json::from_slice(v.value())
                .map_err(|source| StoreError::CorruptRecord { device: id.to_owned(), source })?;
            registry.records.insert(id.to_owned(), rec);
        }
        let checkpoint = rx.open_table(META)?.get(CHECKPOINT)?.map_or(0, |v| v.value());
        super::change_log::after(&rx.open_table(super::change_log::CHANGES)?, checkpoint, |event| {
            // A command or desired state is no change to the device's record (and may outlive
            // a deleted one).
            let record = !matches!(event, LiveEvent::Command { .. } | LiveEvent::Desired { .. });
            if let Some(device) = event.device().filter(|_| record) {
                registry.records.entry(device.to_owned()).or_default().replay(&event);
                registry.dirty.insert(device.to_owned());
            }
            true
        })?;
        Ok(registry)
    }

    pub fn get(&self, id: &str) -> Option<&DeviceRecord> {
        self.records.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &DeviceRecord)> {
        self.records.iter()
    }

    pub fn put(&mut self, id: String, rec: DeviceRecord) {
        self.dirty.insert(id.clone());
        self.records.insert(id, rec);
    }

    pub fn remove(&mut self, id: &str) {
        self.records.remove(id);
        self.dirty.remove(id);
    }

    /// Writes the changed records and marks every change up to `last_seq` as held by them;
    /// call [`Registry::clean`] once `tx` is committed.
    pub fn checkpoint(&self, tx: &WriteTransaction, last_seq: u64) -> Result<(), StoreError> {
        let mut devices = tx.open_table(DEVICES)?;
        for id in &self.dirty {
            if let Some(rec) = self.records.get(id) {
                let bytes = serde_json::to_vec(rec).expect("device records serialise");
                devices.insert(id.as_str(), bytes.as_slice())?;
            }
        }
        tx.open_table(META)?.insert(CHECKPOINT, last_seq)?;
        Ok(())
    }

    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    pub fn clean(&mut self) {
        self.dirty.clear();
    }
}
