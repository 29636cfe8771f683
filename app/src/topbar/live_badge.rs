//! The top bar's badge saying whether values are live: server view, connecting, live, or
//! reconnecting.

use leptos::prelude::*;

use crate::state::live::{Connection, Live};

#[component]
pub fn LiveBadge() -> impl IntoView {
    let live = expect_context::<Live>();
    let state = move || match (live.hydrated(), live.connection.get()) {
        (false, _) => ("static", "Server view"),
        (true, Connection::Connecting) => ("connecting", "Connecting…"),
        (true, Connection::Open) => ("live", "Live"),
        (true, Connection::Reconnecting) => ("reconnecting", "Reconnecting…"),
    };
    view! {
        <span class="live-badge" data-state=move || state().0 role="status">
            {move || state().1}
        </span>
    }
}
