//! Who is signed in, for the header and the sign-in pages. Signing in and out are plain form
//! posts to the server (`/auth/login`, `/auth/logout`, `/auth/setup`), so they work without
//! JavaScript.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use telemetry::Access;

use super::codec::JsonText;
use super::error::ApiError;

/// The current request's access, as the server's sign-in guard worked it out.
#[server(prefix = "/api", endpoint = "whoami", input = GetUrl, output = JsonText)]
pub async fn whoami() -> Result<Access, ApiError> {
    let parts = use_context::<http::request::Parts>().ok_or(ApiError::Storage)?;
    Ok(parts.extensions.get::<Access>().cloned().unwrap_or_default())
}
