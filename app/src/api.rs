//! Server functions: the only way the UI reads and changes data, by domain ([`devices`],
//! [`dashboards`], [`auth`]). Their bodies run on the server against the stores it provides as context.
//! Reads are GET requests, so the service worker can answer them from its cache when offline;
//! changes are POSTs.

pub mod auth;
pub mod dashboards;
pub mod devices;

pub use auth::*;
pub use dashboards::*;
pub use devices::*;

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

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

#[cfg(feature = "ssr")]
pub mod ssr {
    //! Server-only helpers for the server function bodies.

    use std::sync::Arc;

    use leptos::prelude::use_context;
    use telemetry::{DashboardStore, DeviceAdmin, SourceError, TelemetrySource};

    use super::ApiError;

    /// What the server provides as context for every request: telemetry to read ...
    pub type Source = Arc<dyn TelemetrySource>;
    /// ... dashboards to keep ...
    pub type Dashboards = Arc<dyn DashboardStore>;
    /// ... and devices to rename or delete.
    pub type Admin = Arc<dyn DeviceAdmin>;

    fn context<T: Clone + Send + Sync + 'static>() -> Result<T, ApiError> {
        use_context::<T>().ok_or(ApiError::Storage)
    }

    /// Runs a storage call off the async runtime.
    async fn blocking<S: Send + 'static, T: Send + 'static>(
        store: S,
        f: impl FnOnce(S) -> Result<T, SourceError> + Send + 'static,
    ) -> Result<T, ApiError> {
        tokio::task::spawn_blocking(move || f(store))
            .await
            .map_err(|_| ApiError::Storage)?
            .map_err(|_| ApiError::Storage)
    }

    /// A telemetry read.
    pub async fn read<T: Send + 'static>(
        f: impl FnOnce(Source) -> Result<T, SourceError> + Send + 'static,
    ) -> Result<T, ApiError> {
        blocking(context::<Source>()?, f).await
    }

    /// A change to a device.
    pub async fn admin<T: Send + 'static>(
        f: impl FnOnce(Admin) -> Result<T, SourceError> + Send + 'static,
    ) -> Result<T, ApiError> {
        blocking(context::<Admin>()?, f).await
    }

    /// A dashboard read or write.
    pub async fn dashboards<T: Send + 'static>(
        f: impl FnOnce(Dashboards) -> Result<T, SourceError> + Send + 'static,
    ) -> Result<T, ApiError> {
        blocking(context::<Dashboards>()?, f).await
    }

    pub fn now() -> telemetry::Millis {
        chrono::Utc::now().timestamp_millis()
    }
}
