//! The read side the dashboard's server functions use. The server's store implements it;
//! the UI sees only this trait, so pages do not depend on how history is kept.

use std::fmt;

use crate::Millis;
use crate::dashboard::Dashboard;
use crate::device::DeviceSummary;
use crate::history::{History, LocalDays};
use crate::live::LiveEvent;

/// A value read together with the sequence number it is current to (one read transaction),
/// so a client can fetch exactly the changes after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Current<T> {
    pub value: T,
    pub last_seq: u64,
}

pub trait TelemetrySource: Send + Sync {
    /// Every known device, sorted by id.
    fn devices(&self) -> Result<Current<Vec<DeviceSummary>>, SourceError>;
    /// One device, if known.
    fn device(&self, id: &str) -> Result<Current<Option<DeviceSummary>>, SourceError>;
    /// One metric's downsampled history over `[from, to]`, at most `max_points` buckets;
    /// buckets of a day or more are UTC days.
    fn history(
        &self,
        device: &str,
        metric: &str,
        from: Millis,
        to: Millis,
        max_points: usize,
    ) -> Result<History, SourceError> {
        self.history_in(device, metric, from, to, max_points, None)
    }
    /// [`TelemetrySource::history`], with buckets of a day or more the viewer's local `days`
    /// if given (see [`crate::history::day_edges`]).
    fn history_in(
        &self,
        device: &str,
        metric: &str,
        from: Millis,
        to: Millis,
        max_points: usize,
        days: Option<&dyn LocalDays>,
    ) -> Result<History, SourceError>;
    /// Raw readings of one metric in `[from, to]`, oldest first, after time `after` if given,
    /// at most `limit` (for exports, page by page).
    fn points(
        &self,
        device: &str,
        metric: &str,
        from: Millis,
        to: Millis,
        after: Option<Millis>,
        limit: usize,
    ) -> Result<Vec<(Millis, f64)>, SourceError>;
    /// Stored changes (readings and statuses) with `seq > after`, oldest first, at most `limit`.
    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<LiveEvent>, SourceError>;
    /// The latest sequence number handed out (0 before the first change).
    fn last_seq(&self) -> Result<u64, SourceError>;
    /// What happened to one device lately (empty if unknown).
    fn device_log(&self, id: &str) -> Result<DeviceLog, SourceError>;
    /// Each of `ids`' share of `[from, to]` connected, from its connection log (`None`: no
    /// log covers it); for a page of rows, never the whole fleet.
    fn availability(&self, ids: &[String], from: Millis, to: Millis)
    -> Result<Vec<Option<f64>>, SourceError>;
}

/// What happened to one device lately, newest first: its events (firmware changes, reboots,
/// …), current to change `last_seq` (later ones come live), and its connections to the
/// embedded broker (none with an external broker).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeviceLog {
    pub last_seq: u64,
    pub events: Vec<crate::attributes::DeviceEvent>,
    #[serde(default)]
    pub connections: Vec<crate::connections::Connection>,
    /// Whether the server logs connections at all (its embedded broker does; with an external
    /// broker it sees only what devices publish).
    #[serde(default)]
    pub connections_logged: bool,
}

/// Dashboards, as the UI's server functions keep them.
pub trait DashboardStore: Send + Sync {
    /// Every dashboard, by name.
    fn dashboards(&self) -> Result<Vec<Dashboard>, SourceError>;
    fn dashboard(&self, id: &str) -> Result<Option<Dashboard>, SourceError>;
    /// Stores a new, validated dashboard under an id the store makes from its name (the id it
    /// came with is not used), stamping `updated`; returns it.
    fn create_dashboard(&self, dashboard: Dashboard) -> Result<Dashboard, SaveError>;
    /// Replaces a stored dashboard with a validated copy, if nobody saved it since that copy
    /// was loaded (its `updated` is the stored one's); stamps a newer `updated`; returns it.
    fn save_dashboard(&self, dashboard: Dashboard) -> Result<Dashboard, SaveError>;
    /// Whether there was one to delete.
    fn delete_dashboard(&self, id: &str) -> Result<bool, SourceError>;
}

/// Why a dashboard was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveError {
    /// No dashboard has this id (deleted meanwhile; new ones are created, not saved).
    NotFound,
    /// Someone saved it since this copy was loaded.
    Stale,
    /// The server keeps at most [`crate::dashboard::MAX_DASHBOARDS`].
    Full,
    Storage(SourceError),
}

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaveError::NotFound => f.write_str("this dashboard no longer exists"),
            SaveError::Stale => {
                f.write_str("this dashboard was changed elsewhere since you opened it: reload it")
            }
            SaveError::Full => {
                write!(f, "the server keeps at most {} dashboards", crate::dashboard::MAX_DASHBOARDS)
            }
            SaveError::Storage(e) => e.fmt(f),
        }
    }
}

impl From<SourceError> for SaveError {
    fn from(e: SourceError) -> SaveError {
        SaveError::Storage(e)
    }
}

/// What the user may change about devices.
pub trait DeviceAdmin: Send + Sync {
    /// Sets (or clears, with `None`) a device's display name and note; false if unknown.
    fn set_device_meta(
        &self,
        id: &str,
        name: Option<String>,
        note: Option<String>,
    ) -> Result<bool, SourceError>;
    /// Deletes a device and all its history; false if unknown.
    fn delete_device(&self, id: &str) -> Result<bool, SourceError>;
    /// Sets how often a device is expected to report (`None`: learn it from its readings),
    /// kept across restarts; false if unknown.
    fn set_expected_interval(&self, id: &str, interval: Option<Millis>) -> Result<bool, SourceError>;
}

/// A storage failure. Its cause is logged where it happened; this says only what kind of
/// failure it was, so its message is safe to show to anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceError {
    /// Storage is not answering for now (the database is being reopened after a failed write,
    /// or is closed): trying again later may work.
    Unavailable,
    /// Stored data did not read back as it was written.
    Corrupt,
    /// The disk failed a read or a write (full, say, or failing).
    Io,
    /// Any other storage failure.
    Failed,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceError::Unavailable => "storage is unavailable for the moment: try again shortly",
            SourceError::Corrupt => "stored data could not be read back",
            SourceError::Io => "storage could not read or write its disk",
            SourceError::Failed => "storage failed",
        })
    }
}

impl std::error::Error for SourceError {}
