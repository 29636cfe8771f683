//! [`Store`] for [`PgBlocking`]: the whole store a node's server runs on, its companions'
//! traits being in their own modules. One commit carries readings, reports, the alarm
//! engine's changes and retained messages in one transaction ([`PgStore::commit`]).

use telemetry::{DeviceSummary, Millis};

use super::super::api::{Incoming, Pruned, Report, Store};
use super::super::error::StoreError;
use super::super::outcome::CommitOutcome;
use super::super::retained::RetainedChange;
use super::super::retention::Horizons;
use super::blocking::PgBlocking;
use super::error::PgError;
use super::ingest::Besides;
use super::store::PgStore;
use crate::alarms::engine::Changes;

impl PgStore {
    /// Whether the database answers a query (for `/healthz`: a load balancer takes a node
    /// whose database is gone out of rotation).
    pub async fn healthy(&self) -> Result<bool, PgError> {
        let client = self.pool.get().await?;
        Ok(client.simple_query("SELECT 1").await.is_ok())
    }

    /// Whether a pooled session to the database is encrypted, as the database sees it.
    pub async fn session_uses_tls(&self) -> Result<bool, PgError> {
        let client = self.pool.get().await?;
        let row = client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await?;
        Ok(row.get(0))
    }
}

impl Store for PgBlocking {
    fn commit_retaining(
        &self,
        messages: &[Incoming],
        reports: &[Report],
        alarms: &Changes,
        retained: &[RetainedChange],
    ) -> Result<CommitOutcome, StoreError> {
        // Owned by the query, which runs on the store's runtime.
        let (messages, reports, alarms, retained) =
            (messages.to_vec(), reports.to_vec(), alarms.clone(), retained.to_vec());
        self.call(|pg| async move {
            let besides = Besides { reports: &reports, alarms: &alarms, retained: &retained };
            pg.commit(&messages, Some(besides)).await
        })
    }

    fn known_devices(&self) -> Vec<DeviceSummary> {
        // The trait answers no error: a database that does not answer knows no device yet,
        // and the device cap is checked again where devices are first stored.
        self.call(|pg| async move { pg.known_devices().await }).unwrap_or_else(|e| {
            tracing::error!(error = %e, "postgres: the known devices could not be read");
            Vec::new()
        })
    }

    fn end_connections(&self, at: Option<Millis>) -> Result<u64, StoreError> {
        self.call(|pg| async move { pg.end_connections(at).await })
    }

    fn healthy(&self) -> bool {
        self.call(|pg| async move { pg.healthy().await }).unwrap_or(false)
    }

    fn prune(&self, horizons: Horizons) -> Result<Pruned, StoreError> {
        self.call(|pg| async move { pg.prune(horizons).await })
    }

    /// PostgreSQL's sealing is the roll-up pass: the readings ingest queued (taken before
    /// `before`) are folded into their minutes and hours ([`PgStore::roll_up`]); answers how
    /// many. Any node may run it: passes take turns on the queue's rows.
    fn seal(&self, before: Millis) -> Result<u64, StoreError> {
        self.call(|pg| async move { pg.roll_up(before).await })
    }

    fn trim_changes(&self, keep: u64) -> Result<u64, StoreError> {
        self.call(|pg| async move { pg.trim_changes(keep).await })
    }
}
