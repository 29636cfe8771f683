//! What [`crate::ingest::Ingest::command_changes`] carries.

use std::sync::Arc;

use telemetry::command::Command;

/// A command as a commit left it, with that change's number in the change log (so a reader
/// of the log can tell what it already read from what it has not).
#[derive(Debug, Clone)]
pub struct CommandChange {
    pub seq: u64,
    pub command: Arc<Command>,
}
