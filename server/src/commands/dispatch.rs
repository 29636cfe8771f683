//! Sending commands: which device's connection takes its commands ([`Link`]), and which command
//! goes next. One command is in flight per device (SENT or DELIVERED); when it finishes, the
//! oldest QUEUED one follows. When a device subscribes again (a reconnect), a SENT command it
//! never acknowledged is sent again with the same id, and the queued ones follow in order.
//! Deadlines (ttl, response timeout) are kept by one timer over the unfinished commands, read
//! back from the store at start: what fell due while the server was down is due at once.
//!
//! Memory follows the store: it changes only from the feed of stored changes (and the answers
//! to the clock's own ops), and is read again from the store if it falls behind. A command
//! never moves back (a late word about an earlier state is dropped), and one that finished is
//! not taken up again.
//!
//! In cluster mode ([`Cluster`]) each device partition's commands are dispatched by one node,
//! the one holding the partition's lease (`commands/<n>`, shared out over the nodes:
//! [`crate::cluster::partitions`]). The feed is then the change log's, every node's changes
//! in order ([`crate::cluster::tail`]). A node that takes a partition reads every unfinished
//! command of the partitions it holds with the log's number of that moment (later changes come
//! from the feed, earlier ones are dropped) and the devices' presence; one that loses a
//! partition forgets its commands at once and sends them nothing more (the partition's lease is
//! checked again right before each send). Deadlines are kept by the holder alone, so each fires
//! once; a due command is finished once in any case, the store refusing a second finish.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use telemetry::Millis;
use telemetry::command::{Command, CommandEvent, CommandStatus, id_counter};
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{error, info, warn};

use crate::clock::now_ms;
use crate::cluster::partitions::Partitions;
use crate::ingest::{CommandChange, Ingest};
use crate::store::postgres::{PgBlocking, partition};
use crate::store::{CommandOp, Store};

/// How a command reaches a device.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Hands `command` to `link`'s connection; false if it could not be (the connection is gone).
    async fn send(&self, command: &Command, link: &Link) -> bool;

    /// Whether devices' subscriptions cannot be seen (an external broker), so a device counts
    /// as there while its status says online, each online status a new connection.
    fn presence_by_status(&self) -> bool {
        false
    }
}

/// A device's connection that subscribed to its commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Its MQTT client id.
    pub client: String,
    /// The connection's number (rmqtt's create time), which tells a reconnect apart.
    pub session: i64,
    /// The QoS it subscribed with: 0 means no PUBACK, so no DELIVERED.
    pub qos: u8,
}

pub(super) enum Event {
    Attach(Arc<dyn Transport>),
    Linked(String, Link),
    /// (client id, session)
    Unlinked(String, i64),
}

/// Pause before the clock's ops are tried again after a failed commit.
const RETRY: Duration = Duration::from_secs(1);

/// How often devices' statuses are read where subscriptions cannot be seen.
const PRESENCE_EVERY: Duration = Duration::from_secs(2);

/// How often a cluster node looks whether it took or lost a partition.
const LEASE_EVERY: Duration = Duration::from_millis(250);

/// Finished commands remembered, so a late word about one does not take it up again: as many
/// as the feed holds before a listener is told it lagged (and reads everything again).
const FINISHED_KEPT: usize = 4096;

/// Several nodes on one database: each device partition's dispatch is done by the node
/// holding its lease among `partitions`, reading the unfinished commands from `pg`.
pub struct Cluster {
    pub partitions: Arc<Partitions>,
    pub pg: PgBlocking,
}

pub(super) struct Dispatch {
    ingest: Ingest,
    store: Arc<dyn Store>,
    transport: Option<Arc<dyn Transport>>,
    /// Each device's unfinished commands, oldest first.
    open: HashMap<String, Vec<Command>>,
    links: HashMap<String, Link>,
    /// The command last handed to each device's connection (its id, the link's session): not
    /// sent again on the same connection.
    outstanding: HashMap<String, (String, i64)>,
    /// Cluster mode: the partitions, and the database read when one is taken.
    cluster: Option<Cluster>,
    /// Whether this node dispatches (always, on a single node; while it holds a partition, on
    /// a cluster node).
    holding: bool,
    /// Cluster mode: the partitions whose commands are in memory.
    partitions: HashSet<u32>,
    /// The change log's number that memory was read at: changes up to it are in memory.
    since: u64,
    /// Commands that finished lately (device, id), oldest first, and the same as a set.
    finished: VecDeque<(String, String)>,
    finished_set: HashSet<(String, String)>,
}

/// How far along a status is: a command only moves forward.
fn rank(status: CommandStatus) -> u8 {
    match status {
        CommandStatus::Queued => 0,
        CommandStatus::Sent => 1,
        CommandStatus::Delivered => 2,
        _ => 3,
    }
}

impl Dispatch {
    pub(super) fn new(ingest: Ingest, store: Arc<dyn Store>, cluster: Option<Cluster>) -> Dispatch {
        Dispatch {
            ingest,
            store,
            transport: None,
            open: HashMap::new(),
            links: HashMap::new(),
            outstanding: HashMap::new(),
            holding: cluster.is_none(),
            partitions: HashSet::new(),
            cluster,
            since: 0,
            finished: VecDeque::new(),
            finished_set: HashSet::new(),
        }
    }

    /// Whether `device`'s commands are dispatched here: on a cluster node, while memory holds
    /// its partition.
    fn ours(&self, device: &str) -> bool {
        self.cluster.is_none() || self.partitions.contains(&partition(device))
    }

    /// Whether a command may go out to `device` now: on a cluster node, only while it holds
    /// the device's partition.
    fn sending(&self, device: &str) -> bool {
        self.holding
            && match &self.cluster {
                None => true,
                Some(c) => {
                    let n = partition(device);
                    self.partitions.contains(&n) && c.partitions.holding().contains_key(&n)
                }
            }
    }

    /// Cluster mode: takes up the dispatch of partitions taken (reading their commands), lets
    /// go of those lost.
    async fn lease_turn(&mut self) {
        let Some(cluster) = &self.cluster else { return };
        let now: HashSet<u32> = cluster.partitions.holding().into_keys().collect();
        if now == self.partitions {
            return;
        }
        let lost: Vec<u32> = self.partitions.difference(&now).copied().collect();
        if !lost.is_empty() {
            info!(?lost, "commands: partitions no longer dispatched on this node");
            self.open.retain(|device, _| !lost.contains(&partition(device)));
            self.outstanding.retain(|device, _| !lost.contains(&partition(device)));
        }
        let taken = now.difference(&self.partitions).count() > 0;
        self.partitions = now;
        self.holding = !self.partitions.is_empty();
        if taken {
            info!(partitions = ?self.partitions, "commands: dispatching on this node");
            self.reload().await;
            if self.holding && self.transport.as_ref().is_some_and(|t| t.presence_by_status()) {
                self.presence().await;
            }
        }
    }

    pub(super) async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<Event>,
        mut changes: broadcast::Receiver<CommandChange>,
        mut stop: watch::Receiver<bool>,
    ) {
        // Subscribed to the changes first, then read: a change in between is seen twice at
        // worst, never missed. A cluster node reads when it takes the lease.
        if self.holding {
            self.reload().await;
        }
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut presence = tokio::time::interval(PRESENCE_EVERY);
        presence.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut lease = tokio::time::interval(LEASE_EVERY);
        lease.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let clustered = self.cluster.is_some();
        loop {
            let by_status = self.holding && self.transport.as_ref().is_some_and(|t| t.presence_by_status());
            let wake = match (next_deadline(self.open.values().flatten()), retry_at) {
                (_, Some(at)) => Some(at),
                (Some(due), None) => {
                    let wait = due.saturating_sub(now_ms()).max(0) as u64;
                    Some(tokio::time::Instant::now() + Duration::from_millis(wait))
                }
                (None, None) => None,
            };
            let timer = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = async { let _ = stop.wait_for(|s| *s).await; } => return,
                change = changes.recv() => match change {
                    // Not dispatched here, or read already when memory was.
                    Ok(change) if !self.holding || change.seq <= self.since => {}
                    Ok(change) if !self.ours(&change.command.device) => {}
                    Ok(change) => self.changed((*change.command).clone()).await,
                    Err(broadcast::error::RecvError::Lagged(_)) if self.holding => self.reload().await,
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                event = events.recv() => match event {
                    Some(Event::Attach(transport)) => {
                        self.transport = Some(transport);
                    }
                    Some(Event::Linked(device, link)) => self.link(device, link).await,
                    Some(Event::Unlinked(client, session)) => {
                        self.links.retain(|_, l| !(l.client == client && l.session == session));
                    }
                    None => return,
                },
                _ = presence.tick(), if by_status => self.presence().await,
                _ = lease.tick(), if clustered => {
                    self.lease_turn().await;
                    if !self.holding {
                        retry_at = None;
                    }
                }
                () = timer => {
                    retry_at = None;
                    if !self.due().await {
                        retry_at = Some(tokio::time::Instant::now() + RETRY);
                    }
                }
            }
        }
    }

    /// `device` takes its commands over `link` from now on.
    async fn link(&mut self, device: String, link: Link) {
        // The same connection again (it subscribed twice): what it was handed is on its way.
        if self.links.get(&device).is_some_and(|l| l.session == link.session) {
            self.links.insert(device, link);
            return;
        }
        self.outstanding.remove(&device);
        self.links.insert(device.clone(), link);
        if self.holding {
            self.pump(&device).await;
        }
    }

    /// Where subscriptions cannot be seen: devices with unfinished commands whose status is
    /// online are linked (a new online status is a new connection), the others not.
    async fn presence(&mut self) {
        let devices: Vec<String> = self.open.keys().cloned().collect();
        if devices.is_empty() {
            return;
        }
        let store = self.store.clone();
        let statuses = tokio::task::spawn_blocking(move || {
            devices
                .into_iter()
                .map(|d| {
                    let status = store.device(&d).ok().and_then(|c| c.value).and_then(|s| s.status);
                    (d, status)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (device, status) in statuses {
            match status {
                Some(s) if s.online => {
                    let link = Link { client: device.clone(), session: s.at, qos: 1 };
                    self.link(device, link).await;
                }
                _ => {
                    self.links.remove(&device);
                }
            }
        }
    }

    /// Reads every unfinished command again (in cluster mode with the change log's number of
    /// that moment); a cluster node that cannot gives dispatch up until it can.
    async fn reload(&mut self) {
        let read = match &self.cluster {
            Some(cluster) => {
                let pg = cluster.pg.clone();
                tokio::task::spawn_blocking(move || {
                    pg.open_commands_at().map(|(seq, open)| (Some(seq), open))
                })
                .await
            }
            None => {
                let store = self.store.clone();
                tokio::task::spawn_blocking(move || store.open_commands().map(|open| (None, open))).await
            }
        };
        if !matches!(read, Ok(Ok(_))) && self.cluster.is_some() {
            // Read again at the next turn.
            self.holding = false;
            self.partitions.clear();
        }
        match read {
            Ok(Ok((seq, open))) => {
                if let Some(seq) = seq {
                    self.since = seq;
                }
                let ours: Vec<Command> = open.into_iter().filter(|c| self.ours(&c.device)).collect();
                self.open.clear();
                for command in ours {
                    self.open.entry(command.device.clone()).or_default().push(command);
                }
                for list in self.open.values_mut() {
                    list.sort_by_key(|c| id_counter(&c.id));
                }
                let devices: Vec<String> = self.links.keys().cloned().collect();
                for device in devices {
                    self.pump(&device).await;
                }
            }
            Ok(Err(e)) => error!(error = %e, "unfinished commands not read"),
            Err(e) => error!(error = %e, "reading unfinished commands panicked"),
        }
    }

    /// A command as it is now stored.
    async fn changed(&mut self, command: Command) {
        let device = command.device.clone();
        let key = (device.clone(), command.id.clone());
        // A late word about a command that finished.
        if self.finished_set.contains(&key) {
            return;
        }
        if command.is_terminal() {
            if self.finished.len() >= FINISHED_KEPT
                && let Some(oldest) = self.finished.pop_front()
            {
                self.finished_set.remove(&oldest);
            }
            self.finished.push_back(key.clone());
            self.finished_set.insert(key);
        }
        let list = self.open.entry(device.clone()).or_default();
        let at = list.iter().position(|c| c.id == command.id);
        match (at, command.is_terminal()) {
            (Some(i), true) => {
                list.remove(i);
                if self.outstanding.get(&device).is_some_and(|(id, _)| *id == command.id) {
                    self.outstanding.remove(&device);
                }
            }
            // A late word about an earlier state: memory is further along.
            (Some(i), false) if rank(command.status) < rank(list[i].status) => {}
            (Some(i), false) => list[i] = command,
            (None, true) => {}
            (None, false) => {
                let n = id_counter(&command.id);
                let at = list.partition_point(|c| id_counter(&c.id) < n);
                list.insert(at, command);
            }
        }
        if list.is_empty() {
            self.open.remove(&device);
        }
        self.pump(&device).await;
    }

    /// Sends `device` its next command, if it is there and has none in flight.
    async fn pump(&mut self, device: &str) {
        if !self.sending(device) {
            return;
        }
        let (Some(link), Some(transport)) = (self.links.get(device), self.transport.clone()) else { return };
        let Some(list) = self.open.get(device) else { return };
        let next = match list.iter().find(|c| c.status != CommandStatus::Queued) {
            // The device has it: its answer (or the timeout) frees the way.
            Some(c) if c.status == CommandStatus::Delivered => return,
            // Sent, not acknowledged: again, with the same id, on a new connection.
            Some(c) => c,
            None => match list.first() {
                Some(c) => c,
                None => return,
            },
        };
        if self.outstanding.get(device).is_some_and(|(id, s)| *id == next.id && *s == link.session) {
            return;
        }
        // A node that took dispatch over does not send again what the last one handed to this
        // very connection (sent after it was made).
        if self.cluster.is_some()
            && next.status == CommandStatus::Sent
            && next.sent_at.is_some_and(|at| at >= link.session)
        {
            self.outstanding.insert(device.to_owned(), (next.id.clone(), link.session));
            return;
        }
        let (command, link) = (next.clone(), link.clone());
        self.outstanding.insert(device.to_owned(), (command.id.clone(), link.session));
        if !transport.send(&command, &link).await {
            // Tried again at the next chance (a new connection, a change, the presence check).
            self.outstanding.remove(device);
            warn!(device, command = %command.id, "command not handed to the device's connection");
        }
    }

    /// Expires and times out what is due; false if that could not be stored.
    async fn due(&mut self) -> bool {
        let now = now_ms();
        let ops: Vec<CommandOp> = self
            .open
            .values()
            .flatten()
            .filter(|c| c.next_deadline().is_some_and(|d| d <= now))
            .map(|c| CommandOp::Event {
                device: c.device.clone(),
                id: c.id.clone(),
                event: CommandEvent::Due,
            })
            .collect();
        if ops.is_empty() {
            return true;
        }
        let asked: Vec<(String, String)> = ops
            .iter()
            .filter_map(|op| match op {
                CommandOp::Event { device, id, .. } => Some((device.clone(), id.clone())),
                CommandOp::Create { .. } => None,
            })
            .collect();
        match self.ingest.apply_commands(ops).await {
            Ok(applied) => {
                // As they are now, changed or not (memory may have been behind the store); one
                // the store no longer has is forgotten.
                for ((device, id), answer) in asked.into_iter().zip(applied.answers) {
                    match answer {
                        Ok(command) => self.changed(command).await,
                        Err(_) => {
                            if let Some(list) = self.open.get_mut(&device) {
                                list.retain(|c| c.id != id);
                            }
                        }
                    }
                }
                true
            }
            Err(e) => {
                error!(error = %e, "due commands not stored");
                false
            }
        }
    }
}

/// The next of `commands`' deadlines, if any.
fn next_deadline<'a>(commands: impl Iterator<Item = &'a Command>) -> Option<Millis> {
    commands.filter_map(Command::next_deadline).min()
}
