//! The alarm engine: every rule's state machine for every device it watches, the open alarms,
//! and what each evaluation changes. It computes [`Changes`] without changing itself; the
//! writer commits them in the transaction of the readings (or tick, or person) that caused
//! them, and only then [`Engine::apply`]s them, so memory never runs ahead of the disk.

/// The engine's maps, looked up for every reading and rule it watches: foldhash, as the
/// store's (SipHash was a tenth of ingest with 50 rules); the keys are ids the server made and
/// device ids from authenticated devices.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use telemetry::Millis;
use telemetry::alarm::RuleKind;
use telemetry::alarm::eval::{self, Clock, Effect, Input, Track};
use telemetry::alarm::{
    Alarm, AlarmAction as Action, AlarmError, Rule, Severity, Transition, TransitionKind,
};
use telemetry::notify::{Delivery, DeliveryState, Notice, told};

/// A track's key: (rule id, device id).
pub type TrackKey = (String, String);

/// What an evaluation or an action changes, stored together in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// New state per (rule, device) to store; `None` deletes it (back to idle).
    pub tracks: Vec<(TrackKey, Option<Track>)>,
    /// State kept in memory only: the newest reading's time, the last data seen (after a
    /// restart they start again from the next reading and the registry's last-seen).
    pub soft: Vec<(TrackKey, Track)>,
    /// Alarms as they are now (new or changed).
    pub alarms: Vec<Alarm>,
    pub transitions: Vec<Transition>,
    /// Notifications to send.
    pub deliveries: Vec<Delivery>,
}

impl Changes {
    /// Whether there is nothing to store.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty() && self.alarms.is_empty() && self.transitions.is_empty()
    }
}

/// A stored reading as rules see it: device, its values, device time.
pub type Reading<'a> = (&'a str, &'a [(String, f64)], Millis);

/// A device's presence, for offline and no-data rules on the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    /// Server time of its latest reading (0: none).
    pub last_seen: Millis,
    /// When it said it was offline, if it has sent nothing since.
    pub offline_since: Option<Millis>,
    /// How long after `last_seen` it counts as gone without saying so (its expected interval's).
    pub stale_after: Millis,
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

pub struct Engine {
    rules: HashMap<String, Rule>,
    /// Rule ids by the device they name; `everyone`: rules naming none (every device).
    by_device: HashMap<String, Vec<String>>,
    everyone: Vec<String>,
    /// Rules with a scope (a fleet query), and the devices each scope held when last worked
    /// out ([`Engine::set_scopes`]); a device not yet in it is not watched.
    scoped: Vec<String>,
    scopes: HashMap<String, std::collections::HashSet<String>>,
    tracks: HashMap<TrackKey, Track>,
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
            rules: HashMap::default(),
            by_device: HashMap::default(),
            everyone: Vec::new(),
            scoped: Vec::new(),
            scopes: HashMap::default(),
            tracks: HashMap::default(),
            alarms: HashMap::default(),
            channels: Vec::new(),
            quiet_until,
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Loads what the store kept: rules, tracks, the alarms tracks refer to, channel ids.
    pub fn load(
        &mut self,
        rules: Vec<Rule>,
        tracks: Vec<(TrackKey, Track)>,
        alarms: Vec<Alarm>,
        channels: Vec<String>,
    ) {
        self.rules = rules.into_iter().map(|r| (r.id.clone(), r)).collect();
        self.index();
        self.tracks = tracks.into_iter().collect();
        self.alarms = alarms.into_iter().map(|a| (a.id.clone(), a)).collect();
        self.channels = channels;
    }

    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.values()
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
        let changed = self.rules.get(&rule.id).is_none_or(|old| {
            old.kind != rule.kind || old.devices != rule.devices || old.scope != rule.scope
        });
        if changed {
            self.tracks.retain(|(r, _), t| r != &rule.id || t.alarm.is_some());
        }
        self.rules.insert(rule.id.clone(), rule);
        self.index();
    }

    /// Forgets a rule and its states (its alarms stay in history).
    pub fn remove_rule(&mut self, id: &str) {
        self.rules.remove(id);
        self.index();
        self.tracks.retain(|(r, _), _| r != id);
    }

    fn index(&mut self) {
        self.by_device.clear();
        self.everyone.clear();
        self.scoped.clear();
        for rule in self.rules.values().filter(|r| r.enabled) {
            if rule.scope.is_some() {
                self.scoped.push(rule.id.clone());
                continue;
            }
            if rule.devices.is_empty() {
                self.everyone.push(rule.id.clone());
            }
            for device in &rule.devices {
                self.by_device.entry(device.clone()).or_default().push(rule.id.clone());
            }
        }
    }

    /// The enabled rules watching `device`.
    fn watching<'a>(&'a self, device: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        let named = self.by_device.get(device).into_iter().flatten();
        let scoped =
            self.scoped.iter().filter(move |id| self.scopes.get(*id).is_some_and(|s| s.contains(device)));
        let unscoped = self.everyone.iter().chain(named).filter_map(|id| self.rules.get(id));
        unscoped.chain(scoped.filter_map(|id| self.rules.get(id)).filter(move |r| r.watches(device)))
    }

    /// Whether `rule` watches `device`: by its devices, and its scope if it has one.
    fn watches(&self, rule: &Rule, device: &str) -> bool {
        rule.watches(device)
            && (rule.scope.is_none() || self.scopes.get(&rule.id).is_some_and(|s| s.contains(device)))
    }

    /// Whether any rule is enabled (nothing to evaluate otherwise).
    pub fn has_rules(&self) -> bool {
        !self.everyone.is_empty() || !self.by_device.is_empty() || !self.scoped.is_empty()
    }

    /// The enabled rules with a scope, whose devices [`Engine::set_scopes`] is told.
    pub fn scoped_rules(&self) -> impl Iterator<Item = &Rule> {
        self.scoped.iter().filter_map(|id| self.rules.get(id))
    }

    /// The devices each scoped rule's query holds now, by rule id.
    pub fn set_scopes(
        &mut self,
        scopes: impl IntoIterator<Item = (String, std::collections::HashSet<String>)>,
    ) {
        self.scopes = scopes.into_iter().collect();
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

    /// Stored changes take effect.
    pub fn apply(&mut self, changes: &Changes) {
        // A track back to idle is deleted on disk; what memory holds of it (soft) stays.
        let soft = changes.soft.iter().map(|(k, t)| (k, t));
        let tracks = soft.chain(changes.tracks.iter().filter_map(|(k, t)| Some((k, t.as_ref()?))));
        for (key, track) in tracks {
            match self.tracks.get_mut(key) {
                Some(t) => t.clone_from(track),
                None => {
                    self.tracks.insert(key.clone(), track.clone());
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
        let referenced: std::collections::HashSet<&String> =
            self.tracks.values().filter_map(|t| t.alarm.as_ref()).collect();
        let keep: Vec<String> = self
            .alarms
            .values()
            .filter(|a| a.active || referenced.contains(&a.id))
            .map(|a| a.id.clone())
            .collect();
        self.alarms.retain(|id, _| keep.contains(id));
    }

    /// An evaluation at `now`: feed it what one commit holds (readings, statuses, the clock,
    /// people's actions), then [`Work::finish`] it. Later steps see earlier steps' changes.
    pub fn work(&self, now: Millis) -> Work<'_> {
        Work::new(self, now)
    }

    /// Whether any rule needs devices' presence on the clock (no-data and offline rules).
    pub fn wants_presence(&self) -> bool {
        self.rules.values().any(|r| r.enabled && !matches!(r.kind, RuleKind::Threshold { .. }))
    }

    /// The latest value `alarm`'s rule reads, as this engine last evaluated it: what a hand's
    /// clear checks for "still breaching".
    pub fn latest_value(&self, alarm: &Alarm) -> Option<f64> {
        alarm.last_value
    }

    /// [`Engine::work`] on one stored batch: readings `(device, values, device time)` arrived
    /// at `received`, and statuses `(device, online)`.
    pub fn on_batch(&self, readings: &[Reading], statuses: &[(&str, bool)], received: Millis) -> Changes {
        let mut work = self.work(received);
        work.readings(readings);
        work.statuses(statuses);
        work.finish()
    }

    /// [`Engine::work`] on the clock.
    pub fn on_tick(&self, now: Millis, devices: &[(String, Presence)]) -> Changes {
        let mut work = self.work(now);
        work.tick(devices);
        work.finish()
    }

    /// [`Engine::work`] on one action.
    pub fn act(
        &self,
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

/// One evaluation's scratch: the tracks and alarms it changed, in order.
pub struct Work<'a> {
    engine: &'a Engine,
    now: Millis,
    /// Tracks as this evaluation left them, and whether what is stored of them changed.
    tracks: HashMap<TrackKey, (Track, bool)>,
    alarms: Vec<Alarm>,
    transitions: Vec<Transition>,
    deliveries: Vec<Delivery>,
    /// Stored alarms the engine has let go (cleared, no longer reopenable), read back so people
    /// can still acknowledge, shelve or comment on them; not changes by themselves.
    recalled: Vec<Alarm>,
}

impl<'a> Work<'a> {
    /// Stored readings `(device, values, device time)` that arrived now.
    pub fn readings(&mut self, readings: &[Reading]) {
        let engine = self.engine;
        if !engine.has_rules() {
            return;
        }
        let received = self.now;
        for (device, values, ts) in readings {
            for rule in engine.watching(device) {
                // A reading without the rule's metric is no news to it (an offline rule hears
                // every reading: the device is back).
                if rule.metric().is_some_and(|m| !values.iter().any(|(n, _)| n == m)) {
                    continue;
                }
                self.evaluate(rule, device, Input::Reading { values, ts: *ts, received });
            }
        }
    }

    /// Statuses `(device, online)` that arrived now.
    pub fn statuses(&mut self, statuses: &[(&str, bool)]) {
        let engine = self.engine;
        for (device, online) in statuses {
            for rule in engine.watching(device).filter(|r| matches!(r.kind, RuleKind::Offline { .. })) {
                self.evaluate(rule, device, Input::Status { online: *online });
            }
        }
    }

    /// The clock moved on: pending periods end, no-data and offline rules look at `devices`
    /// (each with its presence), flapping ends, reminders fall due.
    pub fn tick(&mut self, devices: &[(String, Presence)]) {
        let engine = self.engine;
        let now = self.now;
        for rule in engine.rules.values().filter(|r| r.enabled) {
            if matches!(rule.kind, RuleKind::Threshold { .. }) {
                let busy: Vec<&String> = engine
                    .tracks
                    .iter()
                    .filter(|((r, _), t)| r == &rule.id && t.wants_ticks())
                    .map(|((_, d), _)| d)
                    .collect();
                for device in busy {
                    let tick = Input::Tick { last_seen: now, offline_since: None, stale_after: 0 };
                    self.evaluate(rule, device, tick);
                }
            } else {
                for (device, presence) in devices.iter().filter(|(d, _)| engine.watches(rule, d)) {
                    let input = Input::Tick {
                        last_seen: presence.last_seen,
                        offline_since: presence.offline_since,
                        stale_after: presence.stale_after,
                    };
                    self.evaluate(rule, device, input);
                }
            }
        }
        let due: Vec<String> = engine
            .alarms
            .keys()
            .filter_map(|id| self.alarm(id))
            .filter(|a| a.active && !a.acked && !a.shelved(now) && a.remind_at.is_some_and(|t| t <= now))
            .map(|a| a.id)
            .collect();
        for id in due {
            let Some(mut alarm) = self.alarm(&id) else { continue };
            let remind = engine.rules.get(&alarm.rule_id).map_or(0, |r| r.remind_secs);
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
                if let Some(rule) = self.engine.rules.get(&alarm.rule_id) {
                    let key = (rule.id.clone(), alarm.device.clone());
                    let mut track = self.track(&key);
                    eval::cleared_by_hand(rule, &mut track, latest, now);
                    self.tracks.insert(key, (track, true));
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

    /// A track as this evaluation left it so far.
    fn track(&self, key: &TrackKey) -> Track {
        match self.tracks.get(key) {
            Some((t, _)) => t.clone(),
            None => self.engine.tracks.get(key).cloned().unwrap_or_default(),
        }
    }

    fn new(engine: &'a Engine, now: Millis) -> Work<'a> {
        Work {
            engine,
            now,
            tracks: HashMap::default(),
            alarms: Vec::new(),
            transitions: Vec::new(),
            deliveries: Vec::new(),
            recalled: Vec::new(),
        }
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

    fn evaluate(&mut self, rule: &Rule, device: &str, input: Input) {
        let key = (rule.id.clone(), device.to_owned());
        let (before, stored_changed) = match self.tracks.get(&key) {
            Some((t, changed)) => (t.clone(), *changed),
            None => (self.engine.tracks.get(&key).cloned().unwrap_or_default(), false),
        };
        let mut track = before.clone();
        let clock = Clock { now: self.now, quiet_until: self.engine.quiet_until };
        let effects = eval::evaluate(rule, &mut track, input, clock);
        for effect in effects {
            self.effect(rule, device, &mut track, effect);
        }
        if track != before {
            let changed = stored_changed || !same_durable(&track, &before);
            self.tracks.insert(key, (track, changed));
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
        let Some(rule) = self.engine.rules.get(&alarm.rule_id) else { return };
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

    pub fn finish(self) -> Changes {
        let mut changes = Changes {
            alarms: self.alarms,
            transitions: self.transitions,
            deliveries: self.deliveries,
            ..Changes::default()
        };
        for (key, (track, changed)) in self.tracks {
            if changed {
                changes.tracks.push((key.clone(), (!track.is_idle()).then(|| track.clone())));
            }
            changes.soft.push((key, track));
        }
        changes
    }
}

/// Whether what is stored of two tracks is the same: all but the newest reading's time and the
/// last data seen.
fn same_durable(a: &Track, b: &Track) -> bool {
    // Every field named: one added to Track is a compile error here until it is sorted.
    let Track { phase, alarm, last_ts: _, last_data: _, opens, flapping, last_change, cleared_at } = a;
    *phase == b.phase
        && *alarm == b.alarm
        && *opens == b.opens
        && *flapping == b.flapping
        && *last_change == b.last_change
        && *cleared_at == b.cleared_at
}

fn new_alarm(rule: &Rule, device: &str, severity: Severity, value: Option<f64>, now: Millis) -> Alarm {
    Alarm {
        id: format!("al-{}", crate::random::base36(12)),
        rule_id: rule.id.clone(),
        rule_name: rule.name.clone(),
        device: device.to_owned(),
        severity,
        active: true,
        acked: false,
        started_at: now,
        cleared_at: None,
        acked_at: None,
        acked_by: None,
        shelved_until: None,
        value,
        last_value: value,
        last_breach_at: value.map(|_| now),
        opened: 1,
        flapping: false,
        remind_at: None,
        comments: 0,
        seq: 0,
    }
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
        let gone = Presence { last_seen: T0 - 3_600_000, offline_since: None, stale_after: 60_000 };
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
            Presence { last_seen: T0 - 3_600_000, offline_since: None, stale_after: 60_000 },
        )];
        assert!(e.on_tick(T0 + 1000, &devices).alarms.is_empty(), "just started: grace");
        let fired = e.on_tick(T0 + 60_000, &devices);
        assert_eq!(fired.alarms.len(), 1, "still unheard of after the grace");
        e.apply(&fired);
        let back = reading(&mut e, "d1", 1.0, T0 + 61_000);
        assert!(!back.alarms[0].active, "a reading: it is back");
    }
}
