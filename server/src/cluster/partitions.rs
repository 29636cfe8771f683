//! Work split by device partition (the alarm engine's, commands'): each partition is a lease,
//! and the nodes share them out. A node keeps a lease of its own (`node/<name>`) so every node
//! knows how many are alive. Its share is the count over the nodes alive, rounded up, and its
//! floor the same rounded down: it hands one back each turn while it holds more than its
//! share, or more than the floor while another node alive holds fewer than the floor (a node
//! just joined), and takes free ones up to the floor, then up to its share unless another
//! node is below the floor. So partitions spread over nodes as they join, with 8 partitions
//! over 5 to 7 nodes too (each holding one or two).
//!
//! A node that dies is replaced partition by partition. It renewed its own lease before its
//! partitions', so that runs out first: by the time its partitions are free, the others count
//! one node fewer and their shares have grown to take them, at their next turn. A partition
//! no node under its share takes (the count not caught up yet) is taken by any node once it
//! has been free for [`ORPHAN`], so the work never waits long on the count.
//!
//! Each partition's lease is the single-holder [`crate::store::postgres`] lease with its
//! epoch and fencing, so a node that lost one has its work refused, never done twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};

use super::lease::{LENGTH, RENEW};
use crate::metrics::Metrics;
use crate::store::postgres::{Held, PgError, PgStore};

/// What each node's own lease is named after: `node/<its name>`.
pub const NODES: &str = "node/";

/// How long a partition stays free before any node takes it, whatever its share: two turns,
/// time enough for a node under its share to take it.
pub const ORPHAN: Duration = Duration::from_secs(6);

pub struct Partitions {
    /// The leases' names: `<prefix><n>` for n below `count`.
    prefix: &'static str,
    count: u32,
    node: String,
    /// The partitions held, until when this node may act on each, and the epoch.
    held: Mutex<BTreeMap<u32, (Instant, Held)>>,
    metrics: Arc<Metrics>,
}

impl Partitions {
    /// The partitions `<prefix>0` to `<prefix><count - 1>` for `node`, none held until
    /// [`Partitions::keep`] takes them; shown in `metrics` (`iot_lease_held`).
    pub fn new(prefix: &'static str, count: u32, node: &str, metrics: Arc<Metrics>) -> Arc<Partitions> {
        let partitions =
            Partitions { prefix, count, node: node.to_owned(), held: Mutex::new(BTreeMap::new()), metrics };
        for n in 0..count {
            partitions.metrics.lease(&partitions.name(n), false);
        }
        Arc::new(partitions)
    }

    fn name(&self, n: u32) -> String {
        format!("{}{n}", self.prefix)
    }

    /// The node that wants them.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The partitions this node holds now, with the epoch of each: what their work's commits
    /// are fenced with.
    pub fn holding(&self) -> BTreeMap<u32, Held> {
        let now = Instant::now();
        let held = self.held.lock().expect("partitions lock");
        held.iter().filter(|(_, (until, _))| now < *until).map(|(n, (_, h))| (*n, *h)).collect()
    }

    fn set(&self, n: u32, held: Option<(Instant, Held)>) {
        let mut all = self.held.lock().expect("partitions lock");
        match held {
            Some(h) => all.insert(n, h),
            None => all.remove(&n),
        };
    }

    /// Takes, renews and hands back partitions every [`RENEW`] until `stop` (then gives them
    /// all up, and this node's own lease first, so the others take them at once).
    pub async fn keep(self: Arc<Partitions>, store: Arc<PgStore>, mut stop: watch::Receiver<bool>) {
        let own = format!("{NODES}{}", self.node);
        let mut mine: BTreeMap<u32, Held> = BTreeMap::new();
        let mut alive: Option<Held> = None;
        loop {
            if let Err(e) = self.turn(&store, (&own, &mut alive), &mut mine).await {
                warn!(partitions = %self.prefix, error = %e, "partitions: the database did not answer");
            }
            for n in 0..self.count {
                self.metrics.lease(&self.name(n), mine.contains_key(&n));
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(RENEW) => {}
            }
        }
        if let Some(h) = alive {
            let _ = store.release(&own, &self.node, h).await;
        }
        for (n, h) in mine {
            self.set(n, None);
            self.metrics.lease(&self.name(n), false);
            let _ = store.release(&self.name(n), &self.node, h).await;
        }
    }

    /// One turn: this node's own lease renewed, then its partitions (in that order, so its own
    /// runs out first if it dies), then one handed back if it holds too many, or free ones
    /// taken up to its share (and orphans past it).
    async fn turn(
        &self,
        store: &PgStore,
        (own, alive): (&str, &mut Option<Held>),
        mine: &mut BTreeMap<u32, Held>,
    ) -> Result<(), PgError> {
        let length_ms = LENGTH.as_millis() as i64;
        *alive = store.acquire(own, &self.node, length_ms).await?;
        for (n, h) in mine.clone() {
            // Counted from before the request: the database's clock started the lease later.
            let asked = Instant::now();
            if store.renew(&self.name(n), &self.node, h, length_ms).await? {
                self.set(n, Some((asked + LENGTH - RENEW, h)));
            } else {
                warn!(lease = %self.name(n), node = %self.node, "partition lost to another node");
                self.set(n, None);
                mine.remove(&n);
            }
        }
        let (seen, alive) = store.lease_set(self.prefix, NODES, ORPHAN.as_millis() as i64).await?;
        let alive = alive.max(1);
        let (floor, share) = (self.count as usize / alive, (self.count as usize).div_ceil(alive));
        // Whether another node alive holds fewer than the floor: one holding none has no row,
        // so it shows as fewer holders than nodes alive.
        let mut others: HashMap<&str, usize> = HashMap::new();
        for s in seen.iter().filter(|s| s.held && s.holder != self.node) {
            *others.entry(s.holder.as_str()).or_default() += 1;
        }
        let starved = others.len() + 1 < alive || others.values().any(|&k| k < floor);
        if mine.len() > share || (mine.len() > floor && starved) {
            if let Some((n, h)) = mine.pop_last() {
                self.set(n, None);
                store.release(&self.name(n), &self.node, h).await?;
                info!(lease = %self.name(n), node = %self.node, share, "partition handed back");
            }
            return Ok(());
        }
        for n in 0..self.count {
            let name = self.name(n);
            // A partition no node ever took has no row yet: free, and nobody's.
            let (held, orphaned) =
                seen.iter().find(|s| s.name == name).map_or((false, true), |s| (s.held, s.orphaned));
            // Up to the floor, then up to the share unless another node is below the floor
            // (it takes it); an orphan whatever the share.
            let wanted = mine.len() < floor || (mine.len() < share && !starved) || orphaned;
            if held || mine.contains_key(&n) || !wanted {
                continue;
            }
            let asked = Instant::now();
            if let Some(h) = store.acquire(&name, &self.node, length_ms).await? {
                info!(lease = %name, node = %self.node, share, "partition taken");
                mine.insert(n, h);
                self.set(n, Some((asked + LENGTH - RENEW, h)));
            }
        }
        Ok(())
    }
}
