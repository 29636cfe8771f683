//! The browser's side: what talks to the DOM, to storage and to the live feed. Code that needs
//! the browser is gated behind the `hydrate` feature inside each file (all of `socket`); the
//! rest renders on the server as the page looks before it is live.
//!
//! - [`dom`]: element sizes for components.
//! - [`offline`]: the IndexedDB cache of devices, alarms and charts (and dashboards in local
//!   storage).
//! - `socket` (browser only): keeps `/ws/live` connected and fetches missed changes.
//! - [`theme`]: the light or dark theme in effect and the user's choice.
//! - [`zone`]: the browser's time zone, by name, for queries in local days.

pub mod dom;
pub mod offline;
#[cfg(feature = "hydrate")]
mod socket;
pub mod theme;
pub mod zone;

/// How often the page's clock (`Live::now`: ages, "data as of") moves on.
#[cfg(feature = "hydrate")]
const CLOCK_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts the clock, the offline cache and the `/ws/live` connection (browser only). Called
/// under the app's owner, so the effects it registers go with the page.
#[cfg(feature = "hydrate")]
pub fn start(live: crate::state::live::Live) {
    use leptos::prelude::*;

    let now = || chrono::Utc::now().timestamp_millis();
    live.now.set(Some(now()));
    let _ = set_interval_with_handle(move || live.now.set(Some(now())), CLOCK_TICK);
    leptos::task::spawn_local(async move {
        if let Some(cache) = offline::load(live).await {
            live.restore(cache.hwm, cache.devices);
            live.restore_alarms(cache.alarms_as_of, cache.alarms);
        }
    });
    offline::keep_saved(live);
    socket::start(live);
}
