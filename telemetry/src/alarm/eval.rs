//! The state machine a rule runs for each device it watches: pure, so every semantic the
//! module above promises is tested here, and deterministic, so the server stores its state
//! ([`Track`]) with the reading or tick that changed it and resumes it after a restart.
//!
//! Threshold rules go `Normal → Pending → Firing ⇄ Recovering → Normal`. No-data and offline
//! rules go `Normal → Firing ⇄ Recovering → Normal`, their timer being `after_secs`. Timers run
//! on the server's clock (arrival times), ordering and freshness on the device's.

use serde::{Deserialize, Serialize};

use super::{Level, Op, Rule, RuleKind, Severity, TransitionKind};
use crate::Millis;

/// A reading more than this much older than its arrival is a backfill: stored, not evaluated.
pub const FRESH_MS: Millis = 5 * 60_000;

/// Opens within the flap window that make an alarm flapping (the second is one too many).
pub const FLAP_OPENS: usize = 2;

/// An overdue rule waits at least this long, whatever the device's interval (a 1 s device at
/// 3 intervals would page at every hiccup of the network).
pub const OVERDUE_FLOOR_MS: Millis = 10_000;

/// Where a rule stands for one device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Normal,
    /// Breaching since `since` (server time), with `samples` breaching readings so far.
    Pending { since: Millis, samples: u32, severity: Severity, value: Option<f64> },
    /// The alarm is open.
    Firing { severity: Severity },
    /// The alarm is open and readings have been at its clear level since `since`.
    Recovering { severity: Severity, since: Millis },
}

/// What a rule remembers about one device between evaluations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Track {
    pub phase: Phase,
    /// The open alarm (Firing, Recovering), or the one that last cleared by itself (Normal),
    /// which a new breach within the flap window reopens.
    #[serde(default)]
    pub alarm: Option<String>,
    /// Device time of the newest reading evaluated.
    #[serde(default)]
    pub last_ts: Millis,
    /// Server time of the latest reading of the watched metric (no-data rules).
    #[serde(default)]
    pub last_data: Millis,
    /// Server times the alarm opened within the flap window.
    #[serde(default)]
    pub opens: Vec<Millis>,
    /// Server times of the device's latest reboots within the window (reboot-loop rules; at
    /// most the rule's count).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reboots: Vec<Millis>,
    #[serde(default)]
    pub flapping: bool,
    /// Server time of the latest open or clear.
    #[serde(default)]
    pub last_change: Millis,
    /// When the alarm last cleared by itself (a hand's clear is never reopened).
    #[serde(default)]
    pub cleared_at: Option<Millis>,
}

impl Track {
    /// Whether anything here needs the clock: a pending period, an open alarm (no-data and
    /// offline rules clear only on readings, but flapping ends by time), or flapping.
    pub fn wants_ticks(&self) -> bool {
        !matches!(self.phase, Phase::Normal) || self.flapping || !self.reboots.is_empty()
    }

    /// Whether it holds nothing worth storing: a fresh track would act the same.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Normal
            && self.alarm.is_none()
            && self.opens.is_empty()
            && !self.flapping
            && self.reboots.is_empty()
    }
}

/// What an evaluation decided; the caller opens and changes alarm records accordingly.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Open an alarm: reopen `Track::alarm` when `reopen`, else a new one (the caller sets
    /// `Track::alarm` to its id).
    Open { severity: Severity, value: Option<f64>, reopen: bool },
    /// The open alarm's severity moved.
    Severity { from: Severity, to: Severity, value: f64 },
    /// The open alarm cleared.
    Clear { value: Option<f64> },
    /// It opened twice within the flap window: one notice, then quiet.
    Flapping,
    /// It has been stable for the flap window.
    Stable,
}

impl Effect {
    /// The entry it makes in the alarm's log.
    pub fn kind(&self) -> TransitionKind {
        match self {
            Effect::Open { reopen: false, .. } => TransitionKind::Fired,
            Effect::Open { reopen: true, .. } => TransitionKind::Reopened,
            Effect::Severity { from, to, .. } if to > from => TransitionKind::Escalated,
            Effect::Severity { .. } => TransitionKind::Deescalated,
            Effect::Clear { .. } => TransitionKind::Cleared,
            Effect::Flapping => TransitionKind::Flapping,
            Effect::Stable => TransitionKind::Stable,
        }
    }
}

/// What a rule is evaluated on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input<'a> {
    /// A stored reading of the device: its values, device time, server arrival time.
    Reading { values: &'a [(String, f64)], ts: Millis, received: Millis },
    /// The device reported `online` or `offline` (its last will, say).
    Status { online: bool },
    /// The clock moved on. `last_seen`: the device's latest reading (server time);
    /// `offline_since`: when it said it was offline, if it has not sent anything since;
    /// `stale_after`: how long after `last_seen` it counts as gone without saying so (its own,
    /// from its expected interval: [`crate::device::Interval::stale_after`]); `interval`: that
    /// expected interval, if one is known ([`crate::device::Interval::expected`]).
    Tick { last_seen: Millis, offline_since: Option<Millis>, stale_after: Millis, interval: Option<Millis> },
    /// The device rebooted now (its uptime went down).
    Reboot,
    /// The fleet was compared now: whether the device's firmware differs from the most common.
    Fleet { differs: bool },
}

/// The server's clock for an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub now: Millis,
    /// No-data and offline rules do not open alarms before this (a grace period after start).
    pub quiet_until: Millis,
}

/// Runs `rule` for one device on `input`, updating `track`; answers what to do.
pub fn evaluate(rule: &Rule, track: &mut Track, input: Input, clock: Clock) -> Vec<Effect> {
    let mut out = Vec::new();
    match &rule.kind {
        RuleKind::Threshold { metric, op, levels, clear, clear_high } => {
            let bounds = ClearBounds::of(*op, levels, *clear, *clear_high);
            threshold(rule, metric, *op, levels, bounds, track, input, clock.now, &mut out);
        }
        RuleKind::NoData { metric, after_secs, severity } => {
            no_data(rule, metric.as_deref(), *after_secs, *severity, track, input, clock, &mut out);
        }
        RuleKind::Offline { after_secs, severity } => {
            offline(rule, *after_secs, *severity, track, input, clock, &mut out);
        }
        RuleKind::Overdue { intervals, severity } => {
            overdue(rule, *intervals, *severity, track, input, clock, &mut out);
        }
        RuleKind::RebootLoop { count, window_secs, severity } => {
            reboot_loop(rule, *count, *window_secs, *severity, track, input, clock.now, &mut out);
        }
        RuleKind::FirmwareDrift { severity, .. } => {
            if let Input::Fleet { differs } = input {
                hold(rule, track, differs, *severity, clock.now, &mut out);
            }
        }
    }
    if track.flapping && clock.now.saturating_sub(track.last_change) >= window(rule) {
        track.flapping = false;
        out.push(Effect::Stable);
    }
    out
}

/// The one time a track keeps in memory only, which changes on almost every reading: a
/// threshold rule's newest reading time ([`Track::last_ts`]), a no-data rule's last data
/// ([`Track::last_data`]); an offline rule keeps none (0).
#[inline]
pub fn soft(kind: &RuleKind, track: &Track) -> Millis {
    match kind {
        RuleKind::Threshold { .. } => track.last_ts,
        RuleKind::NoData { .. } | RuleKind::Overdue { .. } => track.last_data,
        RuleKind::Offline { .. } | RuleKind::RebootLoop { .. } | RuleKind::FirmwareDrift { .. } => 0,
    }
}

/// Sets what [`soft`] reads.
#[inline]
pub fn set_soft(kind: &RuleKind, track: &mut Track, soft: Millis) {
    match kind {
        RuleKind::Threshold { .. } => track.last_ts = soft,
        RuleKind::NoData { .. } | RuleKind::Overdue { .. } => track.last_data = soft,
        RuleKind::Offline { .. } | RuleKind::RebootLoop { .. } | RuleKind::FirmwareDrift { .. } => {}
    }
}

/// Whether a track is in the steady state the shortcuts below serve: normal and not flapping
/// (what most tracks are, most of the time).
#[inline]
pub fn steady(track: &Track) -> bool {
    track.phase == Phase::Normal && !track.flapping
}

/// [`evaluate`] for a [`steady`] track whose [`soft`] time is `soft`, on a reading whose value of
/// the rule's metric is `value` (`None`: the reading has none; for a no-data rule of any
/// metric, any value): its [`soft`] time afterwards, when that is all that changes; `None` when
/// the reading may do more (a breach) and [`evaluate`] must run.
#[inline]
pub fn steady_reading(
    rule: &Rule,
    soft: Millis,
    value: Option<f64>,
    ts: Millis,
    received: Millis,
) -> Option<Millis> {
    match &rule.kind {
        RuleKind::Threshold { op, levels, .. } => {
            let Some(v) = value else { return Some(soft) };
            if (soft != 0 && ts <= soft) || received.saturating_sub(ts) > FRESH_MS {
                return Some(soft);
            }
            breached(*op, levels, v).is_none().then_some(ts)
        }
        RuleKind::NoData { .. } => Some(if value.is_some() { soft.max(received) } else { soft }),
        // Any reading is data for it.
        RuleKind::Overdue { .. } => Some(soft.max(received)),
        RuleKind::Offline { .. } | RuleKind::RebootLoop { .. } | RuleKind::FirmwareDrift { .. } => Some(soft),
    }
}

/// The values a threshold rule's levels all leave alone: an interval, so that the rules on one
/// metric can be checked at once (the engine keeps their intersection). `None` for `inside`
/// bands, whose calm values are no interval, and other kinds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calm {
    pub low: f64,
    pub low_open: bool,
    pub high: f64,
    pub high_open: bool,
}

impl Default for Calm {
    fn default() -> Calm {
        Calm::ALL
    }
}

impl Calm {
    /// Every value.
    pub const ALL: Calm =
        Calm { low: f64::NEG_INFINITY, low_open: false, high: f64::INFINITY, high_open: false };

    /// `rule`'s calm values, if they are an interval.
    pub fn of(rule: &Rule) -> Option<Calm> {
        let RuleKind::Threshold { op, levels, .. } = &rule.kind else { return None };
        let lowest = levels.iter().map(|l| l.value).fold(f64::INFINITY, f64::min);
        let highest = levels.iter().map(|l| l.value).fold(f64::NEG_INFINITY, f64::max);
        let top = levels.iter().map(|l| l.high.unwrap_or(l.value)).fold(f64::INFINITY, f64::min);
        let calm = |low, low_open, high, high_open| Some(Calm { low, low_open, high, high_open });
        match op {
            _ if levels.is_empty() => Some(Calm::ALL),
            Op::Gt => calm(f64::NEG_INFINITY, false, lowest, false),
            Op::Ge => calm(f64::NEG_INFINITY, false, lowest, true),
            Op::Lt => calm(highest, false, f64::INFINITY, false),
            Op::Le => calm(highest, true, f64::INFINITY, false),
            Op::Outside => calm(highest, false, top, false),
            Op::Inside => None,
        }
    }

    /// The values both leave alone.
    pub fn and(self, other: Calm) -> Calm {
        let (low, low_open) = match self.low.total_cmp(&other.low) {
            std::cmp::Ordering::Less => (other.low, other.low_open),
            std::cmp::Ordering::Greater => (self.low, self.low_open),
            std::cmp::Ordering::Equal => (self.low, self.low_open || other.low_open),
        };
        let (high, high_open) = match self.high.total_cmp(&other.high) {
            std::cmp::Ordering::Less => (self.high, self.high_open),
            std::cmp::Ordering::Greater => (other.high, other.high_open),
            std::cmp::Ordering::Equal => (self.high, self.high_open || other.high_open),
        };
        Calm { low, low_open, high, high_open }
    }

    #[inline]
    pub fn holds(self, v: f64) -> bool {
        (v > self.low || (!self.low_open && v == self.low))
            && (v < self.high || (!self.high_open && v == self.high))
    }
}

/// [`evaluate`] for a [`steady`] track on the clock (see [`steady_reading`]): `None` when an
/// alarm may open.
#[inline]
pub fn steady_tick(
    rule: &Rule,
    soft: Millis,
    last_seen: Millis,
    offline_since: Option<Millis>,
    stale_after: Millis,
    interval: Option<Millis>,
    clock: Clock,
) -> Option<Millis> {
    match &rule.kind {
        // A normal threshold track has nothing pending.
        RuleKind::Threshold { .. } => Some(soft),
        RuleKind::NoData { after_secs, .. } => {
            let last_data = if soft == 0 { last_seen } else { soft };
            let opens = last_data > 0
                && clock.now.saturating_sub(last_data) >= secs(*after_secs)
                && clock.now >= clock.quiet_until;
            (!opens).then_some(last_data)
        }
        RuleKind::Offline { after_secs, .. } => {
            if last_seen == 0 || clock.now < clock.quiet_until {
                return Some(soft);
            }
            let down_since = offline_since.unwrap_or(last_seen.saturating_add(stale_after));
            (clock.now < down_since.saturating_add(secs(*after_secs))).then_some(soft)
        }
        RuleKind::Overdue { intervals, .. } => {
            let last_data = if soft == 0 { last_seen } else { soft };
            let opens = overdue_after(*intervals, interval).is_some_and(|after| {
                last_data > 0
                    && clock.now.saturating_sub(last_data) >= after
                    && clock.now >= clock.quiet_until
            });
            (!opens).then_some(last_data)
        }
        // A tick changes their stored part (reboots age out; the fleet comparison is its own
        // input): evaluated.
        RuleKind::RebootLoop { .. } => None,
        RuleKind::FirmwareDrift { .. } => Some(soft),
    }
}

/// How long an overdue rule of `intervals` waits for a device expected every `interval`
/// (none while its interval is unknown).
pub fn overdue_after(intervals: u32, interval: Option<Millis>) -> Option<Millis> {
    interval.filter(|i| *i > 0).map(|i| i.saturating_mul(Millis::from(intervals)).max(OVERDUE_FLOOR_MS))
}

/// A person cleared the alarm: it is not reopened (nor counted as flapping), and if the latest
/// reading still breaches, a new pending period starts now (level-triggered: a condition that holds opens a new alarm
/// after `for`).
pub fn cleared_by_hand(rule: &Rule, track: &mut Track, latest: Option<f64>, now: Millis) {
    track.alarm = None;
    // A person stepped in: what follows is a new story, not flapping.
    track.opens.clear();
    track.cleared_at = None;
    track.last_change = now;
    track.phase = Phase::Normal;
    if let (RuleKind::Threshold { op, levels, .. }, Some(v)) = (&rule.kind, latest)
        && let Some(severity) = breached(*op, levels, v)
    {
        track.phase = Phase::Pending { since: now, samples: 1, severity, value: Some(v) };
    }
}

fn window(rule: &Rule) -> Millis {
    (rule.flap_window_secs as Millis).saturating_mul(1000)
}

fn secs(s: u64) -> Millis {
    (s as Millis).saturating_mul(1000)
}

/// The highest level `v` breaches.
fn breached(op: Op, levels: &[Level], v: f64) -> Option<Severity> {
    levels.iter().filter(|l| op.breaches(v, l.value, l.high.unwrap_or(l.value))).map(|l| l.severity).max()
}

/// The clear level: readings that no longer breach it clear the alarm.
#[derive(Debug, Clone, Copy)]
struct ClearBounds {
    value: f64,
    high: f64,
}

impl ClearBounds {
    fn of(op: Op, levels: &[Level], clear: Option<f64>, clear_high: Option<f64>) -> ClearBounds {
        // Default: the least severe level, i.e. the one easiest to breach.
        let loosest = levels.iter().min_by_key(|l| l.severity);
        let value = clear.or(loosest.map(|l| l.value)).unwrap_or(0.0);
        let high = clear_high.or(loosest.and_then(|l| l.high)).unwrap_or(value);
        let _ = op;
        ClearBounds { value, high }
    }

    fn clears(self, op: Op, v: f64) -> bool {
        !op.breaches(v, self.value, self.high)
    }
}

/// Opens (or reopens) the alarm, minding the flap window.
fn open(
    rule: &Rule,
    track: &mut Track,
    severity: Severity,
    value: Option<f64>,
    now: Millis,
    out: &mut Vec<Effect>,
) {
    let window = window(rule);
    track.opens.retain(|t| now.saturating_sub(*t) < window);
    track.opens.push(now);
    let reopen = track.alarm.is_some() && track.cleared_at.is_some_and(|c| now.saturating_sub(c) < window);
    if !reopen {
        track.alarm = None;
    }
    out.push(Effect::Open { severity, value, reopen });
    if !track.flapping && track.opens.len() >= FLAP_OPENS {
        track.flapping = true;
        out.push(Effect::Flapping);
    }
    track.phase = Phase::Firing { severity };
    track.cleared_at = None;
    track.last_change = now;
}

fn clear(track: &mut Track, value: Option<f64>, now: Millis, out: &mut Vec<Effect>) {
    track.phase = Phase::Normal;
    track.cleared_at = Some(now);
    track.last_change = now;
    out.push(Effect::Clear { value });
}

#[allow(clippy::too_many_arguments)]
fn threshold(
    rule: &Rule,
    metric: &str,
    op: Op,
    levels: &[Level],
    bounds: ClearBounds,
    track: &mut Track,
    input: Input,
    now: Millis,
    out: &mut Vec<Effect>,
) {
    let pending_for = secs(rule.for_secs);
    let samples_needed = rule.min_samples.max(1);
    let ready = |since: Millis, samples: u32, at: Millis| {
        at.saturating_sub(since) >= pending_for && samples >= samples_needed
    };
    match input {
        Input::Reading { values, ts, received } => {
            let Some(v) = values.iter().find(|(name, _)| name == metric).map(|(_, v)| *v) else { return };
            // Late (older than the newest evaluated, or a redelivery of it) or a backfill.
            if (track.last_ts != 0 && ts <= track.last_ts) || received.saturating_sub(ts) > FRESH_MS {
                return;
            }
            track.last_ts = ts;
            let severity = breached(op, levels, v);
            match (track.phase, severity) {
                (Phase::Normal, Some(severity)) => {
                    track.phase = Phase::Pending { since: received, samples: 1, severity, value: Some(v) };
                    if ready(received, 1, received) {
                        open(rule, track, severity, Some(v), received, out);
                    }
                }
                (Phase::Normal, None) => {}
                (Phase::Pending { since, samples, .. }, Some(severity)) => {
                    let samples = samples.saturating_add(1);
                    track.phase = Phase::Pending { since, samples, severity, value: Some(v) };
                    if ready(since, samples, received) {
                        open(rule, track, severity, Some(v), received, out);
                    }
                }
                (Phase::Pending { .. }, None) => track.phase = Phase::Normal,
                (Phase::Firing { severity: from } | Phase::Recovering { severity: from, .. }, Some(to)) => {
                    track.phase = Phase::Firing { severity: to };
                    if to != from {
                        out.push(Effect::Severity { from, to, value: v });
                    }
                }
                (Phase::Firing { severity }, None) if bounds.clears(op, v) => {
                    track.phase = Phase::Recovering { severity, since: received };
                    if rule.clear_for_secs == 0 {
                        clear(track, Some(v), received, out);
                    }
                }
                (Phase::Recovering { since, .. }, None) if bounds.clears(op, v) => {
                    if received.saturating_sub(since) >= secs(rule.clear_for_secs) {
                        clear(track, Some(v), received, out);
                    }
                }
                // Between the clear level and the trip level: no change, but recovering stops.
                (Phase::Firing { .. }, None) => {}
                (Phase::Recovering { severity, .. }, None) => track.phase = Phase::Firing { severity },
            }
        }
        // Firing on the clock: the pending period may end between readings. Clearing is not
        // done on the clock: silence never resolves an alarm.
        Input::Tick { .. } => {
            if let Phase::Pending { since, samples, severity, value } = track.phase
                && ready(since, samples, now)
            {
                open(rule, track, severity, value, now, out);
            }
        }
        Input::Status { .. } | Input::Reboot | Input::Fleet { .. } => {}
    }
}

#[allow(clippy::too_many_arguments)]
fn no_data(
    rule: &Rule,
    metric: Option<&str>,
    after_secs: u64,
    severity: Severity,
    track: &mut Track,
    input: Input,
    clock: Clock,
    out: &mut Vec<Effect>,
) {
    match input {
        Input::Reading { values, received, .. } => {
            if !values.iter().any(|(name, _)| metric.is_none_or(|m| m == name)) {
                return;
            }
            track.last_data = track.last_data.max(received);
            resumed(rule, track, received, out);
        }
        Input::Tick { last_seen, .. } => {
            if track.last_data == 0 {
                track.last_data = last_seen;
            }
            let quiet = clock.now.saturating_sub(track.last_data);
            if track.phase == Phase::Normal
                && track.last_data > 0
                && quiet >= secs(after_secs)
                && clock.now >= clock.quiet_until
            {
                open(rule, track, severity, None, clock.now, out);
            }
        }
        Input::Status { .. } | Input::Reboot | Input::Fleet { .. } => {}
    }
}

fn offline(
    rule: &Rule,
    after_secs: u64,
    severity: Severity,
    track: &mut Track,
    input: Input,
    clock: Clock,
    out: &mut Vec<Effect>,
) {
    match input {
        Input::Reading { received, .. } => resumed(rule, track, received, out),
        Input::Status { online: true } => resumed(rule, track, clock.now, out),
        Input::Status { online: false } | Input::Reboot | Input::Fleet { .. } => {}
        Input::Tick { last_seen, offline_since, stale_after, .. } => {
            if last_seen == 0 || track.phase != Phase::Normal || clock.now < clock.quiet_until {
                return;
            }
            let down_since = offline_since.unwrap_or(last_seen.saturating_add(stale_after));
            if clock.now >= down_since.saturating_add(secs(after_secs)) {
                open(rule, track, severity, None, clock.now, out);
            }
        }
    }
}

fn overdue(
    rule: &Rule,
    intervals: u32,
    severity: Severity,
    track: &mut Track,
    input: Input,
    clock: Clock,
    out: &mut Vec<Effect>,
) {
    match input {
        Input::Reading { received, .. } => {
            track.last_data = track.last_data.max(received);
            resumed(rule, track, received, out);
        }
        Input::Tick { last_seen, interval, .. } => {
            if track.last_data == 0 {
                track.last_data = last_seen;
            }
            let Some(after) = overdue_after(intervals, interval) else { return };
            if track.phase == Phase::Normal
                && track.last_data > 0
                && clock.now.saturating_sub(track.last_data) >= after
                && clock.now >= clock.quiet_until
            {
                open(rule, track, severity, None, clock.now, out);
            }
        }
        Input::Status { .. } | Input::Reboot | Input::Fleet { .. } => {}
    }
}

/// A reboot counts now; on the clock, reboots older than the window are forgotten. The alarm
/// holds while `count` or more fall within the window.
#[allow(clippy::too_many_arguments)]
fn reboot_loop(
    rule: &Rule,
    count: u32,
    window_secs: u64,
    severity: Severity,
    track: &mut Track,
    input: Input,
    now: Millis,
    out: &mut Vec<Effect>,
) {
    match input {
        Input::Reboot => track.reboots.push(now),
        Input::Tick { .. } => {}
        Input::Reading { .. } | Input::Status { .. } | Input::Fleet { .. } => return,
    }
    let window = secs(window_secs);
    track.reboots.retain(|t| now.saturating_sub(*t) < window);
    // The newest `count` say whether `count` fall within the window: no more are kept.
    let extra = track.reboots.len().saturating_sub(count as usize);
    track.reboots.drain(..extra);
    let holds = track.reboots.len() >= count as usize;
    hold(rule, track, holds, severity, now, out);
}

/// A condition judged now that holds or not (a reboot loop, a firmware apart from the
/// fleet's): it opens once it has held for `for_secs`, and clears once it has not for
/// `clear_for_secs`.
fn hold(rule: &Rule, track: &mut Track, holds: bool, severity: Severity, now: Millis, out: &mut Vec<Effect>) {
    let pending_for = secs(rule.for_secs);
    match (track.phase, holds) {
        (Phase::Normal, false) | (Phase::Firing { .. }, true) => {}
        (Phase::Normal, true) => {
            track.phase = Phase::Pending { since: now, samples: 1, severity, value: None };
            if pending_for == 0 {
                open(rule, track, severity, None, now, out);
            }
        }
        (Phase::Pending { since, .. }, true) => {
            if now.saturating_sub(since) >= pending_for {
                open(rule, track, severity, None, now, out);
            }
        }
        (Phase::Pending { .. }, false) => track.phase = Phase::Normal,
        (Phase::Recovering { severity, .. }, true) => track.phase = Phase::Firing { severity },
        (Phase::Firing { severity }, false) => {
            track.phase = Phase::Recovering { severity, since: now };
            if rule.clear_for_secs == 0 {
                clear(track, None, now, out);
            }
        }
        (Phase::Recovering { since, .. }, false) => {
            if now.saturating_sub(since) >= secs(rule.clear_for_secs) {
                clear(track, None, now, out);
            }
        }
    }
}

/// Data came back: the open alarm recovers, and clears once `clear_for` has passed (confirmed
/// by a reading).
fn resumed(rule: &Rule, track: &mut Track, at: Millis, out: &mut Vec<Effect>) {
    match track.phase {
        Phase::Firing { severity } => {
            track.phase = Phase::Recovering { severity, since: at };
            if rule.clear_for_secs == 0 {
                clear(track, None, at, out);
            }
        }
        Phase::Recovering { since, .. } if at.saturating_sub(since) >= secs(rule.clear_for_secs) => {
            clear(track, None, at, out);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DEFAULT_STALE_MS;

    const S: Millis = 1000;
    const T0: Millis = 1_766_146_880_000;

    fn rule(json: serde_json::Value) -> Rule {
        let mut base = serde_json::json!({"name": "r"});
        base.as_object_mut().unwrap().extend(json.as_object().unwrap().clone());
        let r: Rule = serde_json::from_value(base).unwrap();
        r.validate().unwrap();
        r
    }

    fn hot(for_secs: u64, clear: Option<f64>, clear_for_secs: u64) -> Rule {
        let mut j = serde_json::json!({"kind": "threshold", "metric": "t", "op": ">",
            "levels": [{"severity": "critical", "value": 30}], "for_secs": for_secs, "clear_for_secs": clear_for_secs});
        if let Some(c) = clear {
            j["clear"] = c.into();
        }
        rule(j)
    }

    /// Feeds readings `(seconds after T0, value)` every so often, with a tick each second in
    /// between; answers (seconds, effect) in order.
    fn run(rule: &Rule, track: &mut Track, readings: &[(i64, f64)], until: i64) -> Vec<(i64, Effect)> {
        run_from(rule, track, readings, 0, until)
    }

    fn run_from(
        rule: &Rule,
        track: &mut Track,
        readings: &[(i64, f64)],
        from: i64,
        until: i64,
    ) -> Vec<(i64, Effect)> {
        let mut out = Vec::new();
        let mut next = readings.iter().peekable();
        for sec in from..=until {
            let now = T0 + sec * S;
            let clock = Clock { now, quiet_until: 0 };
            while let Some((at, v)) = next.next_if(|(at, _)| *at == sec) {
                let values = [("t".to_owned(), *v)];
                let input = Input::Reading { values: &values, ts: T0 + at * S, received: now };
                out.extend(evaluate(rule, track, input, clock).into_iter().map(|e| (sec, e)));
            }
            let tick = Input::Tick {
                last_seen: now,
                offline_since: None,
                stale_after: DEFAULT_STALE_MS,
                interval: None,
            };
            out.extend(evaluate(rule, track, tick, clock).into_iter().map(|e| (sec, e)));
            if let Some((_, Effect::Open { reopen: false, .. })) = out.last() {
                track.alarm = Some(format!("alarm-{sec}"));
            }
        }
        out
    }

    fn opens(effects: &[(i64, Effect)]) -> Vec<i64> {
        effects.iter().filter(|(_, e)| matches!(e, Effect::Open { .. })).map(|(s, _)| *s).collect()
    }

    fn every(step: i64, from: i64, to: i64, v: f64) -> Vec<(i64, f64)> {
        (from..=to).step_by(step as usize).map(|s| (s, v)).collect()
    }

    #[test]
    fn a_pending_period_fires_on_the_clock_once() {
        // Acceptance 1: t > 30 for 30 s, readings of 31 every 5 s: one alarm at t0 + 30 s.
        let r = hot(30, None, 0);
        let mut track = Track::default();
        let effects = run(&r, &mut track, &every(5, 0, 120, 31.0), 120);
        assert_eq!(opens(&effects), [30]);
        assert_eq!(effects.len(), 1, "{effects:?}");
        // Reporting every 5 minutes: still fires 30 s after the first breaching reading.
        let mut track = Track::default();
        let effects = run(&r, &mut track, &[(0, 31.0), (300, 31.0)], 310);
        assert_eq!(opens(&effects), [30]);
    }

    #[test]
    fn a_breach_too_short_fires_nothing_and_a_new_one_starts_over() {
        // Acceptance 2: 20 s of 31, then 29; a later 31 restarts the pending timer.
        let r = hot(30, None, 0);
        let mut track = Track::default();
        let mut readings = every(5, 0, 20, 31.0);
        readings.push((25, 29.0));
        readings.extend(every(5, 40, 100, 31.0));
        let effects = run(&r, &mut track, &readings, 100);
        assert_eq!(opens(&effects), [70], "30 s after the new breach at 40 s");
    }

    #[test]
    fn hysteresis_and_clear_for() {
        // Acceptance 3: clear level 28, clear_for 60 s.
        let r = hot(0, Some(28.0), 60);
        let mut track = Track::default();
        let mut readings = vec![(0, 31.0)];
        readings.extend(every(5, 5, 200, 29.5));
        let effects = run(&r, &mut track, &readings, 200);
        assert_eq!(opens(&effects), [0]);
        assert!(!effects.iter().any(|(_, e)| matches!(e, Effect::Clear { .. })), "29.5 never clears");
        let effects = run_from(&r, &mut track, &every(5, 205, 400, 27.9), 201, 400);
        let clears: Vec<_> = effects.iter().filter(|(_, e)| matches!(e, Effect::Clear { .. })).collect();
        assert_eq!(clears.len(), 1);
        assert_eq!(clears[0].0, 265, "held 60 s from 205 s, then cleared by a reading");
    }

    #[test]
    fn a_reading_in_the_hysteresis_zone_stops_recovering() {
        let r = hot(0, Some(28.0), 20);
        let mut track = Track::default();
        let effects =
            run(&r, &mut track, &[(0, 31.0), (5, 27.0), (15, 29.0), (20, 27.0), (30, 27.0), (40, 27.0)], 40);
        let clears: Vec<_> =
            effects.iter().filter(|(_, e)| matches!(e, Effect::Clear { .. })).map(|(s, _)| *s).collect();
        assert_eq!(clears, [40], "recovering restarted at 20 s");
    }

    #[test]
    fn silence_never_clears_and_late_readings_never_move_it() {
        let r = hot(0, None, 0);
        let mut track = Track::default();
        let effects = run(&r, &mut track, &[(0, 35.0)], 3600);
        assert_eq!(opens(&effects), [0]);
        assert_eq!(effects.len(), 1, "an hour of silence: still firing");
        assert!(matches!(track.phase, Phase::Firing { .. }));
        // A reading with an older device time than the newest: stored, not evaluated.
        let values = [("t".to_owned(), 10.0)];
        let late = Input::Reading { values: &values, ts: T0 - S, received: T0 + 3601 * S };
        assert!(evaluate(&r, &mut track, late, Clock { now: T0 + 3601 * S, quiet_until: 0 }).is_empty());
        // A backfill (arriving long after its time) is not evaluated either.
        let mut fresh = Track::default();
        let values = [("t".to_owned(), 99.0)];
        let backfill = Input::Reading { values: &values, ts: T0, received: T0 + FRESH_MS + S };
        assert!(
            evaluate(&r, &mut fresh, backfill, Clock { now: T0 + FRESH_MS + S, quiet_until: 0 }).is_empty()
        );
        assert_eq!(fresh, Track::default());
    }

    #[test]
    fn severity_moves_up_and_down_while_open() {
        let r = rule(serde_json::json!({"kind": "threshold", "metric": "t", "op": ">",
            "levels": [{"severity": "warning", "value": 30}, {"severity": "critical", "value": 35}]}));
        let mut track = Track::default();
        let effects = run(&r, &mut track, &[(0, 31.0), (5, 36.0), (10, 32.0), (15, 29.0)], 15);
        let kinds: Vec<_> = effects.into_iter().map(|(_, e)| e).collect();
        assert_eq!(
            kinds,
            [
                Effect::Open { severity: Severity::Warning, value: Some(31.0), reopen: false },
                Effect::Severity { from: Severity::Warning, to: Severity::Critical, value: 36.0 },
                Effect::Severity { from: Severity::Critical, to: Severity::Warning, value: 32.0 },
                Effect::Clear { value: Some(29.0) },
            ]
        );
    }

    #[test]
    fn min_samples_and_bands() {
        let r = rule(serde_json::json!({"kind": "threshold", "metric": "t", "op": "outside",
            "levels": [{"severity": "major", "value": 10, "high": 20}], "min_samples": 3}));
        let mut track = Track::default();
        let effects =
            run(&r, &mut track, &[(0, 5.0), (1, 25.0), (2, 15.0), (3, 5.0), (4, 5.0), (5, 25.0)], 6);
        assert_eq!(opens(&effects), [5], "three breaching readings in a row");
    }

    #[test]
    fn reopening_within_the_window_then_flapping_then_stable() {
        // Acceptance 10: 12 crossings in 10 min → one open as new, then flapping, then quiet.
        let r = hot(0, None, 0);
        let mut track = Track::default();
        let readings: Vec<_> = (0..12).map(|i| (i * 50, if i % 2 == 0 { 31.0 } else { 29.0 })).collect();
        let effects = run(&r, &mut track, &readings, 600);
        let news = effects.iter().filter(|(_, e)| matches!(e, Effect::Open { reopen: false, .. })).count();
        let flapping = effects.iter().filter(|(_, e)| *e == Effect::Flapping).count();
        assert_eq!((news, flapping), (1, 1), "{effects:?}");
        assert!(effects.iter().filter(|(_, e)| matches!(e, Effect::Open { reopen: true, .. })).count() == 5);
        assert!(track.flapping);
        // Stable for the window (30 min): flapping ends, once.
        let effects = run_from(&r, &mut track, &[], 601, 2500);
        assert_eq!(effects.iter().filter(|(_, e)| *e == Effect::Stable).count(), 1);
        assert!(!track.flapping);
    }

    #[test]
    fn a_hand_clear_is_level_triggered() {
        let r = hot(30, None, 0);
        let mut track = Track::default();
        run(&r, &mut track, &every(5, 0, 40, 31.0), 40);
        assert!(matches!(track.phase, Phase::Firing { .. }));
        cleared_by_hand(&r, &mut track, Some(31.0), T0 + 41 * S);
        assert_eq!(track.alarm, None);
        assert!(matches!(track.phase, Phase::Pending { since, .. } if since == T0 + 41 * S));
        // Still breaching: a new alarm (not a reopened one) 30 s later, on the clock alone.
        let mut effects = Vec::new();
        for sec in 41..=80 {
            let now = T0 + sec * S;
            let tick = Input::Tick {
                last_seen: now,
                offline_since: None,
                stale_after: DEFAULT_STALE_MS,
                interval: None,
            };
            effects.extend(
                evaluate(&r, &mut track, tick, Clock { now, quiet_until: 0 }).into_iter().map(|e| (sec, e)),
            );
        }
        assert_eq!(
            effects,
            [(71, Effect::Open { severity: Severity::Critical, value: Some(31.0), reopen: false })]
        );
    }

    #[test]
    fn no_data_fires_after_the_quiet_time_and_clears_on_data() {
        let r = rule(serde_json::json!({"kind": "no_data", "metric": "t", "after_secs": 60}));
        let mut track = Track::default();
        let clock = |s: i64| Clock { now: T0 + s * S, quiet_until: T0 + 30 * S };
        let values = [("t".to_owned(), 1.0)];
        evaluate(&r, &mut track, Input::Reading { values: &values, ts: T0, received: T0 }, clock(0));
        let tick = |_: i64| Input::Tick {
            last_seen: T0,
            offline_since: None,
            stale_after: DEFAULT_STALE_MS,
            interval: None,
        };
        assert!(evaluate(&r, &mut track, tick(59), clock(59)).is_empty());
        assert_eq!(
            evaluate(&r, &mut track, tick(60), clock(60)),
            [Effect::Open { severity: Severity::Major, value: None, reopen: false }]
        );
        let other = [("h".to_owned(), 1.0)];
        assert!(
            evaluate(
                &r,
                &mut track,
                Input::Reading { values: &other, ts: T0 + 70 * S, received: T0 + 70 * S },
                clock(70)
            )
            .is_empty(),
            "another metric is not data for it"
        );
        let back = Input::Reading { values: &values, ts: T0 + 80 * S, received: T0 + 80 * S };
        assert_eq!(evaluate(&r, &mut track, back, clock(80)), [Effect::Clear { value: None }]);
    }

    #[test]
    fn offline_fires_after_its_time_and_not_during_the_start_grace() {
        let r = rule(serde_json::json!({"kind": "offline", "after_secs": 120}));
        let mut track = Track::default();
        let seen = T0;
        // Its last will at 10 s: offline from then; fires at 130 s.
        let tick = |_: i64| Input::Tick {
            last_seen: seen,
            offline_since: Some(T0 + 10 * S),
            stale_after: DEFAULT_STALE_MS,
            interval: None,
        };
        assert!(evaluate(&r, &mut track, tick(129), Clock { now: T0 + 129 * S, quiet_until: 0 }).is_empty());
        assert_eq!(evaluate(&r, &mut track, tick(130), Clock { now: T0 + 130 * S, quiet_until: 0 }).len(), 1);
        assert_eq!(
            evaluate(
                &r,
                &mut track,
                Input::Status { online: true },
                Clock { now: T0 + 140 * S, quiet_until: 0 }
            ),
            [Effect::Clear { value: None }]
        );
        // Just restarted: a device long unheard of waits out the grace period.
        let mut fresh = Track::default();
        let long_ago = Input::Tick {
            last_seen: T0 - 3_600 * S,
            offline_since: None,
            stale_after: DEFAULT_STALE_MS,
            interval: None,
        };
        assert!(evaluate(&r, &mut fresh, long_ago, Clock { now: T0, quiet_until: T0 + 60 * S }).is_empty());
        // Stale (no will): from its own stale time after its last reading, 60 s here ...
        let stale =
            Input::Tick { last_seen: T0, offline_since: None, stale_after: DEFAULT_STALE_MS, interval: None };
        assert!(evaluate(&r, &mut fresh, stale, Clock { now: T0 + 179 * S, quiet_until: 0 }).is_empty());
        assert_eq!(evaluate(&r, &mut fresh, stale, Clock { now: T0 + 180 * S, quiet_until: 0 }).len(), 1);
        // ... 15 min for a device expected every 5 min: offline for 2 min at 17 min.
        let mut slow = Track::default();
        let stale = Input::Tick { last_seen: T0, offline_since: None, stale_after: 900 * S, interval: None };
        assert!(evaluate(&r, &mut slow, stale, Clock { now: T0 + 1_019 * S, quiet_until: 0 }).is_empty());
        assert_eq!(evaluate(&r, &mut slow, stale, Clock { now: T0 + 1_020 * S, quiet_until: 0 }).len(), 1);
    }

    #[test]
    fn overdue_waits_its_own_intervals_and_clears_on_any_reading() {
        let r = rule(serde_json::json!({"kind": "overdue", "intervals": 3}));
        let clock = |s: i64| Clock { now: T0 + s * S, quiet_until: 0 };
        let tick = |interval: Option<Millis>| Input::Tick {
            last_seen: T0,
            offline_since: None,
            stale_after: DEFAULT_STALE_MS,
            interval,
        };
        let mut track = Track::default();
        // A 10 s device: due after 30 s of silence.
        assert!(evaluate(&r, &mut track, tick(Some(10 * S)), clock(29)).is_empty());
        assert_eq!(
            evaluate(&r, &mut track, tick(Some(10 * S)), clock(30)),
            [Effect::Open { severity: Severity::Major, value: None, reopen: false }]
        );
        let any = [("whatever".to_owned(), 1.0)];
        let back = Input::Reading { values: &any, ts: T0 + 40 * S, received: T0 + 40 * S };
        assert_eq!(evaluate(&r, &mut track, back, clock(40)), [Effect::Clear { value: None }]);
        // A 5 min device is not overdue at 14 min, and is at 15.
        let mut slow = Track::default();
        assert!(evaluate(&r, &mut slow, tick(Some(300 * S)), clock(899)).is_empty());
        assert_eq!(evaluate(&r, &mut slow, tick(Some(300 * S)), clock(900)).len(), 1);
        // Not judged while its interval is unknown; never sooner than the floor.
        let mut unknown = Track::default();
        assert!(evaluate(&r, &mut unknown, tick(None), clock(86_400)).is_empty());
        let mut fast = Track::default();
        assert!(evaluate(&r, &mut fast, tick(Some(S)), clock(9)).is_empty(), "3 × 1 s is under 10 s");
        assert_eq!(evaluate(&r, &mut fast, tick(Some(S)), clock(10)).len(), 1);
        // Not during the start grace.
        let mut started = Track::default();
        let grace = Clock { now: T0 + 60 * S, quiet_until: T0 + 61 * S };
        assert!(evaluate(&r, &mut started, tick(Some(10 * S)), grace).is_empty());
    }

    #[test]
    fn three_reboots_within_the_hour_open_and_an_hour_calmer_clears() {
        let r = rule(serde_json::json!({"kind": "reboot_loop", "count": 3, "window_secs": 3600}));
        assert!(matches!(
            r.kind,
            RuleKind::RebootLoop { count: 3, window_secs: 3600, severity: Severity::Major }
        ));
        let at = |s: i64| Clock { now: T0 + s * S, quiet_until: 0 };
        let tick = Input::Tick { last_seen: T0, offline_since: None, stale_after: 0, interval: None };
        let mut track = Track::default();
        // Two reboots 50 min apart, a third 20 min later: the first has left the hour.
        assert!(evaluate(&r, &mut track, Input::Reboot, at(0)).is_empty());
        assert!(!track.is_idle() && track.wants_ticks(), "a reboot is remembered");
        assert!(evaluate(&r, &mut track, Input::Reboot, at(3000)).is_empty());
        assert!(evaluate(&r, &mut track, Input::Reboot, at(4200)).is_empty());
        assert_eq!(track.reboots, [T0 + 3000 * S, T0 + 4200 * S]);
        // A third within the hour of the second: open.
        assert_eq!(
            evaluate(&r, &mut track, Input::Reboot, at(4300)),
            [Effect::Open { severity: Severity::Major, value: None, reopen: false }]
        );
        // More reboots: still one alarm, and the track keeps only the newest three.
        for s in [4400, 4500, 4600] {
            assert!(evaluate(&r, &mut track, Input::Reboot, at(s)).is_empty());
        }
        assert_eq!(track.reboots.len(), 3);
        // An hour after the third newest (4400 s), fewer than three remain: cleared.
        assert!(evaluate(&r, &mut track, tick, at(7999)).is_empty());
        assert_eq!(evaluate(&r, &mut track, tick, at(8000)), [Effect::Clear { value: None }]);
        // Readings and the fleet are nothing to it; once its reboots age out it is idle.
        let values = [("uptime_s".to_owned(), 1.0)];
        let reading = Input::Reading { values: &values, ts: T0, received: T0 };
        assert!(evaluate(&r, &mut track, reading, at(8001)).is_empty());
        evaluate(&r, &mut track, tick, at(9000));
        track.alarm = None;
        track.opens.clear();
        assert!(track.is_idle(), "{track:?}");
        // Bounded: a count over the limit is refused.
        let mut big = r.clone();
        big.kind = RuleKind::RebootLoop {
            count: super::super::MAX_REBOOTS + 1,
            window_secs: 3600,
            severity: Severity::Major,
        };
        assert!(big.validate().unwrap_err().contains("count"));
    }

    #[test]
    fn a_firmware_apart_from_the_fleet_opens_after_its_pending_time_and_clears_once_in_line() {
        let r = rule(serde_json::json!({"kind": "firmware_drift", "for_secs": 60, "clear_for_secs": 30}));
        assert!(matches!(r.kind, RuleKind::FirmwareDrift { tag: None, severity: Severity::Warning }));
        let at = |s: i64| Clock { now: T0 + s * S, quiet_until: 0 };
        let mut track = Track::default();
        let apart = Input::Fleet { differs: true };
        let in_line = Input::Fleet { differs: false };
        assert!(evaluate(&r, &mut track, apart, at(0)).is_empty());
        assert!(evaluate(&r, &mut track, apart, at(59)).is_empty());
        assert_eq!(evaluate(&r, &mut track, apart, at(60)).len(), 1);
        assert!(evaluate(&r, &mut track, in_line, at(100)).is_empty(), "clear for 30 s first");
        assert!(evaluate(&r, &mut track, apart, at(110)).is_empty(), "apart again: still the same alarm");
        assert!(evaluate(&r, &mut track, in_line, at(120)).is_empty());
        assert_eq!(evaluate(&r, &mut track, in_line, at(150)), [Effect::Clear { value: None }]);
        // A difference shorter than the pending time opens nothing.
        let mut brief = Track::default();
        evaluate(&r, &mut brief, apart, at(0));
        evaluate(&r, &mut brief, in_line, at(30));
        assert!(evaluate(&r, &mut brief, apart, at(70)).is_empty() && brief.alarm.is_none());
        let mut bad = r.clone();
        bad.kind = RuleKind::FirmwareDrift { tag: Some("no spaces".into()), severity: Severity::Minor };
        assert!(bad.validate().unwrap_err().contains("tag"));
    }

    #[test]
    fn tracks_survive_a_round_trip_and_idle_ones_store_nothing() {
        let r = hot(30, None, 0);
        let mut track = Track::default();
        assert!(track.is_idle() && !track.wants_ticks());
        run(&r, &mut track, &every(5, 0, 20, 31.0), 20);
        assert!(matches!(track.phase, Phase::Pending { .. }) && track.wants_ticks());
        let stored = serde_json::to_string(&track).unwrap();
        let mut back: Track = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, track);
        // After a restart 20 s into the period, it fires 10 s later, not 30.
        let effects: Vec<_> = (21..=40)
            .flat_map(|sec| {
                let now = T0 + sec * S;
                evaluate(
                    &r,
                    &mut back,
                    Input::Tick {
                        last_seen: now,
                        offline_since: None,
                        stale_after: DEFAULT_STALE_MS,
                        interval: None,
                    },
                    Clock { now, quiet_until: 0 },
                )
                .into_iter()
                .map(move |e| (sec, e))
            })
            .collect();
        assert_eq!(opens(&effects), [30]);
    }

    /// The shortcuts agree with [`evaluate`]: wherever they answer, evaluating changes nothing
    /// but the soft time, to what they say, and opens nothing.
    mod shortcuts {
        use super::*;
        use proptest::prelude::*;

        fn rules() -> Vec<Rule> {
            vec![
                hot(30, Some(28.0), 60),
                hot(0, None, 0),
                rule(serde_json::json!({"kind": "threshold", "metric": "t", "op": "outside",
                    "levels": [{"severity": "minor", "value": 10, "high": 40},
                               {"severity": "major", "value": 0, "high": 50}]})),
                rule(serde_json::json!({"kind": "no_data", "metric": "t", "after_secs": 120})),
                rule(serde_json::json!({"kind": "no_data", "after_secs": 60})),
                rule(serde_json::json!({"kind": "offline", "after_secs": 120})),
                rule(serde_json::json!({"kind": "overdue", "intervals": 3})),
                rule(serde_json::json!({"kind": "firmware_drift"})),
            ]
        }

        fn steady_track() -> impl Strategy<Value = Track> {
            let time = prop_oneof![Just(0), (T0 - 600 * S..T0 + 600 * S)];
            (time.clone(), time.clone(), time.clone(), proptest::option::of(time), any::<bool>()).prop_map(
                |(last_ts, last_data, last_change, cleared_at, alarm)| Track {
                    phase: Phase::Normal,
                    alarm: alarm.then(|| "al-1".to_owned()),
                    last_ts,
                    last_data,
                    opens: cleared_at.into_iter().collect(),
                    reboots: Vec::new(),
                    flapping: false,
                    last_change,
                    cleared_at,
                },
            )
        }

        fn agree(rule: &Rule, track: &Track, input: Input, clock: Clock, shortcut: Option<Millis>) {
            let mut evaluated = track.clone();
            let effects = evaluate(rule, &mut evaluated, input, clock);
            if let Some(soft_after) = shortcut {
                assert!(effects.is_empty(), "{rule:?} {track:?} {input:?}: {effects:?}");
                let mut expected = track.clone();
                set_soft(&rule.kind, &mut expected, soft_after);
                assert_eq!(evaluated, expected, "{rule:?} {input:?}");
            }
        }

        proptest! {
            #[test]
            fn readings(track in steady_track(), which in 0..8usize, v in -10.0..60.0f64,
                        has in any::<bool>(), ts in T0 - 900 * S..T0 + 60 * S, received in T0..T0 + 60 * S) {
                let rule = &rules()[which];
                let values = [(if has { "t" } else { "h" }.to_owned(), v)];
                let value = match &rule.kind {
                    RuleKind::NoData { metric: None, .. } => Some(v),
                    _ => has.then_some(v),
                };
                let shortcut = steady_reading(rule, soft(&rule.kind, &track), value, ts, received);
                let clock = Clock { now: received, quiet_until: 0 };
                agree(rule, &track, Input::Reading { values: &values, ts, received }, clock, shortcut);
            }

            #[test]
            fn ticks(track in steady_track(), which in 0..8usize, last_seen in prop_oneof![Just(0), T0 - 900 * S..T0],
                     offline in proptest::option::of(T0 - 900 * S..T0), stale_after in 0..600 * S,
                     now in T0..T0 + 900 * S, quiet_until in prop_oneof![Just(0), T0..T0 + 900 * S],
                     interval in proptest::option::of(0..300 * S)) {
                let rule = &rules()[which];
                let clock = Clock { now, quiet_until };
                let shortcut = steady_tick(rule, soft(&rule.kind, &track), last_seen, offline, stale_after, interval, clock);
                agree(rule, &track, Input::Tick { last_seen, offline_since: offline, stale_after, interval }, clock, shortcut);
            }

            #[test]
            fn statuses_change_nothing(track in steady_track(), which in 0..8usize, online in any::<bool>()) {
                let rule = &rules()[which];
                let soft = soft(&rule.kind, &track);
                agree(rule, &track, Input::Status { online }, Clock { now: T0, quiet_until: 0 }, Some(soft));
            }
        }

        proptest! {
            #[test]
            fn calm_values_are_those_no_level_breaches(op in 0..6usize, levels in proptest::collection::vec((-5..5i32, 0..4i32), 1..4),
                                                       v in -12..12i32, other in 0..6usize) {
                let ops = [">", ">=", "<", "<=", "outside", "inside"];
                let levels: Vec<_> = levels.iter().zip(["warning", "minor", "major", "critical"])
                    .map(|((value, width), severity)| serde_json::json!({"severity": severity, "value": value, "high": value + width}))
                    .collect();
                let r = rule(serde_json::json!({"kind": "threshold", "metric": "t", "op": ops[op], "levels": levels}));
                // Half steps, so values on and between the levels are both tried.
                let v = f64::from(v) / 2.0;
                let RuleKind::Threshold { op: o, levels: l, .. } = &r.kind else { unreachable!() };
                match Calm::of(&r) {
                    Some(calm) => prop_assert_eq!(calm.holds(v), breached(*o, l, v).is_none(), "{:?} {}", calm, v),
                    None => prop_assert_eq!(ops[op], "inside"),
                }
                // Two rules' intersection: calm for both.
                let s = rule(serde_json::json!({"kind": "threshold", "metric": "t", "op": ops[other],
                    "levels": [{"severity": "major", "value": 1, "high": 3}]}));
                if let (Some(a), Some(b)) = (Calm::of(&r), Calm::of(&s)) {
                    prop_assert_eq!(a.and(b).holds(v), a.holds(v) && b.holds(v));
                }
            }
        }

        #[test]
        fn a_breach_and_an_alarm_due_are_left_to_the_evaluation() {
            let rules = rules();
            let quiet = Track::default();
            assert_eq!(steady_reading(&rules[0], 0, Some(31.0), T0, T0), None, "a breach");
            assert_eq!(steady_reading(&rules[0], 0, Some(29.0), T0, T0), Some(T0), "newest time moves");
            assert_eq!(steady_reading(&rules[0], T0, Some(31.0), T0, T0), Some(T0), "a redelivery");
            assert_eq!(steady_reading(&rules[0], 0, Some(31.0), T0, T0 + 301 * S), Some(0), "a backfill");
            assert_eq!(steady_reading(&rules[3], T0, Some(1.0), T0, T0 + S), Some(T0 + S), "data seen");
            let clock = Clock { now: T0 + 120 * S, quiet_until: 0 };
            assert_eq!(steady_tick(&rules[3], T0, T0, None, 0, None, clock), None, "quiet for 120 s");
            assert_eq!(
                steady_tick(&rules[3], 0, T0 + S, None, 0, None, clock),
                Some(T0 + S),
                "from last seen"
            );
            assert_eq!(steady_tick(&rules[5], 0, T0, None, 0, None, clock), None, "offline for 120 s");
            assert_eq!(steady_tick(&rules[6], T0, T0, None, 0, Some(40 * S), clock), None, "3 × 40 s quiet");
            assert_eq!(
                steady_tick(&rules[6], T0, T0, None, 0, Some(41 * S), clock),
                Some(T0),
                "not yet 3 × 41 s"
            );
            assert_eq!(steady_tick(&rules[6], T0, T0, None, 0, None, clock), Some(T0), "no interval known");
            assert!(steady(&quiet));
        }
    }
}
