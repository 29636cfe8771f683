//! Alarms on the server: the engine that runs every rule for every device and opens, changes
//! and clears alarms ([`engine`]), the desk the dashboard and the API manage them through
//! ([`desk`]), rules and channels from the configuration file ([`provision`]), and backtests
//! of rules over stored history ([`backtest`]). Everything that
//! changes alarm state is done by the single writer ([`crate::ingest`]) as an [`AlarmJob`],
//! committed with the readings, tick or action that caused it, and notified through
//! [`crate::notify`].

pub mod backtest;
pub mod desk;
pub mod engine;
pub mod provision;

use telemetry::alarm::{Alarm, AlarmAction, AlarmError, Rule};
use tokio::sync::oneshot;

use crate::notify::channels::StoredChannel;

/// How often rules are evaluated on the clock.
pub const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// `[alarms]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsConfig {
    /// Offline and no-data rules open nothing this long after a start: devices that were
    /// connected reconnect in that time and page nobody.
    pub start_grace_secs: u64,
    /// Cleared and acknowledged alarms older than this many days are deleted (0: kept).
    pub retention_days: u64,
    /// `[[alarms.rules]]`: rules provisioned from the file ([`provision`]).
    #[serde(default)]
    pub rules: provision::Items,
}

/// A change to alarm state, done by the writer in order with the readings.
pub enum AlarmJob {
    /// The clock moved on.
    Tick,
    /// `by` acts on alarm `id`; answered with the alarm as it is then.
    Act {
        id: String,
        action: AlarmAction,
        by: String,
        reply: oneshot::Sender<Result<Alarm, AlarmError>>,
    },
    /// A rule created or replaced (its id and version already set).
    SaveRule(Rule, oneshot::Sender<Result<(), AlarmError>>),
    DeleteRule(String, oneshot::Sender<Result<(), AlarmError>>),
    SaveChannel(StoredChannel, oneshot::Sender<Result<(), AlarmError>>),
    DeleteChannel(String, oneshot::Sender<Result<(), AlarmError>>),
}

/// A device's presence, for offline, no-data and overdue rules on the clock.
pub fn presence(d: &telemetry::DeviceSummary) -> (String, engine::Presence) {
    let offline_since = d.status.filter(|s| !s.online && s.at >= d.last_seen).map(|s| s.at);
    let presence = engine::Presence {
        last_seen: d.last_seen,
        offline_since,
        stale_after: d.stale_after(),
        interval: d.interval.expected(),
    };
    (d.id.clone(), presence)
}
