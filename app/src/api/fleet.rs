//! Server functions for the fleet: devices' tags (one device's, or many at once).

use leptos::prelude::*;

use super::codec::JsonText;
use super::error::ApiError;
#[cfg(feature = "ssr")]
use super::ssr;

/// Sets a device's tags to those in `tags` (`site=greenhouse floor=2`; empty: none). A plain
/// form can post here.
#[server(prefix = "/api", endpoint = "device/tags", output = JsonText)]
pub async fn set_device_tags(id: String, tags: String) -> Result<(), ApiError> {
    use telemetry::tags::{TagEdit, parse_tags};
    let tags = parse_tags(&tags).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let tagged = ssr::tags(move |t| t.edit_tags(&[id], &TagEdit::Replace(tags))).await?;
    if tagged.matched == 0 {
        return Err(ApiError::NotFound("no such device".into()));
    }
    Ok(())
}
