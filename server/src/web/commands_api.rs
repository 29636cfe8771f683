//! The commands API, JSON in and out ([`crate::commands`]). Reading needs a session (or Basic
//! credentials) once sign-in is required; making and canceling need an admin — the sign-in
//! guard sees to both (403 otherwise). Refusals answer `{"error": …}`: 400 (not JSON, a bad
//! query), 404 (no such device or command), 409 (canceling a finished command), 413 (params
//! over 1 KiB), 422 (a bad method, ttl, timeout or field), 429 (the device has 100 unfinished
//! commands, or the server its maximum), 503 (storage).
//!
//! - `POST /api/devices/{id}/commands?wait=N` `{"method", "params", "ttl_secs", "timeout_secs",
//!   "oneway"}` → 202 with the command (`status` QUEUED, or further if the device took it at
//!   once). `wait` (0 to 30 s) holds the answer until the command finishes: 200 with it
//!   (`status`, `result` or `error`), or 202 if it is still under way by then.
//! - `GET /api/devices/{id}/commands?before=<cmd>&limit=N` → `{"commands": [newest first],
//!   "next": <the id to pass as before for the next page, or null>}` (50 a page, at most 200).
//! - `GET /api/devices/{id}/commands/{cmd}`; `DELETE …/commands/{cmd}` cancels it.
//!
//! A command's `delivery_observable` says whether DELIVERED can be seen at all: not with an
//! external broker, nor for a device that subscribed with QoS 0.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use telemetry::Access;
use telemetry::command::{Invalid, NewCommand};
use tracing::info;

use super::refusal::Refusal;
use crate::commands::CommandsError;
use crate::state::AppState;
use crate::store::CommandRefusal;

/// Longest `?wait`.
const MAX_WAIT_SECS: u64 = 30;
/// Largest request body read: params are at most 1 KiB, the rest a few fields.
const MAX_BODY_BYTES: usize = 8 * 1024;
/// Commands listed per page, by default and at most.
const PAGE: usize = 50;
const MAX_PAGE: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/devices/{id}/commands", post(create).get(list))
        .route("/api/devices/{id}/commands/{cmd}", get(one).delete(cancel))
}

impl From<CommandsError> for Refusal {
    fn from(e: CommandsError) -> Refusal {
        match e {
            CommandsError::Storage => Refusal(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable".into()),
            CommandsError::Refused(why) => {
                let status = match why {
                    CommandRefusal::NotFound => StatusCode::NOT_FOUND,
                    CommandRefusal::TooMany(_) | CommandRefusal::Full(_) => StatusCode::TOO_MANY_REQUESTS,
                    CommandRefusal::Illegal(_) => StatusCode::CONFLICT,
                };
                Refusal(status, why.to_string())
            }
        }
    }
}

type Answer = Result<Response, Refusal>;

/// Who acts: the signed-in user, or "open" while the dashboard is open.
pub(super) fn who(access: Option<Extension<Access>>) -> String {
    access.and_then(|Extension(a)| a.user).map_or_else(|| "open".to_owned(), |u| u.name)
}

/// The device, if the server knows it: it has reported, or has a key.
async fn known(state: &AppState, id: &str) -> Result<(), Refusal> {
    match device_known(state, id).await {
        true => Ok(()),
        false => Err(Refusal(StatusCode::NOT_FOUND, "no such device".into())),
    }
}

/// Whether the server knows the device: it has reported, or has a key.
pub(super) async fn device_known(state: &AppState, id: &str) -> bool {
    if telemetry::valid_name(id).is_err() {
        return false;
    }
    let (store, auth, device) = (state.store.clone(), state.auth.clone(), id.to_owned());
    tokio::task::spawn_blocking(move || {
        let reported = store.device(&device).map(|d| d.value.is_some()).unwrap_or(false);
        reported || auth.device_keys().is_ok_and(|keys| keys.contains(&device))
    })
    .await
    .unwrap_or(false)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wait {
    #[serde(default)]
    wait: Option<u64>,
}

async fn create(
    State(state): State<AppState>,
    Path(device): Path<String>,
    access: Option<Extension<Access>>,
    wait: Result<Query<Wait>, QueryRejection>,
    body: axum::body::Bytes,
) -> Answer {
    let wait = wait.map_err(|e| Refusal(StatusCode::BAD_REQUEST, e.body_text()))?.0.wait.unwrap_or(0);
    if wait > MAX_WAIT_SECS {
        return Err(Refusal(StatusCode::BAD_REQUEST, format!("wait is at most {MAX_WAIT_SECS} seconds")));
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(Refusal(StatusCode::PAYLOAD_TOO_LARGE, format!("at most {MAX_BODY_BYTES} bytes")));
    }
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| Refusal(StatusCode::BAD_REQUEST, format!("not JSON: {e}")))?;
    let new: NewCommand = serde_json::from_value(value)
        .map_err(|e| Refusal(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let checked = new.check().map_err(|why| {
        let status = match why {
            Invalid::ParamsTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Refusal(status, why.to_string())
    })?;
    known(&state, &device).await?;
    let by = who(access);
    let commands = &state.commands;
    // Subscribed before it is made, so no change of it is missed.
    let changes = commands.changes();
    let command = commands.create(&device, checked, &by).await?;
    info!(by, device = %device, command = %command.id, method = %command.method, "command created");
    let command = match wait {
        0 => command,
        secs => commands.wait(command, changes, Duration::from_secs(secs)).await,
    };
    let status = if command.is_terminal() { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok((status, Json(command)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

async fn list(
    State(state): State<AppState>,
    Path(device): Path<String>,
    page: Result<Query<Page>, QueryRejection>,
) -> Answer {
    let page = page.map_err(|e| Refusal(StatusCode::BAD_REQUEST, e.body_text()))?.0;
    let limit = page.limit.unwrap_or(PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Refusal(StatusCode::BAD_REQUEST, format!("limit is 1 to {MAX_PAGE}")));
    }
    if page.before.as_deref().is_some_and(|b| !telemetry::command::valid_id(b)) {
        return Err(Refusal(StatusCode::BAD_REQUEST, "before is a command id".into()));
    }
    known(&state, &device).await?;
    let commands = state.commands.list(&device, page.before, limit).await?;
    let next = (commands.len() == limit).then(|| commands.last().map(|c| c.id.clone())).flatten();
    Ok(Json(json!({ "commands": commands, "next": next })).into_response())
}

async fn one(State(state): State<AppState>, Path((device, cmd)): Path<(String, String)>) -> Answer {
    known(&state, &device).await?;
    match state.commands.read(&device, &cmd).await? {
        Some(command) => Ok(Json(command).into_response()),
        None => Err(Refusal(StatusCode::NOT_FOUND, "no such command".into())),
    }
}

async fn cancel(
    State(state): State<AppState>,
    Path((device, cmd)): Path<(String, String)>,
    access: Option<Extension<Access>>,
) -> Answer {
    known(&state, &device).await?;
    let by = who(access);
    let command = state.commands.cancel(&device, &cmd, &by).await?;
    info!(by, device = %device, command = %command.id, "command canceled");
    Ok(Json(command).into_response())
}
