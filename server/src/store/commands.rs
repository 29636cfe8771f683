//! Commands to devices as the store keeps them ([`CommandStore`]): each command's record,
//! which of them are unfinished, and each device's counter that gives commands their ids. A
//! transition is stored with its numbered change (the live feed's and the change log's
//! [`telemetry::LiveEvent::Command`]) in one transaction, so what the API answers and the
//! feed shows survives a kill -9. Only the writer ([`crate::ingest`]) changes them, in order
//! with every other change.

use telemetry::Millis;
use telemetry::command::{Checked, Command, CommandEvent, Illegal};

use super::error::StoreError;
use super::outcome::CommitOutcome;

/// Most finished commands kept per device: older ones go as new ones come.
pub const MAX_HISTORY_PER_DEVICE: u64 = 1000;

/// One change asked of the commands.
#[derive(Debug, Clone)]
pub enum CommandOp {
    /// A new command for `device`, QUEUED; its id comes from the device's counter.
    Create { device: String, checked: Checked, by: String, observable: bool },
    /// Something happened to command `id` of `device`.
    Event { device: String, id: String, event: CommandEvent },
}

/// Why an op was not done (the others in the same call are).
#[derive(Debug, Clone, PartialEq)]
pub enum CommandRefusal {
    NotFound,
    /// The device has its maximum of unfinished commands.
    TooMany(usize),
    /// The server has its maximum of unfinished commands.
    Full(usize),
    Illegal(Illegal),
}

impl std::fmt::Display for CommandRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandRefusal::NotFound => f.write_str("no such command"),
            CommandRefusal::TooMany(n) => write!(f, "the device already has {n} unfinished commands"),
            CommandRefusal::Full(n) => write!(f, "the server already has {n} unfinished commands"),
            CommandRefusal::Illegal(why) => why.fmt(f),
        }
    }
}

/// What [`CommandStore::apply_commands`] did.
#[derive(Debug, Clone, Default)]
pub struct CommandsApplied {
    /// Per op, in order: the command as it is now, or why the op was refused.
    pub answers: Vec<Result<Command, CommandRefusal>>,
    /// The commands that changed, as they are now, in order of their changes.
    pub changed: Vec<Command>,
    /// Their numbered changes, for the live feed.
    pub outcome: CommitOutcome,
}

pub trait CommandStore: Send + Sync {
    /// Applies the ops in order, in one durable transaction with their changes in the change
    /// log (nothing is written when none changes anything).
    fn apply_commands(&self, ops: &[CommandOp], now: Millis) -> Result<CommandsApplied, StoreError>;
    /// Every unfinished command, each device's in the order they were made.
    fn open_commands(&self) -> Result<Vec<Command>, StoreError>;
    /// A device's commands, newest first, made before command `before` if given.
    fn commands_of(
        &self,
        device: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Command>, StoreError>;
    fn command(&self, device: &str, id: &str) -> Result<Option<Command>, StoreError>;
}
