//! Server functions for devices: the list, one device, its log (events), a metric's history,
//! missed changes, naming, setting how often one reports, and deleting.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};
use telemetry::{DeviceSummary, History, LiveEvent, Millis};

use super::codec::JsonText;
use super::error::ApiError;
#[cfg(feature = "ssr")]
use super::ssr;

/// Every device, plus the server's clock (so ages render the same on server and client) and
/// the sequence number the list is current to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceList {
    pub server_time: Millis,
    pub last_seq: u64,
    pub devices: Vec<DeviceSummary>,
}

/// One device (if known), the server's clock and the sequence number it is current to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceDetail {
    pub server_time: Millis,
    pub last_seq: u64,
    pub device: Option<DeviceSummary>,
}

/// A page of changes after a sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangePage {
    /// Oldest first; fewer than asked means there is no more.
    pub events: Vec<LiveEvent>,
}

/// Most changes one page may hold.
pub const MAX_CHANGES_PAGE: u32 = 1000;

/// Longest history a chart may ask for: a year.
pub const MAX_SPAN_SECS: i64 = telemetry::dashboard::MAX_RANGE_SECS;

#[server(prefix = "/api", endpoint = "devices", input = GetUrl, output = JsonText)]
pub async fn list_devices() -> Result<DeviceList, ApiError> {
    let current = ssr::read(|s| s.devices()).await?;
    Ok(DeviceList { server_time: ssr::now(), last_seq: current.last_seq, devices: current.value })
}

#[server(prefix = "/api", endpoint = "device", input = GetUrl, output = JsonText)]
pub async fn get_device(id: String) -> Result<DeviceDetail, ApiError> {
    let current = ssr::read(move |s| s.device(&id)).await?;
    Ok(DeviceDetail { server_time: ssr::now(), last_seq: current.last_seq, device: current.value })
}

/// What happened to a device lately (its events: firmware changes, reboots, …), newest first,
/// and the change it is current to (later ones come live).
#[server(prefix = "/api", endpoint = "device_log", input = GetUrl, output = JsonText)]
pub async fn get_device_log(id: String) -> Result<telemetry::source::DeviceLog, ApiError> {
    ssr::read(move |s| s.device_log(&id)).await
}

/// Every change after `after`, oldest first, at most `limit`: what a client that was away
/// missed.
#[server(prefix = "/api", endpoint = "changes", input = GetUrl, output = JsonText)]
pub async fn changes_since(after: u64, limit: u32) -> Result<ChangePage, ApiError> {
    let limit = limit.clamp(1, MAX_CHANGES_PAGE) as usize;
    let events = ssr::read(move |s| s.changes_since(after, limit)).await?;
    Ok(ChangePage { events })
}

/// One metric's history over the last `span_secs` (ending now, by the server's clock), in at
/// most `max_points` buckets. Buckets of a day or more are local days of the time zone `tz`
/// (an IANA name: the browser's), else UTC days.
#[server(prefix = "/api", endpoint = "history", input = GetUrl, output = JsonText)]
pub async fn device_history(
    device: String,
    metric: String,
    span_secs: i64,
    max_points: u32,
    #[server(default)] tz: Option<String>,
) -> Result<History, ApiError> {
    if !(1..=MAX_SPAN_SECS).contains(&span_secs) {
        return Err(ApiError::BadRequest(format!("span_secs must be 1..={MAX_SPAN_SECS}")));
    }
    let zone = zone(tz)?;
    let to = ssr::now();
    let from = to - span_secs * 1000;
    ssr::read(move |s| s.history_in(&device, &metric, from, to, max_points as usize, days(&zone))).await
}

/// One metric's history over `[from, to]` (a fixed range), in at most `max_points` buckets,
/// days in `tz` as [`device_history`]'s.
#[server(prefix = "/api", endpoint = "history_between", input = GetUrl, output = JsonText)]
pub async fn history_between(
    device: String,
    metric: String,
    from: Millis,
    to: Millis,
    max_points: u32,
    #[server(default)] tz: Option<String>,
) -> Result<History, ApiError> {
    // Checked: `to - from` of two times from outside can overflow.
    if to.checked_sub(from).is_none_or(|span| !(0..=MAX_SPAN_SECS * 1000).contains(&span)) {
        return Err(ApiError::BadRequest("from must precede to, at most a year apart".into()));
    }
    let zone = zone(tz)?;
    ssr::read(move |s| s.history_in(&device, &metric, from, to, max_points as usize, days(&zone))).await
}

/// The time zone a history query names, if any: a bad name is a 400 saying why.
#[cfg(feature = "ssr")]
fn zone(tz: Option<String>) -> Result<Option<telemetry::zone::Zone>, ApiError> {
    tz.map(|name| telemetry::zone::Zone::named(&name))
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

#[cfg(feature = "ssr")]
fn days(zone: &Option<telemetry::zone::Zone>) -> Option<&dyn telemetry::history::LocalDays> {
    zone.as_ref().map(|z| z as &dyn telemetry::history::LocalDays)
}

/// Sets a device's display name and note (empty clears them). A plain form can post here.
#[server(prefix = "/api", endpoint = "device/meta", output = JsonText)]
pub async fn update_device(id: String, name: String, note: String) -> Result<(), ApiError> {
    use telemetry::device::{MAX_DEVICE_NAME, MAX_DEVICE_NOTE, user_text};
    let name = user_text(&name, MAX_DEVICE_NAME).map_err(|e| ApiError::BadRequest(format!("name: {e}")))?;
    let note = user_text(&note, MAX_DEVICE_NOTE).map_err(|e| ApiError::BadRequest(format!("note: {e}")))?;
    match ssr::admin(move |s| s.set_device_meta(&id, name, note)).await? {
        true => Ok(()),
        false => Err(ApiError::BadRequest("no such device".into())),
    }
}

/// Sets how often a device is expected to report, as a person writes it (`90`, `90s`, `5m`,
/// `1h`, `2d`; 10 s to 7 days); empty goes back to learning it from its readings. It is stale
/// once quiet for three times that (never under 30 s). A plain form can post here.
#[server(prefix = "/api", endpoint = "device/interval", output = JsonText)]
pub async fn set_device_interval(id: String, interval: String) -> Result<(), ApiError> {
    let interval = telemetry::device::parse_interval(&interval)
        .map_err(|e| ApiError::BadRequest(format!("expected interval: {e}")))?;
    match ssr::admin(move |s| s.set_expected_interval(&id, interval)).await? {
        true => Ok(()),
        false => Err(ApiError::BadRequest("no such device".into())),
    }
}

/// Deletes a device and all its history, if `confirm` is "yes"; then goes to the overview.
#[server(prefix = "/api", endpoint = "device/delete", output = JsonText)]
pub async fn delete_device(id: String, confirm: Option<String>) -> Result<(), ApiError> {
    if confirm.as_deref() != Some("yes") {
        return Err(ApiError::BadRequest("tick the box to confirm the deletion".into()));
    }
    if !ssr::admin(move |s| s.delete_device(&id)).await? {
        return Err(ApiError::BadRequest("no such device".into()));
    }
    leptos_axum::redirect("/");
    Ok(())
}
