//! What the store is to the rest of the server: the [`Store`] trait ingest writes through, its
//! companions (alarms, tags, groups) and what goes in and out of a commit.

use telemetry::{DashboardStore, DeviceAdmin, DeviceId, Message, Millis, TelemetrySource};

use super::bulks::BulkStore;
use super::commands::CommandStore;
use super::desired::DesiredStore;
use super::error::StoreError;
pub use super::outcome::CommitOutcome;
use super::retained::{RetainStore, RetainedChange};
use super::retention::Horizons;

/// An accepted message with the server time it arrived.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub message: Message,
    pub received: Millis,
}

/// A device's `online`/`offline` report.
#[derive(Debug, Clone)]
pub struct StatusReport {
    pub device: DeviceId,
    pub online: bool,
    pub at: Millis,
    /// The session counter it was numbered with, if any: an `offline` from an older session
    /// than the device's latest is a delayed last will, and is ignored.
    pub session: Option<u64>,
}

/// A device's attributes message, as received at `at`.
#[derive(Debug, Clone)]
pub struct AttributesReport {
    pub device: DeviceId,
    pub values: Vec<(String, telemetry::attributes::AttrValue)>,
    pub at: Millis,
}

/// A change in one of a device's connections to the embedded broker.
#[derive(Debug, Clone)]
pub struct ConnectionReport {
    pub device: DeviceId,
    /// The connection's number: the server time it was made (or refused), which the broker
    /// keeps unique.
    pub id: Millis,
    /// Server time of the change.
    pub at: Millis,
    pub change: ConnectionChange,
}

#[derive(Debug, Clone)]
pub enum ConnectionChange {
    Connected {
        address: Option<String>,
        protocol: u8,
    },
    Ended {
        address: Option<String>,
        protocol: u8,
        reason: telemetry::connections::Ended,
    },
    /// Its sign-in was refused.
    Refused {
        address: Option<String>,
        protocol: u8,
    },
}

/// What a device reports besides readings (and what the broker reports of its connections),
/// committed in order with them.
#[derive(Debug, Clone)]
pub enum Report {
    Status(StatusReport),
    Attributes(AttributesReport),
    Connection(ConnectionReport),
}

impl Report {
    pub fn device(&self) -> &DeviceId {
        match self {
            Report::Status(s) => &s.device,
            Report::Attributes(a) => &a.device,
            Report::Connection(c) => &c.device,
        }
    }
}

impl From<StatusReport> for Report {
    fn from(status: StatusReport) -> Report {
        Report::Status(status)
    }
}

pub trait Store:
    TelemetrySource
    + DashboardStore
    + DeviceAdmin
    + AlarmStore
    + TagStore
    + GroupStore
    + RetainStore
    + CommandStore
    + BulkStore
    + DesiredStore
{
    /// Stores a batch of messages and reports (statuses, attributes), with the device events
    /// they make (a firmware change, a reboot), what the alarm engine made of them (alarms,
    /// their logs, rule states, notifications) and the retained messages the batch sets and
    /// clears (in order), in one durable transaction: when this returns `Ok`, everything in it
    /// survives a crash, and otherwise none of it is stored. Idempotent per (device, metric,
    /// time).
    fn commit_retaining(
        &self,
        messages: &[Incoming],
        reports: &[Report],
        alarms: &crate::alarms::engine::Changes,
        retained: &[RetainedChange],
    ) -> Result<CommitOutcome, StoreError>;

    /// [`Store::commit_retaining`] with no retained messages.
    fn commit_with(
        &self,
        messages: &[Incoming],
        reports: &[Report],
        alarms: &crate::alarms::engine::Changes,
    ) -> Result<CommitOutcome, StoreError> {
        self.commit_retaining(messages, reports, alarms, &[])
    }

    /// [`Store::commit_with`] no alarm changes.
    fn commit(&self, messages: &[Incoming], reports: &[Report]) -> Result<CommitOutcome, StoreError> {
        self.commit_with(messages, reports, &crate::alarms::engine::Changes::default())
    }

    /// Every device the registry holds, registered or not (a status alone makes a record):
    /// what the device cap counts.
    fn known_devices(&self) -> Vec<telemetry::DeviceSummary>;

    /// Ends the connections the log still holds open, as server_stopped: at `at` when the
    /// server stops, or, as it starts (before the broker takes any), those a crash left open,
    /// at each device's last message (when it died is not known). Answers how many.
    fn end_connections(&self, at: Option<Millis>) -> Result<u64, StoreError>;

    /// Whether the database answers reads.
    fn healthy(&self) -> bool;

    /// Deletes what each level holds from before its horizon: raw readings and change-log
    /// entries, and minute and hour rollups of periods that ended by it. Readings still in
    /// the head are rolled up before they go.
    fn prune(&self, horizons: Horizons) -> Result<Pruned, StoreError>;

    /// Compresses readings older than `before` into sealed chunks; returns how many moved.
    fn seal(&self, before: Millis) -> Result<u64, StoreError>;

    /// Keeps only the latest `keep` entries of the change log; returns how many went.
    fn trim_changes(&self, keep: u64) -> Result<u64, StoreError>;
}

/// Devices' tags. Changed only by the writer ([`crate::ingest`]), which hands out every
/// change's number and broadcasts them in order.
pub trait TagStore: Send + Sync {
    /// Sets each device's whole set of tags, at server time `at`, durably: one numbered change
    /// per device whose tags differ (what live clients are sent); unknown devices are left out.
    fn put_tags(
        &self,
        tags: &[(String, telemetry::tags::Tags)],
        at: Millis,
    ) -> Result<CommitOutcome, StoreError>;
}

/// Groups (saved fleet queries), stored as given: the caller checks them
/// ([`crate::fleet::Fleet`]).
pub trait GroupStore: Send + Sync {
    /// Every group, by name.
    fn groups(&self) -> Result<Vec<telemetry::query::Group>, StoreError>;
    /// Creates or replaces the group with this id.
    fn put_group(&self, group: &telemetry::query::Group) -> Result<(), StoreError>;
    /// Whether there was one to delete.
    fn delete_group(&self, id: &str) -> Result<bool, StoreError>;
}

/// What the alarm engine starts from after a start.
#[derive(Debug, Clone, Default)]
pub struct AlarmState {
    pub rules: Vec<telemetry::alarm::Rule>,
    pub tracks: Vec<(crate::alarms::engine::TrackKey, telemetry::alarm::eval::Track)>,
    /// Active alarms, and cleared ones a rule's state may reopen.
    pub alarms: Vec<telemetry::alarm::Alarm>,
    /// Notification channel ids.
    pub channels: Vec<String>,
}

/// Log entries kept per alarm, in every store; a flapping alarm's oldest go first.
pub const MAX_ALARM_LOG: u64 = 500;
/// Deliveries kept once done (sent, failed, suppressed), in every store; the oldest go first.
pub const MAX_DONE_DELIVERIES: u64 = 10_000;

/// Alarms, rules, channels and notifications (their share of a commit is written by
/// [`Store::commit`]).
pub trait AlarmStore: Send + Sync {
    fn alarm_state(&self) -> Result<AlarmState, StoreError>;
    fn rules(&self) -> Result<Vec<telemetry::alarm::Rule>, StoreError>;
    fn rule_count(&self) -> Result<u64, StoreError>;
    /// Creates or replaces a rule.
    fn put_rule(&self, rule: &telemetry::alarm::Rule) -> Result<(), StoreError>;
    /// Deletes a rule and its states (its alarms stay in the history); false if none.
    fn delete_rule(&self, id: &str) -> Result<bool, StoreError>;
    fn channels(&self) -> Result<Vec<crate::notify::channels::StoredChannel>, StoreError>;
    fn put_channel(&self, channel: &crate::notify::channels::StoredChannel) -> Result<(), StoreError>;
    fn delete_channel(&self, id: &str) -> Result<bool, StoreError>;
    /// Alarms the query admits, newest first.
    fn alarms(
        &self,
        query: &telemetry::alarm::AlarmQuery,
    ) -> Result<Vec<telemetry::alarm::Alarm>, StoreError>;
    /// How many alarms are active, per device (only those with any): read from the active
    /// alarms alone, however long the history.
    fn open_alarm_counts(&self) -> Result<std::collections::HashMap<String, u32>, StoreError>;
    /// An alarm and its log.
    #[allow(clippy::type_complexity)]
    fn alarm(
        &self,
        id: &str,
    ) -> Result<Option<(telemetry::alarm::Alarm, Vec<telemetry::alarm::Transition>)>, StoreError>;
    /// Pending deliveries due at `now`, soonest first.
    fn due_deliveries(
        &self,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<telemetry::notify::Delivery>, StoreError>;
    /// When the next pending delivery is due.
    fn next_due(&self) -> Result<Option<Millis>, StoreError>;
    /// Stores deliveries' new states (and keeps the done ones to a bounded number).
    fn update_deliveries(&self, updates: &[telemetry::notify::Delivery]) -> Result<(), StoreError>;
    /// Deliveries, newest first.
    fn deliveries(&self, limit: usize) -> Result<Vec<telemetry::notify::Delivery>, StoreError>;
    fn delivery(&self, id: &str) -> Result<Option<telemetry::notify::Delivery>, StoreError>;
    /// Deletes alarms started before `before` that are cleared and acknowledged (with their
    /// logs); answers how many.
    fn prune_alarms(&self, before: Millis) -> Result<u64, StoreError>;
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub readings: u64,
    pub changes: u64,
    /// Rollup summaries (one per series and period, however many share a row).
    pub minute_rollups: u64,
    pub hour_rollups: u64,
}
