//! Server functions for the dashboards' controls (switch, button, number, select): what a
//! control starts from, and operating one. Everyone signed in reads; admins (and anyone while
//! the dashboard is open) operate, as with commands, and the server checks the value against
//! the control as stored on its dashboard ([`telemetry::control_desk::ControlDesk`]).

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};
use telemetry::control_desk::{ControlSeed, Operated};

use super::codec::JsonText;
use super::error::ApiError;
#[cfg(feature = "ssr")]
use super::ssr;

/// What a control starts from: the device's state and whether this user may operate it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlStart {
    pub seed: ControlSeed,
    pub can_act: bool,
}

/// A control's device: its desired and reported state, and for a command binding (`method`)
/// its latest command of that method and the latest that succeeded.
#[server(prefix = "/api", endpoint = "control_state", input = GetUrl, output = JsonText)]
pub async fn control_state(
    device: String,
    #[server(default)] method: Option<String>,
) -> Result<ControlStart, ApiError> {
    ssr::signed_in()?;
    let can_act = ssr::may_command();
    let seed = ssr::controls()?.seed(device, method).await?;
    Ok(ControlStart { seed, can_act })
}

/// Operates control `widget` of dashboard `dashboard` with `value` (JSON: `true`, `30`,
/// `"eco"`; a button's is not read). Answers the command made or the desired state as
/// changed; the device confirms later, on the live feed.
#[server(prefix = "/api", endpoint = "control/operate", output = JsonText)]
pub async fn operate_control(dashboard: String, widget: String, value: String) -> Result<Operated, ApiError> {
    let by = ssr::control_actor()?;
    if value.len() > telemetry::control::MAX_VALUE_BYTES {
        return Err(ApiError::TooLarge(format!(
            "a value is at most {} bytes",
            telemetry::control::MAX_VALUE_BYTES
        )));
    }
    let value: serde_json::Value = serde_json::from_str(&value)
        .map_err(|e| ApiError::BadRequest(format!("the value is not JSON: {e}")))?;
    Ok(ssr::controls()?.operate(dashboard, widget, value, by).await?)
}
