//! The alarm engine: every rule's state machine for every device it watches, the open alarms,
//! and what each evaluation changes. An evaluation ([`Work`]) changes the engine's tracks as it
//! goes and keeps how to undo that; [`Changes`] is what it stores. The writer commits them in
//! the transaction of the readings (or tick, or person) that caused them, and only then
//! [`Engine::apply`]s them; an evaluation not applied (a failed commit) is undone before the
//! next one starts, so memory never runs ahead of the disk.
//!
//! Cheap for a healthy fleet: devices and rules are numbered, each device's watching rules are
//! worked out once (by metric) until rules or scopes change, a (rule, device) pair is a small
//! slot holding its one in-memory time ([`eval::soft`]) and, only when it is not idle, its
//! track; a steady track ([`eval::steady`]) meets a reading, status or tick through the pure
//! shortcuts beside [`eval::evaluate`], which allocate nothing, and only what changed is stored.

/// The engine's maps: foldhash, as the store's; the keys are ids the server made, device ids
/// from authenticated devices and numbers.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use std::sync::Arc;

use telemetry::alarm::RuleKind;
use telemetry::alarm::eval::{self, Clock, Effect, Input, Track};
use telemetry::alarm::{
    Alarm, AlarmAction as Action, AlarmError, Rule, Severity, Transition, TransitionKind,
};
use telemetry::notify::{Delivery, DeliveryState, Notice, told};
use telemetry::{DeviceSummary, Millis};

/// A track's key: (rule id, device id).
pub type TrackKey = (String, String);

/// What an evaluation or an action changes, stored together in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// New state per (rule, device) to store; `None` deletes it (back to idle).
    pub tracks: Vec<(TrackKey, Option<Track>)>,
    /// Alarms as they are now (new or changed).
    pub alarms: Vec<Alarm>,
    pub transitions: Vec<Transition>,
    /// Notifications to send.
    pub deliveries: Vec<Delivery>,
    /// The evaluation that made them, whose changes in memory [`Engine::apply`] keeps (0: made
    /// otherwise; then only `tracks` and `alarms` are applied).
    pub work: u64,
}

impl Changes {
    /// Whether there is nothing to store.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty() && self.alarms.is_empty() && self.transitions.is_empty()
    }
}

/// A stored reading as rules see it: device, its values, device time.
pub type Reading<'a> = (&'a str, &'a [(String, f64)], Millis);

/// The devices a batch of readings shows rebooting, in order, as the store records them in the
/// same commit (a reading's uptime below the latest one before it:
/// [`telemetry::attributes::reboot`]); `latest` answers a device's latest reading of an uptime
/// metric (value, device time) before the batch.
pub fn reboots<'a>(
    readings: &[Reading<'a>],
    mut latest: impl FnMut(&str, &str) -> Option<(f64, Millis)>,
) -> Vec<&'a str> {
    use telemetry::attributes::{UPTIME_METRICS, reboot};
    // What this batch has shown so far, by (device, metric), newest time kept as the store does.
    let mut seen: HashMap<(&str, &str), (f64, Millis)> = HashMap::default();
    let mut out = Vec::new();
    for &(device, values, ts) in readings {
        let mut rebooted = false;
        for name in UPTIME_METRICS {
            let Some((_, uptime)) = values.iter().find(|(m, _)| m == name) else { continue };
            let before = match seen.get(&(device, name)) {
                Some(known) => Some(*known),
                None => latest(device, name),
            };
            rebooted |= reboot(before, *uptime, ts).is_some();
            if before.is_none_or(|(_, t)| ts >= t) {
                seen.insert((device, name), (*uptime, ts));
            }
        }
        if rebooted {
            out.push(device);
        }
    }
    out
}

/// A device's presence, for offline and no-data rules on the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    /// Server time of its latest reading (0: none).
    pub last_seen: Millis,
    /// When it said it was offline, if it has sent nothing since.
    pub offline_since: Option<Millis>,
    /// How long after `last_seen` it counts as gone without saying so (its expected interval's).
    pub stale_after: Millis,
    /// Its expected interval, if known (overdue rules).
    pub interval: Option<Millis>,
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActError {
    #[error("no such alarm")]
    NotFound,
    #[error("the alarm is already {0}")]
    Already(&'static str),
}

impl From<ActError> for AlarmError {
    fn from(e: ActError) -> AlarmError {
        match e {
            ActError::NotFound => AlarmError::NotFound,
            ActError::Already(_) => AlarmError::Conflict(e.to_string()),
        }
    }
}

/// One rule's state for one device.
#[derive(Debug, Default)]
struct Pair {
    /// Numbers of the rule and the device.
    rule: u32,
    device: u32,
    /// The time the track keeps in memory only ([`eval::soft`]); what `track` holds of it is
    /// not read.
    soft: Millis,
    /// The track, unless it is idle (a fresh track would act the same).
    track: Option<Box<Track>>,
}

impl Pair {
    /// Whether the shortcuts serve it.
    fn steady(&self) -> bool {
        self.track.as_deref().is_none_or(eval::steady)
    }
}

/// A watching rule: its pair with the device, and the rule's number.
#[derive(Debug, Clone, Copy)]
struct Entry {
    pair: u32,
    rule: u32,
}

/// The rules reading one metric of one device.
#[derive(Debug, Default)]
struct Group {
    metric: String,
    /// Threshold rules whose calm values are an interval ([`eval::Calm`]), which move together
    /// while their tracks are steady and have seen the same readings.
    together: Vec<Entry>,
    /// The values none of them breaches.
    calm: eval::Calm,
    /// Whether they move together now: each steady, and each one's soft time `soft` (what
    /// their pairs hold of it is stale until they part).
    joined: bool,
    soft: Millis,
    /// The others: no-data rules, `inside` bands.
    apart: Vec<Entry>,
}

/// The rules watching one device, worked out for one [`Engine::generation`].
#[derive(Debug, Default)]
struct Watch {
    generation: u64,
    /// Threshold and no-data rules by the metric they read.
    metrics: Vec<Group>,
    /// Rules that hear every reading: offline, and no-data of any metric.
    any: Vec<Entry>,
    /// Rules on the clock: no-data and offline.
    clocked: Vec<Entry>,
    /// Offline rules, which hear statuses.
    offline: Vec<Entry>,
    /// Reboot-loop rules, which hear reboots.
    reboots: Vec<Entry>,
    /// Firmware-drift rules, which hear the fleet's comparison.
    fleet: Vec<Entry>,
}

/// How to undo what an evaluation changed in memory, newest last.
#[derive(Debug)]
enum Undo {
    Soft(u32, Millis),
    /// A group's (device, its index) soft time and whether it was joined.
    Group(u32, u32, Millis, bool),
    Pair(u32, Millis, Option<Box<Track>>),
}

pub struct Engine {
    /// Rules by number (a removed rule's number is free); their numbers by id.
    rules: Vec<Option<Arc<Rule>>>,
    numbers: HashMap<String, u32>,
    /// Rule numbers by the device they name; `everyone`: rules naming none (every device).
    by_device: HashMap<String, Vec<u32>>,
    everyone: Vec<u32>,
    /// Rules with a scope (a fleet query), and the devices each scope held when last worked
    /// out ([`Engine::set_scopes`]); a device not yet in it is not watched.
    scoped: Vec<u32>,
    scopes: HashMap<String, std::collections::HashSet<String>>,
    /// Bumped whenever which rules watch which devices may have changed.
    generation: u64,
    /// Devices by number, their numbers, and what watches each.
    devices: Vec<String>,
    numbered: HashMap<String, u32>,
    watches: Vec<Watch>,
    /// (rule, device) pairs, their numbers, and pair numbers free for reuse.
    pairs: Vec<Pair>,
    pair_of: HashMap<(u32, u32), u32>,
    free_pairs: Vec<u32>,
    /// The latest evaluation's undo, until it is applied (or undone by the next one).
    pending: Option<(u64, Vec<Undo>)>,
    /// An applied evaluation's undo, emptied, for the next one to fill (no growing each time).
    spare: Vec<Undo>,
    evaluations: u64,
    /// Active alarms, and cleared ones a track may reopen.
    alarms: HashMap<String, Alarm>,
    /// Channel ids that exist (a rule naming a deleted one notifies the rest).
    channels: Vec<String>,
    /// No-data and offline rules open nothing before this (the start grace).
    quiet_until: Millis,
    /// The dashboard's address as people reach it, for links in notifications.
    public_url: String,
}

impl Engine {
    pub fn new(quiet_until: Millis, public_url: String) -> Engine {
        Engine {
            rules: Vec::new(),
            numbers: HashMap::default(),
            by_device: HashMap::default(),
            everyone: Vec::new(),
            scoped: Vec::new(),
            scopes: HashMap::default(),
            generation: 1,
            devices: Vec::new(),
            numbered: HashMap::default(),
            watches: Vec::new(),
            pairs: Vec::new(),
            pair_of: HashMap::default(),
            free_pairs: Vec::new(),
            pending: None,
            spare: Vec::new(),
            evaluations: 0,
            alarms: HashMap::default(),
            channels: Vec::new(),
            quiet_until,
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// A new engine with this one's settings and nothing loaded.
    pub fn blank(&self) -> Engine {
        Engine::new(self.quiet_until, self.public_url.clone())
    }

    /// Loads what the store kept: rules, tracks, the alarms tracks refer to, channel ids.
    pub fn load(
        &mut self,
        rules: Vec<Rule>,
        tracks: Vec<(TrackKey, Track)>,
        alarms: Vec<Alarm>,
        channels: Vec<String>,
    ) {
        self.settle();
        for rule in rules {
            self.put_rule(rule);
        }
        self.index();
        for ((rule, device), track) in tracks {
            // A track of a rule that is gone is kept by nothing.
            let Some(&r) = self.numbers.get(&rule) else { continue };
            let d = self.device_number(&device);
            let p = self.pair(r, d);
            self.store_track(p, track);
        }
        self.alarms = alarms.into_iter().map(|a| (a.id.clone(), a)).collect();
        self.channels = channels;
    }

    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().flatten().map(|r| &**r)
    }

    fn rule(&self, id: &str) -> Option<&Arc<Rule>> {
        self.numbers.get(id).and_then(|&n| self.rules[n as usize].as_ref())
    }

    pub fn alarm(&self, id: &str) -> Option<&Alarm> {
        self.alarms.get(id)
    }

    /// Active alarms, for the badge.
    pub fn active(&self) -> impl Iterator<Item = &Alarm> {
        self.alarms.values().filter(|a| a.active)
    }

    /// Replaces (or adds) a rule; its devices' states start over if the condition changed.
    pub fn set_rule(&mut self, rule: Rule) {
        self.settle();
        let changed = self.rule(&rule.id).is_none_or(|old| {
            old.kind != rule.kind || old.devices != rule.devices || old.scope != rule.scope
        });
        let number = self.put_rule(rule);
        if changed {
            self.forget_pairs(number, |p| p.track.as_ref().is_some_and(|t| t.alarm.is_some()));
        }
        self.index();
    }

    /// Forgets a rule and its states (its alarms stay in history).
    pub fn remove_rule(&mut self, id: &str) {
        self.settle();
        let Some(number) = self.numbers.remove(id) else { return };
        self.rules[number as usize] = None;
        self.forget_pairs(number, |_| false);
        self.index();
    }

    /// Puts `rule` in its number (a new one's: the first free); answers the number.
    fn put_rule(&mut self, rule: Rule) -> u32 {
        let number = match self.numbers.get(&rule.id) {
            Some(&n) => n,
            None => {
                let n = match self.rules.iter().position(Option::is_none) {
                    Some(free) => free,
                    None => {
                        self.rules.push(None);
                        self.rules.len() - 1
                    }
                } as u32;
                self.numbers.insert(rule.id.clone(), n);
                n
            }
        };
        self.rules[number as usize] = Some(Arc::new(rule));
        number
    }

    /// Forgets rule `number`'s pairs but those `keep` keeps.
    fn forget_pairs(&mut self, number: u32, keep: impl Fn(&Pair) -> bool) {
        for (i, pair) in self.pairs.iter_mut().enumerate() {
            if pair.rule == number && !keep(pair) && self.pair_of.remove(&(pair.rule, pair.device)).is_some()
            {
                *pair = Pair::default();
                self.free_pairs.push(i as u32);
            }
        }
    }

    fn index(&mut self) {
        self.by_device.clear();
        self.everyone.clear();
        self.scoped.clear();
        self.generation = self.generation.wrapping_add(1);
        for (number, rule) in self.rules.iter().enumerate() {
            let Some(rule) = rule.as_ref().filter(|r| r.enabled) else { continue };
            let number = number as u32;
            if rule.scope.is_some() {
                self.scoped.push(number);
                continue;
            }
            if rule.devices.is_empty() {
                self.everyone.push(number);
            }
            for device in &rule.devices {
                self.by_device.entry(device.clone()).or_default().push(number);
            }
        }
    }

    /// The numbers of the enabled rules watching `device`.
    fn watching(&self, device: &str) -> Vec<u32> {
        let named = self.by_device.get(device).into_iter().flatten();
        let mut numbers: Vec<u32> = self.everyone.iter().chain(named).copied().collect();
        numbers.extend(self.scoped.iter().copied().filter(|&n| {
            self.rules[n as usize].as_ref().is_some_and(|r| {
                r.watches(device) && self.scopes.get(&r.id).is_some_and(|s| s.contains(device))
            })
        }));
        numbers
    }

    /// Whether any rule is enabled (nothing to evaluate otherwise).
    pub fn has_rules(&self) -> bool {
        !self.everyone.is_empty() || !self.by_device.is_empty() || !self.scoped.is_empty()
    }

    /// The enabled rules with a scope, whose devices [`Engine::set_scopes`] is told.
    pub fn scoped_rules(&self) -> impl Iterator<Item = &Rule> {
        self.scoped.iter().filter_map(|&n| self.rules[n as usize].as_deref())
    }

    /// The devices each scoped rule's query holds now, by rule id.
    pub fn set_scopes(
        &mut self,
        scopes: impl IntoIterator<Item = (String, std::collections::HashSet<String>)>,
    ) {
        self.settle();
        self.scopes = scopes.into_iter().collect();
        self.generation = self.generation.wrapping_add(1);
    }

    pub fn add_channel(&mut self, id: String) {
        if !self.channels.contains(&id) {
            self.channels.push(id);
        }
    }

    pub fn remove_channel(&mut self, id: &str) {
        self.channels.retain(|c| c != id);
    }

    /// Whether any alarm is open (reminders may fall due on the clock).
    pub fn has_alarms(&self) -> bool {
        self.alarms.values().any(|a| a.active)
    }

    /// `device`'s number (numbered now if it had none).
    fn device_number(&mut self, device: &str) -> u32 {
        if let Some(&d) = self.numbered.get(device) {
            return d;
        }
        let d = self.devices.len() as u32;
        self.devices.push(device.to_owned());
        self.numbered.insert(device.to_owned(), d);
        self.watches.push(Watch::default());
        d
    }

    /// The pair of rule `rule` and device `device` (a fresh one if it had none).
    fn pair(&mut self, rule: u32, device: u32) -> u32 {
        if let Some(&p) = self.pair_of.get(&(rule, device)) {
            return p;
        }
        let fresh = Pair { rule, device, soft: 0, track: None };
        let p = match self.free_pairs.pop() {
            Some(p) => {
                self.pairs[p as usize] = fresh;
                p
            }
            None => {
                self.pairs.push(fresh);
                (self.pairs.len() - 1) as u32
            }
        };
        self.pair_of.insert((rule, device), p);
        p
    }

    /// Device `device`'s watching rules, worked out again if rules or scopes changed since.
    fn refresh(&mut self, device: u32) {
        if self.watches[device as usize].generation == self.generation {
            return;
        }
        // Whatever held it before has parted (see [`Engine::part_all`]): the pairs hold it all.
        let name = std::mem::take(&mut self.devices[device as usize]);
        let mut watch = Watch { generation: self.generation, ..Watch::default() };
        for rule in self.watching(&name) {
            let entry = Entry { pair: self.pair(rule, device), rule };
            let Some(r) = self.rules[rule as usize].as_ref() else { continue };
            let calm = eval::Calm::of(r);
            let mut by_metric = |metric: &str| {
                let at = match watch.metrics.iter().position(|g| g.metric == metric) {
                    Some(at) => at,
                    None => {
                        let group =
                            Group { metric: metric.to_owned(), calm: eval::Calm::ALL, ..Group::default() };
                        watch.metrics.push(group);
                        watch.metrics.len() - 1
                    }
                };
                let group = &mut watch.metrics[at];
                match calm {
                    Some(calm) => {
                        group.together.push(entry);
                        group.calm = group.calm.and(calm);
                    }
                    None => group.apart.push(entry),
                }
            };
            match &r.kind {
                RuleKind::Threshold { metric, .. } => by_metric(metric),
                RuleKind::NoData { metric, .. } => {
                    match metric {
                        Some(m) => by_metric(m),
                        None => watch.any.push(entry),
                    }
                    watch.clocked.push(entry);
                }
                RuleKind::Offline { .. } => {
                    watch.any.push(entry);
                    watch.clocked.push(entry);
                    watch.offline.push(entry);
                }
                RuleKind::Overdue { .. } => {
                    watch.any.push(entry);
                    watch.clocked.push(entry);
                }
                RuleKind::RebootLoop { .. } => watch.reboots.push(entry),
                RuleKind::FirmwareDrift { .. } => watch.fleet.push(entry),
            }
        }
        for group in &mut watch.metrics {
            join(group, &self.pairs);
        }
        self.devices[device as usize] = name;
        self.watches[device as usize] = watch;
    }

    /// Every group parts: its pairs hold their soft times again. Before anything changes pairs
    /// or which rules watch a device, outside an evaluation.
    fn part_all(&mut self) {
        for watch in &mut self.watches {
            for group in watch.metrics.iter_mut().filter(|g| g.joined) {
                for entry in &group.together {
                    self.pairs[entry.pair as usize].soft = group.soft;
                }
                group.joined = false;
            }
        }
    }

    /// What no evaluation may see half done: the latest one undone if it was not applied, and
    /// every group parted.
    fn settle(&mut self) {
        self.undo_pending();
        self.part_all();
    }

    /// Sets pair `p`'s state to `track` (its soft time included).
    fn store_track(&mut self, p: u32, track: Track) {
        let pair = &mut self.pairs[p as usize];
        let Some(rule) = self.rules[pair.rule as usize].as_ref() else { return };
        pair.soft = eval::soft(&rule.kind, &track);
        pair.track = (!track.is_idle()).then(|| Box::new(track));
    }

    /// Pair `p`'s soft time: its group's while that is joined.
    fn soft_of(&self, p: u32) -> Millis {
        let pair = &self.pairs[p as usize];
        let groups = self.watches.get(pair.device as usize).into_iter().flat_map(|w| &w.metrics);
        let mut joined = groups.filter(|g| g.joined && g.together.iter().any(|e| e.pair == p));
        joined.next().map_or(pair.soft, |g| g.soft)
    }

    /// Pair `p`'s track as it stands, its soft time included.
    fn track_of(&self, p: u32) -> Track {
        let pair = &self.pairs[p as usize];
        let mut track = pair.track.as_deref().cloned().unwrap_or_default();
        if let Some(rule) = self.rules[pair.rule as usize].as_ref() {
            eval::set_soft(&rule.kind, &mut track, self.soft_of(p));
        }
        track
    }

    fn undo(&mut self, mut undo: Vec<Undo>) {
        for step in undo.drain(..).rev() {
            match step {
                Undo::Soft(p, soft) => self.pairs[p as usize].soft = soft,
                Undo::Group(d, g, soft, joined) => {
                    let watch = self.watches.get_mut(d as usize);
                    if let Some(group) = watch.and_then(|w| w.metrics.get_mut(g as usize)) {
                        group.soft = soft;
                        group.joined = joined;
                    }
                }
                Undo::Pair(p, soft, track) => {
                    let pair = &mut self.pairs[p as usize];
                    pair.soft = soft;
                    pair.track = track;
                }
            }
        }
        self.spare = undo;
    }

    /// An evaluation that was not applied is undone.
    fn undo_pending(&mut self) {
        if let Some((_, undo)) = self.pending.take() {
            self.undo(undo);
        }
    }

    /// Stored changes take effect: the evaluation that made them stays done.
    pub fn apply(&mut self, changes: &Changes) {
        match self.pending.take() {
            Some((work, mut undo)) if work == changes.work && work != 0 => {
                undo.clear();
                self.spare = undo;
            }
            pending => {
                // Changes this engine's latest evaluation did not make: their tracks as given.
                if let Some((_, undo)) = pending {
                    self.undo(undo);
                }
                if !changes.tracks.is_empty() {
                    // Pairs are set directly: none may move with a group meanwhile.
                    self.part_all();
                }
                for ((rule, device), track) in &changes.tracks {
                    let Some(&r) = self.numbers.get(rule) else { continue };
                    let d = self.device_number(device);
                    let p = self.pair(r, d);
                    let soft = self.pairs[p as usize].soft;
                    match track {
                        Some(t) => self.store_track(p, t.clone()),
                        None => self.pairs[p as usize].track = None,
                    }
                    // What memory holds of a track back to idle stays.
                    if track.is_none() {
                        self.pairs[p as usize].soft = soft;
                    }
                }
            }
        }
        if changes.alarms.is_empty() && changes.tracks.is_empty() {
            // No alarm changed, and no track names another: nothing to forget.
            return;
        }
        for alarm in &changes.alarms {
            self.alarms.insert(alarm.id.clone(), alarm.clone());
        }
        // Cleared alarms no track can reopen any more are history, kept by the store only.
        let referenced: std::collections::HashSet<&str> =
            self.pairs.iter().filter_map(|p| p.track.as_deref().and_then(|t| t.alarm.as_deref())).collect();
        self.alarms.retain(|id, a| a.active || referenced.contains(id.as_str()));
    }

    /// Undoes the latest evaluation if it was not applied (its commit failed); the next
    /// evaluation does so anyway.
    pub fn discard(&mut self) {
        self.undo_pending();
    }

    /// An evaluation at `now`: feed it what one commit holds (readings, statuses, the clock,
    /// people's actions), then [`Work::finish`] it. Later steps see earlier steps' changes.
    pub fn work(&mut self, now: Millis) -> Work<'_> {
        Work::new(self, now)
    }

    /// Whether any rule needs devices' presence on the clock (no-data, offline, overdue and
    /// firmware-drift rules).
    pub fn wants_presence(&self) -> bool {
        self.rules()
            .any(|r| r.enabled && !matches!(r.kind, RuleKind::Threshold { .. } | RuleKind::RebootLoop { .. }))
    }

    /// Whether any rule hears reboots ([`Work::reboots`]).
    pub fn wants_reboots(&self) -> bool {
        self.rules().any(|r| r.enabled && matches!(r.kind, RuleKind::RebootLoop { .. }))
    }

    /// Whether any rule compares devices' firmware ([`Work::fleet`]).
    pub fn wants_fleet(&self) -> bool {
        self.rules().any(|r| r.enabled && matches!(r.kind, RuleKind::FirmwareDrift { .. }))
    }

    /// The latest value `alarm`'s rule reads, as this engine last evaluated it: what a hand's
    /// clear checks for "still breaching".
    pub fn latest_value(&self, alarm: &Alarm) -> Option<f64> {
        alarm.last_value
    }

    /// [`Engine::work`] on one stored batch: readings `(device, values, device time)` arrived
    /// at `received`, and statuses `(device, online)`.
    pub fn on_batch(&mut self, readings: &[Reading], statuses: &[(&str, bool)], received: Millis) -> Changes {
        let mut work = self.work(received);
        work.readings(readings);
        work.statuses(statuses);
        work.finish()
    }

    /// [`Engine::work`] on reboots seen now (devices).
    pub fn on_reboots(&mut self, devices: &[&str], now: Millis) -> Changes {
        let mut work = self.work(now);
        work.reboots(devices);
        work.finish()
    }

    /// [`Engine::work`] on the clock.
    pub fn on_tick(&mut self, now: Millis, devices: &[(String, Presence)]) -> Changes {
        let mut work = self.work(now);
        work.tick(devices);
        work.finish()
    }

    /// [`Engine::work`] on one action.
    pub fn act(
        &mut self,
        id: &str,
        action: Action,
        by: &str,
        now: Millis,
        latest: Option<f64>,
    ) -> Result<Changes, ActError> {
        let mut work = self.work(now);
        work.act(id, action, by, latest)?;
        Ok(work.finish())
    }
}

/// One evaluation: it changes the engine's tracks in place, keeping how to undo that, and
/// gathers the alarms, log entries and notifications it made.
pub struct Work<'a> {
    engine: &'a mut Engine,
    now: Millis,
    /// How to undo what it changed in the engine's pairs; given to the engine when finished
    /// (dropped unfinished, it is undone at once).
    undo: Vec<Undo>,
    /// Pairs whose stored state it changed.
    stored: HashMap<u32, ()>,
    alarms: Vec<Alarm>,
    transitions: Vec<Transition>,
    deliveries: Vec<Delivery>,
    /// Stored alarms the engine has let go (cleared, no longer reopenable), read back so people
    /// can still acknowledge, shelve or comment on them; not changes by themselves.
    recalled: Vec<Alarm>,
}

impl Drop for Work<'_> {
    fn drop(&mut self) {
        let undo = std::mem::take(&mut self.undo);
        self.engine.undo(undo);
    }
}

impl<'a> Work<'a> {
    fn new(engine: &'a mut Engine, now: Millis) -> Work<'a> {
        engine.undo_pending();
        let undo = std::mem::take(&mut engine.spare);
        Work {
            engine,
            now,
            undo,
            stored: HashMap::default(),
            alarms: Vec::new(),
            transitions: Vec::new(),
            deliveries: Vec::new(),
            recalled: Vec::new(),
        }
    }

    /// The rule with id `id`, for what an action needs to know of it.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.engine.rule(id).map(|r| &**r)
    }

    /// Stored readings `(device, values, device time)` that arrived now.
    pub fn readings(&mut self, readings: &[Reading]) {
        if !self.engine.has_rules() {
            return;
        }
        let received = self.now;
        for &(device, values, ts) in readings {
            let d = self.engine.device_number(device);
            self.engine.refresh(d);
            // Taken out while its rules run (they change only its groups), then put back.
            let mut watch = std::mem::take(&mut self.engine.watches[d as usize]);
            for (g, group) in watch.metrics.iter_mut().enumerate() {
                // A reading without the rule's metric is no news to it.
                let Some(v) = values.iter().find(|(name, _)| *name == group.metric).map(|(_, v)| *v) else {
                    continue;
                };
                if group.joined {
                    // What `eval::steady_reading` answers for each of them, at once.
                    if (group.soft != 0 && ts <= group.soft) || received.saturating_sub(ts) > eval::FRESH_MS {
                        // Late, or a backfill: no news to any of them.
                    } else if group.calm.holds(v) {
                        self.undo.push(Undo::Group(d, g as u32, group.soft, true));
                        group.soft = ts;
                    } else {
                        // A breach for some: each on its own from here.
                        part(group, d, g as u32, &mut self.engine.pairs, &mut self.undo);
                    }
                }
                if !group.joined {
                    for &entry in &group.together {
                        self.reading(entry, Some(v), values, ts, received);
                    }
                    if join(group, &self.engine.pairs) {
                        self.undo.push(Undo::Group(d, g as u32, 0, false));
                    }
                }
                for &entry in &group.apart {
                    self.reading(entry, Some(v), values, ts, received);
                }
            }
            // An offline rule hears every reading (the device is back); so does a no-data rule
            // of any metric.
            let any = values.first().map(|(_, v)| *v);
            for &entry in &watch.any {
                self.reading(entry, any, values, ts, received);
            }
            self.engine.watches[d as usize] = watch;
        }
    }

    /// Rule `entry` on a reading (`value`: of its metric, if it has one).
    fn reading(
        &mut self,
        entry: Entry,
        value: Option<f64>,
        values: &[(String, f64)],
        ts: Millis,
        received: Millis,
    ) {
        let pair = &self.engine.pairs[entry.pair as usize];
        if pair.steady()
            && let Some(rule) = self.engine.rules[entry.rule as usize].as_ref()
            && let Some(soft) = eval::steady_reading(rule, pair.soft, value, ts, received)
        {
            self.set_soft(entry.pair, soft);
            return;
        }
        self.evaluate(entry.pair, Input::Reading { values, ts, received });
    }

    fn set_soft(&mut self, p: u32, soft: Millis) {
        let pair = &mut self.engine.pairs[p as usize];
        if pair.soft != soft {
            self.undo.push(Undo::Soft(p, pair.soft));
            pair.soft = soft;
        }
    }

    /// Devices seen rebooting now (their uptime went down: [`reboots`]).
    pub fn reboots(&mut self, devices: &[&str]) {
        if !self.engine.has_rules() {
            return;
        }
        for device in devices {
            let d = self.engine.device_number(device);
            self.engine.refresh(d);
            let entries = std::mem::take(&mut self.engine.watches[d as usize].reboots);
            for entry in &entries {
                self.evaluate(entry.pair, Input::Reboot);
            }
            self.engine.watches[d as usize].reboots = entries;
        }
    }

    /// The fleet's firmware compared now: each device a firmware-drift rule watches that
    /// reports a firmware is apart when it differs from the most common one among the devices
    /// the rule watches (with the same value of the rule's tag, if it names one).
    pub fn fleet(&mut self, devices: &[DeviceSummary]) {
        self.fleet_of(devices, |_| true);
    }

    /// As [`Work::fleet`], judging only the devices `owns` answers for (a cluster node's
    /// partition), each against all of `devices`.
    pub fn fleet_of(&mut self, devices: &[DeviceSummary], owns: impl Fn(&str) -> bool) {
        if !self.engine.has_rules() {
            return;
        }
        // (rule, its tag's value) → firmware → devices on it; and each watching pair's.
        let mut counts: HashMap<(u32, Option<&str>), HashMap<&str, u32>> = HashMap::default();
        let mut seen: Vec<(Entry, Option<&str>, &str)> = Vec::new();
        for d in devices {
            let Some(fw) = d.attribute("fw").and_then(|a| match &a.value {
                telemetry::attributes::AttrValue::Text(t) => Some(t.as_str()),
                _ => None,
            }) else {
                continue;
            };
            let n = self.engine.device_number(&d.id);
            self.engine.refresh(n);
            for &entry in &self.engine.watches[n as usize].fleet {
                let Some(rule) = self.engine.rules[entry.rule as usize].as_ref() else { continue };
                let RuleKind::FirmwareDrift { tag, .. } = &rule.kind else { continue };
                let key = tag.as_deref().and_then(|t| d.tags.get(t)).map(String::as_str);
                *counts.entry((entry.rule, key)).or_default().entry(fw).or_default() += 1;
                if owns(&d.id) {
                    seen.push((entry, key, fw));
                }
            }
        }
        // The most common firmware of each, if one is (a tie: none).
        let common: HashMap<(u32, Option<&str>), Option<&str>> = counts
            .into_iter()
            .map(|(at, firmwares)| {
                let top = firmwares.values().copied().max().unwrap_or(0);
                let mut tops = firmwares.into_iter().filter(|(_, n)| *n == top);
                let only = match (tops.next(), tops.next()) {
                    (Some((fw, _)), None) => Some(fw),
                    _ => None,
                };
                (at, only)
            })
            .collect();
        for (entry, key, fw) in seen {
            let differs = common.get(&(entry.rule, key)).copied().flatten().is_some_and(|c| c != fw);
            if !differs && self.engine.pairs[entry.pair as usize].steady() {
                continue;
            }
            self.evaluate(entry.pair, Input::Fleet { differs });
        }
    }

    /// Statuses `(device, online)` that arrived now.
    pub fn statuses(&mut self, statuses: &[(&str, bool)]) {
        if !self.engine.has_rules() {
            return;
        }
        for &(device, online) in statuses {
            let d = self.engine.device_number(device);
            self.engine.refresh(d);
            let offline = std::mem::take(&mut self.engine.watches[d as usize].offline);
            for entry in &offline {
                // A status changes nothing of a steady track.
                if !self.engine.pairs[entry.pair as usize].steady() {
                    self.evaluate(entry.pair, Input::Status { online });
                }
            }
            self.engine.watches[d as usize].offline = offline;
        }
    }

    /// The clock moved on: pending periods end, no-data and offline rules look at `devices`
    /// (each with its presence), flapping ends, reminders fall due.
    pub fn tick(&mut self, devices: &[(String, Presence)]) {
        let now = self.now;
        let enabled =
            |engine: &Engine, rule: u32| engine.rules[rule as usize].as_ref().is_some_and(|r| r.enabled);
        // Threshold rules' tracks that are not idle and want the clock.
        let busy: Vec<u32> = (0..self.engine.pairs.len() as u32)
            .filter(|&p| {
                let pair = &self.engine.pairs[p as usize];
                pair.track.as_deref().is_some_and(Track::wants_ticks)
                    && self.engine.pair_of.get(&(pair.rule, pair.device)) == Some(&p)
                    && self.engine.rules[pair.rule as usize].as_ref().is_some_and(|r| {
                        r.enabled
                            && matches!(r.kind, RuleKind::Threshold { .. } | RuleKind::RebootLoop { .. })
                    })
            })
            .collect();
        for p in busy {
            self.evaluate(
                p,
                Input::Tick { last_seen: now, offline_since: None, stale_after: 0, interval: None },
            );
        }
        if self.engine.has_rules() {
            let clock = Clock { now, quiet_until: self.engine.quiet_until };
            for (device, presence) in devices {
                let d = self.engine.device_number(device);
                self.engine.refresh(d);
                let clocked = std::mem::take(&mut self.engine.watches[d as usize].clocked);
                for &entry in &clocked {
                    if !enabled(self.engine, entry.rule) {
                        continue;
                    }
                    let Presence { last_seen, offline_since, stale_after, interval } = *presence;
                    let pair = &self.engine.pairs[entry.pair as usize];
                    if pair.steady()
                        && let Some(rule) = self.engine.rules[entry.rule as usize].as_ref()
                        && let Some(soft) = eval::steady_tick(
                            rule,
                            pair.soft,
                            last_seen,
                            offline_since,
                            stale_after,
                            interval,
                            clock,
                        )
                    {
                        self.set_soft(entry.pair, soft);
                        continue;
                    }
                    self.evaluate(
                        entry.pair,
                        Input::Tick { last_seen, offline_since, stale_after, interval },
                    );
                }
                self.engine.watches[d as usize].clocked = clocked;
            }
        }
        let due: Vec<String> = self
            .engine
            .alarms
            .keys()
            .filter_map(|id| self.alarm(id))
            .filter(|a| a.active && !a.acked && !a.shelved(now) && a.remind_at.is_some_and(|t| t <= now))
            .map(|a| a.id)
            .collect();
        for id in due {
            let Some(mut alarm) = self.alarm(&id) else { continue };
            let remind = self.engine.rule(&alarm.rule_id).map_or(0, |r| r.remind_secs);
            alarm.remind_at = (remind > 0).then(|| now.saturating_add(remind as Millis * 1000));
            let value = alarm.last_value;
            self.transition(&mut alarm, TransitionKind::Reminder, value, None, None);
            self.put(alarm);
        }
    }

    /// `by` does `action` to alarm `id`; `latest` is the rule's metric's latest value (a
    /// hand's clear of a condition that still holds starts a new pending period). Answers the
    /// alarm as it is now.
    pub fn act(
        &mut self,
        id: &str,
        action: Action,
        by: &str,
        latest: Option<f64>,
    ) -> Result<Alarm, ActError> {
        let now = self.now;
        let mut alarm = self.alarm(id).ok_or(ActError::NotFound)?;
        let kind = match &action {
            Action::Ack if alarm.acked => return Err(ActError::Already("acknowledged")),
            Action::Ack => {
                alarm.acked = true;
                alarm.acked_at = Some(now);
                alarm.acked_by = Some(by.to_owned());
                alarm.remind_at = None;
                TransitionKind::Acked
            }
            Action::Clear if !alarm.active => return Err(ActError::Already("cleared")),
            Action::Clear => {
                alarm.active = false;
                alarm.cleared_at = Some(now);
                alarm.remind_at = None;
                if let Some(rule) = self.engine.rule(&alarm.rule_id).cloned() {
                    let r = self.engine.numbers[&rule.id];
                    let d = self.engine.device_number(&alarm.device);
                    let p = self.engine.pair(r, d);
                    self.part_of(p);
                    let mut track = self.engine.track_of(p);
                    eval::cleared_by_hand(&rule, &mut track, latest, now);
                    self.keep(p, &rule, track, true);
                }
                TransitionKind::Cleared
            }
            Action::Shelve { hours } => {
                alarm.shelved_until = Some(now.saturating_add(Millis::from(*hours) * 3_600_000));
                TransitionKind::Shelved
            }
            Action::Unshelve => {
                alarm.shelved_until = None;
                TransitionKind::Unshelved
            }
            Action::Comment { .. } => {
                alarm.comments = alarm.comments.saturating_add(1);
                TransitionKind::Commented
            }
        };
        let text = match action {
            Action::Comment { text } => Some(text),
            _ => None,
        };
        let value = alarm.last_value;
        self.transition(&mut alarm, kind, value, Some(by.to_owned()), text);
        self.put(alarm.clone());
        Ok(alarm)
    }

    /// The alarm as this evaluation left it so far.
    pub fn alarm(&self, id: &str) -> Option<Alarm> {
        self.alarms
            .iter()
            .rev()
            .find(|a| a.id == id)
            .cloned()
            .or_else(|| self.engine.alarms.get(id).cloned())
            .or_else(|| self.recalled.iter().find(|a| a.id == id).cloned())
    }

    /// Makes a stored alarm the engine has let go known to this evaluation, so an action on it
    /// (acknowledging a cleared alarm: CLEARED_UNACK → CLEARED_ACK) finds it.
    pub fn recall(&mut self, alarm: Alarm) {
        if self.alarm(&alarm.id).is_none() {
            self.recalled.push(alarm);
        }
    }

    fn put(&mut self, alarm: Alarm) {
        self.alarms.retain(|a| a.id != alarm.id);
        self.alarms.push(alarm);
    }

    /// The full evaluation of pair `p` on `input`.
    fn evaluate(&mut self, p: u32, input: Input) {
        self.part_of(p);
        let pair = &self.engine.pairs[p as usize];
        let Some(rule) = self.engine.rules[pair.rule as usize].clone() else { return };
        let device = pair.device;
        let before = self.engine.track_of(p);
        let mut track = before.clone();
        let clock = Clock { now: self.now, quiet_until: self.engine.quiet_until };
        let effects = eval::evaluate(&rule, &mut track, input, clock);
        if !effects.is_empty() {
            let device = self.engine.devices[device as usize].clone();
            for effect in effects {
                self.effect(&rule, &device, &mut track, effect);
            }
        }
        if track != before {
            let stored = !same_durable(&track, &before);
            self.keep(p, &rule, track, stored);
        }
    }

    /// Parts the group pair `p` moves with, if any (before it changes on its own).
    fn part_of(&mut self, p: u32) {
        let engine = &mut *self.engine;
        let d = engine.pairs[p as usize].device;
        let Some(watch) = engine.watches.get_mut(d as usize) else { return };
        for (g, group) in watch.metrics.iter_mut().enumerate() {
            if group.joined && group.together.iter().any(|e| e.pair == p) {
                part(group, d, g as u32, &mut engine.pairs, &mut self.undo);
            }
        }
    }

    /// Pair `p` is now `track`; `stored`: what is stored of it changed.
    fn keep(&mut self, p: u32, rule: &Rule, track: Track, stored: bool) {
        let pair = &mut self.engine.pairs[p as usize];
        let soft = eval::soft(&rule.kind, &track);
        let old = std::mem::replace(&mut pair.track, (!track.is_idle()).then(|| Box::new(track)));
        self.undo.push(Undo::Pair(p, std::mem::replace(&mut pair.soft, soft), old));
        if stored {
            self.stored.insert(p, ());
        }
    }

    fn effect(&mut self, rule: &Rule, device: &str, track: &mut Track, effect: Effect) {
        let now = self.now;
        let remind_at = (rule.remind_secs > 0).then(|| now.saturating_add(rule.remind_secs as Millis * 1000));
        let kind = effect.kind();
        match effect {
            Effect::Open { severity, value, reopen } => {
                let reopened = reopen.then(|| track.alarm.as_deref().and_then(|id| self.alarm(id))).flatten();
                let mut alarm = match reopened {
                    Some(mut a) => {
                        a.active = true;
                        a.acked = false;
                        a.acked_at = None;
                        a.acked_by = None;
                        a.cleared_at = None;
                        a.severity = severity;
                        a.opened = a.opened.saturating_add(1);
                        a
                    }
                    None => new_alarm(rule, device, severity, value, now),
                };
                alarm.last_value = value.or(alarm.last_value);
                alarm.last_breach_at = value.map(|_| now).or(alarm.last_breach_at);
                alarm.flapping = track.flapping;
                alarm.remind_at = remind_at;
                track.alarm = Some(alarm.id.clone());
                self.transition(&mut alarm, kind, value, None, None);
                self.put(alarm);
            }
            Effect::Severity { to, value, .. } => {
                let Some(mut alarm) = track.alarm.as_deref().and_then(|id| self.alarm(id)) else { return };
                alarm.severity = to;
                alarm.last_value = Some(value);
                alarm.last_breach_at = Some(now);
                self.transition(&mut alarm, kind, Some(value), None, None);
                self.put(alarm);
            }
            Effect::Clear { value } => {
                let Some(mut alarm) = track.alarm.as_deref().and_then(|id| self.alarm(id)) else { return };
                alarm.active = false;
                alarm.cleared_at = Some(now);
                alarm.remind_at = None;
                self.transition(&mut alarm, kind, value, None, None);
                self.put(alarm);
            }
            Effect::Flapping | Effect::Stable => {
                let Some(mut alarm) = track.alarm.as_deref().and_then(|id| self.alarm(id)) else { return };
                alarm.flapping = effect == Effect::Flapping;
                let value = alarm.last_value;
                self.transition(&mut alarm, kind, value, None, None);
                self.put(alarm);
            }
        }
    }

    /// Logs `kind` on `alarm` and queues its notifications: to the rule's channels, unless the
    /// alarm is shelved, or flapping and this is one of the changes flapping keeps quiet.
    fn transition(
        &mut self,
        alarm: &mut Alarm,
        kind: TransitionKind,
        value: Option<f64>,
        by: Option<String>,
        text: Option<String>,
    ) {
        let at = self.now;
        self.transitions.push(Transition {
            alarm_id: alarm.id.clone(),
            kind,
            at,
            severity: alarm.severity,
            value,
            by,
            text,
        });
        if !told(kind, alarm.flapping) || alarm.shelved(at) {
            return;
        }
        let Some(rule) = self.engine.rule(&alarm.rule_id).cloned() else { return };
        for channel in rule.channels.iter().filter(|c| self.engine.channels.contains(c)) {
            let notice = Notice {
                version: 1,
                event: kind.event().to_owned(),
                alarm_id: alarm.id.clone(),
                rule_id: alarm.rule_id.clone(),
                rule_name: alarm.rule_name.clone(),
                device: alarm.device.clone(),
                severity: alarm.severity,
                status: alarm.status().as_str().to_owned(),
                value,
                at,
                url: format!("{}/alarms/{}", self.engine.public_url, alarm.id),
            };
            self.deliveries.push(Delivery {
                id: format!("msg_{}", crate::random::base36(24)),
                channel: channel.clone(),
                notice,
                state: DeliveryState::Pending,
                created: at,
                attempts: 0,
                next_at: at,
                last_status: None,
                last_error: None,
                done_at: None,
            });
        }
    }

    pub fn finish(mut self) -> Changes {
        let engine = &mut *self.engine;
        let mut tracks = Vec::with_capacity(self.stored.len());
        for &p in self.stored.keys() {
            let pair = &engine.pairs[p as usize];
            let Some(rule) = engine.rules[pair.rule as usize].as_ref() else { continue };
            let key = (rule.id.clone(), engine.devices[pair.device as usize].clone());
            let track = pair.track.is_some().then(|| engine.track_of(p));
            tracks.push((key, track));
        }
        engine.evaluations = engine.evaluations.wrapping_add(1).max(1);
        let work = engine.evaluations;
        engine.pending = Some((work, std::mem::take(&mut self.undo)));
        Changes {
            tracks,
            alarms: std::mem::take(&mut self.alarms),
            transitions: std::mem::take(&mut self.transitions),
            deliveries: std::mem::take(&mut self.deliveries),
            work,
        }
    }
}

/// Joins `group` if its rules can move together now (each steady, each having seen the same
/// readings); answers whether it joined (it was apart).
fn join(group: &mut Group, pairs: &[Pair]) -> bool {
    let Some(first) = group.together.first() else { return false };
    let soft = pairs[first.pair as usize].soft;
    if group.joined
        || !group
            .together
            .iter()
            .all(|e| pairs[e.pair as usize].steady() && pairs[e.pair as usize].soft == soft)
    {
        return false;
    }
    group.joined = true;
    group.soft = soft;
    true
}

/// Parts joined `group` (device `d`'s `g`th): its pairs hold their soft times again.
fn part(group: &mut Group, d: u32, g: u32, pairs: &mut [Pair], undo: &mut Vec<Undo>) {
    if !group.joined {
        return;
    }
    for entry in &group.together {
        pairs[entry.pair as usize].soft = group.soft;
    }
    undo.push(Undo::Group(d, g, group.soft, true));
    group.joined = false;
}

/// Whether what is stored of two tracks is the same: all but the newest reading's time and the
/// last data seen.
fn same_durable(a: &Track, b: &Track) -> bool {
    // Every field named: one added to Track is a compile error here until it is sorted.
    let Track { phase, alarm, last_ts: _, last_data: _, opens, reboots, flapping, last_change, cleared_at } =
        a;
    *phase == b.phase
        && *alarm == b.alarm
        && *opens == b.opens
        && *reboots == b.reboots
        && *flapping == b.flapping
        && *last_change == b.last_change
        && *cleared_at == b.cleared_at
}

fn new_alarm(rule: &Rule, device: &str, severity: Severity, value: Option<f64>, now: Millis) -> Alarm {
    Alarm::new(
        format!("al-{}", crate::random::base36(12)),
        &rule.id,
        &rule.name,
        device,
        severity,
        value,
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_766_146_880_000;

    fn engine(rules: &[serde_json::Value]) -> Engine {
        let mut e = Engine::new(0, "http://dash.local:3000/".into());
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, j)| {
                let mut r: Rule = serde_json::from_value(j.clone()).unwrap();
                r.id = format!("r{i}");
                r
            })
            .collect();
        e.load(rules, vec![], vec![], vec!["ops".into()]);
        e
    }

    fn hot() -> serde_json::Value {
        serde_json::json!({"name": "hot", "kind": "threshold", "metric": "t", "op": ">",
            "levels": [{"severity": "critical", "value": 30}], "channels": ["ops", "deleted"], "remind_secs": 600})
    }

    /// Stores a reading of `t` for `device` at `at` and applies what it changed.
    fn reading(e: &mut Engine, device: &str, t: f64, at: Millis) -> Changes {
        let values = [("t".to_owned(), t)];
        let changes = e.on_batch(&[(device, &values, at)], &[], at);
        e.apply(&changes);
        changes
    }

    #[test]
    fn a_breach_opens_an_alarm_notifies_its_channels_and_a_reading_clears_it() {
        let mut e = engine(&[hot()]);
        let quiet = reading(&mut e, "d1", 20.0, T0);
        assert!(quiet.is_empty() && quiet.deliveries.is_empty(), "{quiet:?}");
        let fired = reading(&mut e, "d1", 31.5, T0 + 1000);
        assert_eq!(fired.alarms.len(), 1);
        let alarm = &fired.alarms[0];
        assert!(alarm.active && !alarm.acked && alarm.device == "d1" && alarm.value == Some(31.5));
        assert_eq!(fired.transitions.iter().map(|t| t.kind).collect::<Vec<_>>(), [TransitionKind::Fired]);
        assert_eq!(fired.deliveries.len(), 1, "only channels that exist");
        let notice = &fired.deliveries[0].notice;
        assert_eq!((notice.event.as_str(), notice.status.as_str()), ("alarm.fired", "ACTIVE_UNACK"));
        assert_eq!(notice.url, format!("http://dash.local:3000/alarms/{}", alarm.id));
        assert_eq!(fired.tracks.len(), 1, "the firing state is stored");
        assert_eq!(e.active().count(), 1);

        let cleared = reading(&mut e, "d1", 25.0, T0 + 2000);
        assert!(!cleared.alarms[0].active && cleared.alarms[0].id == alarm.id);
        assert_eq!(cleared.deliveries[0].notice.event, "alarm.cleared");
        assert_eq!(e.active().count(), 0);
        let other = reading(&mut e, "d2", 20.0, T0 + 3000);
        assert!(other.tracks.is_empty(), "a device in the normal state stores nothing");
    }

    #[test]
    fn a_scoped_rule_watches_only_the_devices_its_scope_holds() {
        let mut scoped = hot();
        scoped["scope"] = "tag:site=greenhouse".into();
        let mut offline = serde_json::json!({"name": "gone", "kind": "offline", "after_secs": 60});
        offline["scope"] = "tag:site=greenhouse".into();
        let mut e = engine(&[scoped, offline]);
        assert!(e.has_rules());
        assert!(
            reading(&mut e, "in", 31.0, T0).alarms.is_empty(),
            "nobody is in scope before it is worked out"
        );
        let members = |ids: &[&str]| ids.iter().map(|d| (*d).to_owned()).collect();
        let scopes: Vec<_> = e.scoped_rules().map(|r| (r.id.clone(), members(&["in"]))).collect();
        assert_eq!(scopes.len(), 2);
        e.set_scopes(scopes);
        assert_eq!(reading(&mut e, "in", 32.0, T0 + 1000).alarms.len(), 1);
        assert!(reading(&mut e, "out", 32.0, T0 + 1000).alarms.is_empty());
        let gone =
            Presence { last_seen: T0 - 3_600_000, offline_since: None, stale_after: 60_000, interval: None };
        let ticked = e.on_tick(T0 + 120_000, &[("in".into(), gone), ("out".into(), gone)]);
        let opened: Vec<&str> =
            ticked.alarms.iter().filter(|a| a.rule_name == "gone").map(|a| a.device.as_str()).collect();
        assert_eq!(opened, ["in"], "the offline rule too");
        // A changed scope starts the rule's states over, as a changed list of devices does.
        let mut rule = e.rules().find(|r| r.name == "hot").unwrap().clone();
        rule.scope = Some("tag:site=barn".into());
        e.set_rule(rule);
        assert!(e.scoped_rules().count() == 2);
    }

    #[test]
    fn reminders_until_acknowledged_then_a_hand_clear_starts_a_new_alarm() {
        let mut e = engine(&[hot()]);
        let fired = reading(&mut e, "d1", 35.0, T0);
        let id = fired.alarms[0].id.clone();
        let tick = e.on_tick(T0 + 600_000, &[]);
        assert_eq!(tick.transitions.iter().map(|t| t.kind).collect::<Vec<_>>(), [TransitionKind::Reminder]);
        e.apply(&tick);
        let acked = e.act(&id, Action::Ack, "ann", T0 + 601_000, None).unwrap();
        assert!(acked.alarms[0].acked && acked.alarms[0].acked_by.as_deref() == Some("ann"));
        e.apply(&acked);
        assert_eq!(
            e.act(&id, Action::Ack, "ann", T0 + 602_000, None),
            Err(ActError::Already("acknowledged"))
        );
        assert!(e.on_tick(T0 + 1_300_000, &[]).transitions.is_empty(), "acknowledged: no reminders");
        // Cleared by hand while the value still breaches: a new alarm once `for` (0) passes.
        let cleared = e.act(&id, Action::Clear, "ann", T0 + 1_400_000, Some(35.0)).unwrap();
        assert_eq!(cleared.alarms[0].status(), telemetry::alarm::AlarmStatus::ClearedAck);
        e.apply(&cleared);
        let again = e.on_tick(T0 + 1_401_000, &[]);
        assert_eq!(again.alarms.len(), 1);
        assert_ne!(again.alarms[0].id, id, "a new alarm, not the cleared one reopened");
        assert_eq!(e.act("nope", Action::Ack, "ann", T0, None), Err(ActError::NotFound));
    }

    #[test]
    fn a_cleared_alarm_the_engine_let_go_is_still_acknowledged_once_recalled() {
        let mut e = engine(&[hot()]);
        let id = reading(&mut e, "d1", 35.0, T0).alarms[0].id.clone();
        let cleared = e.act(&id, Action::Clear, "ann", T0 + 1000, Some(35.0)).unwrap();
        e.apply(&cleared);
        let stored = cleared.alarms[0].clone();
        assert_eq!(stored.status(), telemetry::alarm::AlarmStatus::ClearedUnack);
        assert_eq!(e.act(&id, Action::Ack, "ann", T0 + 2000, None), Err(ActError::NotFound), "history now");

        let mut work = e.work(T0 + 2000);
        work.recall(stored.clone());
        assert_eq!(work.act(&id, Action::Clear, "ann", None), Err(ActError::Already("cleared")));
        let acked = work.act(&id, Action::Ack, "bob", None).unwrap();
        assert_eq!(acked.status(), telemetry::alarm::AlarmStatus::ClearedAck);
        let changes = work.finish();
        assert_eq!(changes.alarms.len(), 1);
        assert_eq!(changes.transitions.iter().map(|t| t.kind).collect::<Vec<_>>(), [TransitionKind::Acked]);
        // Recalled and left alone, it is no change.
        let mut idle = e.work(T0 + 3000);
        idle.recall(stored);
        assert!(idle.finish().alarms.is_empty());
    }

    #[test]
    fn flapping_is_notified_once_and_then_kept_quiet() {
        let mut e = engine(&[hot()]);
        let mut events = Vec::new();
        for i in 0..12 {
            let changes = reading(&mut e, "d1", if i % 2 == 0 { 31.0 } else { 29.0 }, T0 + i * 50_000);
            events.extend(changes.deliveries.into_iter().map(|d| d.notice.event));
        }
        let count = |name: &str| events.iter().filter(|e| *e == name).count();
        assert_eq!((count("alarm.fired"), count("alarm.flapping")), (1, 1), "{events:?}");
        assert_eq!(count("alarm.reopened"), 0, "reopening while flapping is quiet");
        assert_eq!(e.alarms.values().filter(|a| a.opened == 6).count(), 1, "one alarm, opened six times");
    }

    #[test]
    fn offline_rules_wait_out_the_start_grace() {
        let mut e = Engine::new(T0 + 60_000, "http://x".into());
        let mut rule: Rule =
            serde_json::from_value(serde_json::json!({"name": "gone", "kind": "offline", "after_secs": 120}))
                .unwrap();
        rule.id = "r0".into();
        e.load(vec![rule], vec![], vec![], vec![]);
        let devices = [(
            "d1".to_owned(),
            Presence { last_seen: T0 - 3_600_000, offline_since: None, stale_after: 60_000, interval: None },
        )];
        assert!(e.on_tick(T0 + 1000, &devices).alarms.is_empty(), "just started: grace");
        let fired = e.on_tick(T0 + 60_000, &devices);
        assert_eq!(fired.alarms.len(), 1, "still unheard of after the grace");
        e.apply(&fired);
        let back = reading(&mut e, "d1", 1.0, T0 + 61_000);
        assert!(!back.alarms[0].active, "a reading: it is back");
    }

    #[test]
    fn an_evaluation_not_applied_is_undone_by_the_next() {
        let mut rule = hot();
        rule["for_secs"] = 30.into();
        let mut e = engine(&[rule]);
        let values = [("t".to_owned(), 31.0)];
        // The commit of the first breach failed: not applied, so its pending period never began
        // and the same reading, redelivered, is not late.
        let lost = e.on_batch(&[("d1", &values, T0)], &[], T0);
        assert_eq!(lost.tracks.len(), 1, "the pending period is stored");
        let again = e.on_batch(&[("d1", &values, T0)], &[], T0 + 1000);
        assert_eq!(again.tracks.len(), 1, "evaluated again, not taken for a redelivery");
        e.apply(&again);
        assert!(e.on_tick(T0 + 30_000, &[]).alarms.is_empty(), "30 s after the lost reading: nothing");
        let fired = e.on_tick(T0 + 31_000, &[]);
        assert_eq!(fired.alarms.len(), 1, "30 s after the stored one");
    }

    #[test]
    fn rules_and_scopes_changed_are_seen_by_the_next_reading() {
        let mut e = engine(&[hot()]);
        assert!(reading(&mut e, "d1", 25.0, T0).alarms.is_empty());
        // A rule for d2 only, on another metric: d1's readings are no news to it.
        let mut humid: Rule =
            serde_json::from_value(serde_json::json!({"name": "humid", "kind": "threshold",
            "metric": "h", "op": ">", "levels": [{"severity": "minor", "value": 80}], "devices": ["d2"]}))
            .unwrap();
        humid.id = "r9".into();
        e.set_rule(humid.clone());
        let values = [("t".to_owned(), 25.0), ("h".to_owned(), 90.0)];
        let d1 = e.on_batch(&[("d1", &values, T0 + 1000)], &[], T0 + 1000);
        assert!(d1.alarms.is_empty(), "{d1:?}");
        e.apply(&d1);
        let d2 = e.on_batch(&[("d2", &values, T0 + 1000)], &[], T0 + 1000);
        assert_eq!(d2.alarms.iter().map(|a| a.rule_name.as_str()).collect::<Vec<_>>(), ["humid"]);
        e.apply(&d2);
        // Now for d1 as well, and a scope that holds d1 only.
        humid.devices = vec![];
        humid.scope = Some("tag:site=barn".into());
        e.set_rule(humid);
        e.set_scopes([("r9".to_owned(), ["d1".to_owned()].into_iter().collect())]);
        let d1 = e.on_batch(&[("d1", &values, T0 + 2000)], &[], T0 + 2000);
        assert_eq!(d1.alarms.len(), 1, "{d1:?}");
        e.apply(&d1);
        e.remove_rule("r9");
        let after = e.on_batch(&[("d1", &values, T0 + 3000)], &[], T0 + 3000);
        assert!(after.alarms.is_empty() && after.tracks.is_empty(), "{after:?}");
    }

    #[test]
    fn a_healthy_fleet_stores_nothing_and_ticks_touch_no_idle_track() {
        let quiet = serde_json::json!({"name": "quiet", "kind": "no_data", "metric": "t", "after_secs": 600});
        let gone = serde_json::json!({"name": "gone", "kind": "offline", "after_secs": 600});
        let mut e = engine(&[hot(), quiet, gone]);
        let devices: Vec<String> = (0..100).map(|i| format!("d{i}")).collect();
        let values = [("t".to_owned(), 20.0)];
        for round in 0..3 {
            let at = T0 + round * 1000;
            let readings: Vec<Reading> = devices.iter().map(|d| (d.as_str(), &values[..], at)).collect();
            let changes = e.on_batch(&readings, &[], at);
            assert!(changes.is_empty() && changes.deliveries.is_empty(), "{changes:?}");
            e.apply(&changes);
        }
        let here =
            Presence { last_seen: T0 + 2000, offline_since: None, stale_after: 60_000, interval: None };
        let presences: Vec<(String, Presence)> = devices.iter().map(|d| (d.clone(), here)).collect();
        assert!(e.on_tick(T0 + 3000, &presences).is_empty());
        // Ten minutes of silence later, each device's no-data and offline rules open.
        let late = e.on_tick(T0 + 2000 + 660_000, &presences);
        assert_eq!(late.alarms.len(), 200);
        assert_eq!(late.tracks.len(), 200, "only the tracks that changed are stored");
    }

    fn device(id: &str, fw: &str, site: Option<&str>) -> DeviceSummary {
        let text = |v: &str| telemetry::attributes::AttrValue::Text(v.into());
        DeviceSummary {
            id: id.into(),
            attributes: vec![telemetry::attributes::Attribute {
                name: "fw".into(),
                value: text(fw),
                changed_at: 1,
            }],
            tags: site.map(|s| [("site".to_owned(), s.to_owned())].into_iter().collect()).unwrap_or_default(),
            ..Default::default()
        }
    }

    fn compare(e: &mut Engine, devices: &[DeviceSummary], now: Millis) -> Changes {
        let mut work = e.work(now);
        work.fleet(devices);
        let changes = work.finish();
        e.apply(&changes);
        changes
    }

    fn opened(changes: &Changes) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = changes
            .alarms
            .iter()
            .filter(|a| a.active)
            .map(|a| (a.rule_id.as_str(), a.device.as_str()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_device_on_another_firmware_than_most_of_its_fleet_opens_an_alarm() {
        let fleet = serde_json::json!({"name": "fw", "kind": "firmware_drift"});
        let per_site = serde_json::json!({"name": "fw per site", "kind": "firmware_drift", "tag": "site"});
        let mut e = engine(&[fleet, per_site]);
        let mut devices = vec![
            device("a1", "1.4.2", Some("a")),
            device("a2", "1.4.2", Some("a")),
            device("a3", "1.3.9", Some("a")),
            device("b1", "1.3.9", Some("b")),
            device("b2", "1.3.9", Some("b")),
            device("c1", "2.0.0", Some("c")),
            device("c2", "2.0.1", Some("c")),
        ];
        devices.push(DeviceSummary { id: "none".into(), ..Default::default() });
        // The fleet's most common is 1.3.9 (3 of 7); per site: a's is 1.4.2, b's 1.3.9, c's a
        // tie (nobody differs). A device reporting no firmware is not judged.
        let first = compare(&mut e, &devices, T0);
        assert_eq!(
            opened(&first),
            [("r0", "a1"), ("r0", "a2"), ("r0", "c1"), ("r0", "c2"), ("r1", "a3")],
            "{first:?}"
        );
        assert_eq!(first.tracks.len(), 5, "each opening stored with the comparison");
        // Compared again: nothing new.
        assert!(compare(&mut e, &devices, T0 + 1000).is_empty());
        // a3 updated to 1.4.2: now in line with its site (cleared) and apart from the fleet.
        devices[2] = device("a3", "1.4.2", Some("a"));
        let updated = compare(&mut e, &devices, T0 + 2000);
        let cleared: Vec<&str> =
            updated.alarms.iter().filter(|a| !a.active).map(|a| a.device.as_str()).collect();
        // 1.4.2 is now the fleet's most common (3 to 2): a1..a3 in line, b1, b2 apart.
        assert_eq!(opened(&updated), [("r0", "b1"), ("r0", "b2")], "{updated:?}");
        let mut cleared = cleared;
        cleared.sort();
        assert_eq!(cleared, ["a1", "a2", "a3"]);
    }

    #[test]
    fn a_partitions_engine_judges_only_its_devices_against_the_whole_fleet() {
        let fleet = serde_json::json!({"name": "fw", "kind": "firmware_drift"});
        let mut e = engine(&[fleet]);
        // 1.3.9 is the fleet's most common (3 of 5); this engine judges only the b devices.
        let devices = [
            device("a1", "1.4.2", None),
            device("a2", "1.4.2", None),
            device("b1", "1.3.9", None),
            device("b2", "1.3.9", None),
            device("b3", "1.3.9", None),
        ];
        let mut work = e.work(T0);
        work.fleet_of(&devices, |d| d.starts_with('b'));
        assert!(work.finish().is_empty(), "b1..b3 are in line; a1, a2 are another partition's");
        // Only a's: both apart from the fleet as a whole, though they are all a's knows of.
        let mut work = e.work(T0 + 1000);
        work.fleet_of(&devices, |d| d.starts_with('a'));
        let changes = work.finish();
        assert_eq!(opened(&changes), [("r0", "a1"), ("r0", "a2")], "{changes:?}");
    }

    #[test]
    fn three_reboots_seen_in_uptimes_open_a_reboot_loop_alarm_which_an_hour_clears() {
        let values = |up: f64| vec![("uptime_s".to_owned(), up)];
        let (v1, v2, v3, v4) = (values(100.0), values(5.0), values(20.0), values(3.0));
        let batch: Vec<Reading> = vec![
            ("d1", &v1[..], T0),
            ("d1", &v2[..], T0 + 1000),
            ("d1", &v3[..], T0 + 2000),
            ("d1", &v4[..], T0 + 3000),
        ];
        // The store knew 50 s before the batch: 100 is no reboot, 5 and 3 are; a late
        // reading (older than the newest) is none.
        let stored = |_: &str, _: &str| Some((50.0, T0 - 1000));
        assert_eq!(reboots(&batch, stored), ["d1", "d1"]);
        let late = vec![("d1", &v2[..], T0 - 5000)];
        assert!(reboots(&late, stored).is_empty(), "older than the latest");
        assert!(reboots(&batch[..1], |_, _| None).is_empty(), "nothing known before: no reboot");

        let rule =
            serde_json::json!({"name": "loop", "kind": "reboot_loop", "count": 3, "window_secs": 3600});
        let mut e = engine(&[rule]);
        for (i, at) in [T0, T0 + 600_000].into_iter().enumerate() {
            let changes = e.on_reboots(&["d1"], at);
            assert!(changes.alarms.is_empty(), "{i}");
            assert_eq!(changes.tracks.len(), 1, "each reboot is stored");
            e.apply(&changes);
        }
        let fired = e.on_reboots(&["d1"], T0 + 1_200_000);
        assert_eq!(opened(&fired), [("r0", "d1")]);
        assert_eq!(fired.deliveries.len(), 0, "no channels");
        e.apply(&fired);
        assert!(e.on_tick(T0 + 3_599_000, &[]).is_empty(), "three still within the hour of the first");
        let cleared = e.on_tick(T0 + 3_600_000, &[]);
        assert_eq!(cleared.alarms.iter().filter(|a| !a.active).count(), 1, "{cleared:?}");
        e.apply(&cleared);
    }

    #[test]
    fn overdue_rules_wait_each_devices_own_interval() {
        let mut e = engine(&[serde_json::json!({"name": "late", "kind": "overdue", "intervals": 3})]);
        let seen = |interval| Presence { last_seen: T0, offline_since: None, stale_after: 60_000, interval };
        let devices = [
            ("fast".to_owned(), seen(Some(10_000))),
            ("slow".to_owned(), seen(Some(300_000))),
            ("new".to_owned(), seen(None)),
        ];
        assert!(reading(&mut e, "fast", 1.0, T0).is_empty());
        assert!(e.on_tick(T0 + 29_000, &devices).is_empty());
        let fast = e.on_tick(T0 + 30_000, &devices);
        assert_eq!(opened(&fast), [("r0", "fast")]);
        e.apply(&fast);
        let slow = e.on_tick(T0 + 900_000, &devices);
        assert_eq!(
            opened(&slow),
            [("r0", "slow")],
            "15 min for a 5 min device; none for an unknown interval"
        );
        e.apply(&slow);
        let back = reading(&mut e, "fast", 2.0, T0 + 901_000);
        assert_eq!(back.alarms.iter().filter(|a| !a.active).count(), 1, "any reading clears it");
    }

    /// The engine (numbered pairs, groups moving together, shortcuts, undo) does what running
    /// [`eval::evaluate`] for every rule and device on everything does: the same transitions in
    /// each commit and the same tracks after, over random readings near the levels (late ones,
    /// redeliveries and backfills among them), ticks, and commits that fail.
    #[test]
    fn the_engine_does_what_evaluating_every_pair_does() {
        let rules = [
            serde_json::json!({"name": "a", "kind": "threshold", "metric": "t", "op": ">",
                "levels": [{"severity": "major", "value": 30}, {"severity": "critical", "value": 35}], "clear": 28}),
            serde_json::json!({"name": "b", "kind": "threshold", "metric": "t", "op": ">=",
                "levels": [{"severity": "minor", "value": 32}], "for_secs": 20, "clear_for_secs": 10}),
            serde_json::json!({"name": "c", "kind": "threshold", "metric": "t", "op": "outside",
                "levels": [{"severity": "minor", "value": 10, "high": 33}], "min_samples": 2}),
            serde_json::json!({"name": "d", "kind": "threshold", "metric": "t", "op": "inside",
                "levels": [{"severity": "warning", "value": 12, "high": 14}]}),
            serde_json::json!({"name": "e", "kind": "threshold", "metric": "h", "op": "<",
                "levels": [{"severity": "warning", "value": 20}], "flap_window_secs": 120}),
            serde_json::json!({"name": "f", "kind": "no_data", "metric": "h", "after_secs": 40}),
            serde_json::json!({"name": "g", "kind": "offline", "after_secs": 30}),
            serde_json::json!({"name": "h", "kind": "overdue", "intervals": 5}),
            serde_json::json!({"name": "i", "kind": "reboot_loop", "count": 3, "window_secs": 60}),
        ];
        let mut e = engine(&rules);
        let parsed: Vec<Rule> = {
            let mut r: Vec<Rule> = e.rules().cloned().collect();
            r.sort_by(|a, b| a.id.cmp(&b.id));
            r
        };
        let mut reference: std::collections::BTreeMap<(String, String), Track> = Default::default();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let devices = ["d0", "d1", "d2"];
        let mut newest = [T0; 3];
        let mut now = T0;
        for step in 0..3000 {
            now += 1000 * (1 + next(4) as i64);
            let fails = next(10) == 0;
            let before = reference.clone();
            let mut expected = Vec::new();
            let mut run =
                |rule: &Rule,
                 device: &str,
                 input: Input,
                 reference: &mut std::collections::BTreeMap<(String, String), Track>| {
                    let track = reference.entry((rule.id.clone(), device.to_owned())).or_default();
                    for effect in eval::evaluate(rule, track, input, Clock { now, quiet_until: 0 }) {
                        if matches!(effect, Effect::Open { .. }) {
                            track.alarm = Some(format!("{}/{device}", rule.id));
                        }
                        expected.push((rule.id.clone(), device.to_owned(), effect.kind()));
                    }
                };
            let changes = if next(8) == 0 {
                // A reboot of one device.
                let device = devices[next(3) as usize];
                for rule in parsed.iter().filter(|r| matches!(r.kind, RuleKind::RebootLoop { .. })) {
                    run(rule, device, Input::Reboot, &mut reference);
                }
                e.on_reboots(&[device], now)
            } else if next(5) == 0 {
                let presences: Vec<(String, Presence)> = devices
                    .iter()
                    .map(|d| {
                        (
                            d.to_string(),
                            Presence {
                                last_seen: now - 1000 * next(90) as i64,
                                offline_since: None,
                                stale_after: 10_000,
                                interval: Some(3_000),
                            },
                        )
                    })
                    .collect();
                for rule in &parsed {
                    for (device, p) in &presences {
                        let input = Input::Tick {
                            last_seen: p.last_seen,
                            offline_since: None,
                            stale_after: p.stale_after,
                            interval: p.interval,
                        };
                        let input = match rule.kind {
                            RuleKind::Threshold { .. } => Input::Tick {
                                last_seen: now,
                                offline_since: None,
                                stale_after: 0,
                                interval: None,
                            },
                            _ => input,
                        };
                        run(rule, device, input, &mut reference);
                    }
                }
                e.on_tick(now, &presences)
            } else {
                let i = next(3) as usize;
                let ts = match next(10) {
                    0 => newest[i] - 1000 * next(20) as i64, // late or a redelivery
                    1 => now - 400_000,                      // a backfill
                    _ => now - next(1000) as i64,
                };
                newest[i] = newest[i].max(ts);
                let mut values = vec![("t".to_owned(), 5.0 + next(35) as f64)];
                if next(2) == 0 {
                    values.push(("h".to_owned(), 10.0 + next(20) as f64));
                }
                for rule in &parsed {
                    // A reboot-loop rule hears reboots and the clock, not readings.
                    let hears = rule.metric().is_none_or(|m| values.iter().any(|(n, _)| n == m))
                        && !matches!(rule.kind, RuleKind::RebootLoop { .. });
                    if hears {
                        run(
                            rule,
                            devices[i],
                            Input::Reading { values: &values, ts, received: now },
                            &mut reference,
                        );
                    }
                }
                e.on_batch(&[(devices[i], &values, ts)], &[], now)
            };
            let mut got: Vec<_> = changes
                .transitions
                .iter()
                .map(|t| {
                    let alarm = changes.alarms.iter().find(|a| a.id == t.alarm_id).unwrap();
                    (alarm.rule_id.clone(), alarm.device.clone(), t.kind)
                })
                .collect();
            got.sort_by_key(|x| format!("{x:?}"));
            expected.sort_by_key(|x| format!("{x:?}"));
            assert_eq!(got, expected, "step {step}");
            if fails {
                reference = before;
            } else {
                e.apply(&changes);
            }
        }
        e.discard();
        for ((rule, device), track) in &reference {
            let p = e.pair_of[&(e.numbers[rule], e.numbered[device.as_str()])];
            let mine = e.track_of(p);
            let kind = &parsed.iter().find(|r| &r.id == rule).unwrap().kind;
            if track.is_idle() {
                assert!(mine.is_idle(), "{rule} {device}: {mine:?}");
                assert_eq!(eval::soft(kind, &mine), eval::soft(kind, track), "{rule} {device}");
            } else {
                assert_eq!(
                    (mine.phase, &mine.opens, mine.flapping, eval::soft(kind, &mine)),
                    (track.phase, &track.opens, track.flapping, eval::soft(kind, track)),
                    "{rule} {device}"
                );
            }
        }
        assert!(e.pairs.iter().any(|p| p.track.is_some()), "some alarms opened");
    }
}
