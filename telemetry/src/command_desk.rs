//! Commands as the dashboard's pages make, cancel and list them: the server carries them out
//! (its commands service, the same one its JSON API uses); the pages' server functions reach
//! it through this trait, as they reach alarms through [`crate::alarm::AlarmDesk`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::command::{Command, NewCommand};

/// Why a command request was not done; every message is safe to show.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandDeskError {
    /// No such device (it never reported and has no key) or command.
    NotFound(String),
    /// A bad method, params, time to live or timeout (422).
    Invalid(String),
    /// Params over [`crate::command::MAX_PARAMS_BYTES`] (413).
    TooLarge(String),
    /// The device (or the server) has its maximum of unfinished commands (429).
    TooMany(String),
    /// The command's state does not take it: canceling a finished one (409).
    Conflict(String),
    /// A desired-state change made against a version that is no longer current (412).
    Stale(String),
    Storage,
}

impl fmt::Display for CommandDeskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandDeskError::NotFound(why)
            | CommandDeskError::Invalid(why)
            | CommandDeskError::TooLarge(why)
            | CommandDeskError::TooMany(why)
            | CommandDeskError::Conflict(why)
            | CommandDeskError::Stale(why) => f.write_str(why),
            CommandDeskError::Storage => f.write_str("storage is unavailable; try again shortly"),
        }
    }
}

/// An answer still to come (the writer stores each change before it is answered).
pub type DeskAnswer<T> = Pin<Box<dyn Future<Output = Result<T, CommandDeskError>> + Send>>;

pub trait CommandDesk: Send + Sync {
    /// A device's commands, newest first, at most `limit`, made before command `before` if
    /// given (a page further back).
    fn list(&self, device: String, before: Option<String>, limit: usize) -> DeskAnswer<Vec<Command>>;
    /// A new command for `device`, made by `by`: QUEUED, or further if the device took it at once.
    fn create(&self, device: String, new: NewCommand, by: String) -> DeskAnswer<Command>;
    /// Cancels an unfinished command.
    fn cancel(&self, device: String, id: String, by: String) -> DeskAnswer<Command>;
}
