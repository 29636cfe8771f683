//! The HTTP surface: the Leptos dashboard (pages, server functions, static files), the live
//! WebSocket, HTTP ingest, CSV export, `/healthz` and `/metrics`, behind two guards.
//!
//! # Layout
//! - [`routes`]: the router, built from an [`crate::state::AppState`].
//! - [`assets`]: the front end's hashed file names, how long static files may be kept, the
//!   service worker.
//! - [`listener`]: plain HTTP, and the peer address requests carry.
//! - [`guard`]: the outermost guard: host names, cross-site requests, body sizes, the
//!   client's address, response headers.
//! - [`sign_in`]: who is asking and what they may do; [`auth_forms`]: sign in, out, setup and
//!   password changes.
//! - [`live`]: `/ws/live`; [`http_ingest`]: `POST /api/telemetry`; [`export`]:
//!   `GET /api/export.csv`; [`fleet_export`]: `GET /api/fleet.csv`; [`health`]: `/healthz`
//!   and `/metrics`; [`status`]: the right HTTP status for server function errors;
//!   [`alarms_api`]: alarms, rules and channels as JSON; [`commands_api`]: commands to
//!   devices as JSON; [`command_desk`]: the same for the dashboard's pages; [`control_desk`]:
//!   the dashboards' controls (switch, button, number, select).

pub mod alarms_api;
pub mod assets;
pub mod auth_forms;
pub mod bulk_api;
pub mod command_desk;
pub mod commands_api;
pub mod control_desk;
pub mod desired_api;
pub mod export;
pub mod fleet_export;
pub mod guard;
pub mod health;
pub mod http_ingest;
pub mod listener;
pub mod live;
mod refusal;
pub mod render_panics;
pub mod routes;
pub mod sign_in;
pub mod status;
