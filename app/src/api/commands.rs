//! Server functions for a device's commands: its list (newest first), sending one and
//! canceling one. Everyone signed in reads; admins (and anyone while the dashboard is open)
//! send and cancel, as with the commands API (`/api/devices/{id}/commands`) over the same
//! service, with its limits and its refusals' statuses (404, 409, 413, 422, 429).

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};
use telemetry::command::Command;

use super::codec::JsonText;
use super::error::ApiError;
#[cfg(feature = "ssr")]
use super::ssr;

/// Commands the device page lists.
pub const COMMANDS_LISTED: usize = 50;

/// A page of a device's commands, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandPage {
    pub commands: Vec<Command>,
    /// The id to page back from for older ones, if there are any.
    pub older: Option<String>,
}

/// A device's latest [`COMMANDS_LISTED`] commands, newest first, or those made before command
/// `before`.
#[server(prefix = "/api", endpoint = "device_commands", input = GetUrl, output = JsonText)]
pub async fn list_commands(device: String, before: Option<String>) -> Result<CommandPage, ApiError> {
    ssr::signed_in()?;
    // One more than shown tells whether there are older ones.
    let mut commands = ssr::commands()?.list(device, before, COMMANDS_LISTED + 1).await?;
    let older = (commands.len() > COMMANDS_LISTED).then(|| {
        commands.truncate(COMMANDS_LISTED);
        commands.last().map(|c| c.id.clone())
    });
    Ok(CommandPage { commands, older: older.flatten() })
}

/// Sends `method` with `params` (a JSON object, or empty for none) to `device`, answered
/// within `timeout_secs` (empty: the default, 30 s) and given up unless finished within
/// `ttl_secs` (empty: the default, 1 h); `oneway` (a ticked box: any value) makes it done once
/// the device has it. Answers the command as made (QUEUED, or further if the device took it at
/// once).
#[server(prefix = "/api", endpoint = "device_commands/send", output = JsonText)]
pub async fn send_command(
    device: String,
    method: String,
    #[server(default)] params: String,
    #[server(default)] timeout_secs: String,
    #[server(default)] ttl_secs: String,
    #[server(default)] oneway: Option<String>,
) -> Result<Command, ApiError> {
    let by = ssr::command_actor()?;
    let new =
        crate::logic::commands::new_command(&method, &params, &timeout_secs, &ttl_secs, oneway.is_some())
            .map_err(ApiError::Unprocessable)?;
    Ok(ssr::commands()?.create(device, new, by).await?)
}

/// Cancels a device's unfinished command (409 once it has finished).
#[server(prefix = "/api", endpoint = "device_commands/cancel", output = JsonText)]
pub async fn cancel_command(device: String, id: String) -> Result<Command, ApiError> {
    let by = ssr::command_actor()?;
    Ok(ssr::commands()?.cancel(device, id, by).await?)
}
