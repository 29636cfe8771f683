//! The alarm engine of a cluster. Devices fall into partitions by their id
//! ([`partition`]); each partition's rules are evaluated by the node holding its lease
//! ([`Partitions`]), so the work spreads over the nodes and a node's death moves only its
//! share. A node reads the shared change log once for all the partitions it holds (every
//! node's readings, statuses and reboots, in the log's order) and, with the clock, evaluates
//! each partition's devices with that partition's engine; it commits what each made of them
//! with the log number it got to, fenced by the partition's lease
//! ([`PgStore::commit_evaluation`]). A node taking a partition over (its holder died: within
//! the lease's length) reads the partition's state and goes on from that number, so each
//! change is evaluated once and each timer fires once, whichever node held the lease.
//!
//! Actions on alarms and changes of rules and channels are made by whichever node receives
//! them, under the partition's lease's lock (the writer, [`crate::ingest`]); the holder's
//! next commit is then refused and it reads the partition's state again, so it never writes
//! over them.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use telemetry::attributes::EventKind;
use telemetry::{DeviceSummary, LiveEvent, Millis};
use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

use super::partitions::Partitions;
use crate::alarms::engine::{Changes, Engine, Reading};
use crate::alarms::{TICK, presence};
use crate::clock::now_ms;
use crate::store::postgres::{Fence, Held, PgBlocking, PgError, PgStore, alarm_lease, partition};

/// Changes read from the log at a time.
const PAGE: usize = 4096;
/// How often a node looks whether it took or lost a partition.
const WAIT: Duration = Duration::from_millis(250);
/// The pause after the database did not answer.
const RETRY: Duration = Duration::from_secs(1);
/// How often the log number is stored when evaluations change nothing (a new holder goes
/// over at most this much again, to the same effect).
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// Rules' scopes are worked out again this often (new devices, attributes).
const RESCOPE_EVERY: Duration = Duration::from_secs(10);

pub struct AlarmWork {
    pub pg: PgBlocking,
    /// The partitions' leases, kept by [`Partitions::keep`].
    pub partitions: Arc<Partitions>,
    /// Offline and no-data rules open nothing before this (the server's start grace).
    pub quiet_until: Millis,
    pub public_url: String,
    /// Woken when a commit queued notifications.
    pub notifier: Arc<Notify>,
}

/// One holding of a partition's lease: its engine as last read, and how far it got.
struct Holding {
    partition: u32,
    lease: String,
    held: Held,
    engine: Engine,
    generation: i64,
    /// The log number evaluated up to, and up to which it is stored, and when it was.
    cursor: u64,
    stored: u64,
    stored_at: Instant,
    /// Whether the rules' scopes were set on its engine.
    scoped: bool,
}

impl AlarmWork {
    /// Evaluates the partitions this node holds, as it takes and loses them, until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let outcome = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                outcome = self.work() => outcome,
            };
            if let Err(e) = outcome {
                warn!(error = %e, "alarms: the database did not answer; reading the state again");
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    }

    /// Works through the log as it grows and the clock for each partition held; reads a
    /// partition's state when it is taken and again when its commit is refused (someone acted
    /// on one of its alarms or changed a rule), and forgets it when its lease is gone.
    async fn work(&self) -> Result<(), PgError> {
        let store = self.pg.store().clone();
        let mut follower = store.follow().await?;
        let mut holdings: BTreeMap<u32, Holding> = BTreeMap::new();
        let mut clock = tokio::time::interval(TICK);
        clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut turn = tokio::time::interval(WAIT);
        turn.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rescoped: Option<Instant> = None;
        loop {
            // The clock, a change in the log, or only a look at the partitions held.
            let (tick, changed) = tokio::select! {
                biased;
                _ = clock.tick() => (true, false),
                newest = follower.changed() => match newest {
                    Some(_) => (false, true),
                    None => return Err(PgError::Setting("the change log's listener ended".into())),
                },
                _ = turn.tick() => (false, false),
            };
            let taken = self.take_turn(&store, &mut holdings).await?;
            if holdings.is_empty() || !(tick || changed || taken) {
                continue;
            }
            if tick {
                // Someone acted on an alarm or changed a rule: read the state again now, not
                // only when a commit is refused (a rule on the clock may need it).
                for h in holdings.values_mut() {
                    if store.work_state(&h.lease).await?.generation != h.generation {
                        *h = self.read(&store, h.partition, h.held).await?;
                    }
                }
                let due = rescoped.is_none_or(|at| at.elapsed() >= RESCOPE_EVERY);
                if due || holdings.values().any(|h| !h.scoped) {
                    rescoped = Some(Instant::now());
                    self.rescope(&mut holdings).await;
                }
            }
            let refused = self.work_through(&store, &mut holdings, tick).await?;
            for n in refused {
                if let Some(h) = holdings.get_mut(&n) {
                    *h = self.read(&store, n, h.held).await?;
                }
            }
        }
    }

    /// Reads the state of the partitions this node took since, and forgets those it lost;
    /// whether it took any.
    async fn take_turn(
        &self,
        store: &PgStore,
        holdings: &mut BTreeMap<u32, Holding>,
    ) -> Result<bool, PgError> {
        let now = self.partitions.holding();
        holdings.retain(|n, h| {
            let kept = now.get(n) == Some(&h.held);
            if !kept {
                info!(node = %self.partitions.node(), partition = n, "alarms: partition no longer evaluated on this node");
            }
            kept
        });
        let mut taken = false;
        for (n, held) in now {
            if let Entry::Vacant(slot) = holdings.entry(n) {
                slot.insert(self.read(store, n, held).await?);
                taken = true;
            }
        }
        Ok(taken)
    }

    /// Partition `n`'s engine state as stored, and where its work stands.
    async fn read(&self, store: &PgStore, n: u32, held: Held) -> Result<Holding, PgError> {
        let lease = alarm_lease(n);
        // The generation first: a change made after it is read again at the next commit.
        let work = store.work_state(&lease).await?;
        // The schema starts each partition where the engine had got to (schema v11).
        let cursor = work.cursor.unwrap_or(0);
        let saved = store.alarm_state().await?;
        let tracks: Vec<_> = saved.tracks.into_iter().filter(|((_, d), _)| partition(d) == n).collect();
        let alarms: Vec<_> = saved.alarms.into_iter().filter(|a| partition(&a.device) == n).collect();
        info!(
            node = %self.partitions.node(),
            partition = n,
            from = cursor,
            rules = saved.rules.len(),
            states = tracks.len(),
            open = alarms.iter().filter(|a| a.active).count(),
            "alarms: partition evaluated on this node"
        );
        let mut engine = Engine::new(self.quiet_until, self.public_url.clone());
        engine.load(saved.rules, tracks, alarms, saved.channels);
        Ok(Holding {
            partition: n,
            lease,
            held,
            engine,
            generation: work.generation,
            cursor,
            stored: cursor,
            stored_at: Instant::now(),
            scoped: false,
        })
    }

    /// Evaluates the changes after the partitions' cursors, a page at a time read once for
    /// all, with the clock if `tick` (on the first page), committing what each partition's
    /// page changed with the number it got to. Answers the partitions whose commit was
    /// refused (nothing of it written, the evaluation undone).
    async fn work_through(
        &self,
        store: &PgStore,
        holdings: &mut BTreeMap<u32, Holding>,
        mut tick: bool,
    ) -> Result<Vec<u32>, PgError> {
        let mut refused = Vec::new();
        loop {
            let working = holdings.values().filter(|h| !refused.contains(&h.partition));
            let Some(from) = working.map(|h| h.cursor).min() else { return Ok(refused) };
            let events = store.changes_since(from, PAGE).await?;
            if events.is_empty() && !tick {
                return Ok(refused);
            }
            let upto = events.iter().filter_map(LiveEvent::seq).fold(from, u64::max);
            let wants_devices =
                holdings.values().any(|h| h.engine.wants_presence() || h.engine.wants_fleet());
            let known = if tick && wants_devices { store.known_devices().await? } else { Vec::new() };
            for h in holdings.values_mut() {
                if refused.contains(&h.partition) {
                    continue;
                }
                let after = h.cursor;
                let mine: Vec<&LiveEvent> = events
                    .iter()
                    .filter(|e| e.seq().is_some_and(|s| s > after))
                    .filter(|e| event_device(e).is_some_and(|d| partition(d) == h.partition))
                    .collect();
                let part = h.partition;
                let changes = evaluate(
                    &mut h.engine,
                    &mine,
                    tick.then_some(known.as_slice()),
                    |device| partition(device) == part,
                    now_ms(),
                );
                if !self.commit(store, h, changes, upto.max(h.cursor)).await? {
                    refused.push(h.partition);
                }
            }
            tick = false;
            if events.len() < PAGE {
                return Ok(refused);
            }
        }
    }

    /// Stores what partition `h`'s evaluation changed with the number it got to, `upto`, or
    /// only moves on in memory when it changed nothing and the number was stored lately;
    /// false if the commit was refused.
    async fn commit(
        &self,
        store: &PgStore,
        h: &mut Holding,
        changes: Changes,
        upto: u64,
    ) -> Result<bool, PgError> {
        let quiet = changes.is_empty() && changes.deliveries.is_empty();
        if quiet && (upto == h.stored || h.stored_at.elapsed() < SAVE_EVERY) {
            // Nothing to store (memory alone moves on): a new holder would evaluate these
            // changes again from the stored number, to the same effect.
            h.engine.apply(&changes);
            h.cursor = upto;
            return Ok(true);
        }
        let fence = Fence {
            lease: &h.lease,
            holder: self.partitions.node(),
            held: h.held,
            generation: h.generation,
            cursor: upto,
        };
        if store.commit_evaluation(fence, &changes).await?.is_none() {
            h.engine.discard();
            return Ok(false);
        }
        h.engine.apply(&changes);
        (h.cursor, h.stored, h.stored_at) = (upto, upto, Instant::now());
        if !changes.deliveries.is_empty() {
            self.notifier.notify_one();
        }
        Ok(true)
    }

    /// Works out which devices the rules' scopes hold, once for every partition held.
    async fn rescope(&self, holdings: &mut BTreeMap<u32, Holding>) {
        let mut rules: HashMap<String, telemetry::alarm::Rule> = HashMap::new();
        for h in holdings.values() {
            for rule in h.engine.scoped_rules() {
                rules.entry(rule.id.clone()).or_insert_with(|| rule.clone());
            }
        }
        for h in holdings.values_mut() {
            h.scoped = true;
        }
        if rules.is_empty() {
            return;
        }
        let pg = self.pg.clone();
        let rules: Vec<_> = rules.into_values().collect();
        let scopes =
            match tokio::task::spawn_blocking(move || crate::scope::scopes(&pg, &rules, now_ms())).await {
                Ok(Ok(scopes)) => scopes,
                Ok(Err(e)) => return error!(error = %e, "alarm scopes not worked out"),
                Err(e) => return error!(error = %e, "alarm scopes panicked"),
            };
        let scopes: Vec<(String, HashSet<String>)> = scopes.into_iter().collect();
        for h in holdings.values_mut() {
            h.engine.set_scopes(scopes.iter().cloned());
        }
    }
}

/// The device a change is about, for the changes the rules hear.
fn event_device(event: &LiveEvent) -> Option<&str> {
    match event {
        LiveEvent::Reading { device, .. } | LiveEvent::Status { device, .. } => Some(device),
        LiveEvent::Event { event, .. } => Some(&event.device),
        _ => None,
    }
}

/// A reading from the log: device, values, device time.
type Logged<'a> = (&'a str, Vec<(String, f64)>, Millis);

/// What a partition's engine makes of its devices' changes from a page of the change log
/// (readings, the reboots they showed, statuses, in that order as in one commit of the
/// writer's), then of the clock if `known` (every device: those the partition `owns` for
/// rules on the clock, all of them for the fleet's comparison).
fn evaluate(
    engine: &mut Engine,
    events: &[&LiveEvent],
    known: Option<&[DeviceSummary]>,
    owns: impl Fn(&str) -> bool,
    now: Millis,
) -> Changes {
    let values: Vec<Logged> = events
        .iter()
        .filter_map(|e| match e {
            LiveEvent::Reading { device, ts, values, .. } => {
                Some((device.as_str(), values.iter().map(|(m, v)| (m.clone(), *v)).collect(), *ts))
            }
            _ => None,
        })
        .collect();
    let readings: Vec<Reading> = values.iter().map(|(d, v, ts)| (*d, v.as_slice(), *ts)).collect();
    let reboots: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            LiveEvent::Event { event, .. } if matches!(event.kind, EventKind::Reboot { .. }) => {
                Some(event.device.as_str())
            }
            _ => None,
        })
        .collect();
    let statuses: Vec<(&str, bool)> = events
        .iter()
        .filter_map(|e| match e {
            LiveEvent::Status { device, online, .. } => Some((device.as_str(), *online)),
            _ => None,
        })
        .collect();
    let fleet = engine.wants_fleet();
    let mut work = engine.work(now);
    work.readings(&readings);
    work.reboots(&reboots);
    work.statuses(&statuses);
    if let Some(known) = known {
        let presences: Vec<_> = known.iter().filter(|d| owns(&d.id)).map(presence).collect();
        work.tick(&presences);
        if fleet {
            work.fleet_of(known, owns);
        }
    }
    work.finish()
}
