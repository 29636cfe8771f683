//! Bulk commands as the store keeps them ([`BulkStore`]): one command per device, made in
//! slices, and the bulk's record of what was asked and which command each device got (or why
//! it got none). A slice's commands and their places in the bulk are stored in one
//! transaction, so a bulk never names a command that was not made, nor loses one that was.

use serde::{Deserialize, Serialize};
use telemetry::Millis;

use super::commands::{CommandOp, CommandsApplied};
use super::error::StoreError;

/// Bulks kept: the oldest goes (its record, not its commands) when a newer one is made.
pub const MAX_BULKS: usize = 100;

/// A bulk command as asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bulk {
    /// Given by the store when the bulk is made (as command ids are: base 32 of a counter).
    pub id: String,
    pub created_by: String,
    pub created_at: Millis,
    pub method: String,
    /// The fleet query the devices were chosen by, if they were not listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Devices asked for.
    pub requested: u32,
    /// Devices handled so far (a command made, or refused); `requested` once the bulk is
    /// complete. Less after a server stopped while making it: the rest were never made.
    pub handled: u32,
}

/// One device's place in a bulk: its command's id, or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkMember {
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub trait BulkStore: Send + Sync {
    /// Records `bulk` (its `id` and `handled` given here) as a new bulk, dropping the oldest
    /// beyond [`MAX_BULKS`]; answers it as stored.
    fn open_bulk(&self, bulk: &Bulk, now: Millis) -> Result<Bulk, StoreError>;
    /// Applies `ops` (the bulk's next devices' [`CommandOp::Create`]s) as
    /// [`super::CommandStore::apply_commands`] does, and records each device's command id or
    /// refusal in bulk `id`, in the same durable transaction. An unknown bulk answers `None`
    /// and nothing is made.
    fn add_to_bulk(
        &self,
        id: &str,
        ops: &[CommandOp],
        now: Millis,
    ) -> Result<Option<CommandsApplied>, StoreError>;
    /// A bulk and its devices, in the order they were handled.
    fn bulk(&self, id: &str) -> Result<Option<(Bulk, Vec<BulkMember>)>, StoreError>;
}
