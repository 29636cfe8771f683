//! A device's events, newest first: firmware, reset reason and boot count changes, and reboots
//! (its uptime going down). The server's list (the latest 50, from the device's log the page
//! reads once), then what the live feed brings.

use leptos::prelude::*;
use telemetry::attributes::{DeviceEvent, EventKind, MAX_DEVICE_EVENTS};

use telemetry::source::DeviceLog;

use crate::api::ApiError;
use crate::logic::format;
use crate::state::live::Live;

fn kind(event: &DeviceEvent) -> &'static str {
    match &event.kind {
        EventKind::Reboot { .. } => "reboot",
        EventKind::Attribute { name, .. } if name == "fw" => "firmware",
        EventKind::Attribute { .. } => "attribute",
    }
}

fn list(events: Vec<DeviceEvent>, local: bool) -> AnyView {
    if events.is_empty() {
        return view! {
            <p class="muted">
                "None yet: a change of firmware (fw), reset reason or boot count, and a reboot (uptime_s going down), show here."
            </p>
        }
        .into_any();
    }
    view! {
        <ol class="event-list">
            {events
                .into_iter()
                .map(|e| {
                    let at = format::date_time(e.at, local);
                    view! {
                        <li data-kind=kind(&e)>
                            <time datetime=format::iso(e.at)>{at}</time>
                            " "
                            <span class="event-text">{e.text()}</span>
                        </li>
                    }
                })
                .collect_view()}
        </ol>
    }
    .into_any()
}

#[component]
pub fn DeviceEvents(
    id: String,
    log: Resource<Result<DeviceLog, ApiError>>,
    local: Signal<bool>,
) -> impl IntoView {
    let live = expect_context::<Live>();
    let device = StoredValue::new(id);
    view! {
        <section class="device-events" aria-labelledby="device-events-title">
            <h2 id="device-events-title">"Events"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading events…"</p> }>
                {move || Suspend::new(async move {
                    match log.await {
                        Ok(log) => {
                            let listed = StoredValue::new(log.events);
                            // What the feed brought since the list was read, then the list.
                            let shown = move || {
                                let mut all: Vec<DeviceEvent> = live.devices.with(|d| {
                                    d.get(&device.get_value())
                                        .map(|d| {
                                            let fresh = d.events.iter().filter(|(seq, _)| *seq > log.last_seq);
                                            fresh.map(|(_, e)| e.clone()).collect()
                                        })
                                        .unwrap_or_default()
                                });
                                listed.with_value(|l| all.extend(l.iter().cloned()));
                                all.truncate(MAX_DEVICE_EVENTS);
                                list(all, local.get())
                            };
                            shown.into_any()
                        }
                        Err(e) => view! { <p class="error" role="alert">"Cannot load events: " {e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
