//! The single writer: it groups whatever is waiting into one durable commit, with what the
//! alarm engine makes of it (alarm changes, their notifications), answers each submitter (so
//! MQTT acknowledges only stored readings and their alarm transitions), applies the alarm
//! changes in memory, then broadcasts the changes live. Alarm rules and channels change here
//! too, between commits, so evaluation always sees them in order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use telemetry::alarm::{Alarm, AlarmAction, AlarmError};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, warn};

use super::job::{IngestError, Job};
use super::refusals::Refusals;
use super::retained::Retained;
use crate::alarms::engine::{ActError, Engine, Presence};
use crate::alarms::{AlarmJob, presence};
use crate::clock::now_ms;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::store::postgres::{ActFrom, PgBlocking};
use crate::store::{RetainedChange, Store, StoreError};

/// Group-commit limits.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    pub max_readings: usize,
    pub linger: Duration,
}

pub(super) struct Writer {
    pub store: Arc<dyn Store>,
    pub hub: Hub,
    /// Whether the hub is fed from the database's change log (several nodes on PostgreSQL:
    /// [`crate::cluster::tail`] passes every node's changes on, in order); then the changes
    /// this node commits are not passed on here as well.
    pub live_from_log: bool,
    pub metrics: Arc<Metrics>,
    pub refusals: Arc<Refusals>,
    pub batching: Batching,
    pub engine: Engine,
    /// Woken when a commit queued notifications.
    pub notifier: Arc<tokio::sync::Notify>,
    /// When alarm rules' scopes were last worked out.
    pub rescoped: Instant,
    /// The embedded broker's retained messages, changed here in commit order.
    pub retained: Arc<Retained>,
    /// Every command as it changes, once stored (for dispatch and for those waiting on one);
    /// with `live_from_log`, fed from the change log instead.
    pub commands: tokio::sync::broadcast::Sender<super::command_feed::CommandChange>,
    /// Several nodes on PostgreSQL: the rules are evaluated by the node holding the alarms
    /// lease, from the change log ([`crate::cluster::alarms`]), not here; actions on alarms
    /// are done on the database under that lease's lock, and saved rules and channels tell
    /// that node to read them again.
    pub shared_alarms: Option<PgBlocking>,
}

impl Writer {
    /// Passes a committed change on to live clients (unless the change log does).
    fn publish_change(&self, device: Option<&str>, json: String) {
        if !self.live_from_log {
            self.hub.publish_json(device, json);
        }
    }
}

/// Rules' scopes are worked out again this often (new devices, attributes), besides when tags,
/// groups or rules change.
const RESCOPE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The latest value of `alarm`'s metric (its rule's, `rule`) on its device.
fn latest(store: &dyn Store, rule: &telemetry::alarm::Rule, alarm: &Alarm) -> Option<f64> {
    let metric = rule.metric()?;
    let device = store.device(&alarm.device).ok()?.value?;
    device.metric(metric).map(|m| m.value)
}

/// An action waiting for its commit.
/// A change to the alarm configuration, done on the store off the async runtime.
type StoreJob = Box<dyn FnOnce(&dyn Store) -> Result<(), StoreError> + Send>;

/// Where a commands job's answer goes.
type CommandsReply = oneshot::Sender<Result<crate::store::CommandsApplied, IngestError>>;

struct Act {
    id: String,
    action: AlarmAction,
    by: String,
    reply: oneshot::Sender<Result<Alarm, AlarmError>>,
}

impl Writer {
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Job>, mut stop: watch::Receiver<bool>) {
        self.rescope().await;
        let batching = self.batching;
        let mut closed = false;
        loop {
            let first = tokio::select! {
                biased;
                _ = stop.wait_for(|stop| *stop), if !closed => {
                    rx.close();
                    closed = true;
                    continue;
                }
                job = rx.recv() => job,
            };
            let Some(first) = first else { break };
            let mut jobs = vec![first];
            let mut readings = jobs[0].readings();
            let deadline = tokio::time::Instant::now() + batching.linger;
            while readings < batching.max_readings {
                let next = match rx.try_recv() {
                    Ok(job) => Some(job),
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                    Err(mpsc::error::TryRecvError::Empty) if batching.linger.is_zero() => None,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        tokio::time::timeout_at(deadline, rx.recv()).await.ok().flatten()
                    }
                };
                let Some(job) = next else { break };
                readings += job.readings();
                jobs.push(job);
            }
            self.commit(jobs).await;
        }
    }

    async fn commit(&mut self, jobs: Vec<Job>) {
        let metrics = self.metrics.clone();
        let mut messages = Vec::new();
        let mut statuses = Vec::new();
        let mut replies = Vec::with_capacity(jobs.len());
        let mut tick = false;
        let mut acts = Vec::new();
        let mut retained = Vec::new();
        // Places under the retained caps, given back when this returns (after applying).
        let mut _held = Vec::new();
        // Commands jobs waiting to be stored together, in order (one commit for all of them,
        // not one each: dispatch, devices' receipts and answers come many at a time).
        let mut commands = Vec::new();
        for job in jobs {
            // What changes state on its own between commits comes after the commands before it.
            if !commands.is_empty() && job.inline() {
                self.commands(std::mem::take(&mut commands)).await;
            }
            match job {
                Job::Messages(m, done) => {
                    messages.extend(m);
                    replies.push(done);
                }
                Job::Status(s, done) => {
                    statuses.push(s);
                    replies.push(done);
                }
                Job::Retain(job) => {
                    messages.extend(job.messages);
                    statuses.extend(job.reports);
                    retained.push(job.change);
                    _held.extend(job.held);
                    replies.push(job.done);
                }
                Job::ClearRetained(owner, done) => {
                    // What it holds, and what it is setting in this very commit.
                    let mut topics = self.retained.owned_by(&owner);
                    topics.extend(retained.iter().filter_map(|change| match change {
                        RetainedChange::Set(m) if m.owner == owner => Some(m.topic.clone()),
                        _ => None,
                    }));
                    if topics.is_empty() {
                        let _ = done.send(Ok(()));
                    } else {
                        retained.extend(topics.into_iter().map(RetainedChange::Clear));
                        replies.push(done);
                    }
                }
                Job::Alarm(AlarmJob::Tick) => tick = true,
                Job::Alarm(AlarmJob::Act { id, action, by, reply }) => {
                    acts.push(Act { id, action, by, reply })
                }
                Job::Alarm(config) => self.configure(config).await,
                Job::Tags(job) => {
                    if self.tags(job).await {
                        self.rescope().await;
                    }
                }
                Job::Rescope => self.rescope().await,
                Job::Commands(ops, reply) => commands.push((ops, reply)),
                Job::Bulk(id, ops, reply) => self.bulk(id, ops, reply).await,
                Job::Desired(op, reply) => self.desired(op, reply).await,
            }
        }
        if !commands.is_empty() {
            self.commands(commands).await;
        }
        if tick && self.rescoped.elapsed() >= RESCOPE_EVERY {
            self.rescope().await;
        }
        let started = Instant::now();
        let now = now_ms();
        let (changes, acted) = self.evaluate(&messages, &statuses, tick, acts, now).await;
        if messages.is_empty()
            && statuses.is_empty()
            && retained.is_empty()
            && changes.is_empty()
            && changes.deliveries.is_empty()
        {
            // A tick that changed nothing: no commit (no fsync) for it.
            for (act, result) in acted {
                let _ = act.reply.send(result.map_err(AlarmError::from));
            }
            return;
        }
        let store = self.store.clone();
        let n_messages = messages.len();
        let n_statuses =
            statuses.iter().filter(|r| matches!(r, crate::store::Report::Status(_))).count() as u64;
        // Retained messages in the same transaction as the readings and statuses they also
        // are: both stored or neither. If it fails, nothing is acknowledged and memory keeps
        // the retained messages as they were (their publishers send them again).
        let result = tokio::task::spawn_blocking(move || {
            let outcome = store.commit_retaining(&messages, &statuses, &changes, &retained);
            (outcome, messages, changes, retained)
        })
        .await;
        let (outcome, messages, changes, retained) = match result {
            Ok(r) => r,
            Err(e) => {
                error!(error = %e, "storage commit panicked");
                metrics.commit_failed();
                for done in replies {
                    let _ = done.send(Err(IngestError::Storage));
                }
                for (act, _) in acted {
                    let _ = act.reply.send(Err(AlarmError::Storage));
                }
                return;
            }
        };
        match outcome {
            Ok(outcome) => {
                self.engine.apply(&changes);
                self.retained.apply(&retained);
                if !changes.deliveries.is_empty() {
                    self.notifier.notify_one();
                }
                for (act, result) in acted {
                    let _ = act.reply.send(result.map_err(AlarmError::from));
                }
                metrics.committed(
                    outcome.fresh_messages,
                    outcome.stored,
                    outcome.duplicates,
                    n_statuses.saturating_sub(outcome.stale_wills),
                    started.elapsed().as_micros() as u64,
                );
                metrics.stale_wills(outcome.stale_wills);
                if outcome.duplicates > 0 {
                    warn!(duplicates = outcome.duplicates, "redelivered readings were already stored");
                }
                for done in replies {
                    let _ = done.send(Ok(()));
                }
                for (event, json) in outcome.events.iter().zip(outcome.wire) {
                    self.publish_change(event.device(), json);
                }
                for (device, connection) in outcome.connections {
                    self.hub.publish(&telemetry::LiveEvent::Connection { device, connection });
                }
                if self.refusals.watching() {
                    for incoming in &messages {
                        self.refusals.accepted(incoming.message.device.as_str());
                    }
                }
            }
            Err(e) => {
                error!(error = %e, messages = n_messages, "storage commit failed; nothing acknowledged");
                metrics.commit_failed();
                for done in replies {
                    let _ = done.send(Err(IngestError::Storage));
                }
                for (act, _) in acted {
                    let _ = act.reply.send(Err(AlarmError::Storage));
                }
            }
        }
    }

    /// What the alarm engine makes of this commit: its readings and statuses, the clock if it
    /// ticked, then people's actions, in that order; and each action's outcome.
    async fn evaluate(
        &mut self,
        messages: &[crate::store::Incoming],
        statuses: &[crate::store::Report],
        tick: bool,
        acts: Vec<Act>,
        now: telemetry::Millis,
    ) -> (crate::alarms::engine::Changes, Vec<(Act, Result<Alarm, ActError>)>) {
        if let Some(pg) = &self.shared_alarms {
            self.act_shared(pg.clone(), acts, now).await;
            return (Default::default(), Vec::new());
        }
        let engine = &self.engine;
        if !engine.has_rules() && acts.is_empty() && !(tick && engine.has_alarms()) {
            return (Default::default(), Vec::new());
        }
        let known = if tick && engine.wants_presence() { self.known_devices().await } else { Vec::new() };
        let presences: Vec<(String, Presence)> = known.iter().map(presence).collect();
        let (reboots, fleet) = (engine.wants_reboots(), engine.wants_fleet());
        let store = &*self.store;
        let mut work = self.engine.work(now);
        let readings: Vec<crate::alarms::engine::Reading> = messages
            .iter()
            .map(|i| (i.message.device.as_str(), i.message.values.as_slice(), i.message.ts))
            .collect();
        work.readings(&readings);
        if reboots {
            // The reboots the store records in this same commit, from the same latest uptimes.
            let rebooted = crate::alarms::engine::reboots(&readings, |device, metric| {
                let d = store.device(device).ok()?.value?;
                d.metric(metric).map(|m| (m.value, m.ts))
            });
            work.reboots(&rebooted);
        }
        let statuses: Vec<(&str, bool)> = statuses
            .iter()
            .filter_map(|r| match r {
                crate::store::Report::Status(s) => Some((s.device.as_str(), s.online)),
                crate::store::Report::Attributes(_) | crate::store::Report::Connection(_) => None,
            })
            .collect();
        work.statuses(&statuses);
        if tick {
            work.tick(&presences);
            if fleet {
                work.fleet(&known);
            }
        }
        let mut acted = Vec::with_capacity(acts.len());
        for act in acts {
            // A cleared alarm the engine let go is history in the store: still acknowledged,
            // shelved or commented on.
            if work.alarm(&act.id).is_none()
                && let Ok(Some((alarm, _))) = store.alarm(&act.id)
            {
                work.recall(alarm);
            }
            let latest =
                work.alarm(&act.id).and_then(|alarm| latest(store, work.rule(&alarm.rule_id)?, &alarm));
            let result = work.act(&act.id, act.action.clone(), &act.by, latest);
            acted.push((act, result));
        }
        (work.finish(), acted)
    }

    /// Several nodes: each action is made from the alarm as stored and committed under the lock
    /// of its device's partition's lease (so the node evaluating that partition reads it
    /// again), then answered.
    async fn act_shared(&self, pg: PgBlocking, acts: Vec<Act>, now: telemetry::Millis) {
        for Act { id, action, by, reply } in acts {
            let blank = self.engine.blank();
            let pg = pg.clone();
            let done = tokio::task::spawn_blocking(move || {
                let key = id.clone();
                pg.act_on_alarm(&key, move |from: ActFrom| {
                    let mut engine = blank;
                    engine.load(from.rules, Vec::new(), from.alarm.into_iter().collect(), from.channels);
                    let mut work = engine.work(now);
                    let latest = work.alarm(&id).and_then(|alarm| {
                        let metric = work.rule(&alarm.rule_id)?.metric()?.to_owned();
                        from.device.as_ref()?.metric(&metric).map(|m| m.value)
                    });
                    let result = work.act(&id, action, &by, latest);
                    (work.finish(), result)
                })
            })
            .await;
            let answer = match self.stored("alarm action", done) {
                Some((_, changes, result)) => {
                    if !changes.deliveries.is_empty() {
                        self.notifier.notify_one();
                    }
                    result.map_err(AlarmError::from)
                }
                None => Err(AlarmError::Storage),
            };
            let _ = reply.send(answer);
        }
    }

    /// Every known device, for rules on the clock (no-data, offline, overdue, firmware drift).
    async fn known_devices(&self) -> Vec<telemetry::DeviceSummary> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.known_devices()).await.unwrap_or_default()
    }

    /// Commands made or moved on, from several jobs: stored with their changes in one
    /// transaction, then shown live, handed to dispatch, and each job answered with its own
    /// ops' answers (its `changed` and `outcome` left empty: they were shown already).
    async fn commands(&mut self, jobs: Vec<(Vec<crate::store::CommandOp>, CommandsReply)>) {
        let sizes: Vec<usize> = jobs.iter().map(|(ops, _)| ops.len()).collect();
        let (ops, replies): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
        let ops: Vec<crate::store::CommandOp> = ops.into_iter().flatten().collect();
        let store = self.store.clone();
        let result = tokio::task::spawn_blocking(move || store.apply_commands(&ops, now_ms())).await;
        match self.commands_stored(result.map(|r| r.map(Some))) {
            Ok(applied) => {
                let mut answers = applied.map(|a| a.answers).unwrap_or_default().into_iter();
                for (n, reply) in sizes.into_iter().zip(replies) {
                    let answers = answers.by_ref().take(n).collect();
                    let _ = reply.send(Ok(crate::store::CommandsApplied { answers, ..Default::default() }));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// A slice of a bulk's commands: stored with the devices' places in the bulk, then as
    /// [`Writer::commands`].
    async fn bulk(
        &mut self,
        id: String,
        ops: Vec<crate::store::CommandOp>,
        reply: oneshot::Sender<Result<Option<crate::store::CommandsApplied>, IngestError>>,
    ) {
        let store = self.store.clone();
        let result = tokio::task::spawn_blocking(move || store.add_to_bulk(&id, &ops, now_ms())).await;
        let _ = reply.send(self.commands_stored(result));
    }

    /// Shows stored command changes live and hands them to dispatch; a failure is logged and
    /// counted.
    fn commands_stored(
        &mut self,
        result: Result<Result<Option<crate::store::CommandsApplied>, StoreError>, tokio::task::JoinError>,
    ) -> Result<Option<crate::store::CommandsApplied>, IngestError> {
        let applied = self.stored("commands", result).ok_or(IngestError::Storage)?;
        if let Some(applied) = &applied {
            for (event, json) in applied.outcome.events.iter().zip(&applied.outcome.wire) {
                self.publish_change(event.device(), json.clone());
            }
            for command in &applied.changed {
                self.metrics.command(command.status.label());
            }
            // In cluster mode they come back through the change log, among every node's and
            // in its order.
            for event in applied.outcome.events.iter().filter(|_| !self.live_from_log) {
                if let telemetry::LiveEvent::Command { seq, command, .. } = event {
                    let change = super::command_feed::CommandChange {
                        seq: *seq,
                        command: Arc::new((**command).clone()),
                    };
                    // An error only means nobody is listening.
                    let _ = self.commands.send(change);
                }
            }
        }
        Ok(applied)
    }

    /// A blocking store call's outcome: its value, or `None` once its failure (or panic) is
    /// logged and counted.
    fn stored<T>(
        &self,
        what: &str,
        result: Result<Result<T, StoreError>, tokio::task::JoinError>,
    ) -> Option<T> {
        match result {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                error!(error = %e, "{what} not stored");
                self.metrics.commit_failed();
                None
            }
            Err(e) => {
                error!(error = %e, "{what} panicked");
                self.metrics.commit_failed();
                None
            }
        }
    }

    /// A desired-state change or a device's report: stored with its change, then shown live,
    /// then answered.
    async fn desired(
        &mut self,
        op: crate::store::DesiredOp,
        reply: oneshot::Sender<Result<crate::store::DesiredApplied, IngestError>>,
    ) {
        let store = self.store.clone();
        let result = tokio::task::spawn_blocking(move || store.apply_desired(&op, now_ms())).await;
        let answer = self.stored("desired state", result).ok_or(IngestError::Storage);
        if let Ok(applied) = &answer {
            for (event, json) in applied.outcome.events.iter().zip(&applied.outcome.wire) {
                self.publish_change(event.device(), json.clone());
            }
        }
        let _ = reply.send(answer);
    }

    /// A tag edit: stored, answered, then broadcast; true if it changed any device.
    async fn tags(&mut self, job: super::tags::TagJob) -> bool {
        let store = self.store.clone();
        let super::tags::TagJob { devices, edit, reply } = job;
        let result = tokio::task::spawn_blocking(move || super::tags::apply(&store, &devices, &edit))
            .await
            .unwrap_or(Err(telemetry::tags::TagEditError::Storage(telemetry::SourceError::Failed)));
        let result = result.map(|(tagged, outcome)| {
            for (event, json) in outcome.events.iter().zip(outcome.wire) {
                self.publish_change(event.device(), json);
            }
            tagged
        });
        let changed = result.as_ref().is_ok_and(|t| t.changed > 0);
        let _ = reply.send(result);
        changed
    }

    /// Works out which devices the alarm rules' scopes hold: at the start, when tags, groups
    /// or rules change, and every [`RESCOPE_EVERY`] (new devices, attributes).
    async fn rescope(&mut self) {
        self.rescoped = Instant::now();
        if self.shared_alarms.is_some() {
            // The node evaluating the rules works their scopes out.
            return;
        }
        let rules: Vec<telemetry::alarm::Rule> = self.engine.scoped_rules().cloned().collect();
        if rules.is_empty() {
            return;
        }
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || crate::scope::scopes(&*store, &rules, now_ms())).await {
            Ok(Ok(scopes)) => self.engine.set_scopes(scopes),
            Ok(Err(e)) => error!(error = %e, "alarm scopes not worked out"),
            Err(e) => error!(error = %e, "alarm scopes panicked"),
        }
    }

    /// A rule or channel changed: stored first, then the engine sees it.
    async fn configure(&mut self, job: AlarmJob) {
        let store = self.store.clone();
        let shared = self.shared_alarms.clone();
        let stored = |f: StoreJob| async move {
            let done = tokio::task::spawn_blocking(move || {
                f(&*store)?;
                match &shared {
                    Some(pg) => pg.alarm_config_changed(),
                    None => Ok(()),
                }
            });
            done.await.map_err(|_| AlarmError::Storage)?.map_err(|e| {
                error!(error = %e, "alarm configuration not stored");
                AlarmError::Storage
            })
        };
        match job {
            AlarmJob::SaveRule(rule, reply) => {
                let copy = rule.clone();
                let result = stored(Box::new(move |s| s.put_rule(&copy))).await;
                if result.is_ok() {
                    let scoped = rule.scope.is_some();
                    self.engine.set_rule(rule);
                    if scoped {
                        self.rescope().await;
                    }
                }
                let _ = reply.send(result);
            }
            AlarmJob::DeleteRule(id, reply) => {
                let key = id.clone();
                let result = stored(Box::new(move |s| s.delete_rule(&key).map(drop))).await;
                if result.is_ok() {
                    self.engine.remove_rule(&id);
                }
                let _ = reply.send(result);
            }
            AlarmJob::SaveChannel(channel, reply) => {
                let copy = channel.clone();
                let result = stored(Box::new(move |s| s.put_channel(&copy))).await;
                if result.is_ok() {
                    self.engine.add_channel(channel.id);
                }
                let _ = reply.send(result);
            }
            AlarmJob::DeleteChannel(id, reply) => {
                let key = id.clone();
                let result = stored(Box::new(move |s| s.delete_channel(&key).map(drop))).await;
                if result.is_ok() {
                    self.engine.remove_channel(&id);
                }
                let _ = reply.send(result);
            }
            AlarmJob::Tick | AlarmJob::Act { .. } => unreachable!("evaluated with the commit"),
        }
    }
}
