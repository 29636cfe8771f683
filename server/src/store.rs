//! Durable storage of readings, device registry and status. [`Store`] is what ingest writes
//! through; reads go through [`telemetry::TelemetrySource`], which every store implements.

mod change_log;
mod chunks;
mod codec;
mod handle;
mod head;
mod redb_store;
mod registry;
mod retention;
mod rollup;
mod series_ids;

/// The store's in-memory maps, looked up for every reading: foldhash, not std's SipHash, which
/// was 2% of ingest. It is seeded per process; device ids and metric names come from
/// authenticated devices, within the per-device metric limit.
type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

pub use redb_store::RedbStore;
pub use retention::{Horizons, Retention};

use telemetry::{
    DashboardStore, DeviceAdmin, DeviceId, LiveEvent, Message, Millis, SourceError, TelemetrySource,
};

/// An accepted message with the server time it arrived.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub message: Message,
    pub received: Millis,
}

/// A device's `online`/`offline` report.
#[derive(Debug, Clone)]
pub struct StatusReport {
    pub device: DeviceId,
    pub online: bool,
    pub at: Millis,
}

/// What one commit did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitOutcome {
    /// Readings newly stored.
    pub stored: u64,
    /// Readings that were already stored (same device, metric and time) and left as they were.
    pub duplicates: u64,
    /// Messages that stored something new.
    pub fresh_messages: u64,
    /// The changes this commit made, numbered, in order: what live clients are sent.
    pub events: Vec<LiveEvent>,
    /// `events` as the JSON written to the change log, which is also what goes on the wire.
    pub wire: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("storage: {0}")]
    Redb(#[from] redb::Error),
    #[error("storage: cannot create {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("storage: corrupt device record for {device}: {source}")]
    CorruptRecord { device: String, source: serde_json::Error },
    #[error("storage: {0}")]
    Corrupt(String),
    #[error("storage: the database is being reopened after a failed write")]
    Unavailable,
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Redb(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::CompactionError
);

/// The one conversion to the read side's error, at the trait boundary: only the kind of
/// failure crosses (the cause is logged where it is converted).
impl From<StoreError> for SourceError {
    fn from(e: StoreError) -> SourceError {
        match e {
            StoreError::Unavailable => SourceError::Unavailable,
            StoreError::Corrupt(_) | StoreError::CorruptRecord { .. } => SourceError::Corrupt,
            StoreError::CreateDir { .. } => SourceError::Io,
            StoreError::Redb(e) => match e {
                redb::Error::Io(_) => SourceError::Io,
                redb::Error::Corrupted(_) => SourceError::Corrupt,
                // redb wants the file opened again, which the next write does.
                redb::Error::PreviousIo | redb::Error::DatabaseClosed => SourceError::Unavailable,
                _ => SourceError::Failed,
            },
        }
    }
}

pub trait Store: TelemetrySource + DashboardStore + DeviceAdmin {
    /// Stores a batch of messages and status reports in one durable transaction: when this
    /// returns `Ok`, everything in it survives a crash. Idempotent per (device, metric, time).
    fn commit(&self, messages: &[Incoming], statuses: &[StatusReport]) -> Result<CommitOutcome, StoreError>;

    /// Every device the registry holds, registered or not (a status alone makes a record):
    /// what the device cap counts.
    fn known_devices(&self) -> Vec<telemetry::DeviceSummary>;

    /// Whether the database answers reads.
    fn healthy(&self) -> bool;

    /// Deletes what each level holds from before its horizon: raw readings and change-log
    /// entries, and minute and hour rollups of periods that ended by it. Readings still in
    /// the head are rolled up before they go.
    fn prune(&self, horizons: Horizons) -> Result<Pruned, StoreError>;

    /// Compresses readings older than `before` into sealed chunks; returns how many moved.
    fn seal(&self, before: Millis) -> Result<u64, StoreError>;

    /// Keeps only the latest `keep` entries of the change log; returns how many went.
    fn trim_changes(&self, keep: u64) -> Result<u64, StoreError>;
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub readings: u64,
    pub changes: u64,
    /// Rollup rows (one per series and period).
    pub minute_rollups: u64,
    pub hour_rollups: u64,
}

#[cfg(test)]
mod engine_tests;
