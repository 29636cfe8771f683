//! What every HTTP handler shares: the stores, the ingest door, the live hub and the
//! sign-in state. Its own room, so the router and the handlers it routes to (live feed,
//! export, HTTP ingest) depend on it and not on each other.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use tokio::sync::watch;

use crate::auth::Auth;
use crate::config::MqttMode;
use crate::hub::Hub;
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::mqtt::broker::EmbeddedBroker;
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
    /// The embedded broker, when it runs (`/healthz` probes it).
    pub broker: Option<Arc<EmbeddedBroker>>,
    /// Alarms, rules and notification channels.
    pub desk: Arc<dyn telemetry::alarm::AlarmDesk>,
    /// Commands to devices.
    pub commands: crate::commands::Commands,
    pub shutdown: watch::Receiver<bool>,
}
