//! `POST /api/telemetry`: the MQTT payload plus `device_id`, or an array of those, through the
//! same validation and commit as MQTT. Answers 202 with counts once stored, 400 for a body that
//! is not JSON, 413 for one too large, 422 when nothing in it is acceptable, 503 when storage
//! fails.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use telemetry::payload::{MAX_PAYLOAD_BYTES, parse_http_item};
use tracing::warn;

use crate::ingest::now_ms;
use crate::limits::Pace;
use crate::metrics::Source;
use crate::routes::AppState;

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

pub async fn post_telemetry(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
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
        let parsed = parse_http_item(item, received);
        state.ingest.record_parse(Source::Http, &parsed);
        match parsed.map_err(|r| (r.label(), r.to_string())).and_then(|mut message| {
            match state.ingest.admit(&mut message, Pace::Unlimited) {
                Ok(_) => Ok(message),
                Err(refusal) => Err((refusal.label(), refusal.to_string())),
            }
        }) {
            Ok(message) => {
                for d in &message.dropped {
                    dropped.push(json!({"index": index, "metric": d.name, "reason": d.reason.label()}));
                }
                accepted.push(message);
            }
            Err((label, text)) => {
                warn!(index, reason = label, "HTTP reading rejected: {text}");
                errors.push(json!({"index": index, "reason": label, "error": text}));
            }
        }
    }
    if accepted.is_empty() {
        let message = errors[0]["error"].as_str().unwrap_or("invalid reading").to_owned();
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            message,
            json!({"rejected": errors.len(), "errors": errors}),
        );
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
