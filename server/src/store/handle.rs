//! The database handle, and getting it back after a failed write. After an I/O error (a full
//! disk, say) redb may refuse or mishandle further writes until the file is opened again; so a
//! write transaction that ends without a successful commit (or a deliberate abort) marks the
//! handle, and the next one reopens the file first (redb then repairs it to its last commit). Until that succeeds,
//! writes fail and nothing is acknowledged; reads go on from the open file.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};

use super::error::StoreError;

pub(super) struct Handle {
    db: RwLock<Option<Database>>,
    /// The file, for reopening (none for an in-memory database).
    path: Option<PathBuf>,
    cache_bytes: usize,
    failed: AtomicBool,
}

/// A write transaction that marks its handle unless it commits.
pub(super) struct Write<'a> {
    tx: Option<WriteTransaction>,
    failed: &'a AtomicBool,
}

impl Deref for Write<'_> {
    type Target = WriteTransaction;

    fn deref(&self) -> &WriteTransaction {
        self.tx.as_ref().expect("a write is used only until it commits")
    }
}

impl Write<'_> {
    pub fn commit(mut self) -> Result<(), StoreError> {
        let tx = self.tx.take().expect("a write commits once");
        tx.commit().inspect_err(|_| self.failed.store(true, Ordering::Release)).map_err(Into::into)
    }

    /// Ends the write leaving the file as it was, as a refusal does: nothing failed, so the
    /// handle is not marked unless the abort itself fails.
    pub fn abort(mut self) -> Result<(), StoreError> {
        let tx = self.tx.take().expect("a write ends once");
        tx.abort().inspect_err(|_| self.failed.store(true, Ordering::Release)).map_err(Into::into)
    }
}

impl Drop for Write<'_> {
    fn drop(&mut self) {
        // Abandoned part-way: something in it failed.
        if self.tx.is_some() {
            self.failed.store(true, Ordering::Release);
        }
    }
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
    pub fn write(&self) -> Result<(Write<'_>, bool), StoreError> {
        let reopened = self.failed.load(Ordering::Acquire);
        if reopened {
            self.reopen()?;
        }
        let tx = self.with(|db| Ok(db.begin_write()?))?;
        Ok((Write { tx: Some(tx), failed: &self.failed }, reopened))
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
