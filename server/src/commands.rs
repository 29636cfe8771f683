//! Commands to devices ([`telemetry::command`] decides their states): made, canceled and
//! waited on by the API, stored through the writer ([`Ingest::apply_commands`], in order with
//! every other change, each transition durable before it is answered or shown live), and sent
//! by [`dispatch`] to devices whose connection subscribed to their commands, one at a time per
//! device, over a [`Transport`] (the embedded broker). A device's answer comes in by the ingest
//! door like any message it publishes. [`bulk`] makes the same command for many devices.
//!
//! In cluster mode each device partition's commands are dispatched by one node, the one
//! holding the partition's lease `commands/<n>` ([`Cluster`]); every node hears every command
//! change from the change log, so an answer stored by any node ends a wait on any other.

pub mod bulk;
mod dispatch;
mod pacer;

pub use dispatch::{Cluster, Link, Transport};

use std::sync::Arc;
use std::time::Duration;

use telemetry::command::{Checked, Command, CommandEvent, Receipt};
use tokio::sync::{broadcast, mpsc, watch};

use crate::cluster::partitions::Partitions;
use crate::ingest::{CommandChange, Ingest, IngestError};
use crate::store::{CommandOp, CommandRefusal, Store, StoreError};

/// Why a command request was not done.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandsError {
    Refused(CommandRefusal),
    Storage,
}

impl From<IngestError> for CommandsError {
    fn from(_: IngestError) -> CommandsError {
        CommandsError::Storage
    }
}

impl From<StoreError> for CommandsError {
    fn from(e: StoreError) -> CommandsError {
        tracing::error!(error = %e, "commands not read");
        CommandsError::Storage
    }
}

/// Handle to the commands service; cheap to clone.
#[derive(Clone)]
pub struct Commands {
    ingest: Ingest,
    store: Arc<dyn Store>,
    events: mpsc::UnboundedSender<dispatch::Event>,
    /// Whether devices' receipts (PUBACKs) can be seen: with the embedded broker.
    observable: bool,
    /// Desired state, sent over the same connections ([`crate::desired`]).
    desired: crate::desired::Desired,
    /// The pace bulks make their commands at.
    pacer: Arc<pacer::Pacer>,
    /// Places for bulks being made at once.
    bulks: Arc<tokio::sync::Semaphore>,
    /// Cluster mode: the partitions' leases dispatch is done under.
    partitions: Option<Arc<Partitions>>,
}

/// Bulks made at once; another is refused until one is done.
const BULKS_AT_ONCE: usize = 4;

/// What the leases a cluster node dispatches a device partition's commands under are named
/// after: `commands/<n>`.
pub const LEASE_PREFIX: &str = "commands/";

impl Commands {
    /// Starts dispatch, from the unfinished commands the store holds (in cluster mode, of the
    /// partitions held: [`Commands::partitions`] are to be kept); it ends when `stop`
    /// turns true. Bulks make at most `bulk_per_sec` commands a second.
    pub fn start(
        ingest: Ingest,
        store: Arc<dyn Store>,
        observable: bool,
        bulk_per_sec: u32,
        cluster: Option<Cluster>,
        stop: watch::Receiver<bool>,
    ) -> Commands {
        let (events, rx) = mpsc::unbounded_channel();
        let partitions = cluster.as_ref().map(|c| c.partitions.clone());
        let dispatch = dispatch::Dispatch::new(ingest.clone(), store.clone(), cluster);
        tokio::spawn(dispatch.run(rx, ingest.command_changes(), stop));
        let desired = crate::desired::Desired::new(ingest.clone(), store.clone());
        let pacer = Arc::new(pacer::Pacer::new(bulk_per_sec));
        let bulks = Arc::new(tokio::sync::Semaphore::new(BULKS_AT_ONCE));
        Commands { ingest, store, events, observable, desired, pacer, bulks, partitions }
    }

    /// Cluster mode: the partitions' leases this node dispatches under, for the server to keep.
    pub fn partitions(&self) -> Option<Arc<Partitions>> {
        self.partitions.clone()
    }

    /// A place to make a bulk in, held until it is made; `None` while [`BULKS_AT_ONCE`] are.
    pub fn bulk_place(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.bulks.clone().try_acquire_owned().ok()
    }

    /// Devices' desired state, which goes to them as commands do.
    pub fn desired(&self) -> &crate::desired::Desired {
        &self.desired
    }

    /// Whether a device's receipt of a command (DELIVERED) can be seen.
    pub fn delivery_observable(&self) -> bool {
        self.observable
    }

    /// Sends commands over `transport` from now on.
    pub fn attach(&self, transport: Arc<dyn Transport>) {
        let _ = self.events.send(dispatch::Event::Attach(transport));
    }

    /// A device's connection subscribed to its commands.
    pub fn linked(&self, device: &str, link: Link) {
        let _ = self.events.send(dispatch::Event::Linked(device.to_owned(), link));
    }

    /// Connection `session` of client `client` ended, or no longer takes commands.
    pub fn unlinked(&self, client: &str, session: i64) {
        let _ = self.events.send(dispatch::Event::Unlinked(client.to_owned(), session));
    }

    async fn event(&self, device: &str, id: &str, event: CommandEvent) -> Result<Command, CommandsError> {
        let op = CommandOp::Event { device: device.to_owned(), id: id.to_owned(), event };
        let applied = self.ingest.apply_commands(vec![op]).await?;
        applied
            .answers
            .into_iter()
            .next()
            .unwrap_or(Err(CommandRefusal::NotFound))
            .map_err(CommandsError::Refused)
    }

    /// Command `id` is being written to `device`'s connection: SENT, durably, before it goes.
    pub async fn sent(&self, device: &str, id: &str, receipt: Receipt) -> Result<Command, CommandsError> {
        self.event(device, id, CommandEvent::Sent(receipt)).await
    }

    /// `device` acknowledged command `id` (its PUBACK).
    pub async fn delivered(&self, device: &str, id: &str) -> Result<Command, CommandsError> {
        self.event(device, id, CommandEvent::Delivered).await
    }

    /// A new command for `device`, QUEUED (and sent at once if the device is there and idle).
    pub async fn create(&self, device: &str, checked: Checked, by: &str) -> Result<Command, CommandsError> {
        let op = CommandOp::Create {
            device: device.to_owned(),
            checked,
            by: by.to_owned(),
            observable: self.observable,
        };
        let applied = self.ingest.apply_commands(vec![op]).await?;
        let answer = applied.answers.into_iter().next().unwrap_or(Err(CommandRefusal::NotFound));
        answer.map_err(CommandsError::Refused)
    }

    pub async fn cancel(&self, device: &str, id: &str, by: &str) -> Result<Command, CommandsError> {
        self.event(device, id, CommandEvent::Cancel { by: by.to_owned() }).await
    }

    /// Every command as it changes, from now on (subscribe before acting, to miss nothing).
    pub fn changes(&self) -> broadcast::Receiver<CommandChange> {
        self.ingest.command_changes()
    }

    /// Waits up to `within` for `command` to finish, following `changes` (subscribed before
    /// it was made); answers it as it is at the end.
    pub async fn wait(
        &self,
        command: Command,
        mut changes: broadcast::Receiver<CommandChange>,
        within: Duration,
    ) -> Command {
        let mut latest = command;
        let deadline = tokio::time::Instant::now() + within;
        while !latest.is_terminal() {
            match tokio::time::timeout_at(deadline, changes.recv()).await {
                Err(_) => break,
                Ok(Ok(CommandChange { command: c, .. }))
                    if c.id == latest.id && c.device == latest.device =>
                {
                    latest = (*c).clone()
                }
                Ok(Ok(_)) => {}
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    if let Ok(Some(c)) = self.read(&latest.device, &latest.id).await {
                        latest = c;
                    }
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => break,
            }
        }
        latest
    }

    /// A device's command, as stored.
    pub async fn read(&self, device: &str, id: &str) -> Result<Option<Command>, CommandsError> {
        let (store, device, id) = (self.store.clone(), device.to_owned(), id.to_owned());
        let read = tokio::task::spawn_blocking(move || store.command(&device, &id));
        Ok(read.await.map_err(|_| CommandsError::Storage)??)
    }

    /// A device's commands, newest first, made before `before` if given.
    pub async fn list(
        &self,
        device: &str,
        before: Option<String>,
        limit: usize,
    ) -> Result<Vec<Command>, CommandsError> {
        let (store, device) = (self.store.clone(), device.to_owned());
        let read = tokio::task::spawn_blocking(move || store.commands_of(&device, before.as_deref(), limit));
        Ok(read.await.map_err(|_| CommandsError::Storage)??)
    }
}
