//! `POST /api/telemetry`: the MQTT payload plus `device_id`, or an array of those, through the
//! same door as MQTT ([`crate::ingest::Ingest::admit_item`]). Answers 202 with counts once
//! stored, 400 for a body that is not JSON, 413 for one too large, 422 when nothing in it is
//! acceptable, 403 when a device key posted only other devices' readings, 503 when storage
//! fails. Each refused item is named in the answer (and counted), not logged.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};
use telemetry::payload::MAX_PAYLOAD_BYTES;
use telemetry::{Rejection, decode_http_item};

use super::sign_in::IngestAs;
use crate::clock::now_ms;
use crate::metrics::Source;
use crate::state::AppState;

fn error(status: StatusCode, message: impl Into<String>, extra: Value) -> Response {
    let mut body = json!({ "error": message.into() });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    (status, Json(body)).into_response()
}

/// Refuses a whole request, counting it like a refused MQTT message.
fn refuse(state: &AppState, status: StatusCode, reason: &'static str, message: String) -> Response {
    state.metrics.received(Source::Http);
    state.metrics.rejected(reason);
    error(status, message, json!({ "reason": reason }))
}

/// Most items one request may hold.
pub const MAX_ITEMS: usize = 10_000;

pub async fn post_telemetry(
    State(state): State<AppState>,
    device_key: Option<Extension<IngestAs>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(
                &state,
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "request body too large".into(),
            );
        }
        Err(rejection) => return error(rejection.status(), rejection.body_text(), Value::Null),
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return refuse(&state, StatusCode::BAD_REQUEST, "not_json", format!("body is not JSON: {e}"));
        }
    };
    let items = match value {
        Value::Array(items) if items.is_empty() => {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "empty array", json!({"reason": "empty"}));
        }
        Value::Array(items) if items.len() > MAX_ITEMS => {
            let message = format!("at most {MAX_ITEMS} readings per request");
            return refuse(&state, StatusCode::PAYLOAD_TOO_LARGE, "too_large", message);
        }
        Value::Array(items) => items,
        Value::Object(_) if body.len() > MAX_PAYLOAD_BYTES => {
            let message = format!("a single reading may be at most {MAX_PAYLOAD_BYTES} bytes");
            return refuse(&state, StatusCode::PAYLOAD_TOO_LARGE, "too_large", message);
        }
        other => vec![other],
    };

    let received = now_ms();
    let mut accepted = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    let mut dropped = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let decoded = decode_http_item(item, received).and_then(|m| match &device_key {
            Some(Extension(IngestAs(device))) if m.device.as_str() != device => Err(Rejection::NotOwnTopic),
            _ => Ok(m),
        });
        match state.ingest.admit_item(decoded) {
            Ok(message) => {
                for d in &message.dropped {
                    dropped.push(json!({"index": index, "metric": d.name, "reason": d.reason.label()}));
                }
                accepted.push(message);
            }
            Err(why) => errors.push(json!({"index": index, "reason": why.label(), "error": why.to_string()})),
        }
    }
    if accepted.is_empty() {
        let message = errors[0]["error"].as_str().unwrap_or("invalid reading").to_owned();
        let foreign = errors.iter().all(|e| e["reason"] == Rejection::NotOwnTopic.label());
        let status = if foreign { StatusCode::FORBIDDEN } else { StatusCode::UNPROCESSABLE_ENTITY };
        return error(status, message, json!({"rejected": errors.len(), "errors": errors}));
    }
    let count = accepted.len();
    if let Err(e) = state.ingest.store(accepted, received).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string(), Value::Null);
    }
    let body = json!({
        "accepted": count,
        "rejected": errors.len(),
        "errors": errors,
        "dropped_metrics": dropped,
    });
    (StatusCode::ACCEPTED, Json(body)).into_response()
}
