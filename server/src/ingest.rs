//! The one door every message comes in by. An edge (the embedded broker, the external broker's
//! client, HTTP ingest) hands over what arrived; [`Ingest::admit`] decodes it (one decoder,
//! [`telemetry::decode`]), checks the sender's rights and the limits, counts and records every
//! refusal the same way, and [`Ingest::submit`] queues it for the single writer, which groups
//! whatever is waiting into one durable commit, then answers each submitter (so MQTT
//! acknowledges only stored readings), then broadcasts the changes live.
//!
//! Order: decode → authorise → admit (limits) → group commit → acknowledge → broadcast.

mod command_feed;
mod job;
mod limits;
mod refusals;
pub mod retained;
mod tags;
mod writer;

pub use command_feed::CommandChange;
pub use job::{Ack, IngestError};
pub use limits::{Limits, LimitsConfig, Pace};
pub use refusals::Refusals;
pub use retained::{Reservation, Retained};
pub use writer::Batching;

use std::sync::Arc;
use std::time::{Duration, Instant};

use telemetry::tags::{MAX_EDIT_DEVICES, TagEdit, TagEditError, TagError, Tagged};
use telemetry::text::untrusted;
use telemetry::{Decoded, DeviceId, Message, Millis, Rejection, SourceError, TimestampSource, own_topic};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::warn;

use job::{Job, RetainJob};

use crate::clock::now_ms;
use crate::hub::Hub;
use crate::log_limit::LogLimit;
use crate::metrics::{Metrics, Source};
use crate::store::{
    AttributesReport, CommandOp, CommandsApplied, DesiredApplied, DesiredOp, DesiredRefusal, Incoming,
    Report, RetainedChange, RetainedMessage, StatusReport, Store,
};
use telemetry::command::CommandEvent;

/// Jobs waiting for the writer, beyond which submitters wait (backpressure).
const QUEUE: usize = 16_384;

/// One message as an edge received it.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    pub source: Source,
    pub topic: &'a str,
    pub payload: &'a [u8],
    /// The device the sender signed in as: it may write only under `app/device/<it>/`.
    /// `None`: no sign-in applies (an open broker, or the external broker, which enforces
    /// its own ACL).
    pub publisher: Option<&'a str>,
    /// The sender's connection (its MQTT client id), which the rate limit of topics that are
    /// not a device's is kept by.
    pub client: &'a str,
    pub received: Millis,
}

/// What an admitted message asks of storage.
#[derive(Debug)]
pub enum Admitted {
    /// Readings to store, after waiting this long to keep the device to its rate.
    Readings(Message, Duration),
    /// A status or attributes to record, after waiting this long.
    Report(Report, Duration),
    /// A device's answer to a command, after waiting this long.
    Command(CommandOp, Duration),
    /// What a device reports it applied of its desired state, after waiting this long.
    Reported(DesiredOp, Duration),
    /// Nothing to store: not ours to read (routed as usual), or a cleared status. Wait this
    /// long before routing it.
    Nothing(Duration),
}

impl Admitted {
    /// How long to hold the message back to keep its sender to its rate.
    pub fn wait(&self) -> Duration {
        match self {
            Admitted::Readings(_, w)
            | Admitted::Report(_, w)
            | Admitted::Command(_, w)
            | Admitted::Reported(_, w)
            | Admitted::Nothing(w) => *w,
        }
    }
}

/// Handle to the ingest service; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
    limits: Arc<Limits>,
    refusals: Arc<Refusals>,
    log: Arc<LogLimit>,
    retained: Arc<Retained>,
    /// Every command as it changes, once stored.
    commands: tokio::sync::broadcast::Sender<CommandChange>,
}

/// Changed commands waiting for a slow listener, beyond which it is told it lagged.
const COMMAND_FEED: usize = 4096;

/// What a retained publish sets or clears, and its place under the caps.
#[derive(Debug)]
pub struct Retaining {
    change: RetainedChange,
    held: Option<Reservation>,
}

impl Ingest {
    /// Starts the writer task. Once `stop` turns true (or every `Ingest` handle is dropped)
    /// it refuses new jobs, commits what is queued and ends; await the returned handle to
    /// know the last commit is done. With `live_from_log`, what it commits reaches `hub`
    /// through the database's change log instead of straight from here (cluster mode).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        store: Arc<dyn Store>,
        hub: Hub,
        live_from_log: bool,
        metrics: Arc<Metrics>,
        limits: Arc<Limits>,
        batching: Batching,
        engine: crate::alarms::engine::Engine,
        shared_alarms: Option<crate::store::postgres::PgBlocking>,
        notifier: Arc<tokio::sync::Notify>,
        stop: watch::Receiver<bool>,
    ) -> (Ingest, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let refusals = Arc::new(Refusals::new(hub.clone()));
        let config = limits.config();
        let caps = retained::Caps {
            per_owner: config.max_retained_per_device,
            bytes_per_owner: config.max_retained_bytes_per_device,
            total: config.max_retained,
            total_bytes: config.max_retained_bytes,
        };
        let retained = Arc::new(retained::load(&*store, caps, now_ms()));
        let (commands, _) = tokio::sync::broadcast::channel(COMMAND_FEED);
        let writer = writer::Writer {
            store,
            hub,
            live_from_log,
            metrics: metrics.clone(),
            refusals: refusals.clone(),
            batching,
            engine,
            notifier,
            rescoped: Instant::now(),
            retained: retained.clone(),
            commands: commands.clone(),
            shared_alarms,
        };
        let writer = tokio::spawn(writer.run(rx, stop.clone()));
        tokio::spawn(clock(tx.clone(), stop));
        let log = Arc::new(LogLimit::default());
        (Ingest { tx, metrics, limits, refusals, log, retained, commands }, writer)
    }

    pub fn limits(&self) -> &Arc<Limits> {
        &self.limits
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn refusals(&self) -> &Arc<Refusals> {
        &self.refusals
    }

    /// The retained messages the embedded broker keeps.
    pub fn retained(&self) -> &Arc<Retained> {
        &self.retained
    }

    /// The budget of ingest's log lines (see [`LogLimit`]), for the edges' own lines.
    pub fn log(&self) -> &Arc<LogLimit> {
        &self.log
    }

    /// Decides one message: what to store, or why not. Every refusal is counted on
    /// `/metrics`, logged (summarised when it repeats) and, for a registered device, shown
    /// on the dashboard. `pace` says how a sender over its rate is dealt with.
    pub fn admit(&self, arrival: &Arrival, pace: Pace) -> Result<Admitted, Rejection> {
        let decoded = match arrival.publisher {
            Some(device) if !own_topic(device, arrival.topic) => Err(Rejection::NotOwnTopic),
            _ => telemetry::decode(arrival.topic, arrival.payload, arrival.received),
        };
        let now = Instant::now();
        let result = match decoded {
            Ok(Decoded::Readings(message)) => self.readings(message, pace, now),
            Ok(Decoded::Status { device, online, session }) => {
                self.limits.admit_device(&device, pace, now).map(|wait| {
                    let status = StatusReport { device, online, at: arrival.received, session };
                    Admitted::Report(Report::Status(status), wait)
                })
            }
            Ok(Decoded::Attributes { device, values }) => {
                let names = values.iter().map(|(name, _)| name.as_str());
                self.limits.admit_attributes(&device, names, pace, now).map(|wait| {
                    let attributes = AttributesReport { device, values, at: arrival.received };
                    Admitted::Report(Report::Attributes(attributes), wait)
                })
            }
            Ok(Decoded::CommandResult { device, id, reply }) => {
                self.limits.admit_device(&device, pace, now).map(|wait| {
                    let event = CommandEvent::Answered(reply);
                    Admitted::Command(
                        CommandOp::Event { device: device.as_str().to_owned(), id, event },
                        wait,
                    )
                })
            }
            Ok(Decoded::Reported { device, v, state }) => {
                self.limits.admit_device(&device, pace, now).map(|wait| {
                    let op = DesiredOp::Reported { device: device.as_str().to_owned(), v, state };
                    Admitted::Reported(op, wait)
                })
            }
            // Answered by the edge that took it (the embedded broker sends the desired state).
            Ok(Decoded::DesiredGet(device)) => {
                self.limits.admit_device(&device, pace, now).map(Admitted::Nothing)
            }
            Ok(Decoded::StatusCleared(device)) => {
                self.limits.admit_device(&device, pace, now).map(Admitted::Nothing)
            }
            // Not ours to read: only its sender's rate applies.
            Ok(Decoded::Other) => {
                let result = self.limits.admit_client(arrival.client, pace, now).map(Admitted::Nothing);
                if let Err(why) = &result {
                    self.metrics.rejected(why.label());
                }
                return result;
            }
            Err(why) => Err(why),
        };
        self.metrics.received(arrival.source);
        match &result {
            Ok(admitted) if !admitted.wait().is_zero() => self.metrics.throttled(),
            Ok(_) => {}
            Err(why) => self.record(arrival, why),
        }
        result
    }

    /// Decides an empty retained payload: it clears the topic's retained message (MQTT
    /// 3.3.1.3) and is nothing to read, so only the sender's rights and rate apply.
    pub fn admit_clear(&self, arrival: &Arrival, pace: Pace) -> Result<Admitted, Rejection> {
        let now = Instant::now();
        let result = match arrival.publisher {
            Some(device) if !own_topic(device, arrival.topic) => Err(Rejection::NotOwnTopic),
            _ if arrival.topic.contains(['+', '#']) => Err(Rejection::WildcardTopic),
            _ => match device_of(arrival.topic).map(DeviceId::try_from) {
                Some(Ok(device)) => self.limits.admit_device(&device, pace, now),
                Some(Err(e)) => Err(Rejection::BadDeviceId(e)),
                None => self.limits.admit_client(arrival.client, pace, now),
            }
            .map(Admitted::Nothing),
        };
        self.metrics.received(arrival.source);
        match &result {
            Ok(admitted) if !admitted.wait().is_zero() => self.metrics.throttled(),
            Ok(_) => {}
            Err(why) => self.record(arrival, why),
        }
        result
    }

    /// Decides the retained copy of a message [`Ingest::admit`] (or [`Ingest::admit_clear`])
    /// let through: `message` is to be retained on its topic, or, with an empty payload, the
    /// topic cleared; `None` for a delayed last will, which the retained status outlives (as
    /// the store ignores it). Refused on a command topic or over the caps, counted like every
    /// refusal.
    pub fn retain(
        &self,
        arrival: &Arrival,
        message: RetainedMessage,
    ) -> Result<Option<Retaining>, Rejection> {
        let answer = telemetry::topic::command_parts(&message.topic)
            .is_some_and(|(_, kind, _)| kind == telemetry::topic::CommandTopic::Result);
        // A retained report or request would be taken again on every subscription.
        let desired = telemetry::desired::desired_parts(&message.topic).is_some();
        let result = if retained::is_command(&message.topic) || answer || desired {
            Err(Rejection::RetainedCommand)
        } else if message.payload.is_empty() {
            Ok(Some(Retaining { change: RetainedChange::Clear(message.topic), held: None }))
        } else if retained::is_stale_will(&self.retained, &message.topic, &message.payload) {
            Ok(None)
        } else {
            self.retained
                .reserve(&message.owner, &message.topic, message.payload.len())
                .map(|held| Some(Retaining { change: RetainedChange::Set(message), held: Some(held) }))
        };
        if let Err(why) = &result {
            self.record(arrival, why);
        }
        result
    }

    /// Counts and records a message an edge refused before admitting it (its sender has no
    /// right to send at all).
    pub fn refused_message(&self, arrival: &Arrival, why: &Rejection) {
        self.metrics.received(arrival.source);
        self.record(arrival, why);
    }

    fn record(&self, arrival: &Arrival, why: &Rejection) {
        self.metrics.rejected(why.label());
        let id = device_of(arrival.topic).unwrap_or(arrival.client);
        self.refusals.refused(id, self.limits.knows(id), why, None, arrival.received);
    }

    /// Logs (summarised when it repeats) a subscription refused to `client`.
    pub fn refused_subscription(&self, client: &str, filter: &str) {
        if let Some(earlier) = self.log.check("subscription refused", client, Instant::now()) {
            warn!(client = %untrusted(client), filter = %untrusted(filter), earlier, "subscription refused: a device subscribes only under its own topics");
        }
    }

    /// Decides one HTTP ingest item, as decoded (or refused) by [`telemetry::decode_http_item`].
    /// The caller answers each refusal in its response.
    pub fn admit_item(&self, item: Result<Message, Rejection>) -> Result<Message, Rejection> {
        self.metrics.received(Source::Http);
        let result = item.and_then(|m| self.readings(m, Pace::Unlimited, Instant::now())).map(|admitted| {
            let Admitted::Readings(message, _) = admitted else { unreachable!("readings admit as readings") };
            message
        });
        if let Err(why) = &result {
            self.metrics.rejected(why.label());
        }
        result
    }

    /// Counts and limits a message's readings.
    fn readings(&self, mut message: Message, pace: Pace, now: Instant) -> Result<Admitted, Rejection> {
        if message.ts_source != TimestampSource::Device {
            self.metrics.timestamp_replaced(message.ts_source.label());
        }
        let result = self.limits.admit(&mut message, pace, now);
        for dropped in &message.dropped {
            self.metrics.dropped_metric(dropped.reason.label());
            if let Some(earlier) = self.log.check(dropped.reason.label(), message.device.as_str(), now) {
                warn!(
                    device = %message.device,
                    metric = %untrusted(&dropped.name),
                    reason = dropped.reason.label(),
                    earlier,
                    "metric dropped"
                );
            }
        }
        result.map(|wait| Admitted::Readings(message, wait))
    }

    /// Counts and records an MQTT connection refused for `client` (its client id, or the
    /// device id it claimed) from `peer`.
    pub fn connection_refused(&self, client: &str, why: &Rejection, peer: Option<&str>) {
        self.metrics.mqtt_refused(why.label());
        self.refusals.refused(client, self.limits.knows(client), why, peer, now_ms());
    }

    /// Queues messages for the next commit; the receiver resolves once they are durable.
    pub async fn submit(&self, messages: Vec<Message>, received: Millis) -> oneshot::Receiver<Ack> {
        let (done, wait) = oneshot::channel();
        let incoming = messages.into_iter().map(|message| Incoming { message, received }).collect();
        if let Err(mpsc::error::SendError(Job::Messages(_, done))) =
            self.tx.send(Job::Messages(incoming, done)).await
        {
            let _ = done.send(Err(IngestError::Closed));
        }
        wait
    }

    /// Queues a device's report (a status, attributes) for the next commit.
    pub async fn submit_report(&self, report: Report) -> oneshot::Receiver<Ack> {
        let (done, wait) = oneshot::channel();
        if let Err(mpsc::error::SendError(Job::Status(_, done))) =
            self.tx.send(Job::Status(report, done)).await
        {
            let _ = done.send(Err(IngestError::Closed));
        }
        wait
    }

    /// Queues what [`Ingest::admit`] let through; the receiver resolves once it is durable
    /// (at once when there is nothing to store).
    pub async fn submit_admitted(&self, admitted: Admitted, received: Millis) -> oneshot::Receiver<Ack> {
        match admitted {
            Admitted::Readings(message, _) => self.submit(vec![message], received).await,
            Admitted::Report(report, _) => self.submit_report(report).await,
            Admitted::Command(op, _) => ready(self.answer(op).await),
            Admitted::Reported(op, _) => ready(self.report(op).await),
            Admitted::Nothing(_) => ready(Ok(())),
        }
    }

    /// Stores a device's answer to a command. One to a command it does not have (unknown, not
    /// sent, or already finished: a late answer) is counted and dropped, and acknowledged, so
    /// the device does not send it again.
    async fn answer(&self, op: CommandOp) -> Ack {
        let device = match &op {
            CommandOp::Event { device, .. } => device.clone(),
            CommandOp::Create { device, .. } => device.clone(),
        };
        let applied = self.apply_commands(vec![op]).await?;
        if let Some(Err(why)) = applied.answers.first() {
            let refusal = Rejection::UnknownCommand;
            self.metrics.rejected(refusal.label());
            if let Some(earlier) = self.log.check(refusal.label(), &device, Instant::now()) {
                warn!(device = %untrusted(&device), why = %why, earlier, "a command's answer dropped");
            }
        }
        Ok(())
    }

    /// Stores a device's report of its state. One the store refuses (a device without desired
    /// state while the server has its maximum of them) is counted and dropped, and
    /// acknowledged, as an answer to a command the device does not have is.
    async fn report(&self, op: DesiredOp) -> Ack {
        let device = op.device().to_owned();
        let applied = self.apply_desired(op).await?;
        let refusal = match applied.answer {
            Ok(_) => return Ok(()),
            Err(DesiredRefusal::Full(n)) => Rejection::TooManyShadows(n),
            Err(DesiredRefusal::Invalid(why)) => Rejection::BadReported(why),
            // Only a change of the desired state is made against a version.
            Err(DesiredRefusal::Stale { .. }) => return Ok(()),
        };
        self.metrics.rejected(refusal.label());
        if let Some(earlier) = self.log.check(refusal.label(), &device, Instant::now()) {
            warn!(device = %untrusted(&device), why = %refusal, earlier, "a reported state dropped");
        }
        Ok(())
    }

    /// Makes or moves on commands through the writer, in order with every other change; answers
    /// once they are durable (and shown live).
    pub async fn apply_commands(&self, ops: Vec<CommandOp>) -> Result<CommandsApplied, IngestError> {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Job::Commands(ops, reply)).await.is_err() {
            return Err(IngestError::Closed);
        }
        answer.await.unwrap_or(Err(IngestError::Closed))
    }

    /// Makes a slice of bulk `id`'s commands through the writer, as [`Ingest::apply_commands`]
    /// does, with each device's place in the bulk; `None`: there is no such bulk.
    pub async fn add_to_bulk(
        &self,
        id: String,
        ops: Vec<CommandOp>,
    ) -> Result<Option<CommandsApplied>, IngestError> {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Job::Bulk(id, ops, reply)).await.is_err() {
            return Err(IngestError::Closed);
        }
        answer.await.unwrap_or(Err(IngestError::Closed))
    }

    /// Changes a device's desired state, or stores its report, through the writer in order with
    /// every other change; answers once it is durable (and shown live).
    pub async fn apply_desired(&self, op: DesiredOp) -> Result<DesiredApplied, IngestError> {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Job::Desired(op, reply)).await.is_err() {
            return Err(IngestError::Closed);
        }
        answer.await.unwrap_or(Err(IngestError::Closed))
    }

    /// [`Ingest::apply_commands`] from a blocking thread.
    pub fn apply_commands_blocking(&self, ops: Vec<CommandOp>) -> Result<CommandsApplied, IngestError> {
        let (reply, answer) = oneshot::channel();
        if self.tx.blocking_send(Job::Commands(ops, reply)).is_err() {
            return Err(IngestError::Closed);
        }
        answer.blocking_recv().unwrap_or(Err(IngestError::Closed))
    }

    /// Every command as it changes, from now on, once stored.
    pub fn command_changes(&self) -> tokio::sync::broadcast::Receiver<CommandChange> {
        self.commands.subscribe()
    }

    /// Where [`Ingest::command_changes`] come from in cluster mode: the change log's command
    /// changes, every node's, in the log's order ([`crate::cluster::tail`]); the writer then
    /// passes on none of its own.
    pub fn command_feed(&self) -> tokio::sync::broadcast::Sender<CommandChange> {
        self.commands.clone()
    }

    /// Queues what [`Ingest::admit`] let through with the retained message it sets or clears;
    /// the receiver resolves once both are durable and the retained change is in
    /// [`Ingest::retained`].
    pub async fn submit_retained(
        &self,
        admitted: Admitted,
        retaining: Retaining,
        received: Millis,
    ) -> oneshot::Receiver<Ack> {
        let (done, wait) = oneshot::channel();
        let (messages, reports) = match admitted {
            Admitted::Readings(message, _) => (vec![Incoming { message, received }], Vec::new()),
            Admitted::Report(report, _) => (Vec::new(), vec![report]),
            // Never: a command topic is refused when decoded, an answer when retained.
            Admitted::Command(..) | Admitted::Reported(..) | Admitted::Nothing(_) => (Vec::new(), Vec::new()),
        };
        let Retaining { change, held } = retaining;
        let job = RetainJob { messages, reports, change, held, done };
        if let Err(mpsc::error::SendError(Job::Retain(job))) = self.tx.send(Job::Retain(job)).await {
            let _ = job.done.send(Err(IngestError::Closed));
        }
        wait
    }

    /// Clears every retained message `owner` holds (a device's, as it is deleted), durably, in
    /// order with the retained messages being published; from a blocking thread.
    pub fn clear_retained_of(&self, owner: &str) -> Ack {
        let (done, wait) = oneshot::channel();
        if self.tx.blocking_send(Job::ClearRetained(owner.to_owned(), done)).is_err() {
            return Err(IngestError::Closed);
        }
        wait.blocking_recv().unwrap_or(Err(IngestError::Closed))
    }

    /// Stores messages and waits until they are durable.
    pub async fn store(&self, messages: Vec<Message>, received: Millis) -> Ack {
        self.submit(messages, received).await.await.unwrap_or(Err(IngestError::Closed))
    }
}

/// Sends the writer the clock's tick once a second, for rules on the clock. A full queue skips
/// a tick: the next one does its work.
async fn clock(tx: mpsc::Sender<Job>, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(crate::alarms::TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = every.tick() => {
                if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Job::Alarm(crate::alarms::AlarmJob::Tick)) {
                    return;
                }
            }
        }
    }
}

impl Ingest {
    /// Hands an alarm change to the writer; false if it has stopped.
    pub fn alarm_job(&self, job: crate::alarms::AlarmJob) -> bool {
        self.tx.blocking_send(Job::Alarm(job)).is_ok()
    }

    /// Applies a tag edit: checked here, done by the writer; blocking (call it off the async
    /// runtime).
    pub fn edit_tags(&self, devices: &[String], edit: &TagEdit) -> Result<Tagged, TagEditError> {
        edit.validate().map_err(TagEditError::Tags)?;
        if devices.len() > MAX_EDIT_DEVICES {
            return Err(TagEditError::Tags(TagError::TooManyDevices));
        }
        let (reply, answer) = oneshot::channel();
        let job = tags::TagJob { devices: devices.to_vec(), edit: edit.clone(), reply };
        if self.tx.blocking_send(Job::Tags(job)).is_err() {
            return Err(TagEditError::Storage(SourceError::Unavailable));
        }
        answer.blocking_recv().unwrap_or(Err(TagEditError::Storage(SourceError::Unavailable)))
    }

    /// Asks the writer to work out again which devices alarm rules' scopes hold (a group
    /// changed). A full queue skips it: the writer does it every few seconds anyway.
    pub fn rescope(&self) {
        let _ = self.tx.try_send(Job::Rescope);
    }
}

/// An answer that is already known.
pub fn ready(ack: Ack) -> oneshot::Receiver<Ack> {
    let (done, wait) = oneshot::channel();
    let _ = done.send(ack);
    wait
}

/// The device id in `app/device/<id>/…`, if the topic has one (valid or not).
fn device_of(topic: &str) -> Option<&str> {
    topic.strip_prefix(telemetry::topic::DEVICE_PREFIX)?.split('/').next().filter(|id| !id.is_empty())
}
