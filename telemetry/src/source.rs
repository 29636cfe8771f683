//! The read side the dashboard's server functions use. The server's store implements it;
//! the UI sees only this trait, so pages do not depend on how history is kept.

use std::fmt;

use crate::Millis;
use crate::device::DeviceSummary;
use crate::history::History;

pub trait TelemetrySource: Send + Sync {
    /// Every known device, sorted by id.
    fn devices(&self) -> Result<Vec<DeviceSummary>, SourceError>;
    /// One device, if known.
    fn device(&self, id: &str) -> Result<Option<DeviceSummary>, SourceError>;
    /// One metric's downsampled history over `[from, to]`, at most `max_points` buckets.
    fn history(
        &self,
        device: &str,
        metric: &str,
        from: Millis,
        to: Millis,
        max_points: usize,
    ) -> Result<History, SourceError>;
}

/// A storage failure, already logged where it happened; the message is safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError(pub String);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceError {}
