//! Desired and reported state as JSON ([`crate::desired`]). Reading needs a session (or Basic
//! credentials) once sign-in is required; changing needs an admin — the sign-in guard sees to
//! both (403 otherwise). Refusals answer `{"error": …}`.
//!
//! - `GET /api/devices/{id}/desired` → `{"device", "v", "state", "updated_by", "updated_at",
//!   "reported": {"v", "state", "at"} | null, "sync", "pending_since"}` with `ETag: "<v>"`.
//! - `PATCH /api/devices/{id}/desired` with a JSON merge patch (RFC 7396: `null` deletes a key)
//!   and `If-Match: "<v>"` → 200 with the new state and its ETag; 412 if the state is at
//!   another version by then. Without If-Match (or with `*`) the patch applies to whatever is
//!   current. 400 not JSON or a bad If-Match, 404 an unknown device, 413 a body over 8 KiB or a
//!   state over 4 KiB, 422 not an object, a bad key or over 64 keys, 503 storage.
//! - `GET /api/devices/{id}/reported` → `{"device", "reported": {…} | null, "sync"}`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::json;
use telemetry::Access;
use telemetry::desired::Shadow;
use tracing::info;

use super::commands_api::device_known;
use super::refusal::Refusal;
use crate::desired::DesiredFailure;
use crate::state::AppState;
use crate::store::DesiredRefusal;

/// Largest patch read: a state is at most 4 KiB.
const MAX_BODY_BYTES: usize = 8 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/devices/{id}/desired", get(read).patch(patch))
        .route("/api/devices/{id}/reported", get(reported))
}

impl From<DesiredFailure> for Refusal {
    fn from(e: DesiredFailure) -> Refusal {
        match e {
            DesiredFailure::Storage => Refusal(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable".into()),
            DesiredFailure::Refused(why) => {
                let status = match &why {
                    DesiredRefusal::Stale { .. } => StatusCode::PRECONDITION_FAILED,
                    DesiredRefusal::Invalid(e) if e.is_size() => StatusCode::PAYLOAD_TOO_LARGE,
                    DesiredRefusal::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
                    DesiredRefusal::Full(_) => StatusCode::TOO_MANY_REQUESTS,
                };
                Refusal(status, why.to_string())
            }
        }
    }
}

type Answer = Result<Response, Refusal>;

/// The device's shadow, or an empty one; 404 for a device the server does not know.
async fn shadow_of(state: &AppState, device: &str) -> Result<Shadow, Refusal> {
    if !device_known(state, device).await {
        return Err(Refusal(StatusCode::NOT_FOUND, "no such device".into()));
    }
    Ok(state.commands.desired().read(device).await?.unwrap_or_else(|| Shadow::new(device)))
}

fn with_etag(shadow: &Shadow) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", shadow.v)).expect("a number is a header value");
    ([(header::ETAG, etag)], Json(shadow.view())).into_response()
}

async fn read(State(state): State<AppState>, Path(device): Path<String>) -> Answer {
    Ok(with_etag(&shadow_of(&state, &device).await?))
}

async fn reported(State(state): State<AppState>, Path(device): Path<String>) -> Answer {
    let shadow = shadow_of(&state, &device).await?;
    let view = json!({"device": shadow.device, "reported": shadow.reported, "sync": shadow.sync()});
    Ok(Json(view).into_response())
}

/// `If-Match: "<v>"` (or `<v>`, or `*` for any); `Ok(None)` when absent or `*`.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, Refusal> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let bad = || Refusal(StatusCode::BAD_REQUEST, "If-Match must be the ETag of GET …/desired".into());
    let text = value.to_str().map_err(|_| bad())?.trim();
    if text == "*" {
        return Ok(None);
    }
    let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    text.parse().map(Some).map_err(|_| bad())
}

async fn patch(
    State(state): State<AppState>,
    Path(device): Path<String>,
    access: Option<Extension<Access>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Answer {
    if body.len() > MAX_BODY_BYTES {
        return Err(Refusal(StatusCode::PAYLOAD_TOO_LARGE, format!("at most {MAX_BODY_BYTES} bytes")));
    }
    let expected = if_match(&headers)?;
    let patch: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| Refusal(StatusCode::BAD_REQUEST, format!("not JSON: {e}")))?;
    shadow_of(&state, &device).await?;
    let by = access.and_then(|Extension(a)| a.user).map_or_else(|| "open".to_owned(), |u| u.name);
    let shadow = state.commands.desired().patch(&device, patch, expected, &by).await?;
    info!(by, device = %device, v = shadow.v, "desired state changed");
    Ok(with_etag(&shadow))
}
