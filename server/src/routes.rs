//! The HTTP surface: the Leptos dashboard (pages, server functions, static files), the live
//! WebSocket, HTTP ingest, `/healthz` and `/metrics`.

use std::sync::Arc;

use app::{App, shell};
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use leptos::prelude::{LeptosOptions, provide_context};
use leptos_axum::{LeptosRoutes, file_and_error_handler, generate_route_list};
use serde_json::json;
use telemetry::{Accounts, DashboardStore, DeviceAdmin, SourceError, TelemetrySource};
use tokio::sync::watch;

use crate::auth::Auth;
use crate::config::MqttMode;
use crate::hub::Hub;
use crate::ingest::Ingest;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::store::Store;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub store: Arc<dyn Store>,
    pub ingest: Ingest,
    pub hub: Hub,
    pub metrics: Arc<Metrics>,
    pub auth: Arc<Auth>,
    pub mqtt_mode: MqttMode,
    pub shutdown: watch::Receiver<bool>,
}

/// The whole HTTP application. `allowed_origins` may call in from other sites (see
/// [`crate::security`]) and get CORS headers on `/api`.
pub fn router(state: AppState, max_body_bytes: usize, allowed_origins: Vec<String>) -> Router {
    let routes = generate_route_list(App);
    let source: Arc<dyn TelemetrySource> = state.store.clone();
    let dashboards: Arc<dyn DashboardStore> = state.store.clone();
    let admin: Arc<dyn DeviceAdmin> =
        Arc::new(Admin { store: state.store.clone(), limits: state.ingest.limits().clone() });
    let accounts: Arc<dyn Accounts> = state.auth.clone();
    let options = state.leptos_options.clone();
    Router::new()
        .route("/api/telemetry", post(crate::http_ingest::post_telemetry))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .route("/api/export.csv", get(crate::export::export_csv))
        .route("/ws/live", get(crate::ws::live))
        .route("/healthz", get(healthz))
        .route("/auth/login", post(crate::auth::handlers::login))
        .route("/auth/logout", post(crate::auth::handlers::logout))
        .route("/auth/setup", post(crate::auth::handlers::setup))
        .route("/metrics", get(metrics))
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(source.clone());
                provide_context(dashboards.clone());
                provide_context(admin.clone());
                provide_context(accounts.clone());
            },
            move || shell(options.clone()),
        )
        .fallback(file_and_error_handler::<AppState, _>(shell))
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(state.auth.clone(), crate::auth::guard::require_sign_in))
        .layer(compression())
        .layer(cors(&allowed_origins))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(crate::security::Origins(allowed_origins)),
            crate::security::guard,
        ))
}

/// JSON, CSV and the metrics text compressed for clients that accept it: history and missed
/// changes are the large answers. Pages are left alone, since they stream in order and a
/// compressor would hold their chunks back; static files are precompressed at build time.
fn compression() -> tower_http::compression::CompressionLayer<impl tower_http::compression::Predicate> {
    use tower_http::compression::{CompressionLayer, CompressionLevel, DefaultPredicate, Predicate};
    let data = |_: StatusCode,
                _: axum::http::Version,
                headers: &axum::http::HeaderMap,
                _: &axum::http::Extensions| {
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| {
            ["application/json", "text/csv", "text/plain"].iter().any(|data| t.starts_with(data))
        })
    };
    CompressionLayer::new()
        .br(true)
        .gzip(true)
        // Quick enough for every answer, and about gzip -9's ratio with brotli.
        .quality(CompressionLevel::Precise(4))
        .compress_when(DefaultPredicate::new().and(data))
}

/// CORS for the configured origins only (none by default: same-origin use needs none).
fn cors(allowed: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderValue, Method};
    let origins: Vec<HeaderValue> = allowed.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([axum::http::header::CONTENT_TYPE])
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let storage = state.store.healthy();
    let mqtt = state.metrics.mqtt_connected();
    let status = if storage && mqtt { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mode = match state.mqtt_mode {
        MqttMode::Embedded => "embedded",
        MqttMode::External => "external",
    };
    let body = json!({
        "status": if status == StatusCode::OK { "ok" } else { "degraded" },
        "storage": if storage { "open" } else { "unavailable" },
        "mqtt": if mqtt { "connected" } else { "disconnected" },
        "mqtt_mode": mode,
    });
    (status, axum::Json(body))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.store.clone();
    let devices =
        tokio::task::spawn_blocking(move || store.devices().ok().map(|d| d.value.len())).await.ok().flatten();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render(devices))
}

/// Device administration for the dashboard: deleting a device also frees its place under
/// the device cap.
struct Admin {
    store: Arc<dyn Store>,
    limits: Arc<Limits>,
}

impl DeviceAdmin for Admin {
    fn set_device_meta(
        &self,
        id: &str,
        name: Option<String>,
        note: Option<String>,
    ) -> Result<bool, SourceError> {
        self.store.set_device_meta(id, name, note)
    }

    fn delete_device(&self, id: &str) -> Result<bool, SourceError> {
        let deleted = self.store.delete_device(id)?;
        if deleted {
            self.limits.forget(id);
        }
        Ok(deleted)
    }
}
