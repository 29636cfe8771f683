//! Controls as the dashboard operates them: the server looks the widget up on its stored
//! dashboard, checks the value against it ([`crate::control`]), sends the command or patches
//! the desired state through the same services as the API, and records who did it with the
//! state before and after. The pages' server functions reach it through this trait.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::command::Command;
use crate::command_desk::DeskAnswer;
use crate::desired::Shadow;

/// What a control shows before the live feed says more: the device's shadow and, for a
/// command binding, the latest command of its method and the latest that succeeded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlSeed {
    pub shadow: Option<Shadow>,
    pub last: Option<Command>,
    pub last_succeeded: Option<Command>,
}

/// What operating a control started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Operated {
    /// The command made (QUEUED, or further if the device took it at once).
    Command { command: Box<Command> },
    /// The desired state as changed (its sync pending until the device reports).
    Desired { shadow: Box<Shadow> },
}

pub trait ControlDesk: Send + Sync {
    /// What a control of `device` shows; `method` for a command binding.
    fn seed(&self, device: String, method: Option<String>) -> DeskAnswer<ControlSeed>;
    /// Operates control `widget` of dashboard `dashboard` with `value`, as `by`.
    fn operate(&self, dashboard: String, widget: String, value: Value, by: String) -> DeskAnswer<Operated>;
    /// Applies a JSON merge `patch` to `device`'s desired state as `by`, if it is still at
    /// version `if_match` ([`crate::command_desk::CommandDeskError::Stale`] otherwise): the
    /// device page's edit.
    fn patch_desired(&self, device: String, patch: Value, if_match: u64, by: String) -> DeskAnswer<Shadow>;
}
