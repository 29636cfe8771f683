//! `/healthz` and `/metrics`.
//!
//! `/healthz` is public and says only ok (200) or not (503); signed-in users (or anyone while
//! the dashboard is open) also get which part is down. Storage is up when its database answers
//! reads and its latest commit did not fail; MQTT is up when the embedded broker still takes
//! a CONNECT (probed at most every [`PROBE_EVERY`]; "server unavailable", as when every
//! `mqtt.max_connections` is taken, counts as down), or the external broker is connected and
//! subscribed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
use telemetry::Access;

use crate::config::MqttMode;
use crate::state::AppState;

/// A probe's answer is reused this long, so `/healthz` cannot be made to open connections
/// faster than this.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);

/// The embedded broker's latest probe.
#[derive(Default)]
pub struct Probe(Mutex<Option<(Instant, bool)>>);

async fn mqtt_up(state: &AppState, probe: &Probe) -> bool {
    let Some(broker) = &state.broker else { return state.metrics.mqtt_connected() };
    let cached = *probe.0.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((at, up)) = cached
        && at.elapsed() < PROBE_EVERY
    {
        return up;
    }
    let up = broker.probe().await;
    *probe.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), up));
    state.metrics.set_mqtt_connected(up);
    up
}

pub async fn healthz(
    State(state): State<AppState>,
    Extension(probe): Extension<std::sync::Arc<Probe>>,
    access: Option<Extension<Access>>,
) -> impl IntoResponse {
    let store = state.store.clone();
    let reads = tokio::task::spawn_blocking(move || store.healthy()).await.unwrap_or(false);
    let storage = reads && !state.metrics.last_commit_failed();
    let mqtt = mqtt_up(&state, &probe).await;
    let ok = storage && mqtt;
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let detail = access.is_some_and(|Extension(a)| a.open || a.user.is_some());
    let body = if detail {
        json!({
            "status": if ok { "ok" } else { "degraded" },
            "storage": if storage { "ok" } else { "failing" },
            "mqtt": if mqtt { "up" } else { "down" },
            "mqtt_mode": match state.mqtt_mode {
                MqttMode::Embedded => "embedded",
                MqttMode::External => "external",
            },
        })
    } else {
        json!({ "status": if ok { "ok" } else { "degraded" } })
    };
    (status, axum::Json(body))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.store.clone();
    let devices =
        tokio::task::spawn_blocking(move || store.devices().ok().map(|d| d.value.len())).await.ok().flatten();
    let mut text = state.metrics.render(devices);
    if state.broker.is_some() {
        use std::fmt::Write;
        let (count, bytes) = state.ingest.retained().usage();
        let _ = writeln!(
            text,
            "# HELP iot_retained_messages Retained messages the embedded broker keeps (and is storing).\n# TYPE iot_retained_messages gauge\niot_retained_messages {count}\n# HELP iot_retained_bytes Their bytes of payload.\n# TYPE iot_retained_bytes gauge\niot_retained_bytes {bytes}"
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
