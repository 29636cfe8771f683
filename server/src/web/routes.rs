//! The HTTP application: routes, the context the Leptos server functions run with, and the
//! layers around them (from the inside out: server function statuses, sign-in, compression,
//! CORS, the site guard).

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use app::{App, shell};
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use axum::{Extension, Router};
use leptos::prelude::provide_context;
use leptos_axum::{AxumRouteListing, LeptosRoutes, file_and_error_handler_with_context, generate_route_list};
use telemetry::command::CommandEvent;
use telemetry::history::LocalDays;
use telemetry::{
    Accounts, Current, DashboardStore, DeviceAdmin, DeviceSummary, History, LiveEvent, Millis, RefusedIds,
    SourceError, TelemetrySource,
};

use super::guard::Site;
use super::health::Probe;
use super::sign_in::SignIn;
use crate::ingest::{Limits, Refusals};
use crate::state::AppState;
use crate::store::{CommandOp, Store};

/// What the router is built with besides the shared state.
pub struct WebSettings {
    pub max_body_bytes: usize,
    pub allowed_origins: Vec<String>,
    pub hosts: Vec<String>,
    pub trusted_proxies: Vec<IpAddr>,
    pub metrics_token: String,
    /// Browsers see the dashboard over HTTPS (TLS here, or secure cookies behind a proxy).
    pub https: bool,
    /// The hashed scripts, stylesheets and WASM, and where browsers load them from.
    pub assets: app::Assets,
}

/// The app's pages, listed once per process. Listing them renders the app with resource loading
/// switched off for the whole process (leptos_server's `SuppressResourceLoad` is one global
/// flag), so a page that another server in the same process rendered meanwhile waited for its
/// data forever (leptos-rs/leptos#4773): tests start several servers side by side.
fn app_routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The whole HTTP application.
pub fn router(state: AppState, web: WebSettings) -> Router {
    let routes = app_routes();
    let refusals = state.ingest.refusals().clone();
    let source: Arc<dyn TelemetrySource> = Arc::new(WithRefusals {
        store: state.store.clone(),
        refusals: refusals.clone(),
        connections_logged: state.mqtt_mode == crate::config::MqttMode::Embedded,
    });
    let dashboards: Arc<dyn DashboardStore> = state.store.clone();
    let admin: Arc<dyn DeviceAdmin> = Arc::new(Admin {
        store: state.store.clone(),
        limits: state.ingest.limits().clone(),
        refusals: refusals.clone(),
        ingest: state.ingest.clone(),
    });
    let accounts: Arc<dyn Accounts> = state.auth.clone();
    let refused: Arc<dyn RefusedIds> = Arc::new(Strangers(refusals));
    let desk = state.desk.clone();
    let commands: Arc<dyn telemetry::command_desk::CommandDesk> =
        Arc::new(super::command_desk::Desk(state.clone()));
    let controls: Arc<dyn telemetry::control_desk::ControlDesk> =
        Arc::new(super::control_desk::Controls(state.clone()));
    let fleet: Arc<dyn telemetry::fleet::FleetAdmin> =
        Arc::new(crate::fleet::Fleet::new(state.store.clone(), state.ingest.clone()));
    let options = state.leptos_options.clone();
    let assets = web.assets.clone();
    let fallback_assets = web.assets.clone();
    let sign_in = Arc::new(SignIn { auth: state.auth.clone(), metrics_token: web.metrics_token });
    let site = Arc::new(Site::new(
        &web.hosts,
        web.allowed_origins.clone(),
        web.https,
        web.trusted_proxies,
        web.max_body_bytes,
    ));
    Router::new()
        .route("/sw.js", get(super::assets::service_worker))
        .route("/api/telemetry", post(super::http_ingest::post_telemetry))
        .layer(DefaultBodyLimit::max(web.max_body_bytes))
        .route("/api/export.csv", get(super::export::export_csv))
        .route("/api/fleet.csv", get(super::fleet_export::fleet_csv))
        .route("/ws/live", get(super::live::live))
        .route("/healthz", get(super::health::healthz))
        .route("/metrics", get(super::health::metrics))
        .route("/auth/login", post(super::auth_forms::login))
        .route("/auth/logout", post(super::auth_forms::logout))
        .route("/auth/setup", post(super::auth_forms::setup))
        .route("/auth/password", post(super::auth_forms::change_password))
        .merge(super::alarms_api::routes())
        .merge(super::commands_api::routes())
        .merge(super::bulk_api::routes())
        .merge(super::desired_api::routes())
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(source.clone());
                provide_context(dashboards.clone());
                provide_context(admin.clone());
                provide_context(accounts.clone());
                provide_context(refused.clone());
                provide_context(desk.clone());
                provide_context(fleet.clone());
                provide_context(commands.clone());
                provide_context(controls.clone());
                provide_context(assets.clone());
            },
            move || shell(options.clone()),
        )
        .fallback(file_and_error_handler_with_context::<AppState, _>(
            move || provide_context(fallback_assets.clone()),
            shell,
        ))
        .with_state(state.clone())
        .layer(Extension(Arc::new(Probe::default())))
        .layer(Extension(web.assets.clone()))
        .layer(axum::middleware::from_fn(super::status::server_fn_status))
        .layer(axum::middleware::from_fn_with_state(sign_in, super::sign_in::require_sign_in))
        .layer(compression())
        .layer(cors(&web.allowed_origins))
        .layer(axum::middleware::from_fn_with_state(web.assets, super::assets::cache_headers))
        .layer(axum::middleware::from_fn_with_state(site, super::guard::guard))
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

/// The store as the pages read it, with each device's refusal state (kept in memory by the
/// ingest door) filled in.
struct WithRefusals {
    store: Arc<dyn Store>,
    refusals: Arc<Refusals>,
    /// Whether the embedded broker runs, which logs devices' connections.
    connections_logged: bool,
}

impl WithRefusals {
    fn fill(&self, device: &mut DeviceSummary) {
        device.refused = self.refusals.of(&device.id);
    }
}

impl TelemetrySource for WithRefusals {
    fn devices(&self) -> Result<Current<Vec<DeviceSummary>>, SourceError> {
        let mut current = self.store.devices()?;
        if self.refusals.watching() {
            current.value.iter_mut().for_each(|d| self.fill(d));
        }
        Ok(current)
    }

    fn device(&self, id: &str) -> Result<Current<Option<DeviceSummary>>, SourceError> {
        let mut current = self.store.device(id)?;
        if let Some(d) = &mut current.value {
            self.fill(d);
        }
        Ok(current)
    }

    fn history_in(
        &self,
        device: &str,
        metric: &str,
        from: Millis,
        to: Millis,
        max: usize,
        days: Option<&dyn LocalDays>,
    ) -> Result<History, SourceError> {
        self.store.history_in(device, metric, from, to, max, days)
    }

    fn points(
        &self,
        device: &str,
        metric: &str,
        from: Millis,
        to: Millis,
        after: Option<Millis>,
        limit: usize,
    ) -> Result<Vec<(Millis, f64)>, SourceError> {
        self.store.points(device, metric, from, to, after, limit)
    }

    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<LiveEvent>, SourceError> {
        self.store.changes_since(after, limit)
    }

    fn last_seq(&self) -> Result<u64, SourceError> {
        self.store.last_seq()
    }

    fn device_log(&self, id: &str) -> Result<telemetry::source::DeviceLog, SourceError> {
        let log = self.store.device_log(id)?;
        Ok(telemetry::source::DeviceLog { connections_logged: self.connections_logged, ..log })
    }

    fn availability(
        &self,
        ids: &[String],
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Option<f64>>, SourceError> {
        if !self.connections_logged {
            return Ok(vec![None; ids.len()]);
        }
        self.store.availability(ids, from, to)
    }
}

/// Device administration for the dashboard: deleting a device also frees its place under
/// the device cap, forgets its refusals and clears its retained messages.
struct Admin {
    store: Arc<dyn Store>,
    limits: Arc<Limits>,
    refusals: Arc<Refusals>,
    ingest: crate::ingest::Ingest,
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

    fn set_expected_interval(&self, id: &str, interval: Option<Millis>) -> Result<bool, SourceError> {
        self.store.set_expected_interval(id, interval)
    }

    fn delete_device(&self, id: &str) -> Result<bool, SourceError> {
        // Retained messages first: if that fails, nothing is deleted and it can be tried again.
        if let Err(e) = self.ingest.clear_retained_of(id) {
            tracing::error!(error = %e, "a deleted device's retained messages not cleared");
            return Err(SourceError::Unavailable);
        }
        // Its unfinished commands end, so a device that comes back under the id runs none.
        let cancel: Vec<CommandOp> = self
            .store
            .open_commands()
            .map_err(SourceError::from)?
            .into_iter()
            .filter(|c| c.device == id)
            .map(|c| CommandOp::Event {
                device: c.device,
                id: c.id,
                event: CommandEvent::Cancel { by: "device deleted".into() },
            })
            .collect();
        if !cancel.is_empty()
            && let Err(e) = self.ingest.apply_commands_blocking(cancel)
        {
            tracing::error!(error = %e, "a deleted device's commands not canceled");
            return Err(SourceError::Unavailable);
        }
        let deleted = self.store.delete_device(id)?;
        if deleted {
            self.limits.forget(id);
            self.refusals.forget(id);
        }
        Ok(deleted)
    }
}

/// The refused ids the server never registered, for the admin page.
struct Strangers(Arc<Refusals>);

impl RefusedIds for Strangers {
    fn refused_ids(&self) -> Vec<telemetry::RefusedId> {
        self.0.strangers()
    }
}
