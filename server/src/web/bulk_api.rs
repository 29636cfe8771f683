//! The bulk commands API ([`crate::commands::Commands::bulk`]): one command to many devices,
//! each device's its own command with its own states, as if sent to each alone. Making one
//! needs an admin (the sign-in guard, 403 otherwise); reading one a session once sign-in is
//! required.
//!
//! - `POST /api/commands/bulk` `{"devices": [ids] | "query": "<fleet query>", "method",
//!   "params", "ttl_secs", "timeout_secs", "oneway"}` → 202 `{"id", "method", "created_by",
//!   "created_at", "requested", "count", "commands": [{"device", "id"} | {"device", "error"}]}`
//!   once every command is stored (`count` made; a device with 100 unfinished commands gets
//!   none, and says why). Commands are made at `commands.bulk_per_sec` (1,000 a second by
//!   default), so the answer to a bulk to 1,000 devices takes about a second.
//! - `GET /api/commands/bulk/{id}` → the bulk with `statuses` (how many of its commands are in
//!   each state now), `unfinished`, and `commands` with each one's `status`.
//!
//! Refusals `{"error": …}`: 400 (not JSON), 404 (no such bulk), 413 (over
//! [`MAX_BULK_DEVICES`] devices listed, params over 1 KiB, a body over 256 KiB), 422 (neither
//! or both of devices and query, a device listed twice, devices the server does not know, a
//! query that does not read, matches none or more than [`MAX_BULK_DEVICES`], a bad command),
//! 429 (bulks already being made), 503 (storage).

use std::collections::{BTreeMap, HashSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use telemetry::Access;
use telemetry::command::{Invalid, NewCommand};
use tracing::info;

use super::refusal::Refusal;
use crate::clock::now_ms;
use crate::commands::bulk::MAX_BULK_DEVICES;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/commands/bulk", post(create)).route("/api/commands/bulk/{id}", get(one))
}

type Answer = Result<Response, Refusal>;

fn unprocessable(why: impl Into<String>) -> Refusal {
    Refusal(StatusCode::UNPROCESSABLE_ENTITY, why.into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBulk {
    #[serde(default)]
    devices: Option<Vec<String>>,
    #[serde(default)]
    query: Option<String>,
    method: String,
    #[serde(default)]
    params: Option<Value>,
    #[serde(default)]
    ttl_secs: Option<u64>,
    #[serde(default)]
    timeout_secs: Option<u64>,
    #[serde(default)]
    oneway: bool,
}

/// Names at most a few of `ids`, and how many there are.
fn some_of(ids: &[String]) -> String {
    let shown: Vec<&str> = ids.iter().take(5).map(|s| s.as_str()).collect();
    let more = ids.len().saturating_sub(shown.len());
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

/// The listed devices, if each is named once and known to the server (it has reported, or
/// has a key).
async fn listed(state: &AppState, devices: Vec<String>) -> Result<Vec<String>, Refusal> {
    if devices.len() > MAX_BULK_DEVICES {
        let why = format!("{} devices listed; a bulk takes at most {MAX_BULK_DEVICES}", devices.len());
        return Err(Refusal(StatusCode::PAYLOAD_TOO_LARGE, why));
    }
    let mut seen = HashSet::with_capacity(devices.len());
    if let Some(twice) = devices.iter().find(|d| !seen.insert(d.as_str())) {
        let twice = telemetry::text::untrusted(twice);
        return Err(unprocessable(format!("device {twice} is listed twice")));
    }
    let (store, auth) = (state.store.clone(), state.auth.clone());
    let unknown = tokio::task::spawn_blocking(move || {
        let keys = auth.device_keys().unwrap_or_default();
        let known = |d: &String| {
            telemetry::valid_name(d).is_ok()
                && (keys.contains(d) || store.device(d).map(|c| c.value.is_some()).unwrap_or(false))
        };
        let unknown: Vec<String> =
            devices.iter().filter(|d| !known(d)).map(|d| telemetry::text::untrusted(d).to_string()).collect();
        (devices, unknown)
    })
    .await;
    let (devices, unknown) =
        unknown.map_err(|_| Refusal(StatusCode::SERVICE_UNAVAILABLE, "storage".into()))?;
    if !unknown.is_empty() {
        return Err(unprocessable(format!("no such devices: {}", some_of(&unknown))));
    }
    Ok(devices)
}

/// The devices fleet query `text` matches now.
async fn matching(state: &AppState, text: String) -> Result<Vec<String>, Refusal> {
    let store = state.store.clone();
    let found = tokio::task::spawn_blocking(move || {
        let query = match crate::scope::resolve(&*store, &text, false).ok()? {
            Ok(query) => query,
            Err(e) => return Some(Err(e.to_string())),
        };
        let now = now_ms();
        let all = store.devices().ok()?.value;
        Some(Ok(all.into_iter().filter(|d| query.matches(d, now)).map(|d| d.id).collect::<Vec<_>>()))
    })
    .await;
    match found {
        Ok(Some(Ok(devices))) if devices.len() > MAX_BULK_DEVICES => Err(unprocessable(format!(
            "the query matches {} devices; a bulk takes at most {MAX_BULK_DEVICES}",
            devices.len()
        ))),
        Ok(Some(Ok(devices))) => Ok(devices),
        Ok(Some(Err(why))) => Err(unprocessable(format!("query: {why}"))),
        _ => Err(Refusal(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable".into())),
    }
}

async fn create(
    State(state): State<AppState>,
    access: Option<Extension<Access>>,
    body: axum::body::Bytes,
) -> Answer {
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| Refusal(StatusCode::BAD_REQUEST, format!("not JSON: {e}")))?;
    let new: NewBulk = serde_json::from_value(value).map_err(|e| unprocessable(e.to_string()))?;
    let command = NewCommand {
        method: new.method,
        params: new.params,
        ttl_secs: new.ttl_secs,
        timeout_secs: new.timeout_secs,
        oneway: new.oneway,
    };
    let checked = command.check().map_err(|why| {
        let status = match why {
            Invalid::ParamsTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Refusal(status, why.to_string())
    })?;
    let (devices, query) = match (new.devices, new.query) {
        (Some(devices), None) => (listed(&state, devices).await?, None),
        (None, Some(query)) => (matching(&state, query.clone()).await?, Some(query)),
        _ => return Err(unprocessable("give either devices (a list of ids) or query (a fleet query)")),
    };
    if devices.is_empty() {
        return Err(unprocessable("no devices: a bulk needs at least one"));
    }
    let Some(place) = state.commands.bulk_place() else {
        return Err(Refusal(StatusCode::TOO_MANY_REQUESTS, "bulks are being made; try again shortly".into()));
    };
    let by = super::commands_api::who(access);
    let (bulk, members) = state.commands.bulk(place, devices, checked, &by, query).await?;
    let count = members.iter().filter(|m| m.id.is_some()).count();
    info!(by, bulk = %bulk.id, method = %bulk.method, devices = bulk.requested, made = count, "bulk command created");
    let mut answer = serde_json::to_value(&bulk).expect("bulks serialise");
    answer["count"] = json!(count);
    answer["commands"] = json!(members);
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

async fn one(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    if !telemetry::command::valid_id(&id) {
        return Err(Refusal(StatusCode::NOT_FOUND, "no such bulk".into()));
    }
    let Some(found) = state.commands.bulk_state(&id).await? else {
        return Err(Refusal(StatusCode::NOT_FOUND, "no such bulk".into()));
    };
    let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unfinished = 0;
    let mut commands = Vec::with_capacity(found.members.len());
    for (member, status) in &found.members {
        let label = match (status, &member.id) {
            (Some(s), _) => s.label(),
            // Refused, or gone from the device's history (its oldest finished ones go).
            (None, None) => "REFUSED",
            (None, Some(_)) => "GONE",
        };
        *statuses.entry(label).or_default() += 1;
        unfinished += usize::from(status.is_some_and(|s| !s.is_terminal()));
        let mut entry = json!(member);
        entry["status"] = json!(label);
        commands.push(entry);
    }
    let mut answer = serde_json::to_value(&found.bulk).expect("bulks serialise");
    answer["count"] = json!(found.members.iter().filter(|(m, _)| m.id.is_some()).count());
    answer["complete"] = json!(found.bulk.handled >= found.bulk.requested);
    answer["unfinished"] = json!(unfinished);
    answer["statuses"] = json!(statuses);
    answer["commands"] = json!(commands);
    Ok(Json(answer).into_response())
}
