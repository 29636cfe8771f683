//! [`PgStore`]: one node's handle on the database (its pool and what it remembers of the
//! database), and opening it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use telemetry::Millis;

use super::error::PgError;
use super::pool::{self, PgSettings};
use super::span::Span;
use super::{schema, starter};

/// A handle on the database: cheap to share (`Arc`), one per node.
pub struct PgStore {
    pub(super) pool: deadpool_postgres::Pool,
    /// How the pool connects, for connections of its own (the change log's listener).
    pub(super) connect: pool::Connect,
    /// The span of the readings' partitions, as the database was made with.
    pub(super) span: Span,
    /// (device, metric) → series id, for series whose row is committed: ingest looks the
    /// ids up here first. Entries are a few dozen bytes each and only grow with series,
    /// which the device cap bounds.
    pub(super) series: Mutex<HashMap<(String, String), i32>>,
    /// Starts of the partitions this node knows exist. Another node may drop one (retention);
    /// ingest then finds it missing, forgets these and makes it again.
    pub(super) partitions: Mutex<BTreeSet<Millis>>,
    /// Whether ingest copies a batch straight into the readings (true: the last batch stored
    /// every reading it carried) or stages it first (a batch held a reading already stored).
    /// A hint only, per node: either way the outcome is exact ([`super::ingest`]).
    pub(super) expect_new: AtomicBool,
}

impl PgStore {
    /// Connects, brings the schema up to date and reads the partition span the database was
    /// made with (the setting only applies to a new database; a different one is logged).
    pub async fn open(settings: &PgSettings) -> Result<PgStore, PgError> {
        let (pool, connect) = pool::pool(settings)?;
        let mut client = pool.get().await?;
        let span = schema::migrate(&mut client, settings.span).await?;
        starter::seed(&mut client).await?;
        if span != settings.span {
            tracing::warn!(
                stored = span.hours(),
                setting = settings.span.hours(),
                "postgres: the readings' partitions keep the span the database was made with"
            );
        }
        drop(client);
        Ok(PgStore {
            pool,
            connect,
            span,
            series: Mutex::default(),
            partitions: Mutex::default(),
            expect_new: AtomicBool::new(true),
        })
    }

    /// The partitions' span in use.
    pub fn span(&self) -> Span {
        self.span
    }
}
