//! Server functions for the admin page's device keys: which devices have one, issuing a key
//! (shown once, in the answer) and revoking one. Admins only.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use telemetry::{IssuedKey, RefusedId};

use super::codec::JsonText;
use super::error::ApiError;
#[cfg(feature = "ssr")]
use super::ssr;

/// The devices that have a key, by id.
#[server(prefix = "/api", endpoint = "admin/device_keys", input = GetUrl, output = JsonText)]
pub async fn list_device_keys() -> Result<Vec<String>, ApiError> {
    ssr::accounts(|a, _| a.device_keys()).await
}

/// Makes a key for `device`, replacing any it had. The key is in the answer and nowhere else,
/// so a plain form post (which the server answers with a redirect) is refused before any key
/// is replaced.
#[server(prefix = "/api", endpoint = "admin/device_keys/issue", output = JsonText)]
pub async fn issue_device_key(device: String) -> Result<IssuedKey, ApiError> {
    if ssr::plain_form_post() {
        ssr::signed_in_admin()?;
        return Err(ApiError::BadRequest("issuing a key needs JavaScript: the key is shown once".into()));
    }
    ssr::accounts(move |a, _| a.issue_device_key(device.trim())).await
}

/// Revokes a device's key, if `confirm` is "yes": it can no longer connect.
#[server(prefix = "/api", endpoint = "admin/device_keys/revoke", output = JsonText)]
pub async fn revoke_device_key(device: String, confirm: Option<String>) -> Result<(), ApiError> {
    if confirm.as_deref() != Some("yes") {
        ssr::signed_in_admin()?;
        return Err(ApiError::BadRequest("tick the box to confirm revoking the key".into()));
    }
    ssr::accounts(move |a, _| a.revoke_device_key(&device)).await
}

/// The last few ids the server refused and has never registered (connections without a key
/// or with a wrong one, mostly), newest first.
#[server(prefix = "/api", endpoint = "admin/refused", input = GetUrl, output = JsonText)]
pub async fn list_refused_ids() -> Result<Vec<RefusedId>, ApiError> {
    ssr::signed_in_admin()?;
    let refused = use_context::<std::sync::Arc<dyn telemetry::RefusedIds>>().ok_or(ApiError::Storage)?;
    Ok(refused.refused_ids())
}
