//! The store's error, and what of it crosses to the read side.

use telemetry::SourceError;

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
    /// A database server's failure (PostgreSQL's, converted where it is raised), with what
    /// the read side is told of it.
    #[error("{source}")]
    Database { kind: SourceError, source: Box<dyn std::error::Error + Send + Sync> },
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
            StoreError::Database { kind, .. } => kind,
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
