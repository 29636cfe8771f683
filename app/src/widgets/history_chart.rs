//! One metric's history as a chart that stays current: fetched once (downsampled by the
//! server), then every live or caught-up reading is folded in as the server would bucket it, so
//! reconnecting never refetches the whole range. The last 24 h are kept offline.

use leptos::prelude::*;
use telemetry::{History, LiveEvent};

use crate::api::device_history;
use crate::format;
use crate::live::Live;
use crate::offline::chart_key;
use crate::widgets::line_chart::LineChart;

/// Buckets asked for: about one per horizontal pixel pair of the chart.
pub const CHART_POINTS: u32 = 720;

fn is_series(h: &History, device: &str, metric: &str, span_secs: i64) -> bool {
    h.device == device && h.metric == metric && h.to - h.from == span_secs * 1000
}

/// Whether a kept copy is more current than a fetched one (which, offline, is itself an old copy
/// from the page or service-worker cache).
#[cfg(feature = "hydrate")]
fn newer(kept: &History, fetched: &History) -> bool {
    is_series(kept, &fetched.device, &fetched.metric, (fetched.to - fetched.from) / 1000)
        && kept.last_seq > fetched.last_seq
}

#[component]
pub fn HistoryChart(
    device: String,
    #[prop(into)] metric: Signal<String>,
    #[prop(into)] span_secs: Signal<i64>,
    #[prop(into)] local: Signal<bool>,
) -> impl IntoView {
    let live = expect_context::<Live>();
    let fetched = {
        let device = device.clone();
        Resource::new(
            move || (device.clone(), metric.get(), span_secs.get()),
            |(device, metric, span)| device_history(device, metric, span, CHART_POINTS),
        )
    };
    // The browser's copy: what was fetched (or kept offline, when newer) plus live readings.
    let current: RwSignal<Option<History>> = RwSignal::new(None);
    let key = {
        let device = device.clone();
        move || chart_key(&device, &metric.get_untracked(), span_secs.get_untracked())
    };

    {
        let key = key.clone();
        Effect::new(move |_| {
            let Some(result) = fetched.get() else { return };
            let fresh = result.ok();
            current.set(fresh.clone());
            #[cfg(feature = "hydrate")]
            {
                let key = key();
                leptos::task::spawn_local(async move {
                    let Some(kept) = crate::offline::load_chart(&key).await else { return };
                    if fresh.as_ref().is_none_or(|f| newer(&kept, f)) {
                        current.set(Some(kept));
                    }
                });
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = key;
        });
    }

    {
        let device = device.clone();
        Effect::new(move |_| {
            let metric = metric.get_untracked();
            let mut changed = false;
            live.batch.with(|events| {
                current.update(|c| {
                    let Some(c) = c else { return };
                    for e in events {
                        let Some(seq) = e.seq().filter(|s| *s > c.last_seq) else { continue };
                        // Every change up to here is accounted for, whichever device it was.
                        c.last_seq = seq;
                        if let LiveEvent::Reading { device: d, ts, values, .. } = e
                            && *d == device
                            && let Some(v) = values.get(&metric)
                        {
                            c.add_point(*ts, *v);
                            changed = true;
                        }
                    }
                });
            });
            #[cfg(feature = "hydrate")]
            if changed && let Some(h) = current.get_untracked() {
                crate::offline::save_chart_soon(live, key(), h);
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (changed, &key);
        });
    }

    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading chart…"</p> }>
            {move || {
                let device = device.clone();
                Suspend::new(async move {
                    let result = fetched.await;
                    let (metric, span) = (metric.get_untracked(), span_secs.get_untracked());
                    let shown = current.get().filter(|c| is_series(c, &device, &metric, span)).map(Ok).unwrap_or(result);
                    match shown {
                        Ok(h) => {
                            let unit = format::unit_for(&h.metric);
                            view! { <LineChart history=h unit local/> }.into_any()
                        }
                        Err(e) => view! { <p class="error" role="alert">"Cannot load history: " {e.to_string()}</p> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
}
