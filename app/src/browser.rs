//! The browser's side of the app (hydrate only where it touches the browser): starting the
//! live feed, and what the components use of the DOM and of storage.

/// Starts the clock, the offline cache and the `/ws/live` connection (browser only). Called
/// under the app's owner, so the effects it registers go with the page.
#[cfg(feature = "hydrate")]
pub fn start(live: crate::live::Live) {
    use std::time::Duration;

    use leptos::prelude::*;

    let now = || chrono::Utc::now().timestamp_millis();
    live.now.set(Some(now()));
    let _ = set_interval_with_handle(move || live.now.set(Some(now())), Duration::from_secs(1));
    leptos::task::spawn_local(async move {
        if let Some(cache) = crate::offline::load(live).await {
            live.restore(cache.hwm, cache.devices);
        }
    });
    crate::offline::keep_saved(live);
    crate::socket::start(live);
}
