//! The browser's time zone by its IANA name (`Europe/Berlin`): what day-bucket history queries
//! and CSV exports name, so their days and offsets are the viewer's. The zone's rules live on
//! the server; the browser only says which zone it is in.

/// The browser's time zone; `None` on the server (pages render in UTC until hydrated), or
/// when the browser names none.
pub fn time_zone() -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        let format = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new());
        let zone = js_sys::Reflect::get(&format.resolved_options(), &"timeZone".into()).ok()?;
        zone.as_string().filter(|z| !z.is_empty())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        None
    }
}

/// `&tz=<the browser's zone>` to add to a query string, or nothing (on the server: UTC).
pub fn tz_param() -> String {
    #[cfg(feature = "hydrate")]
    if let Some(zone) = time_zone() {
        return format!("&tz={}", js_sys::encode_uri_component(&zone));
    }
    String::new()
}
