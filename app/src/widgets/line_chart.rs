//! A server-rendered SVG line chart of downsampled history: the average as a line, min–max
//! as a shaded band, gaps (missing buckets) left blank, round-number axes.

use leptos::prelude::*;
use telemetry::History;

use super::scale::{Scale, time_ticks, value_axis};
use crate::format;

const W: f64 = 800.0;
const H: f64 = 280.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// Splits buckets into runs without gaps: a gap is more than two bucket widths of silence.
fn runs(history: &History) -> Vec<&[telemetry::Bucket]> {
    let b = &history.buckets;
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..b.len() {
        if b[i].t - b[i - 1].t > 2 * history.bucket_ms.max(1) {
            out.push(&b[start..i]);
            start = i;
        }
    }
    if !b.is_empty() {
        out.push(&b[start..]);
    }
    out
}

#[component]
pub fn LineChart(
    history: History,
    #[prop(into)] unit: String,
    #[prop(into)] local: Signal<bool>,
) -> impl IntoView {
    if history.buckets.is_empty() {
        return view! { <p class="chart-empty">"No readings in this range."</p> }.into_any();
    }
    let lo = history.buckets.iter().map(|b| b.min).fold(f64::INFINITY, f64::min);
    let hi = history.buckets.iter().map(|b| b.max).fold(f64::NEG_INFINITY, f64::max);
    let (domain, ticks) = value_axis(lo, hi, 5);
    let y = Scale { domain, range: (H - BOTTOM, TOP) };
    let x = Scale { domain: (history.from as f64, history.to as f64), range: (LEFT, W - RIGHT) };
    let half = history.bucket_ms as f64 / 2.0;
    let px = |t: i64| x.map(t as f64 + half);

    let mut line = String::new();
    let mut band = String::new();
    for run in runs(&history) {
        for (i, b) in run.iter().enumerate() {
            line.push_str(&format!("{}{:.1},{:.1} ", if i == 0 { "M" } else { "L" }, px(b.t), y.map(b.avg)));
        }
        // A single bucket still gets a visible dot-like stroke.
        if run.len() == 1 {
            line.push_str("h0.1 ");
        }
        let upper = run.iter().map(|b| format!("{:.1},{:.1}", px(b.t), y.map(b.max)));
        let lower = run.iter().rev().map(|b| format!("{:.1},{:.1}", px(b.t), y.map(b.min)));
        band.push_str(&format!("M{}Z ", upper.chain(lower).collect::<Vec<_>>().join(" L")));
    }
    let span = history.to - history.from;
    let time_labels = time_ticks(history.from, history.to, 6);
    let points: usize = history.buckets.len();
    let readings: u64 = history.buckets.iter().map(|b| u64::from(b.count)).sum();
    let last = history.buckets.last().map(|b| b.last).unwrap_or_default();
    let label = format!(
        "{} {}: {} buckets from {} readings, latest {} {}",
        history.device,
        history.metric,
        points,
        readings,
        format::value(last),
        unit
    );

    view! {
        <svg class="chart" viewBox=format!("0 0 {W} {H}") role="img" aria-label=label data-points=points data-readings=readings>
            <g class="grid">
                {ticks
                    .iter()
                    .map(|v| {
                        let py = y.map(*v);
                        view! {
                            <line x1=LEFT x2=W - RIGHT y1=py y2=py></line>
                            <text x=LEFT - 6.0 y=py + 4.0 text-anchor="end">{format::value(*v)}</text>
                        }
                    })
                    .collect_view()}
                {time_labels
                    .into_iter()
                    .map(|t| {
                        let tx = x.map(t as f64);
                        let pattern = if span > 36 * 3_600_000 { "%a %H:%M" } else { "%H:%M" };
                        view! {
                            <line x1=tx x2=tx y1=TOP y2=H - BOTTOM></line>
                            <text x=tx y=H - 8.0 text-anchor="middle">
                                {move || {
                                    let text = format::datetime(t, local.get(), pattern);
                                    text.trim_end_matches(" UTC").to_owned()
                                }}
                            </text>
                        }
                    })
                    .collect_view()}
            </g>
            <path class="band" d=band></path>
            <path class="line" d=line></path>
        </svg>
    }
    .into_any()
}
