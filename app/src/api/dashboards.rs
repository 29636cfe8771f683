//! Server functions for dashboards: list, load, save (create, rename, edit, duplicate), delete.

use leptos::prelude::*;
use leptos::server_fn::codec::{GetUrl, Json};
use telemetry::dashboard::{Dashboard, DashboardInfo};

use super::ApiError;
use super::codec::JsonText;
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

/// Creates or replaces a dashboard; answers with what was stored.
#[server(prefix = "/api", endpoint = "dashboards/save", input = Json, output = JsonText)]
pub async fn save_dashboard(dashboard: Dashboard) -> Result<Dashboard, ApiError> {
    dashboard.validate().map_err(|e| ApiError::BadRequest(e.0))?;
    ssr::dashboards(move |s| s.save_dashboard(dashboard)).await
}

#[server(prefix = "/api", endpoint = "dashboards/delete", input = Json, output = JsonText)]
pub async fn delete_dashboard(id: String) -> Result<bool, ApiError> {
    ssr::dashboards(move |s| s.delete_dashboard(&id)).await
}
