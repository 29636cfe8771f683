//! Feeds a node's live hub from the shared change log, so its `/ws/live` clients see every
//! change any node committed, in the log's order, without gaps or repeats.
//!
//! The node listens for the numbers other nodes announce at commit ([`PgStore::follow`]) and
//! reads the log from the last number it passed on ([`PgStore::changes_since`]), so a missed
//! or coalesced announcement costs nothing: the next read takes everything up to the newest.
//! The log's numbers become visible only in order (change_log.rs says how), so reading
//! `seq > last` never passes a change committed a moment later. When the listener's
//! connection drops, the tail listens again and then reads what it missed; a client that
//! falls behind the hub's window is told to resync, as on a single node.
//!
//! The log's command changes go to the node's command feed too
//! ([`crate::ingest::Ingest::command_changes`]: dispatch, and those waiting for a command's
//! answer), so a device's answer any node stored is heard on every node.

use std::sync::Arc;
use std::time::Duration;

use telemetry::LiveEvent;
use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

use crate::hub::Hub;
use crate::ingest::CommandChange;
use crate::store::postgres::{MAX_TAIL, PgError, PgStore};

/// Waits between attempts while the database does not answer, doubling up to the longest.
const RETRY: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Where the tail passes changes on to: the live hub, and the command changes to the
/// node's command feed.
pub struct Feeds {
    pub hub: Hub,
    pub commands: broadcast::Sender<CommandChange>,
    /// The notification sender's wake-up, at each alarm change: notifications are queued
    /// with alarm changes, perhaps on another node than the one sending them.
    pub notifier: Arc<tokio::sync::Notify>,
}

/// Passes every change after `last` on, in order, until none is left; answers the number of
/// the last one passed on.
async fn drain(store: &PgStore, feeds: &Feeds, mut last: u64) -> Result<u64, PgError> {
    loop {
        let events = store.changes_since(last, MAX_TAIL as usize).await?;
        let full = events.len() == MAX_TAIL as usize;
        for event in &events {
            if let Some(seq) = event.seq() {
                last = last.max(seq);
            }
            feeds.hub.publish(event);
            if matches!(event, LiveEvent::Alarm { .. }) {
                feeds.notifier.notify_one();
            }
            if let LiveEvent::Command { seq, command, .. } = event {
                let change = CommandChange { seq: *seq, command: Arc::new((**command).clone()) };
                // An error only means nobody is listening.
                let _ = feeds.commands.send(change);
            }
        }
        if !full {
            return Ok(last);
        }
    }
}

/// Runs until `stop` turns true, starting after change `from` (the newest when the node
/// started: its clients load what came before from the log themselves).
pub async fn run(store: Arc<PgStore>, feeds: Feeds, from: u64, mut stop: watch::Receiver<bool>) {
    let mut last = from;
    let mut wait = RETRY;
    loop {
        // Listen first, then read: a change committed between the two is read now, and one
        // committed after is announced.
        let tailed = async {
            let mut follower = store.follow().await?;
            last = drain(&store, &feeds, last).await?;
            wait = RETRY;
            while let Some(newest) = follower.changed().await {
                if newest > last {
                    last = drain(&store, &feeds, last).await?;
                }
            }
            Ok::<(), PgError>(())
        };
        let outcome = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            outcome = tailed => outcome,
        };
        match outcome {
            Ok(()) => info!(last, "live tail: the listener's connection ended; listening again"),
            Err(e) => warn!(error = %e, last, retry_in = ?wait, "live tail: the database did not answer"),
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(RETRY_MAX);
    }
}
