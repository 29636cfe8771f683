//! A lease this node keeps trying to hold, for work only one node of a cluster may do at a
//! time (sending notifications): a task takes it when it is free and renews it well before it
//! runs out; [`Lease::held`] says whether the work may go on now. The lease is counted as held
//! only until it would run out had the last renewal been the database's last word, so a node
//! cut off from the database stops before another node can take over ([`PgStore::acquire`]).

use std::sync::Arc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};

use crate::metrics::Metrics;
use crate::store::postgres::{Held, PgStore};

/// How long a lease lasts: how soon another node takes over after this one dies.
pub const LENGTH: Duration = Duration::from_secs(10);
/// How often it is renewed (or tried for).
pub const RENEW: Duration = Duration::from_secs(3);

pub struct Lease {
    name: String,
    node: String,
    /// Until when this node may act on it, and the epoch it holds it at.
    until: Mutex<Option<(Instant, Held)>>,
    /// Where whether this node holds it is shown (`iot_lease_held`).
    metrics: OnceLock<Arc<Metrics>>,
}

impl Lease {
    /// Whether this node holds the lease now.
    pub fn held(&self) -> bool {
        self.holding().is_some()
    }

    /// The epoch this node holds the lease at now, if it does: what its work's commits are
    /// fenced with.
    pub fn holding(&self) -> Option<Held> {
        let until = *self.until.lock().expect("lease lock");
        until.filter(|(until, _)| Instant::now() < *until).map(|(_, held)| held)
    }

    /// The node that wants it.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The lease `name`, for `node`, not held until [`Lease::keep`] takes it.
    pub fn new(name: &str, node: &str) -> Arc<Lease> {
        Arc::new(Lease {
            name: name.to_owned(),
            node: node.to_owned(),
            until: Mutex::new(None),
            metrics: OnceLock::new(),
        })
    }

    /// Shows in `metrics` whether this node holds the lease (`iot_lease_held{lease=…}`).
    pub fn report_to(&self, metrics: Arc<Metrics>) {
        metrics.lease(&self.name, false);
        let _ = self.metrics.set(metrics);
    }

    fn report(&self, held: bool) {
        if let Some(metrics) = self.metrics.get() {
            metrics.lease(&self.name, held);
        }
    }

    /// Takes the lease whenever it is free and renews it, until `stop` (then gives it up).
    pub async fn keep(self: Arc<Lease>, store: Arc<PgStore>, mut stop: watch::Receiver<bool>) {
        let length_ms = LENGTH.as_millis() as i64;
        let mut held: Option<Held> = None;
        loop {
            // Counted from before the request: the database's clock started the lease later.
            let asked = Instant::now();
            let outcome = match held {
                Some(h) => store.renew(&self.name, &self.node, h, length_ms).await.map(|ok| ok.then_some(h)),
                None => store.acquire(&self.name, &self.node, length_ms).await,
            };
            match outcome {
                Ok(Some(h)) => {
                    if held.is_none() {
                        info!(lease = %self.name, node = %self.node, "lease taken");
                    }
                    held = Some(h);
                    self.report(true);
                    // A margin for the clocks' rates and the time the answer took.
                    *self.until.lock().expect("lease lock") = Some((asked + LENGTH - RENEW, h));
                }
                Ok(None) => {
                    if held.is_some() {
                        warn!(lease = %self.name, node = %self.node, "lease lost to another node");
                    }
                    held = None;
                    *self.until.lock().expect("lease lock") = None;
                    self.report(false);
                }
                // Held, if at all, until the last renewal runs out.
                Err(e) => warn!(lease = %self.name, error = %e, "lease: the database did not answer"),
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(RENEW) => {}
            }
        }
        // A clean stop hands the lease on at once.
        self.report(false);
        if let Some(h) = held {
            *self.until.lock().expect("lease lock") = None;
            let _ = store.release(&self.name, &self.node, h).await;
        }
    }
}
