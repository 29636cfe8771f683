//! The redb store: what it keeps in memory beside the file, and one writer at a time. Series
//! ids are assigned per (device, metric) on first sight; a series' readings are kept in the
//! [`head`](super::head) until sealed into compressed [`chunks`](super::chunks), with
//! [`rollups`](super::rollup) per minute and hour for long ranges. The device
//! [`registry`](super::registry) is kept in memory and checkpointed.
//!
//! Its rooms: [`schema`] (tables, versions, migrations, opening a file), [`readings`]
//! (commits, sealing, pruning, and history, points and changes read back), [`devices`]
//! (names, notes, deleting), [`tags`], [`groups`], [`dashboards`], [`alarms`] (rules,
//! channels, states, alarms, their logs, the notification outbox), [`retained`] (the
//! embedded broker's retained messages), [`commands`] (commands to devices) and [`bulks`] (bulk
//! commands).

mod alarms;
mod bulks;
mod commands;
mod dashboards;
mod desired;
mod devices;
mod groups;
mod readings;
mod retained;
mod schema;
mod tags;

#[cfg(test)]
mod schema_tests;
#[cfg(test)]
mod tests;

use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use telemetry::{Millis, SourceError};

use super::chunks::{self, CHUNKS};
use super::error::StoreError;
use super::handle::{Handle, Write};
use super::head::Head;
use super::maps::FastMap;
use super::registry::Registry;
use super::series_ids::SeriesIds;

/// What the store keeps in memory.
struct Memory {
    /// (device, metric) → series id, as in the SERIES table.
    series: SeriesIds,
    head: Head,
    devices: Registry,
    /// series id → latest sealed reading time: readings at or before it may be in a chunk.
    sealed: FastMap<u32, i64>,
}

pub struct RedbStore {
    db: Handle,
    /// Changed only with `write` held and around the commit whose changes it mirrors, so a
    /// reader taking it with its read transaction sees both alike.
    mem: RwLock<Memory>,
    write: Mutex<()>,
}

/// Where a storage failure leaves the store for the dashboard (the read side's traits): its
/// cause is logged here, and the caller is told only what kind of failure it was.
fn answer<T>(f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, SourceError> {
    f().map_err(|e| {
        tracing::error!(error = %e, "storage request failed");
        SourceError::from(e)
    })
}

impl RedbStore {
    fn mem(&self) -> RwLockReadGuard<'_, Memory> {
        self.mem.read().unwrap_or_else(|e| e.into_inner())
    }

    fn mem_mut(&self) -> RwLockWriteGuard<'_, Memory> {
        self.mem.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the writer lock: one write at a time.
    fn writer(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Begins a write (the writer lock held). After the file was reopened, what memory holds
    /// is loaded again from it, as it stands after its last commit.
    fn begin_write(&self) -> Result<Write<'_>, StoreError> {
        let (tx, reopened) = self.db.write()?;
        if reopened {
            *self.mem_mut() = Memory::load(&self.db.read()?)?;
        }
        Ok(tx)
    }

    /// A read transaction and, as of it, `sid`'s head readings in `[from, to]`.
    fn snapshot(
        &self,
        sid: Option<u32>,
        from: Millis,
        to: Millis,
    ) -> Result<(redb::ReadTransaction, Vec<(Millis, f64)>), StoreError> {
        let mem = self.mem();
        let rx = self.db.read()?;
        Ok((rx, sid.map(|sid| mem.head.range(sid, from, to)).unwrap_or_default()))
    }

    fn series_id(&self, device: &str, metric: &str) -> Option<u32> {
        self.mem().series.get(device, metric)
    }

    /// Runs redb's integrity check (and repair), as after a crash.
    pub fn check_integrity(&self) -> Result<bool, StoreError> {
        let _writer = self.writer();
        self.db.check_integrity()
    }

    /// Number of stored points, across all series.
    pub fn point_count(&self) -> Result<u64, StoreError> {
        let (head, rx) = {
            let mem = self.mem();
            (mem.head.len(), self.db.read()?)
        };
        Ok(head + chunks::sealed_count(&rx.open_table(CHUNKS)?)?)
    }

    /// Readings waiting in the head, not yet sealed into chunks.
    pub fn head_count(&self) -> u64 {
        self.mem().head.len()
    }

    /// Compacts the file, giving freed pages back to the file system (the server must be idle).
    pub fn compact(&mut self) -> Result<bool, StoreError> {
        self.db.compact()
    }
}
