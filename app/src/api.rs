//! Server functions: the only way the UI reads data. Their bodies run on the server against
//! the [`TelemetrySource`](telemetry::TelemetrySource) the server provides as context.

use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};
use telemetry::{DeviceSummary, History, Millis};

/// Errors a page can show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    #[error("storage is unavailable; try again shortly")]
    Storage,
    #[error("{0}")]
    BadRequest(String),
    #[error("server unreachable: {0}")]
    Transport(String),
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        ApiError::Transport(value.to_string())
    }
}

/// Every device, plus the server's clock so ages render the same on server and client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceList {
    pub server_time: Millis,
    pub devices: Vec<DeviceSummary>,
}

/// One device (if known) and the server's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceDetail {
    pub server_time: Millis,
    pub device: Option<DeviceSummary>,
}

/// Longest history a chart may ask for: 31 days.
pub const MAX_SPAN_SECS: i64 = 31 * 24 * 3600;

#[cfg(feature = "ssr")]
pub mod ssr {
    //! Server-only helpers for the server function bodies.

    use std::sync::Arc;

    use leptos::prelude::use_context;
    use telemetry::{SourceError, TelemetrySource};

    use super::ApiError;

    /// What the server provides as context for every request.
    pub type Source = Arc<dyn TelemetrySource>;

    pub fn source() -> Result<Source, ApiError> {
        use_context::<Source>().ok_or(ApiError::Storage)
    }

    /// Runs a storage read off the async runtime.
    pub async fn read<T: Send + 'static>(
        f: impl FnOnce(Source) -> Result<T, SourceError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let source = source()?;
        tokio::task::spawn_blocking(move || f(source))
            .await
            .map_err(|_| ApiError::Storage)?
            .map_err(|_| ApiError::Storage)
    }

    pub fn now() -> telemetry::Millis {
        chrono::Utc::now().timestamp_millis()
    }
}

#[server(prefix = "/api", endpoint = "devices")]
pub async fn list_devices() -> Result<DeviceList, ApiError> {
    let devices = ssr::read(|s| s.devices()).await?;
    Ok(DeviceList { server_time: ssr::now(), devices })
}

#[server(prefix = "/api", endpoint = "device")]
pub async fn get_device(id: String) -> Result<DeviceDetail, ApiError> {
    let device = ssr::read(move |s| s.device(&id)).await?;
    Ok(DeviceDetail { server_time: ssr::now(), device })
}

/// One metric's history over the last `span_secs` (ending now, by the server's clock), in at
/// most `max_points` buckets.
#[server(prefix = "/api", endpoint = "history")]
pub async fn device_history(
    device: String,
    metric: String,
    span_secs: i64,
    max_points: u32,
) -> Result<History, ApiError> {
    if !(1..=MAX_SPAN_SECS).contains(&span_secs) {
        return Err(ApiError::BadRequest(format!("span_secs must be 1..={MAX_SPAN_SECS}")));
    }
    let to = ssr::now();
    let from = to - span_secs * 1000;
    ssr::read(move |s| s.history(&device, &metric, from, to, max_points as usize)).await
}
