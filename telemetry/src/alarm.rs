//! Alarms: rules that watch readings and device health, and the alarms they open.
//!
//! A rule is evaluated per device in its scope, by a small state machine ([`eval`]) whose
//! state survives restarts. The semantics, written down because users of other tools had to
//! reverse-engineer them:
//! - **Evaluated on every stored reading and on a clock tick**: a `for 60 s` rule fires 60 s
//!   after its first breaching reading even if the device reports every 5 minutes.
//! - **Level-triggered**: after a manual clear, a condition that still holds opens a new alarm
//!   after `for`.
//! - **Hysteresis**: a threshold alarm clears only once readings reach its clear level and stay
//!   there for `clear_for`; a reading between the clear level and the trip level changes
//!   nothing.
//! - **Silence never resolves an alarm**: only readings clear a threshold or no-data alarm; a
//!   device that goes quiet keeps its alarm ("no data since HH:MM").
//! - **Late or backfilled readings never move an alarm**: readings older than the newest one
//!   evaluated, or more than [`eval::FRESH_MS`] older than their arrival, are stored and charted
//!   but not evaluated.
//! - **Flapping**: an alarm that opens again within `flap_window` of clearing is reopened (the
//!   same alarm, its count going up), and the second time within the window it is marked
//!   flapping: one notice, then no fire or clear notices until it has been stable for the
//!   window.
//! - **Restarts**: pending periods, open alarms and their timers are stored with the reading
//!   that changed them; offline and no-data rules wait a grace period after a start so devices
//!   that simply reconnect page nobody.

pub mod eval;
pub mod replay;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Millis;
use crate::name::valid_name;

/// Most rules the server keeps.
pub const MAX_RULES: usize = 100;
/// Most devices a rule may name (none: every device).
pub const MAX_RULE_DEVICES: usize = 1000;
/// What a rule's scope may read.
pub const SCOPE_FIELDS: &str =
    "scope: a rule's scope reads ids, names, tags, attributes and groups (not status, readings or time)";
/// Most notification channels a rule may notify.
pub const MAX_RULE_CHANNELS: usize = 10;
/// Severity levels a threshold rule may have.
pub const MAX_LEVELS: usize = 4;
/// Longest rule name, alarm comment.
pub const MAX_RULE_NAME: usize = 100;
pub const MAX_COMMENT: usize = 1000;
/// Longest timer (pending, clear, no data, reminders, flap window): a week.
pub const MAX_TIMER_SECS: u64 = 7 * 86_400;
/// Most expected intervals an overdue rule waits.
pub const MAX_INTERVALS: u32 = 1000;
/// Most reboots a reboot-loop rule counts (each device's track keeps at most this many times).
pub const MAX_REBOOTS: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Minor,
    Major,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Warning, Severity::Minor, Severity::Major, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a threshold compares a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    /// Outside the band `[value, high]`.
    #[serde(rename = "outside")]
    Outside,
    /// Inside the band `[value, high]`.
    #[serde(rename = "inside")]
    Inside,
}

impl Op {
    pub fn is_band(self) -> bool {
        matches!(self, Op::Outside | Op::Inside)
    }

    /// Whether `v` breaches the threshold `(value, high)`.
    pub fn breaches(self, v: f64, value: f64, high: f64) -> bool {
        match self {
            Op::Gt => v > value,
            Op::Ge => v >= value,
            Op::Lt => v < value,
            Op::Le => v <= value,
            Op::Outside => v < value || v > high,
            Op::Inside => (value..=high).contains(&v),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Outside => "outside",
            Op::Inside => "inside",
        }
    }
}

/// One severity level of a threshold rule: breached by a reading `op` `value` (and `high`,
/// for a band).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Level {
    pub severity: Severity,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
}

/// What a rule watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleKind {
    /// A metric against up to four levels; the highest breached is the alarm's severity.
    Threshold {
        metric: String,
        op: Op,
        levels: Vec<Level>,
        /// The clear level (and `clear_high` for a band): the alarm clears once readings no
        /// longer breach it. Default: the lowest level's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clear: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clear_high: Option<f64>,
    },
    /// No reading of `metric` (any metric when absent) for `after_secs`.
    NoData {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metric: Option<String>,
        after_secs: u64,
        #[serde(default = "Severity::default_major")]
        severity: Severity,
    },
    /// The device offline (its last will, or `offline` on its status topic) or stale, for
    /// `after_secs`.
    Offline {
        after_secs: u64,
        #[serde(default = "Severity::default_major")]
        severity: Severity,
    },
    /// No reading at all for `intervals` times the device's own expected interval (set on its
    /// page, else learned; [`crate::device::Interval`]), never sooner than
    /// [`eval::OVERDUE_FLOOR_MS`]. A device whose interval is not known yet is not judged.
    Overdue {
        intervals: u32,
        #[serde(default = "Severity::default_major")]
        severity: Severity,
    },
    /// `count` reboots or more (its uptime going down, as its page's events list them) within
    /// `window_secs`; clears once fewer than `count` fall within the window.
    RebootLoop {
        #[serde(default = "default_reboots")]
        count: u32,
        #[serde(default = "default_reboot_window")]
        window_secs: u64,
        #[serde(default = "Severity::default_major")]
        severity: Severity,
    },
    /// Its firmware (the `fw` attribute) differs from the most common one among the devices
    /// the rule watches that report one (among those with the same value of tag `tag`, when
    /// set). No single most common firmware (a tie): no device differs.
    FirmwareDrift {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        #[serde(default = "Severity::default_warning")]
        severity: Severity,
    },
}

impl Severity {
    fn default_major() -> Severity {
        Severity::Major
    }

    fn default_warning() -> Severity {
        Severity::Warning
    }
}

fn default_reboots() -> u32 {
    3
}

fn default_reboot_window() -> u64 {
    3600
}

/// An alarm rule, as an admin writes it (the server fills `id` and `version`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default)]
    pub id: String,
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Devices it watches; empty: every device.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Only devices this fleet query holds too ([`crate::query`]: `tag:site=greenhouse`,
    /// `group:greenhouse`); it may read ids, names, tags, attributes and groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(flatten)]
    pub kind: RuleKind,
    /// Pending period: the condition holds this long before the alarm opens.
    #[serde(default)]
    pub for_secs: u64,
    /// Breaching readings needed (besides `for_secs`) before it opens; 0 and 1 mean one.
    #[serde(default)]
    pub min_samples: u32,
    /// The clear condition holds this long (confirmed by a reading) before it clears.
    #[serde(default)]
    pub clear_for_secs: u64,
    /// A reminder this often while active and unacknowledged; 0: none.
    #[serde(default)]
    pub remind_secs: u64,
    /// Reopened within this long of clearing a second time: flapping.
    #[serde(default = "default_flap_window")]
    pub flap_window_secs: u64,
    /// Notification channels (ids).
    #[serde(default)]
    pub channels: Vec<String>,
    /// Bumped by each change.
    #[serde(default)]
    pub version: u64,
}

fn yes() -> bool {
    true
}

fn default_flap_window() -> u64 {
    30 * 60
}

impl Rule {
    /// Whether the rule watches `device` by its list of devices (its scope is the engine's to
    /// check: it knows the devices' tags).
    pub fn watches(&self, device: &str) -> bool {
        self.enabled && (self.devices.is_empty() || self.devices.iter().any(|d| d == device))
    }

    /// Checks what an admin sent; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_RULE_NAME {
            return Err(format!("name: 1 to {MAX_RULE_NAME} characters"));
        }
        if self.devices.len() > MAX_RULE_DEVICES || self.devices.iter().any(|d| valid_name(d).is_err()) {
            return Err(format!("devices: at most {MAX_RULE_DEVICES} valid device ids"));
        }
        if let Some(scope) = &self.scope {
            let query = crate::query::Query::parse(scope).map_err(|e| format!("scope: {e}"))?;
            if !query.is_timeless() {
                return Err(SCOPE_FIELDS.into());
            }
        }
        if self.channels.len() > MAX_RULE_CHANNELS || self.channels.iter().any(|c| valid_name(c).is_err()) {
            return Err(format!("channels: at most {MAX_RULE_CHANNELS} channel ids"));
        }
        for (what, secs) in [
            ("for_secs", self.for_secs),
            ("clear_for_secs", self.clear_for_secs),
            ("remind_secs", self.remind_secs),
            ("flap_window_secs", self.flap_window_secs),
        ] {
            if secs > MAX_TIMER_SECS {
                return Err(format!("{what}: at most {MAX_TIMER_SECS} (a week)"));
            }
        }
        if self.min_samples > 1000 {
            return Err("min_samples: at most 1000".into());
        }
        match &self.kind {
            RuleKind::Threshold { metric, op, levels, clear, clear_high } => {
                valid_name(metric).map_err(|e| format!("metric: {e}"))?;
                if levels.is_empty() || levels.len() > MAX_LEVELS {
                    return Err(format!("levels: 1 to {MAX_LEVELS}"));
                }
                let mut seen = Vec::new();
                for level in levels {
                    if seen.contains(&level.severity) {
                        return Err(format!("levels: {} given twice", level.severity));
                    }
                    seen.push(level.severity);
                    finite(level.value, "level value")?;
                    if op.is_band() {
                        let high = level.high.ok_or("a band needs `high` too")?;
                        finite(high, "level high")?;
                        if high < level.value {
                            return Err("a band's high is below its value".into());
                        }
                    }
                }
                if let Some(c) = clear {
                    finite(*c, "clear")?;
                }
                if let Some(c) = clear_high {
                    finite(*c, "clear_high")?;
                }
                if op.is_band() != clear_high.is_some() && clear.is_some() {
                    return Err("a band's clear level takes clear and clear_high; others only clear".into());
                }
            }
            RuleKind::NoData { metric, after_secs, .. } => {
                if let Some(m) = metric {
                    valid_name(m).map_err(|e| format!("metric: {e}"))?;
                }
                timer(*after_secs)?;
            }
            RuleKind::Offline { after_secs, .. } => timer(*after_secs)?,
            RuleKind::Overdue { intervals, .. } => {
                if !(1..=MAX_INTERVALS).contains(intervals) {
                    return Err(format!("intervals: 1 to {MAX_INTERVALS}"));
                }
            }
            RuleKind::RebootLoop { count, window_secs, .. } => {
                if !(2..=MAX_REBOOTS).contains(count) {
                    return Err(format!("count: 2 to {MAX_REBOOTS} reboots"));
                }
                if !(60..=MAX_TIMER_SECS).contains(window_secs) {
                    return Err(format!("window_secs: 60 to {MAX_TIMER_SECS}"));
                }
            }
            RuleKind::FirmwareDrift { tag, .. } => {
                if let Some(tag) = tag
                    && !crate::tags::valid_key(tag)
                {
                    return Err("tag: a tag key ([A-Za-z0-9_.-], 1 to 64 characters)".into());
                }
            }
        }
        Ok(())
    }

    /// The metric a threshold or no-data rule reads, if one.
    pub fn metric(&self) -> Option<&str> {
        match &self.kind {
            RuleKind::Threshold { metric, .. } => Some(metric),
            RuleKind::NoData { metric, .. } => metric.as_deref(),
            RuleKind::Offline { .. }
            | RuleKind::Overdue { .. }
            | RuleKind::RebootLoop { .. }
            | RuleKind::FirmwareDrift { .. } => None,
        }
    }
}

fn finite(v: f64, what: &str) -> Result<(), String> {
    if v.is_finite() { Ok(()) } else { Err(format!("{what}: a finite number")) }
}

fn timer(secs: u64) -> Result<(), String> {
    if (1..=MAX_TIMER_SECS).contains(&secs) {
        Ok(())
    } else {
        Err(format!("after_secs: 1 to {MAX_TIMER_SECS}"))
    }
}

/// An alarm: one rule's finding about one device, from when it opened until it is cleared and
/// acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    pub id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub device: String,
    pub severity: Severity,
    /// Active until cleared (by readings or by hand).
    pub active: bool,
    pub acked: bool,
    pub started_at: Millis,
    #[serde(default)]
    pub cleared_at: Option<Millis>,
    #[serde(default)]
    pub acked_at: Option<Millis>,
    #[serde(default)]
    pub acked_by: Option<String>,
    /// Notifications and the badge leave it alone until then.
    #[serde(default)]
    pub shelved_until: Option<Millis>,
    /// The reading that opened it (threshold rules).
    #[serde(default)]
    pub value: Option<f64>,
    /// The latest reading that breached.
    #[serde(default)]
    pub last_value: Option<f64>,
    #[serde(default)]
    pub last_breach_at: Option<Millis>,
    /// Times it opened (reopened within the flap window counts again).
    pub opened: u32,
    pub flapping: bool,
    /// When the next reminder is due, while it is active and unacknowledged.
    #[serde(default)]
    pub remind_at: Option<Millis>,
    #[serde(default)]
    pub comments: u32,
    /// The latest change's sequence number in the change log.
    #[serde(default)]
    pub seq: u64,
}

impl Alarm {
    /// An alarm opening at `now` for a rule on a device, with the reading that opened it
    /// (threshold rules): active, unacknowledged, opened once.
    pub fn new(
        id: String,
        rule_id: &str,
        rule_name: &str,
        device: &str,
        severity: Severity,
        value: Option<f64>,
        now: Millis,
    ) -> Alarm {
        Alarm {
            id,
            rule_id: rule_id.to_owned(),
            rule_name: rule_name.to_owned(),
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

    pub fn status(&self) -> AlarmStatus {
        match (self.active, self.acked) {
            (true, false) => AlarmStatus::ActiveUnack,
            (true, true) => AlarmStatus::ActiveAck,
            (false, false) => AlarmStatus::ClearedUnack,
            (false, true) => AlarmStatus::ClearedAck,
        }
    }

    /// Whether it is shelved at `now`.
    pub fn shelved(&self, now: Millis) -> bool {
        self.shelved_until.is_some_and(|t| t > now)
    }

    /// When it stopped being active: `None` while it is. (An alarm reopened within its flap
    /// window is one span from its first start.)
    pub fn end(&self) -> Option<Millis> {
        if self.active { None } else { Some(self.cleared_at.unwrap_or(self.started_at)) }
    }
}

/// ThingsBoard's four statuses: whether it is active, and whether someone acknowledged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmStatus {
    ActiveUnack,
    ActiveAck,
    ClearedUnack,
    ClearedAck,
}

impl AlarmStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmStatus::ActiveUnack => "ACTIVE_UNACK",
            AlarmStatus::ActiveAck => "ACTIVE_ACK",
            AlarmStatus::ClearedUnack => "CLEARED_UNACK",
            AlarmStatus::ClearedAck => "CLEARED_ACK",
        }
    }
}

/// One entry of an alarm's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    Fired,
    Reopened,
    Escalated,
    Deescalated,
    Cleared,
    Acked,
    Shelved,
    Unshelved,
    Flapping,
    Stable,
    Reminder,
    Commented,
}

impl TransitionKind {
    /// The webhook event name: `alarm.fired`, …
    pub fn event(self) -> &'static str {
        match self {
            TransitionKind::Fired => "alarm.fired",
            TransitionKind::Reopened => "alarm.reopened",
            TransitionKind::Escalated => "alarm.escalated",
            TransitionKind::Deescalated => "alarm.deescalated",
            TransitionKind::Cleared => "alarm.cleared",
            TransitionKind::Acked => "alarm.acked",
            TransitionKind::Shelved => "alarm.shelved",
            TransitionKind::Unshelved => "alarm.unshelved",
            TransitionKind::Flapping => "alarm.flapping",
            TransitionKind::Stable => "alarm.stable",
            TransitionKind::Reminder => "alarm.reminder",
            TransitionKind::Commented => "alarm.commented",
        }
    }
}

/// An entry of an alarm's log: what happened, when, by whom, with which reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub alarm_id: String,
    pub kind: TransitionKind,
    pub at: Millis,
    pub severity: Severity,
    #[serde(default)]
    pub value: Option<f64>,
    /// The user, for acks, shelves, comments and manual clears.
    #[serde(default)]
    pub by: Option<String>,
    /// A comment's text.
    #[serde(default)]
    pub text: Option<String>,
}

/// What a person does to an alarm (the API's bodies: `{"action": "shelve", "hours": 8}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AlarmAction {
    Ack,
    Clear,
    /// For 1, 8 or 24 hours.
    Shelve {
        hours: u32,
    },
    Unshelve,
    Comment {
        text: String,
    },
}

impl AlarmAction {
    /// Checks what was sent.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            AlarmAction::Shelve { hours } if !matches!(hours, 1 | 8 | 24) => {
                Err("shelve for 1, 8 or 24 hours".into())
            }
            AlarmAction::Comment { text } if text.trim().is_empty() || text.chars().count() > MAX_COMMENT => {
                Err(format!("a comment is 1 to {MAX_COMMENT} characters"))
            }
            _ => Ok(()),
        }
    }
}

/// Which alarms a list shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusFilter {
    /// Active (acknowledged or not).
    #[default]
    Active,
    /// Active and not acknowledged: what needs someone.
    ActiveUnack,
    /// Not acknowledged, active or cleared.
    Unacked,
    Cleared,
    All,
}

impl StatusFilter {
    pub fn admits(self, alarm: &Alarm) -> bool {
        match self {
            StatusFilter::Active => alarm.active,
            StatusFilter::ActiveUnack => alarm.active && !alarm.acked,
            StatusFilter::Unacked => !alarm.acked,
            StatusFilter::Cleared => !alarm.active,
            StatusFilter::All => true,
        }
    }
}

/// A list of alarms: filters, newest first, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlarmQuery {
    #[serde(default)]
    pub status: StatusFilter,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
    /// Only alarms active at some time from `from` to `to` (either end open): started by
    /// `to` and, if cleared, cleared at or after `from` (a chart's range, to shade it).
    #[serde(default)]
    pub from: Option<Millis>,
    #[serde(default)]
    pub to: Option<Millis>,
}

/// Most alarms one list answers.
pub const MAX_LIST: usize = 500;

impl AlarmQuery {
    pub fn admits(&self, alarm: &Alarm) -> bool {
        self.status.admits(alarm)
            && self.severity.is_none_or(|s| s == alarm.severity)
            && self.device.as_ref().is_none_or(|d| *d == alarm.device)
            && self.rule.as_ref().is_none_or(|r| *r == alarm.rule_id)
            && self.to.is_none_or(|to| alarm.started_at <= to)
            && self.from.is_none_or(|from| alarm.end().is_none_or(|end| end >= from))
    }

    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(MAX_LIST).clamp(1, MAX_LIST)
    }
}

/// An alarm with its log, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmDetail {
    pub alarm: Alarm,
    pub log: Vec<Transition>,
}

/// The longest history a backtest reads.
pub const MAX_BACKTEST_SECS: u64 = 7 * 86_400;
/// Most episodes a backtest lists (it still counts them all).
pub const MAX_BACKTEST_EPISODES: usize = 200;
/// Most devices one backtest replays (a rule over every device replays the first, by id).
pub const MAX_BACKTEST_DEVICES: usize = 1000;
/// Most readings one backtest replays (a week of one reading a second is 604,800): the
/// devices after the one that reaches it are left out.
pub const MAX_BACKTEST_READINGS: u64 = 5_000_000;

/// One alarm a rule would have opened, as a backtest found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    pub device: String,
    /// The highest severity it reached.
    pub severity: Severity,
    pub fired_at: Millis,
    /// `None`: still active at the end of the window.
    pub cleared_at: Option<Millis>,
    pub value: Option<f64>,
}

/// What a rule would have done over stored history: the alarms it would have opened and the
/// notifications they would have sent, so a threshold that flaps shows before it is saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backtest {
    pub from: Millis,
    pub to: Millis,
    pub devices: u32,
    /// Readings evaluated.
    pub readings: u64,
    /// Alarms opened (all of them, also beyond the listed episodes).
    pub opened: u32,
    /// Changes that would have been told to the rule's channels (fired, cleared, escalations,
    /// flapping and stable; each to every channel), as the live engine tells them: a flapping
    /// alarm's openings and clearings are not.
    pub notifications: u32,
    /// Newest last, at most [`MAX_BACKTEST_EPISODES`].
    pub episodes: Vec<Episode>,
    /// Set when the answer covers less than was asked, saying what was left out (devices
    /// beyond [`MAX_BACKTEST_DEVICES`], or after [`MAX_BACKTEST_READINGS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited: Option<String>,
}

/// Why an alarm request was refused; every message is safe to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmError {
    NotFound,
    /// What was sent is wrong (the text says how).
    Invalid(String),
    /// It conflicts with the state (already acknowledged, too many rules).
    Conflict(String),
    Storage,
}

impl fmt::Display for AlarmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlarmError::NotFound => f.write_str("not found"),
            AlarmError::Invalid(why) | AlarmError::Conflict(why) => f.write_str(why),
            AlarmError::Storage => f.write_str("storage is unavailable; try again shortly"),
        }
    }
}

impl std::error::Error for AlarmError {}

/// Alarms, rules and notifications as the dashboard and the API manage them. Reads answer
/// what is stored; changes go through the server's single writer, so they are ordered with
/// the readings that open and clear alarms.
pub trait AlarmDesk: Send + Sync {
    fn alarms(&self, query: &AlarmQuery) -> Result<Vec<Alarm>, AlarmError>;
    /// How many alarms are active, per device (devices without any left out).
    fn open_counts(&self) -> Result<std::collections::HashMap<String, u32>, AlarmError>;
    fn alarm(&self, id: &str) -> Result<AlarmDetail, AlarmError>;
    /// `by` (an admin) acts on an alarm; answers it as it is now.
    fn act(&self, id: &str, action: AlarmAction, by: &str) -> Result<Alarm, AlarmError>;
    fn rules(&self) -> Result<Vec<Rule>, AlarmError>;
    /// Creates (an empty `id`) or replaces a rule; answers it as stored.
    fn save_rule(&self, rule: Rule) -> Result<Rule, AlarmError>;
    fn delete_rule(&self, id: &str) -> Result<(), AlarmError>;
    fn channels(&self) -> Result<Vec<crate::notify::ChannelInfo>, AlarmError>;
    /// Creates a channel; answers it, and a webhook's signing secret (shown once).
    fn create_channel(
        &self,
        channel: crate::notify::NewChannel,
    ) -> Result<(crate::notify::ChannelInfo, Option<String>), AlarmError>;
    fn delete_channel(&self, id: &str) -> Result<(), AlarmError>;
    /// Sends a test notice to a channel (as a delivery, listed like the others).
    fn test_channel(&self, id: &str) -> Result<(), AlarmError>;
    /// Notifications, newest first.
    fn deliveries(&self, limit: usize) -> Result<Vec<crate::notify::Delivery>, AlarmError>;
    /// Sends a failed (or suppressed) notification again.
    fn resend(&self, id: &str) -> Result<(), AlarmError>;
    /// What `rule` (saved or not) would have done over the last `window_secs` of stored
    /// history (at most [`MAX_BACKTEST_SECS`]).
    fn backtest(&self, rule: &Rule, window_secs: u64) -> Result<Backtest, AlarmError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threshold(op: Op, levels: &[(Severity, f64)]) -> Rule {
        serde_json::from_value(serde_json::json!({
            "name": "hot", "kind": "threshold", "metric": "temperature", "op": op.as_str(),
            "levels": levels.iter().map(|(s, v)| serde_json::json!({"severity": s, "value": v})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    #[test]
    fn the_api_shape_reads_and_validates() {
        let rule: Rule = serde_json::from_str(
            r#"{"name": "hot", "devices": ["ESP32_SIM_01"], "kind": "threshold", "metric": "temperature",
                "op": ">", "levels": [{"severity": "critical", "value": 30}], "clear": 28, "for_secs": 30,
                "clear_for_secs": 60, "channels": ["ops"]}"#,
        )
        .unwrap();
        assert_eq!(rule.validate(), Ok(()));
        assert!(rule.enabled && rule.watches("ESP32_SIM_01") && !rule.watches("other"));
        assert_eq!(rule.flap_window_secs, 1800);
        let offline: Rule =
            serde_json::from_str(r#"{"name": "gone", "kind": "offline", "after_secs": 120}"#).unwrap();
        assert_eq!(offline.validate(), Ok(()));
        assert!(offline.watches("anything"));
        assert_eq!(offline.kind, RuleKind::Offline { after_secs: 120, severity: Severity::Major });
    }

    #[test]
    fn bad_rules_say_why() {
        let mut r = threshold(Op::Gt, &[(Severity::Warning, 30.0), (Severity::Warning, 35.0)]);
        assert!(r.validate().unwrap_err().contains("twice"));
        r = threshold(Op::Outside, &[(Severity::Major, 10.0)]);
        assert!(r.validate().unwrap_err().contains("high"));
        r = threshold(Op::Gt, &[(Severity::Major, 1.0)]);
        if let RuleKind::Threshold { levels, .. } = &mut r.kind {
            levels[0].value = f64::NAN;
        }
        assert!(r.validate().is_err());
        r = threshold(Op::Gt, &[(Severity::Major, 1.0)]);
        r.for_secs = MAX_TIMER_SECS + 1;
        assert!(r.validate().unwrap_err().contains("for_secs"));
        r.for_secs = 0;
        r.devices = vec!["a/b".into()];
        assert!(r.validate().is_err());
        r.devices = vec![];
        r.name = "x".repeat(101);
        assert!(r.validate().is_err());
    }

    #[test]
    fn ops_and_bands() {
        assert!(Op::Gt.breaches(31.0, 30.0, 0.0) && !Op::Gt.breaches(30.0, 30.0, 0.0));
        assert!(Op::Ge.breaches(30.0, 30.0, 0.0));
        assert!(Op::Lt.breaches(1.0, 2.0, 0.0) && Op::Le.breaches(2.0, 2.0, 0.0));
        assert!(Op::Outside.breaches(9.0, 10.0, 20.0) && Op::Outside.breaches(21.0, 10.0, 20.0));
        assert!(!Op::Outside.breaches(15.0, 10.0, 20.0));
        assert!(Op::Inside.breaches(10.0, 10.0, 20.0) && !Op::Inside.breaches(21.0, 10.0, 20.0));
        let status = Alarm {
            shelved_until: Some(10),
            ..Alarm::new("a".into(), "r", "r", "d", Severity::Major, None, 0)
        };
        assert_eq!(status.status(), AlarmStatus::ActiveUnack);
        assert!(status.shelved(5) && !status.shelved(10));
    }

    #[test]
    fn a_time_range_admits_the_alarms_active_in_it() {
        let mut alarm: Alarm = serde_json::from_value(serde_json::json!({
            "id": "a", "rule_id": "r", "rule_name": "r", "device": "d", "severity": "major",
            "active": false, "acked": false, "started_at": 100, "cleared_at": 200, "opened": 1,
            "flapping": false,
        }))
        .unwrap();
        let between = |from, to| AlarmQuery {
            status: StatusFilter::All,
            from: Some(from),
            to: Some(to),
            ..AlarmQuery::default()
        };
        assert_eq!(alarm.end(), Some(200));
        for (from, to, admitted) in
            [(0, 99, false), (0, 100, true), (150, 160, true), (200, 300, true), (201, 300, false)]
        {
            assert_eq!(between(from, to).admits(&alarm), admitted, "{from}..{to}");
        }
        assert!(AlarmQuery { to: None, ..between(150, 0) }.admits(&alarm), "open-ended");
        alarm.active = true;
        alarm.cleared_at = None;
        assert_eq!(alarm.end(), None);
        assert!(between(10_000, 20_000).admits(&alarm), "still active: it reaches every later range");
        assert!(!between(0, 99).admits(&alarm));
        // The API's address: /api/alarms?status=all&from=…&to=…
        let query: AlarmQuery = serde_json::from_value(serde_json::json!({"from": 1, "to": 2})).unwrap();
        assert_eq!((query.from, query.to), (Some(1), Some(2)));
    }
}
