//! The database handle, and getting it back after a failed write. After an I/O error (a full
//! disk, say) redb refuses every further transaction until the file is opened again; so a
//! failed write marks the handle, and the next write reopens the file first (redb then
//! repairs it to its last commit). Until that succeeds, writes fail and nothing is
//! acknowledged; reads go on from the open file.

use std::path::PathBuf;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};

use super::StoreError;

pub(super) struct Handle {
    db: RwLock<Option<Database>>,
    /// The file, for reopening (none for an in-memory database).
    path: Option<PathBuf>,
    cache_bytes: usize,
    failed: AtomicBool,
}

impl Handle {
    pub fn new(db: Database, path: Option<PathBuf>, cache_bytes: usize) -> Handle {
        Handle { db: RwLock::new(Some(db)), path, cache_bytes, failed: AtomicBool::new(false) }
    }

    fn with<T>(&self, f: impl FnOnce(&Database) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let db = self.db.read().unwrap_or_else(|e| e.into_inner());
        f(db.as_ref().ok_or(StoreError::Unavailable)?)
    }

    pub fn read(&self) -> Result<ReadTransaction, StoreError> {
        self.with(|db| Ok(db.begin_read()?))
    }

    /// Begins a write (with the store's writer lock held); `true` alongside it when the file
    /// was reopened first, so what the store keeps in memory must be loaded again.
    pub fn write(&self) -> Result<(WriteTransaction, bool), StoreError> {
        let reopened = self.failed.load(Ordering::Acquire);
        if reopened {
            self.reopen()?;
        }
        Ok((self.with(|db| Ok(db.begin_write()?))?, reopened))
    }

    /// Notes a failed write: the next one reopens the file.
    pub fn fail<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() {
            self.failed.store(true, Ordering::Release);
        }
        result
    }

    fn reopen(&self) -> Result<(), StoreError> {
        let Some(path) = &self.path else { return Err(StoreError::Unavailable) };
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        // The old handle must be gone before the file can be opened again.
        drop(db.take());
        *db = Some(Database::builder().set_cache_size(self.cache_bytes).create(path)?);
        self.failed.store(false, Ordering::Release);
        tracing::warn!(path = %path.display(), "storage reopened after a failed write");
        Ok(())
    }

    pub fn compact(&self) -> Result<bool, StoreError> {
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        Ok(db.as_mut().ok_or(StoreError::Unavailable)?.compact()?)
    }

    pub fn check_integrity(&self) -> Result<bool, StoreError> {
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        Ok(db.as_mut().ok_or(StoreError::Unavailable)?.check_integrity()?)
    }
}
