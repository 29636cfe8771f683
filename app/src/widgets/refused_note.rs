//! "Refused since 15:03 — not signed in (issue a key), 12 times": shown on a device's card and
//! page while the server refuses what it sends, so a device that stopped counting does not
//! look healthy.

use leptos::prelude::*;
use telemetry::Refused;

use crate::logic::format;

/// The line for `refused`, if set; `local` says whether times may be in the browser's zone.
#[component]
pub fn RefusedNote(
    #[prop(into)] refused: Signal<Option<Refused>>,
    #[prop(into)] local: Signal<bool>,
) -> impl IntoView {
    move || {
        refused.get().map(|r| {
            let times = if r.count == 1 { "once".to_owned() } else { format!("{} times", r.count) };
            view! {
                <p class="refused-note" role="status" data-reason=r.reason.clone()>
                    "Refused since " {format::clock(r.since, local.get())} " — " {r.text} ", " {times}
                </p>
            }
        })
    }
}
