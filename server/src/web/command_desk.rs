//! The dashboard pages' way to commands ([`telemetry::command_desk::CommandDesk`]): the same
//! checks, limits and answers as [`super::commands_api`], for the device page's Commands
//! section. Who may act is the server function's to check (admins, or anyone while the
//! dashboard is open); the sign-in guard has already turned away everyone else.

use telemetry::command::{Command, Invalid, NewCommand};
use telemetry::command_desk::{CommandDesk, CommandDeskError, DeskAnswer};
use tracing::info;

use crate::commands::CommandsError;
use crate::state::AppState;
use crate::store::CommandRefusal;

/// Most commands a page lists.
const MAX_LIST: usize = 200;

pub struct Desk(pub AppState);

pub(super) fn refused(e: CommandsError) -> CommandDeskError {
    match e {
        CommandsError::Storage => CommandDeskError::Storage,
        CommandsError::Refused(why @ CommandRefusal::NotFound) => CommandDeskError::NotFound(why.to_string()),
        CommandsError::Refused(why @ (CommandRefusal::TooMany(_) | CommandRefusal::Full(_))) => {
            CommandDeskError::TooMany(why.to_string())
        }
        CommandsError::Refused(why @ CommandRefusal::Illegal(_)) => {
            CommandDeskError::Conflict(why.to_string())
        }
    }
}

pub(super) async fn known(state: &AppState, device: &str) -> Result<(), CommandDeskError> {
    match super::commands_api::device_known(state, device).await {
        true => Ok(()),
        false => Err(CommandDeskError::NotFound("no such device".into())),
    }
}

impl CommandDesk for Desk {
    fn list(&self, device: String, before: Option<String>, limit: usize) -> DeskAnswer<Vec<Command>> {
        let state = self.0.clone();
        Box::pin(async move {
            if before.as_deref().is_some_and(|b| !telemetry::command::valid_id(b)) {
                return Err(CommandDeskError::Invalid("before is a command id".into()));
            }
            known(&state, &device).await?;
            state.commands.list(&device, before, limit.clamp(1, MAX_LIST)).await.map_err(refused)
        })
    }

    fn create(&self, device: String, new: NewCommand, by: String) -> DeskAnswer<Command> {
        let state = self.0.clone();
        Box::pin(async move {
            let checked = new.check().map_err(|why| match why {
                Invalid::ParamsTooLarge(_) => CommandDeskError::TooLarge(why.to_string()),
                _ => CommandDeskError::Invalid(why.to_string()),
            })?;
            known(&state, &device).await?;
            let command = state.commands.create(&device, checked, &by).await.map_err(refused)?;
            info!(by, device = %device, command = %command.id, method = %command.method, "command created");
            Ok(command)
        })
    }

    fn cancel(&self, device: String, id: String, by: String) -> DeskAnswer<Command> {
        let state = self.0.clone();
        Box::pin(async move {
            known(&state, &device).await?;
            let command = state.commands.cancel(&device, &id, &by).await.map_err(refused)?;
            info!(by, device = %device, command = %command.id, "command canceled");
            Ok(command)
        })
    }
}
