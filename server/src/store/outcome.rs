//! What one commit did: what the writer reports, counts and broadcasts afterwards. A leaf, so
//! that every kind of commit (readings, tags, commands) can answer with it.

use telemetry::LiveEvent;

/// What one commit did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitOutcome {
    /// Readings newly stored.
    pub stored: u64,
    /// Readings that were already stored (same device, metric and time) and left as they were.
    pub duplicates: u64,
    /// Messages that stored something new.
    pub fresh_messages: u64,
    /// Last wills from an older session than the device's latest, ignored.
    pub stale_wills: u64,
    /// The changes this commit made, numbered, in order: what live clients are sent.
    pub events: Vec<LiveEvent>,
    /// `events` as the JSON written to the change log, which is also what goes on the wire.
    pub wire: Vec<String>,
    /// Connections logged or ended by this commit, as the log now holds them (not numbered:
    /// the connection log is no change to a device, so not in the change log).
    pub connections: Vec<(String, telemetry::connections::Connection)>,
}
