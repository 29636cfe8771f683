//! Device status widget: online / stale / offline for each device (from its status topic and
//! how long it has been quiet), last seen, and battery when it reports one.

use leptos::prelude::*;
use telemetry::dashboard::Widget;

use crate::logic::format;
use crate::state::board::Board;

#[component]
pub fn StatusList(widget: Widget) -> impl IntoView {
    let board = expect_context::<Board>();
    let rows = move || {
        let ids = board.devices_of(&widget);
        let now = board.now.get();
        board.devices.with(|all| {
            ids.iter()
                .filter_map(|id| all.get(id))
                .map(|d| {
                    let health = d.health(now).label();
                    let battery = d
                        .metrics
                        .iter()
                        .find(|m| m.name.to_ascii_lowercase().contains("batt"))
                        .map(|m| m.value);
                    view! {
                        <li data-device=d.id.clone() data-health=health>
                            <span class="dot" title=health></span>
                            <a href=format!("/device/{}", d.id)>{d.label().to_owned()}</a>
                            <span class="health">{health}</span>
                            <span class="muted">{format::age(now, d.last_seen)}</span>
                            {battery.map(|v| view! { <span class="battery">{format::value(v)} " V"</span> })}
                        </li>
                    }
                })
                .collect_view()
        })
    };
    view! { <ul class="status-list">{rows}</ul> }
}
