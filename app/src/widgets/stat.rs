//! Stat widget: one metric's latest value, big, with its unit, the change versus an hour ago,
//! a sparkline of the last hour, coloured by thresholds.

use leptos::prelude::*;
use telemetry::History;
use telemetry::dashboard::{TimeRange, Widget};

use crate::logic::format;
use crate::state::board::Board;
use crate::widgets::use_series::use_series;

/// The sparkline's path over a `w`×`h` box.
fn sparkline(h: &History, w: f64, height: f64) -> String {
    let (lo, hi) = h
        .buckets
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), b| (lo.min(b.avg), hi.max(b.avg)));
    let span_v = if hi > lo { hi - lo } else { 1.0 };
    let span_t = (h.to - h.from).max(1) as f64;
    h.buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let x = (b.t - h.from) as f64 / span_t * w;
            let y = height - (b.avg - lo) / span_v * height;
            format!("{}{x:.1},{y:.1}", if i == 0 { "M" } else { "L" })
        })
        .collect()
}

#[component]
pub fn Stat(widget: Widget) -> impl IntoView {
    let board = expect_context::<Board>();
    let Some((device, metric)) = untrack(|| board.single_of(&widget)) else {
        return view! { <p class="widget-empty">"No data for this metric yet."</p> }.into_any();
    };
    let unit = widget.unit.clone().unwrap_or_else(|| format::unit_for(&metric).to_owned());
    let latest = {
        let (device, metric) = (device.clone(), metric.clone());
        Memo::new(move |_| {
            board.devices.with(|all| all.get(&device).and_then(|d| d.metric(&metric)).map(|m| m.value))
        })
    };
    let hour = use_series(
        Signal::stored(device.clone()),
        Signal::stored(metric.clone()),
        Signal::stored(TimeRange::Last { secs: 3600 }),
        Signal::stored(60),
    );
    let color = {
        let widget = widget.clone();
        move || latest.get().and_then(|v| widget.color_for(v).map(|c| format!("color:{c}")))
    };
    let decimals = widget.decimals;
    view! {
        <div class="stat" data-device=device data-metric=metric>
            <div class="stat-value" style=color>
                <span class="value">{move || latest.get().map(|v| format::value_with(v, decimals)).unwrap_or_else(|| "–".into())}</span>
                <span class="unit">{unit.clone()}</span>
            </div>
            <Transition fallback=|| ()>
                {move || {
                    let unit = unit.clone();
                    Suspend::new(async move {
                        let Ok(h) = hour.history().await else { return ().into_any() };
                        let first = h.buckets.first().map(|b| b.avg);
                        let change = match (first, latest.get()) {
                            (Some(then), Some(now)) => {
                                let d = now - then;
                                let sign = if d > 0.0 { "+" } else if d < 0.0 { "−" } else { "±" };
                                format!("{sign}{} {unit} vs 1 h ago", format::value_with(d.abs(), decimals))
                            }
                            _ => String::new(),
                        };
                        view! {
                            <svg class="sparkline" viewBox="0 0 200 40" preserveAspectRatio="none" aria-hidden="true">
                                <path d=sparkline(&h, 200.0, 40.0)></path>
                            </svg>
                            <p class="stat-change">{change}</p>
                        }
                            .into_any()
                    })
                }}
            </Transition>
        </div>
    }
    .into_any()
}
