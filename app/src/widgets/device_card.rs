//! A device's card on the overview: health dot, every metric's latest value with its unit,
//! and when it was last heard from.

use leptos::prelude::*;
use telemetry::DeviceSummary;

use crate::logic::format;
use crate::widgets::refused_note::RefusedNote;

/// `device` changes whenever the device does; `now` is the clock ages are measured against;
/// `local` is whether times may be shown in the browser's zone; `stale` marks values that may
/// be out of date (the live feed is down).
#[component]
pub fn DeviceCard(
    id: String,
    #[prop(into)] device: Signal<Option<DeviceSummary>>,
    #[prop(into)] now: Signal<i64>,
    #[prop(into)] local: Signal<bool>,
    #[prop(into)] stale: Signal<bool>,
) -> impl IntoView {
    let health =
        move || device.with(|d| d.as_ref().map(|d| d.health(now.get()).label()).unwrap_or("offline"));
    let href = format!("/device/{id}");
    let metrics = move || {
        device.with(|d| {
            d.as_ref()
                .map(|d| d.metrics.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|m| {
                    let unit = format::unit_for(&m.name);
                    let name = m.name.clone();
                    view! {
                        <div class="metric" data-metric=name>
                            <dt>{m.name}</dt>
                            <dd>
                                <span class="value">{format::value(m.value)}</span>
                                <span class="unit">{unit}</span>
                            </dd>
                        </div>
                    }
                })
                .collect_view()
        })
    };
    let last_seen = move || device.with(|d| d.as_ref().map(|d| d.last_seen).unwrap_or_default());
    // Shown while what it sent since its last stored reading is refused.
    let refused = Signal::derive(move || {
        device.with(|d| d.as_ref().and_then(|d| d.refused.clone().filter(|r| r.last >= d.last_seen)))
    });
    view! {
        <article class="device-card" class:stale=stale data-device=id.clone() data-health=health>
            <header>
                <span class="dot" title=health aria-label=health></span>
                <h2>
                    <a href=href>
                        {
                            let id = id.clone();
                            move || device.with(|d| d.as_ref().map(|d| d.label().to_owned())).unwrap_or_else(|| id.clone())
                        }
                    </a>
                </h2>
            </header>
            <RefusedNote refused local/>
            <dl class="metrics">{metrics}</dl>
            <footer>
                "Last seen "
                <time datetime=move || format::iso(last_seen()) title=move || format::date_time(last_seen(), local.get())>
                    {move || format::age(now.get(), last_seen())}
                </time>
                " · "
                <span class="clock">{move || format::clock(last_seen(), local.get())}</span>
            </footer>
        </article>
    }
}
