//! The overview: one card per device, live.

use leptos::prelude::*;

use crate::api::{DeviceList, list_devices};
use crate::state::live::{Live, merge};
use crate::widgets::device_card::DeviceCard;

#[component]
pub fn HomePage() -> impl IntoView {
    let devices = Resource::new(|| (), |_| list_devices());
    view! {
        <section class="overview">
            <Transition fallback=|| view! { <p class="loading">"Loading devices…"</p> }>
                {move || Suspend::new(async move {
                    match devices.await {
                        Ok(list) => view! { <DeviceGrid list/> }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">"Cannot load devices: " {e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn DeviceGrid(list: DeviceList) -> impl IntoView {
    let live = expect_context::<Live>();
    let DeviceList { server_time, last_seq, devices } = list;
    live.seed(last_seq, &devices);
    let merged = Memo::new(move |_| live.devices.with(|l| merge(&devices, l)));
    let ids = Memo::new(move |_| merged.with(|m| m.keys().cloned().collect::<Vec<_>>()));
    let now = Signal::derive(move || live.now.get().unwrap_or(server_time));
    let local = Signal::derive(move || live.hydrated());
    let stale = Signal::derive(move || live.offline());
    view! {
        <Show when=move || !ids.with(Vec::is_empty) fallback=|| view! { <EmptyState/> }>
            <p class="summary">
                {move || {
                    let n = ids.with(Vec::len);
                    format!("{n} device{}", if n == 1 { "" } else { "s" })
                }}
            </p>
            <div class="device-grid">
                <For each=move || ids.get() key=|id| id.clone() let:id>
                    {
                        let key = id.clone();
                        let device = Memo::new(move |_| merged.with(|m| m.get(&key).cloned()));
                        view! { <DeviceCard id device now local stale/> }.into_any()
                    }
                </For>
            </div>
        </Show>
    }
}

#[component]
fn EmptyState() -> impl IntoView {
    view! {
        <div class="empty">
            <h2>"No devices yet"</h2>
            <p>"Run the simulator, or publish a reading:"</p>
            <pre>
                "mosquitto_pub -h localhost -p 1883 -q 1 -t app/device/TEST/telemetry \\\n  -m '{\"telemetry\": {\"temp\": 25}}'"
            </pre>
        </div>
    }
}
