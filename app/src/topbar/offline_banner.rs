//! The banners under the top bar about live data: offline since when, and why offline mode is
//! off.

use leptos::prelude::*;

use crate::logic::format;
use crate::state::live::Live;

/// "Offline — data as of HH:MM" while the live feed is down, and why offline mode is off
/// when the browser refuses storage.
#[component]
pub fn OfflineBanner() -> impl IntoView {
    let live = expect_context::<Live>();
    let as_of = move || {
        live.data_as_of
            .get()
            .map(|t| format!(" — data as of {}", format::datetime(t, true, format::Shown::Minute)))
            .unwrap_or_default()
    };
    view! {
        <Show when=move || live.offline()>
            <div class="banner offline" role="status">"Offline" {as_of}</div>
        </Show>
        <Show when=move || live.cache_problem.get().is_some()>
            <div class="banner note" role="note">
                "Offline mode is off: this browser does not let the dashboard store data ("
                {move || live.cache_problem.get().unwrap_or_default()} ")."
            </div>
        </Show>
    }
}
