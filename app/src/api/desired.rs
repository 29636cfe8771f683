//! Server functions for a device's desired state as the device page edits it: one key set to
//! a JSON value, or removed (a merge patch with `null`), made against the version the page
//! shows, so a change made meanwhile by someone else is refused (412), not overwritten.
//! Reading is [`super::control_state`]'s (the shadow, and whether this user may change it).
//! Admins (and anyone while the dashboard is open) change, as with `PATCH
//! /api/devices/{id}/desired`; every change is logged with who made it and the state before
//! and after.

use leptos::prelude::*;
use telemetry::desired::Shadow;

use super::codec::JsonText;
use super::error::ApiError;
#[cfg(feature = "ssr")]
use super::ssr;
#[cfg(feature = "ssr")]
use crate::logic::desired::EditRefusal;

/// Sets desired key `key` of `device` to `value` (JSON: `30`, `true`, `"eco"`, `{…}`), or
/// removes it if `remove` is given (a ticked box or a button: any value), against desired
/// version `version`. Answers the desired state as changed; 400 for a value that is not JSON
/// or a version that is not a number, 412 if the state changed meanwhile, 413 for a value over
/// 1 KiB, 422 for a bad key or no value.
#[server(prefix = "/api", endpoint = "device_desired/set", output = JsonText)]
pub async fn set_desired(
    device: String,
    key: String,
    #[server(default)] value: String,
    version: String,
    #[server(default)] remove: Option<String>,
) -> Result<Shadow, ApiError> {
    let by = ssr::desired_actor()?;
    let version: u64 = version
        .trim()
        .parse()
        .map_err(|_| ApiError::BadRequest("the version must be a whole number; reload the page".into()))?;
    let patch = crate::logic::desired::patch(&key, &value, remove.is_some()).map_err(|e| match e {
        EditRefusal::Invalid(why) => ApiError::Unprocessable(why),
        EditRefusal::TooLarge(why) => ApiError::TooLarge(why),
        EditRefusal::NotJson(why) => ApiError::BadRequest(why),
    })?;
    let answer = ssr::controls()?.patch_desired(device, patch, version, by).await;
    answer.map_err(|e| match ApiError::from(e) {
        ApiError::Stale(now) => ApiError::Stale(format!(
            "Changed meanwhile by someone else ({now}); reload the page to see it, then change it again"
        )),
        other => other,
    })
}
