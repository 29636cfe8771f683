//! The alarm engine of a cluster: one node evaluates every rule, the one holding the lease
//! [`ALARMS_LEASE`]. It works through the shared change log (every node's readings, statuses
//! and reboots, in the log's order) and the clock, and commits what it makes of them with the
//! log number it got to, fenced by the lease ([`PgStore::commit_evaluation`]). A node taking
//! the lease over (its holder died: within the lease's length) reads the engine's state and
//! goes on from that number, so each change is evaluated once and each timer fires once,
//! whichever node held the lease.
//!
//! Actions on alarms and changes of rules and channels are made by whichever node receives
//! them, under the lease's lock (the writer, [`crate::ingest`]); the holder's next commit is
//! then refused and it reads its state again, so it never writes over them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use telemetry::attributes::EventKind;
use telemetry::{DeviceSummary, LiveEvent, Millis};
use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

use super::lease::Lease;
use crate::alarms::engine::{Changes, Engine, Reading};
use crate::alarms::{TICK, presence};
use crate::clock::now_ms;
use crate::store::postgres::{ALARMS_LEASE, Fence, Held, PgBlocking, PgError, PgStore};

/// Changes read from the log at a time.
const PAGE: usize = 4096;
/// How often a node not holding the lease looks again.
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
    /// The lease [`ALARMS_LEASE`], kept by [`Lease::keep`].
    pub lease: Arc<Lease>,
    /// Offline and no-data rules open nothing before this (the server's start grace).
    pub quiet_until: Millis,
    pub public_url: String,
    /// Woken when a commit queued notifications.
    pub notifier: Arc<Notify>,
}

/// One holding of the lease: the engine as last read, and how far it got.
struct Holding {
    held: Held,
    engine: Engine,
    generation: i64,
    /// The log number evaluated up to, and up to which it is stored, and when it was.
    cursor: u64,
    stored: u64,
    stored_at: Instant,
    rescoped: Option<Instant>,
}

impl AlarmWork {
    /// Evaluates whenever this node holds the lease, until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let held = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                held = self.taken() => held,
            };
            let outcome = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                outcome = self.own(held) => outcome,
            };
            match outcome {
                Ok(()) => info!(node = %self.lease.node(), "alarms: no longer evaluated on this node"),
                Err(e) => {
                    warn!(error = %e, "alarms: the database did not answer; reading the state again");
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => return,
                        _ = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        }
    }

    /// Waits until this node holds the lease.
    async fn taken(&self) -> Held {
        loop {
            if let Some(held) = self.lease.holding() {
                return held;
            }
            tokio::time::sleep(WAIT).await;
        }
    }

    /// Evaluates while this node holds the lease at `held`: reads the state, then works
    /// through the log as it grows and the clock; reads the state again when a commit is
    /// refused (someone acted on an alarm or changed a rule). Answers when the lease is gone.
    async fn own(&self, held: Held) -> Result<(), PgError> {
        let store = self.pg.store().clone();
        let mut follower = store.follow().await?;
        loop {
            let mut holding = self.read(&store, held).await?;
            let mut clock = tokio::time::interval(TICK);
            clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                if self.lease.holding() != Some(held) {
                    return Ok(());
                }
                let tick = tokio::select! {
                    biased;
                    _ = clock.tick() => true,
                    newest = follower.changed() => match newest {
                        Some(_) => false,
                        None => return Err(PgError::Setting("the change log's listener ended".into())),
                    },
                };
                // Someone acted on an alarm or changed a rule: read the state again now, not
                // only when a commit is refused (a rule on the clock may need it).
                if tick && store.work_state(ALARMS_LEASE).await?.generation != holding.generation {
                    break;
                }
                if tick && holding.rescoped.is_none_or(|at| at.elapsed() >= RESCOPE_EVERY) {
                    self.rescope(&mut holding).await;
                }
                if !self.work_through(&store, &mut holding, tick).await? {
                    break;
                }
            }
        }
    }

    /// The engine's state as stored, and where its work stands.
    async fn read(&self, store: &PgStore, held: Held) -> Result<Holding, PgError> {
        // The generation first: a change made after it is read again at the next commit.
        let work = store.work_state(ALARMS_LEASE).await?;
        // The schema starts the lease at the newest change when it is made (schema v10).
        let cursor = work.cursor.unwrap_or(0);
        let saved = store.alarm_state().await?;
        info!(
            node = %self.lease.node(),
            from = cursor,
            rules = saved.rules.len(),
            states = saved.tracks.len(),
            open = saved.alarms.iter().filter(|a| a.active).count(),
            "alarms: evaluated on this node"
        );
        let mut engine = Engine::new(self.quiet_until, self.public_url.clone());
        engine.load(saved.rules, saved.tracks, saved.alarms, saved.channels);
        Ok(Holding {
            held,
            engine,
            generation: work.generation,
            cursor,
            stored: cursor,
            stored_at: Instant::now(),
            rescoped: None,
        })
    }

    /// Evaluates the changes after the cursor, a page at a time, with the clock if `tick`
    /// (on the first page), committing what each page changed with the number it got to;
    /// false if a commit was refused (nothing of it written, the evaluation undone).
    async fn work_through(&self, store: &PgStore, h: &mut Holding, mut tick: bool) -> Result<bool, PgError> {
        loop {
            let events = store.changes_since(h.cursor, PAGE).await?;
            if events.is_empty() && !tick {
                return Ok(true);
            }
            let upto = events.iter().filter_map(LiveEvent::seq).fold(h.cursor, u64::max);
            let wants_devices = h.engine.wants_presence() || h.engine.wants_fleet();
            let known = if tick && wants_devices { store.known_devices().await? } else { Vec::new() };
            let changes = evaluate(&mut h.engine, &events, tick.then_some(known.as_slice()), now_ms());
            let quiet = changes.is_empty() && changes.deliveries.is_empty();
            tracing::debug!(
                events = events.len(),
                upto,
                tick,
                known = known.len(),
                tracks = changes.tracks.len(),
                alarms = changes.alarms.len(),
                "alarms: evaluated"
            );
            if quiet && (upto == h.stored || h.stored_at.elapsed() < SAVE_EVERY) {
                // Nothing to store (memory alone moves on): a new holder would evaluate these
                // changes again from the stored number, to the same effect.
                h.engine.apply(&changes);
                h.cursor = upto;
            } else {
                let fence = Fence {
                    lease: ALARMS_LEASE,
                    holder: self.lease.node(),
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
            }
            tick = false;
            if events.len() < PAGE {
                return Ok(true);
            }
        }
    }

    /// Works out which devices the rules' scopes hold.
    async fn rescope(&self, h: &mut Holding) {
        h.rescoped = Some(Instant::now());
        let rules: Vec<telemetry::alarm::Rule> = h.engine.scoped_rules().cloned().collect();
        if rules.is_empty() {
            return;
        }
        let pg = self.pg.clone();
        match tokio::task::spawn_blocking(move || crate::scope::scopes(&pg, &rules, now_ms())).await {
            Ok(Ok(scopes)) => h.engine.set_scopes(scopes),
            Ok(Err(e)) => error!(error = %e, "alarm scopes not worked out"),
            Err(e) => error!(error = %e, "alarm scopes panicked"),
        }
    }
}

/// A reading from the log: device, values, device time.
type Logged<'a> = (&'a str, Vec<(String, f64)>, Millis);

/// What the engine makes of a page of the change log (readings, the reboots they showed,
/// statuses, in that order as in one commit of the writer's), then of the clock if `known`
/// (every device, for rules on the clock).
fn evaluate(
    engine: &mut Engine,
    events: &[LiveEvent],
    known: Option<&[DeviceSummary]>,
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
        let presences: Vec<_> = known.iter().map(presence).collect();
        work.tick(&presences);
        if fleet {
            work.fleet(known);
        }
    }
    work.finish()
}
