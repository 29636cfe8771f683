//! The file's layout: the tables not owned by a module of their own, the schema version and
//! its history, the counters kept in META, opening (or creating) a file and converting one
//! written by an older version, and loading what the store keeps in memory.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use telemetry::Millis;

use super::super::change_log::CHANGES;
use super::super::chunks::{self, CHUNKS, SEALED};
use super::super::connection_log::{CONNECTIONS, COUNTS as CONNECTION_COUNTS, OPEN as CONNECTIONS_OPEN};
use super::super::device_events::DEVICE_EVENTS;
use super::super::error::StoreError;
use super::super::handle::Handle;
use super::super::head::{self, HEAD, Head};
use super::super::maps::FastMap;
use super::super::registry::{CHECKPOINT, DEVICES, META, Registry, counter};
use super::super::series_ids::SeriesIds;
use super::super::{retention, rollup};
use super::{Memory, RedbStore, alarms, dashboards};

/// (device, metric) → series id.
pub(super) const SERIES: TableDefinition<(&str, &str), u32> = TableDefinition::new("series");

/// 1: a row per reading, keyed (series, time); 2: head, chunks and rollups (a version 1
/// file's readings are sealed into chunks and rollups on first open); 3: the head written a
/// batch per commit (a version 2 file's head rows are moved into batches on first open);
/// 4: rollups packed, a row per series and hour of minutes or day of hours, and the horizons
/// each level was pruned to (a version 2 or 3 file's rollups are packed on first open).
pub(super) const SCHEMA_VERSION: u64 = 4;
/// The version 1 readings table.
pub(super) const POINTS_V1: TableDefinition<(u32, i64), f64> = TableDefinition::new("points");

/// META keys: the schema version the file was last written by, ...
pub(super) const VERSION_KEY: &str = "schema_version";
/// ... the latest change number handed out, ...
pub(super) const LAST_SEQ: &str = "last_seq";
/// ... and the next series id.
pub(super) const NEXT_SERIES: &str = "next_series_id";

/// Page cache when none is configured: `storage.cache_mb`'s default.
pub const DEFAULT_CACHE_BYTES: usize = 2 << 20;

/// The latest change number handed out.
pub(super) fn last_seq(tx: &WriteTransaction) -> Result<u64, StoreError> {
    counter(&tx.open_table(META)?, LAST_SEQ)
}

/// Every change up to this one is in the stored device records.
pub(super) fn checkpoint(tx: &WriteTransaction) -> Result<u64, StoreError> {
    counter(&tx.open_table(META)?, CHECKPOINT)
}

impl RedbStore {
    /// Opens (or creates) the database file, creating its folder if needed. After a crash redb
    /// repairs the file here, before anything is served.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens with at most `cache_bytes` of pages cached in memory (redb's own default, 1 GiB,
    /// would let the server's memory grow with the database).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<RedbStore, StoreError> {
        let create = |at: &Path, source| StoreError::CreateDir { path: at.display().to_string(), source };
        if let Some(dir) = path.parent() {
            crate::files::private_dir(dir).map_err(|e| create(dir, e))?;
        }
        crate::files::private_file(path).map_err(|e| create(path, e))?;
        let db = Database::builder().set_cache_size(cache_bytes).create(path)?;
        Self::init(db, Some(path.to_owned()), cache_bytes)
    }

    /// An in-memory store, for tests.
    pub fn in_memory() -> Result<RedbStore, StoreError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::init(db, None, 0)
    }

    /// Creates the tables, converts a file written by an older version, and loads memory.
    pub(super) fn init(
        db: Database,
        path: Option<PathBuf>,
        cache_bytes: usize,
    ) -> Result<RedbStore, StoreError> {
        let tx = db.begin_write()?;
        {
            tx.open_table(HEAD)?;
            tx.open_table(CHUNKS)?;
            tx.open_table(SEALED)?;
            rollup::init(&tx)?;
            retention::init(&tx)?;
            let version = tx.open_table(META)?.get(VERSION_KEY)?.map(|v| v.value());
            match version {
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::Corrupt(format!(
                        "the database was written by a newer version of the dashboard (schema {v}, this one reads up to {SCHEMA_VERSION})"
                    )));
                }
                Some(1) => migrate_v1(&tx)?,
                Some(2) => {
                    head::migrate_v2(&tx)?;
                    rollup::migrate_v3(&tx)?;
                }
                Some(3) => rollup::migrate_v3(&tx)?,
                _ => {}
            }
            tx.open_table(DEVICES)?;
            tx.open_table(SERIES)?;
            tx.open_table(CHANGES)?;
            tx.open_table(DEVICE_EVENTS)?;
            tx.open_table(CONNECTIONS)?;
            tx.open_table(CONNECTIONS_OPEN)?;
            tx.open_table(CONNECTION_COUNTS)?;
            dashboards::init(&tx)?;
            alarms::init(&tx)?;
            let mut meta = tx.open_table(META)?;
            meta.insert(VERSION_KEY, SCHEMA_VERSION)?;
            // Files from before checkpoints stored every change in the device records.
            if meta.get(CHECKPOINT)?.is_none() {
                let last = counter(&meta, LAST_SEQ)?;
                meta.insert(CHECKPOINT, last)?;
            }
        }
        tx.commit()?;
        let mem = Memory::load(&db.begin_read()?)?;
        Ok(RedbStore { db: Handle::new(db, path, cache_bytes), mem: RwLock::new(mem), write: Mutex::new(()) })
    }
}

/// Seals a version 1 file's readings, series by series, into chunks and rollups.
fn migrate_v1(tx: &WriteTransaction) -> Result<(), StoreError> {
    let mut run: Vec<(Millis, f64)> = Vec::new();
    let mut current = None;
    let flush = |sid: Option<u32>, run: &mut Vec<(Millis, f64)>| -> Result<(), StoreError> {
        if let Some(sid) = sid {
            let mut rollups = rollup::Pending::default();
            for (t, v) in run.iter() {
                rollups.add(sid, *t, *v);
            }
            chunks::seal(tx, sid, std::mem::take(run))?;
            rollups.write(tx)?;
        }
        Ok(())
    };
    {
        let old = tx.open_table(POINTS_V1)?;
        for entry in old.iter()? {
            let (k, v) = entry?;
            let (sid, t) = k.value();
            if current != Some(sid) {
                flush(current, &mut run)?;
                current = Some(sid);
            }
            run.push((t, v.value()));
        }
    }
    flush(current, &mut run)?;
    tx.delete_table(POINTS_V1)?;
    Ok(())
}

impl Memory {
    /// What the store keeps in memory, as of `rx`.
    pub(super) fn load(rx: &redb::ReadTransaction) -> Result<Memory, StoreError> {
        let (mut series, mut sealed) = (SeriesIds::default(), FastMap::default());
        for entry in rx.open_table(SERIES)?.iter()? {
            let (k, v) = entry?;
            let (device, metric) = k.value();
            series.insert(device.to_owned(), metric.to_owned(), v.value());
        }
        for entry in rx.open_table(SEALED)?.iter()? {
            let (k, v) = entry?;
            sealed.insert(k.value(), v.value());
        }
        Ok(Memory { series, head: Head::load(rx)?, devices: Registry::load(rx)?, sealed })
    }
}
