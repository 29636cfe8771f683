//! Background pruning: every `storage.prune_interval_secs`, readings (and change-log entries)
//! older than `storage.retention_days` are deleted, so disk use stays flat.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info};

use crate::ingest::now_ms;
use crate::metrics::Metrics;
use crate::store::Store;

const DAY_MS: i64 = 86_400_000;

/// Runs until `stop` turns true; does nothing when `days` is 0 (keep everything).
pub async fn run(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    days: u64,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    if days == 0 {
        return;
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        let before = now_ms() - days as i64 * DAY_MS;
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.prune(before)).await {
            Ok(Ok(p)) => {
                metrics.pruned(p.readings, p.changes);
                if p.readings > 0 || p.changes > 0 {
                    info!(readings = p.readings, changes = p.changes, days, "pruned data past the retention");
                }
            }
            Ok(Err(e)) => error!(error = %e, "pruning failed; will retry"),
            Err(e) => error!(error = %e, "pruning panicked; will retry"),
        }
    }
}
