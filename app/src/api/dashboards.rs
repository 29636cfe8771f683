//! Server functions for dashboards: list, load, create (new, duplicate), save (rename, edit),
//! delete. The server makes new dashboards' ids, and a save replaces only the copy it was
//! made from (409 when someone saved it since).

use leptos::prelude::*;
use leptos::server_fn::codec::{GetUrl, Json};
use telemetry::dashboard::{Dashboard, DashboardInfo};

use super::codec::JsonText;
use super::error::ApiError;
#[cfg(feature = "ssr")]
use super::ssr;

#[server(prefix = "/api", endpoint = "dashboards", input = GetUrl, output = JsonText)]
pub async fn list_dashboards() -> Result<Vec<DashboardInfo>, ApiError> {
    let all = ssr::dashboards(|s| s.dashboards()).await?;
    Ok(all.iter().map(DashboardInfo::from).collect())
}

#[server(prefix = "/api", endpoint = "dashboard", input = GetUrl, output = JsonText)]
pub async fn get_dashboard(id: String) -> Result<Option<Dashboard>, ApiError> {
    ssr::dashboards(move |s| s.dashboard(&id)).await
}

/// Creates a dashboard under an id the server makes; answers with what was stored.
#[server(prefix = "/api", endpoint = "dashboards/create", input = Json, output = JsonText)]
pub async fn create_dashboard(dashboard: Dashboard) -> Result<Dashboard, ApiError> {
    dashboard.validate().map_err(|e| ApiError::BadRequest(e.to_string()))?;
    ssr::save(move |s| s.create_dashboard(dashboard)).await
}

/// Replaces a dashboard, if `dashboard.updated` is the stored copy's; answers with what was
/// stored (with its new `updated`).
#[server(prefix = "/api", endpoint = "dashboards/save", input = Json, output = JsonText)]
pub async fn save_dashboard(dashboard: Dashboard) -> Result<Dashboard, ApiError> {
    dashboard.validate().map_err(|e| ApiError::BadRequest(e.to_string()))?;
    ssr::save(move |s| s.save_dashboard(dashboard)).await
}

#[server(prefix = "/api", endpoint = "dashboards/delete", input = Json, output = JsonText)]
pub async fn delete_dashboard(id: String) -> Result<bool, ApiError> {
    ssr::dashboards(move |s| s.delete_dashboard(&id)).await
}
