//! The dashboard's controls ([`telemetry::control_desk::ControlDesk`]): a control is looked up
//! on its stored dashboard and the value checked against it (a switch takes a boolean, a
//! number its range, a select its options), then carried out through the same commands and
//! desired-state services as the API, with their limits and refusals. Every change is logged
//! with who made it and the device's state before and after. Who may act is the server
//! function's to check (admins, or anyone while the dashboard is open).

use serde_json::Value;
use telemetry::command::{Command, CommandStatus, Invalid};
use telemetry::command_desk::{CommandDeskError, DeskAnswer};
use telemetry::control::{Binding, ControlRequest};
use telemetry::control_desk::{ControlDesk, ControlSeed, Operated};
use telemetry::desired::Shadow;
use telemetry::text::untrusted;
use tracing::info;

use super::command_desk::{known, refused};
use crate::desired::DesiredFailure;
use crate::state::AppState;
use crate::store::DesiredRefusal;

/// Commands searched for a control's latest of its method (the newest kept).
const SEARCHED: usize = 200;

pub struct Controls(pub AppState);

fn desired_refused(e: DesiredFailure) -> CommandDeskError {
    match e {
        DesiredFailure::Storage => CommandDeskError::Storage,
        DesiredFailure::Refused(why @ DesiredRefusal::Stale { .. }) => {
            CommandDeskError::Stale(why.to_string())
        }
        DesiredFailure::Refused(why @ DesiredRefusal::Full(_)) => CommandDeskError::Conflict(why.to_string()),
        DesiredFailure::Refused(DesiredRefusal::Invalid(why)) if why.is_size() => {
            CommandDeskError::TooLarge(why.to_string())
        }
        DesiredFailure::Refused(why @ DesiredRefusal::Invalid(_)) => {
            CommandDeskError::Invalid(why.to_string())
        }
    }
}

async fn commands_of(state: &AppState, device: &str) -> Result<Vec<Command>, CommandDeskError> {
    state.commands.list(device, None, SEARCHED).await.map_err(refused)
}

async fn shadow_of(state: &AppState, device: &str) -> Result<Option<Shadow>, CommandDeskError> {
    state.commands.desired().read(device).await.map_err(desired_refused)
}

/// The device's state as a control bound so shows it: the reported value of a desired key;
/// for a command, the state metric's latest value, else the value the last command of the
/// method that succeeded sent.
async fn state_of(state: &AppState, device: &str, binding: &Binding) -> Result<Value, CommandDeskError> {
    match binding {
        Binding::Desired { key } => Ok(shadow_of(state, device)
            .await?
            .and_then(|s| s.reported)
            .and_then(|mut r| r.state.remove(key))
            .unwrap_or(Value::Null)),
        Binding::Command { method, key, metric } => {
            if let Some(metric) = metric {
                let (store, device, metric) = (state.store.clone(), device.to_owned(), metric.clone());
                let latest = tokio::task::spawn_blocking(move || {
                    store
                        .device(&device)
                        .ok()
                        .and_then(|d| d.value)
                        .and_then(|d| d.metric(&metric).map(|m| m.value))
                })
                .await
                .map_err(|_| CommandDeskError::Storage)?;
                return Ok(latest.map_or(Value::Null, telemetry::control::number));
            }
            let commands = commands_of(state, device).await?;
            let last = commands.iter().find(|c| &c.method == method && c.status == CommandStatus::Succeeded);
            Ok(last.and_then(|c| key.as_ref().and_then(|k| c.params.get(k)).cloned()).unwrap_or(Value::Null))
        }
    }
}

impl ControlDesk for Controls {
    fn seed(&self, device: String, method: Option<String>) -> DeskAnswer<ControlSeed> {
        let state = self.0.clone();
        Box::pin(async move {
            known(&state, &device).await?;
            let shadow = shadow_of(&state, &device).await?;
            let Some(method) = method else { return Ok(ControlSeed { shadow, ..ControlSeed::default() }) };
            let commands = commands_of(&state, &device).await?;
            let mut of_method = commands.into_iter().filter(|c| c.method == method);
            let last = of_method.next();
            let last_succeeded = match &last {
                Some(c) if c.status == CommandStatus::Succeeded => Some(c.clone()),
                _ => of_method.find(|c| c.status == CommandStatus::Succeeded),
            };
            Ok(ControlSeed { shadow, last, last_succeeded })
        })
    }

    fn operate(&self, dashboard: String, widget: String, value: Value, by: String) -> DeskAnswer<Operated> {
        let state = self.0.clone();
        Box::pin(async move {
            let store = state.store.clone();
            let board = dashboard.clone();
            let found = tokio::task::spawn_blocking(move || store.dashboard(&board))
                .await
                .map_err(|_| CommandDeskError::Storage)?
                .map_err(|_| CommandDeskError::Storage)?;
            let Some(board) = found else {
                return Err(CommandDeskError::NotFound("no such dashboard".into()));
            };
            let Some(control) = board.widgets.into_iter().find(|w| w.id == widget) else {
                return Err(CommandDeskError::NotFound("no such widget on this dashboard".into()));
            };
            let (device, request) =
                control.control_request(&value).map_err(|e| CommandDeskError::Invalid(e.to_string()))?;
            known(&state, &device).await?;
            let binding =
                control.control.as_ref().map(|c| c.binding.clone()).ok_or(CommandDeskError::Storage)?;
            let before = state_of(&state, &device, &binding).await?;
            let audit = |after: &Value, outcome: &str| {
                info!(
                    by = %untrusted(&by),
                    dashboard = %untrusted(&dashboard),
                    widget = %untrusted(&widget),
                    device = %device,
                    before = %untrusted(&before.to_string()),
                    after = %untrusted(&after.to_string()),
                    outcome,
                    "control operated"
                );
            };
            match request {
                ControlRequest::Command(new) => {
                    let after = Value::Object(
                        new.params.clone().and_then(|p| p.as_object().cloned()).unwrap_or_default(),
                    );
                    let checked = new.check().map_err(|why| match why {
                        Invalid::ParamsTooLarge(_) => CommandDeskError::TooLarge(why.to_string()),
                        _ => CommandDeskError::Invalid(why.to_string()),
                    })?;
                    let method = checked.method.clone();
                    let command = state.commands.create(&device, checked, &by).await.map_err(refused)?;
                    audit(&after, &format!("command {method} {}", command.id));
                    Ok(Operated::Command { command: Box::new(command) })
                }
                ControlRequest::Desired { key, value } => {
                    let patch = Value::Object(serde_json::Map::from_iter([(key.clone(), value.clone())]));
                    let shadow = state
                        .commands
                        .desired()
                        .patch(&device, patch, None, &by)
                        .await
                        .map_err(desired_refused)?;
                    audit(&serde_json::json!({ key: value }), &format!("desired v{}", shadow.v));
                    Ok(Operated::Desired { shadow: Box::new(shadow) })
                }
            }
        })
    }

    fn patch_desired(&self, device: String, patch: Value, if_match: u64, by: String) -> DeskAnswer<Shadow> {
        let state = self.0.clone();
        Box::pin(async move {
            known(&state, &device).await?;
            // Read at the version the change is made against, so `before` is exactly what it
            // replaced (the patch itself checks the version again, atomically).
            let current = shadow_of(&state, &device).await?.unwrap_or_else(|| Shadow::new(&device));
            if current.v != if_match {
                return Err(desired_refused(DesiredFailure::Refused(DesiredRefusal::Stale {
                    current: current.v,
                })));
            }
            let before = current.state;
            let desired = state.commands.desired();
            let shadow =
                desired.patch(&device, patch.clone(), Some(if_match), &by).await.map_err(desired_refused)?;
            let (before, after) =
                (Value::Object(before).to_string(), Value::Object(shadow.state.clone()).to_string());
            info!(
                by = %untrusted(&by),
                device = %device,
                patch = %untrusted(&patch.to_string()),
                before = %untrusted(&before),
                after = %untrusted(&after),
                v = shadow.v,
                "desired state edited"
            );
            Ok(shadow)
        })
    }
}
