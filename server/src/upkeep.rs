//! Storage upkeep in the background:
//! - every `storage.seal_interval_secs`, readings older than [`SEAL_AGE`] are compressed into
//!   sealed chunks, and the change log is cut to its latest `storage.change_log` entries;
//! - every `storage.prune_interval_secs`, each level of storage is cut to its own retention:
//!   readings (and change-log entries) to `storage.retention_days`, minute and hour rollups
//!   to `storage.minute_rollup_days` and `hour_rollup_days` (0 days keeps a level), so disk
//!   use stays flat while long charts keep their rollups;
//! - every [`SESSION_PRUNE_EVERY`], expired sign-in sessions are deleted, and alarms cleared and
//!   acknowledged before `alarms.retention_days`.
//!
//! Several nodes on one database: one node does it, the one holding the lease [`LEASE`]; the
//! others skip each job while they do not hold it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info};

use crate::auth::Auth;
use crate::clock::now_ms;
use crate::cluster::lease::Lease;
use crate::config::StorageConfig;
use crate::metrics::Metrics;
use crate::store::{Pruned, Store};

/// A day, in milliseconds.
const DAY_MS: i64 = 86_400_000;
/// How old a reading must be to be sealed (or the seal interval, when that is shorter): old
/// enough that a device's ordinary delays (a retry, a redelivery after a brief reconnect) still
/// find it in the head, where a duplicate is spotted in memory rather than in a chunk; young
/// enough that the head holds little more than one seal interval. Sealing readings a whole
/// interval old kept one to two intervals in memory, about 10 MB at 1,000 devices × 5 metrics
/// at 1 Hz. Chunks are as large either way: each seal tops up the series' last one.
pub const SEAL_AGE: Duration = Duration::from_secs(15);
/// The lease whose holder does the upkeep of a cluster's database.
pub const LEASE: &str = "upkeep";
/// How often expired sessions are deleted.
pub const SESSION_PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Runs until `stop` turns true.
pub async fn run(
    store: Arc<dyn Store>,
    auth: Arc<Auth>,
    metrics: Arc<Metrics>,
    config: StorageConfig,
    alarm_retention_days: u64,
    lease: Option<Arc<Lease>>,
    mut stop: watch::Receiver<bool>,
) {
    let seal_every = Duration::from_secs(config.seal_interval_secs);
    let retention = config.retention();
    let mut seal = tokio::time::interval(seal_every);
    let mut prune = tokio::time::interval(Duration::from_secs(config.prune_interval_secs));
    let mut sessions = tokio::time::interval(SESSION_PRUNE_EVERY);
    seal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    sessions.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    enum Job {
        Seal,
        Prune,
        Sessions,
    }
    loop {
        let job = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = seal.tick() => Job::Seal,
            _ = prune.tick(), if retention.prunes() => Job::Prune,
            _ = sessions.tick() => Job::Sessions,
        };
        if lease.as_ref().is_some_and(|lease| !lease.held()) {
            continue;
        }
        if let Job::Sessions = job {
            let auth = auth.clone();
            if let Some(e) =
                tokio::task::spawn_blocking(move || auth.prune_sessions().err()).await.unwrap_or(None)
            {
                error!(error = %e, "cannot delete expired sessions");
            }
            if alarm_retention_days > 0 {
                let before = now_ms().saturating_sub((alarm_retention_days as i64).saturating_mul(DAY_MS));
                let s = store.clone();
                if let Some(n) = blocking(move || s.prune_alarms(before)).await
                    && n > 0
                {
                    info!(
                        alarms = n,
                        days = alarm_retention_days,
                        "deleted alarm history past the retention"
                    );
                }
            }
        } else if let Job::Seal = job {
            let before = now_ms() - seal_every.min(SEAL_AGE).as_millis() as i64;
            let keep = config.change_log;
            let s = store.clone();
            if let Some((sealed, trimmed)) =
                blocking(move || Ok((s.seal(before)?, s.trim_changes(keep)?))).await
            {
                metrics.sealed(sealed, trimmed);
            }
        } else {
            let horizons = retention.horizons(now_ms());
            let s = store.clone();
            if let Some(p) = blocking(move || s.prune(horizons)).await {
                metrics.pruned(p.readings, p.changes);
                metrics.rollups_pruned(p.minute_rollups, p.hour_rollups);
                if p != Pruned::default() {
                    info!(
                        readings = p.readings,
                        changes = p.changes,
                        minute_rollups = p.minute_rollups,
                        hour_rollups = p.hour_rollups,
                        "pruned data past its retention"
                    );
                }
            }
        }
    }
}

/// Runs a storage job off the async threads; failures are logged and retried next time.
async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Option<T> {
    match tokio::task::spawn_blocking(job).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            error!(error = %e, "storage upkeep failed; will retry");
            None
        }
        Err(e) => {
            error!(error = %e, "storage upkeep panicked; will retry");
            None
        }
    }
}
