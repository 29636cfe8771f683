//! One embedded broker per database. Nodes on one PostgreSQL with their own embedded brokers
//! would each reach only the devices connected to them: a command sent by the node holding a
//! device's partition would never reach a device connected to another node's broker, and each
//! node starting would end the others' devices' connections in the log. So a node with the
//! embedded broker on PostgreSQL holds the lease [`LEASE`] while it runs, and a second one is
//! refused at start with a message saying what to do instead (a shared broker: `mqtt.mode =
//! "external"`). A node restarted after a crash on the same address waits for its earlier
//! self's lease to run out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;

use super::lease::{LENGTH, Lease, RENEW};
use crate::store::postgres::PgBlocking;

/// The lease a node with the embedded broker holds.
pub const LEASE: &str = "embedded_broker";

/// Why a node may not run the embedded broker on its database.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "another node on this database ({0}) runs the embedded MQTT broker: nodes sharing a \
         database share one broker, so set mqtt.mode = \"external\" on every node and point \
         them at it (README, \"Cluster mode\")"
    )]
    Elsewhere(String),
    #[error("the embedded broker's lease: {0}")]
    Database(String),
}

/// Takes [`LEASE`] for `lease`'s node, named `<its address>-<random>`, before its broker
/// starts. Held by a node on another address: refused at once. Held by one on the same
/// address (this node's earlier self, killed): waits up to a lease's length and a turn for it
/// to run out, and is refused if it does not.
pub async fn claim(pg: &PgBlocking, lease: &Arc<Lease>) -> Result<(), ClaimError> {
    let length_ms = LENGTH.as_millis() as i64;
    let node = lease.node().to_owned();
    let address = node.rsplit_once('-').map_or(node.as_str(), |(a, _)| a).to_owned();
    let deadline = Instant::now() + LENGTH + RENEW;
    let mut told = false;
    loop {
        let (store, name) = (pg.store().clone(), node.clone());
        let taken = pg
            .spawn(async move {
                match store.acquire(LEASE, &name, length_ms).await? {
                    Some(_) => Ok(None),
                    None => {
                        let all = store.leases().await?;
                        let holder = all.into_iter().find(|(lease, _, held)| lease == LEASE && *held);
                        Ok(Some(holder.map(|(_, holder, _)| holder).unwrap_or_default()))
                    }
                }
            })
            .await
            .map_err(|e| ClaimError::Database(e.to_string()))?
            .map_err(|e: crate::store::postgres::PgError| ClaimError::Database(e.to_string()))?;
        let Some(holder) = taken else { return Ok(()) };
        // No holder by the time the list was read: it ran out meanwhile; try again.
        let earlier_self = holder.is_empty() || holder.rsplit_once('-').is_some_and(|(a, _)| a == address);
        if !earlier_self || Instant::now() >= deadline {
            return Err(ClaimError::Elsewhere(holder));
        }
        if !told {
            info!(holder = %holder, "the embedded broker's lease is held by this address's earlier run; waiting for it to run out");
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
