//! Server-only helpers for the server function bodies (compiled with the `ssr` feature only).

use std::sync::Arc;

use leptos::prelude::use_context;
use telemetry::alarm::{AlarmDesk, AlarmError};
use telemetry::{
    AccountError, Accounts, DashboardStore, DeviceAdmin, Role, SaveError, SourceError, TelemetrySource,
};

use super::error::ApiError;

/// What the server provides as context for every request: telemetry to read ...
pub type Source = Arc<dyn TelemetrySource>;
/// ... dashboards to keep ...
pub type Dashboards = Arc<dyn DashboardStore>;
/// ... devices to rename or delete ...
pub type Admin = Arc<dyn DeviceAdmin>;
/// ... users and device keys ...
pub type Users = Arc<dyn Accounts>;
/// ... alarms, their rules and notification channels (calls may wait for the writer) ...
pub type Desk = Arc<dyn AlarmDesk>;
/// ... and the fleet: devices' tags (changes wait for the writer) and groups.
pub type Fleet = Arc<dyn telemetry::fleet::FleetAdmin>;

fn context<T: Clone + Send + Sync + 'static>() -> Result<T, ApiError> {
    use_context::<T>().ok_or(ApiError::Storage)
}

/// Runs a storage call off the async runtime.
async fn blocking<S: Send + 'static, T: Send + 'static>(
    store: S,
    f: impl FnOnce(S) -> Result<T, SourceError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || f(store))
        .await
        .map_err(|_| ApiError::Storage)?
        .map_err(|_| ApiError::Storage)
}

/// A telemetry read.
pub async fn read<T: Send + 'static>(
    f: impl FnOnce(Source) -> Result<T, SourceError> + Send + 'static,
) -> Result<T, ApiError> {
    blocking(context::<Source>()?, f).await
}

/// A change to a device.
pub async fn admin<T: Send + 'static>(
    f: impl FnOnce(Admin) -> Result<T, SourceError> + Send + 'static,
) -> Result<T, ApiError> {
    blocking(context::<Admin>()?, f).await
}

/// Storing a dashboard: its refusals answer 404 (gone) or 409 (changed since, or too
/// many dashboards).
pub async fn save<T: Send + 'static>(
    f: impl FnOnce(Dashboards) -> Result<T, SaveError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = context::<Dashboards>()?;
    match tokio::task::spawn_blocking(move || f(store)).await.map_err(|_| ApiError::Storage)? {
        Ok(value) => Ok(value),
        Err(e @ SaveError::NotFound) => Err(ApiError::NotFound(e.to_string())),
        Err(e @ (SaveError::Stale | SaveError::Full)) => Err(ApiError::Conflict(e.to_string())),
        Err(SaveError::Storage(_)) => Err(ApiError::Storage),
    }
}

/// A dashboard read or write.
pub async fn dashboards<T: Send + 'static>(
    f: impl FnOnce(Dashboards) -> Result<T, SourceError> + Send + 'static,
) -> Result<T, ApiError> {
    blocking(context::<Dashboards>()?, f).await
}

/// The request's headers and extensions.
fn parts() -> Result<http::request::Parts, ApiError> {
    context::<http::request::Parts>()
}

/// The signed-in admin making this request, or a 403 for anyone else (viewers, and
/// everyone while the dashboard is open without sign-in).
pub fn signed_in_admin() -> Result<String, ApiError> {
    let access = parts()?.extensions.get::<telemetry::Access>().cloned().unwrap_or_default();
    match access.user {
        Some(user) if user.role == Role::Admin => Ok(user.name),
        _ => {
            if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
                res.set_status(http::StatusCode::FORBIDDEN);
            }
            Err(ApiError::Forbidden("only admins can manage users and device keys".into()))
        }
    }
}

/// Whether this is a plain form post (no JavaScript), which the server answers with a
/// redirect back to the page.
pub fn plain_form_post() -> bool {
    parts().is_ok_and(|p| {
        p.headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
    })
}

/// A user or device key call, signed in as an admin and off the async runtime. A refusal
/// sends a plain form post back to `/admin?error=<code>`, where the page says why.
pub async fn accounts<T: Send + 'static>(
    f: impl FnOnce(Users, String) -> Result<T, AccountError> + Send + 'static,
) -> Result<T, ApiError> {
    let admin = signed_in_admin()?;
    let users = context::<Users>()?;
    let result = tokio::task::spawn_blocking(move || f(users, admin)).await.map_err(|_| ApiError::Storage)?;
    result.map_err(|e| {
        if plain_form_post() {
            leptos_axum::redirect(&format!("/admin?error={}", e.code()));
        }
        ApiError::BadRequest(e.to_string())
    })
}

/// Someone who may read: a signed-in user, or anyone while the dashboard is open. (The sign-in
/// guard sends everyone else away from pages and functions, but the header is rendered on the
/// sign-in pages too, and what it calls runs in that render.)
pub fn signed_in() -> Result<(), ApiError> {
    let access = parts()?.extensions.get::<telemetry::Access>().cloned().unwrap_or_default();
    if access.user.is_some() || access.open {
        Ok(())
    } else {
        Err(ApiError::Forbidden("sign in first".into()))
    }
}

/// Who is acting on alarms, rules or channels: an admin, or anyone while the dashboard is
/// open, as for the alarm API over the same desk (and as the sign-in guard lets post); named
/// as the alarm's log records them ("open" while the dashboard is open). A 403 for viewers.
pub fn alarm_actor() -> Result<String, ApiError> {
    let access = parts()?.extensions.get::<telemetry::Access>().cloned().unwrap_or_default();
    if access.can_change() {
        return Ok(access.user.map_or_else(|| "open".to_owned(), |u| u.name));
    }
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(http::StatusCode::FORBIDDEN);
    }
    Err(ApiError::Forbidden("only admins can act on alarms or change rules and channels".into()))
}

/// Who is making or canceling a command: an admin, or anyone while the dashboard is open (as
/// the commands API lets them); named as the command records it. A 403 for viewers.
pub fn command_actor() -> Result<String, ApiError> {
    let access = parts()?.extensions.get::<telemetry::Access>().cloned().unwrap_or_default();
    if access.can_change() {
        return Ok(access.user.map_or_else(|| "open".to_owned(), |u| u.name));
    }
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(http::StatusCode::FORBIDDEN);
    }
    Err(ApiError::Forbidden("only admins can send or cancel commands".into()))
}

/// Whether this request may make commands and operate controls ([`command_actor`] would
/// name someone), without answering 403.
pub fn may_command() -> bool {
    parts().is_ok_and(|p| p.extensions.get::<telemetry::Access>().is_some_and(|a| a.can_change()))
}

/// Who is operating a dashboard's control: as for commands ([`command_actor`]), with its own
/// word for viewers.
pub fn control_actor() -> Result<String, ApiError> {
    command_actor().map_err(|_| ApiError::Forbidden("Only admins can control devices".into()))
}

/// Who is changing a device's desired state on its page: as for commands
/// ([`command_actor`]), with its own word for viewers.
pub fn desired_actor() -> Result<String, ApiError> {
    command_actor().map_err(|_| ApiError::Forbidden("Only admins can change a device's desired state".into()))
}

/// The dashboards' controls.
pub fn controls() -> Result<Arc<dyn telemetry::control_desk::ControlDesk>, ApiError> {
    context()
}

/// The commands service.
pub fn commands() -> Result<Arc<dyn telemetry::command_desk::CommandDesk>, ApiError> {
    context()
}

/// An alarm desk read, off the async runtime.
pub async fn desk<T: Send + 'static>(
    f: impl FnOnce(Desk) -> Result<T, AlarmError> + Send + 'static,
) -> Result<T, ApiError> {
    let desk = context::<Desk>()?;
    tokio::task::spawn_blocking(move || f(desk)).await.map_err(|_| ApiError::Storage)?.map_err(ApiError::from)
}

/// An alarm desk change by whoever may make one ([`alarm_actor`], passed to `f`).
pub async fn desk_change<T: Send + 'static>(
    f: impl FnOnce(Desk, String) -> Result<T, AlarmError> + Send + 'static,
) -> Result<T, ApiError> {
    let by = alarm_actor()?;
    desk(move |d| f(d, by)).await
}

/// A tag edit, off the async runtime: a device that would hold too many tags is a 409.
pub async fn tags<T: Send + 'static>(
    f: impl FnOnce(Fleet) -> Result<T, telemetry::tags::TagEditError> + Send + 'static,
) -> Result<T, ApiError> {
    use telemetry::tags::{TagEditError, TagError};
    let fleet = context::<Fleet>()?;
    match tokio::task::spawn_blocking(move || f(fleet)).await.map_err(|_| ApiError::Storage)? {
        Ok(value) => Ok(value),
        Err(TagEditError::Tags(e @ TagError::Full(_))) => Err(ApiError::Conflict(e.to_string())),
        Err(TagEditError::Tags(e)) => Err(ApiError::BadRequest(e.to_string())),
        Err(TagEditError::Storage(_)) => Err(ApiError::Storage),
    }
}

/// A group read or change, off the async runtime: refusals answer 400, 404 or 409.
pub async fn groups<T: Send + 'static>(
    f: impl FnOnce(Fleet) -> Result<T, telemetry::fleet::GroupError> + Send + 'static,
) -> Result<T, ApiError> {
    use telemetry::fleet::GroupError;
    let fleet = context::<Fleet>()?;
    match tokio::task::spawn_blocking(move || f(fleet)).await.map_err(|_| ApiError::Storage)? {
        Ok(value) => Ok(value),
        Err(GroupError::Invalid(why)) => Err(ApiError::BadRequest(why)),
        Err(e @ GroupError::NotFound) => Err(ApiError::NotFound(e.to_string())),
        Err(GroupError::Conflict(why)) => Err(ApiError::Conflict(why)),
        Err(GroupError::Storage(_)) => Err(ApiError::Storage),
    }
}

pub fn now() -> telemetry::Millis {
    chrono::Utc::now().timestamp_millis()
}
