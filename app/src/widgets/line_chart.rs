//! A server-rendered SVG line chart of downsampled history, one or more series: each average
//! as a line, its min–max as a shaded band, gaps (missing buckets) left blank, round-number
//! axes. Renders without JavaScript; the browser may enhance it (see `chart_enhance`).

use leptos::prelude::*;
use telemetry::{Bucket, History};

use super::scale::{Scale, time_ticks, value_axis};
use crate::format;

const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// Colours for series, in order (readable on light and dark backgrounds).
pub const PALETTE: [&str; 8] =
    ["#0f9f8f", "#e0663a", "#4f7be8", "#c2469c", "#d4a106", "#5aa02c", "#8a63d2", "#2aa3c7"];

/// Splits buckets into runs without gaps: a gap is more than two bucket widths of silence.
fn runs(history: &History) -> Vec<&[Bucket]> {
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

/// The SVG path data of one series: (average line, min–max band).
fn paths(h: &History, x: &Scale, y: &Scale) -> (String, String) {
    let half = h.bucket_ms as f64 / 2.0;
    let px = |t: i64| x.map(t as f64 + half);
    let mut line = String::new();
    let mut band = String::new();
    for run in runs(h) {
        for (i, b) in run.iter().enumerate() {
            line.push_str(&format!("{}{:.1},{:.1} ", if i == 0 { "M" } else { "L" }, px(b.t), y.map(b.avg)));
        }
        // A lone bucket still gets a visible stroke.
        if run.len() == 1 {
            line.push_str("h0.1 ");
        }
        let upper = run.iter().map(|b| format!("{:.1},{:.1}", px(b.t), y.map(b.max)));
        let lower = run.iter().rev().map(|b| format!("{:.1},{:.1}", px(b.t), y.map(b.min)));
        band.push_str(&format!("M{}Z ", upper.chain(lower).collect::<Vec<_>>().join(" L")));
    }
    (line, band)
}

/// One series to draw: a label (for the legend) and its history.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub history: History,
}

/// A chart of one series; see [`MultiChart`].
#[component]
pub fn LineChart(
    history: History,
    #[prop(into)] unit: String,
    #[prop(into)] local: Signal<bool>,
) -> impl IntoView {
    let label = format!("{} {}", history.device, history.metric);
    view! { <MultiChart series=vec![Series { label, history }] unit local/> }
}

#[component]
pub fn MultiChart(
    series: Vec<Series>,
    #[prop(into)] unit: String,
    #[prop(into)] local: Signal<bool>,
    /// Size in SVG units: the measured size of its box, so text is not stretched.
    #[prop(default = (800.0, 280.0))]
    size: (f64, f64),
) -> impl IntoView {
    let (w, height) = (size.0.max(200.0), size.1.max(120.0));
    let readings: u64 = series.iter().map(|s| s.history.readings()).sum();
    if readings == 0 {
        return view! { <p class="chart-empty">"No readings in this range."</p> }.into_any();
    }
    let all = || series.iter().flat_map(|s| s.history.buckets.iter());
    let lo = all().map(|b| b.min).fold(f64::INFINITY, f64::min);
    let hi = all().map(|b| b.max).fold(f64::NEG_INFINITY, f64::max);
    let (domain, ticks) = value_axis(lo, hi, 5);
    let h = height;
    let y = Scale { domain, range: (h - BOTTOM, TOP) };
    let (from, to) = (
        series.iter().map(|s| s.history.from).min().unwrap_or_default(),
        series.iter().map(|s| s.history.to).max().unwrap_or_default(),
    );
    let x = Scale { domain: (from as f64, to as f64), range: (LEFT, w - RIGHT) };
    let span = to - from;
    let points: usize = series.iter().map(|s| s.history.buckets.len()).sum();
    let latest: Vec<String> = series
        .iter()
        .filter_map(|s| {
            s.history.buckets.last().map(|b| format!("{} {} {unit}", s.label, format::value(b.last)))
        })
        .collect();
    let aria = format!("{points} buckets from {readings} readings; latest: {}", latest.join(", "));
    let legend = (series.len() > 1).then(|| {
        series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                view! {
                    <li>
                        <span class="swatch" style=format!("background:{}", PALETTE[i % PALETTE.len()])></span>
                        {s.label.clone()}
                    </li>
                }
            })
            .collect_view()
    });
    let drawn = series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (line, band) = paths(&s.history, &x, &y);
            let color = PALETTE[i % PALETTE.len()];
            view! {
                <g class="series" data-series=s.label.clone() data-readings=s.history.readings()>
                    <path class="band" d=band style=format!("fill:{color}")></path>
                    <path class="line" d=line style=format!("stroke:{color}")></path>
                </g>
            }
        })
        .collect_view();

    view! {
        <div class="chart-wrap">
            <svg
                class="chart"
                viewBox=format!("0 0 {w} {h}")
                role="img"
                aria-label=aria
                data-points=points
                data-readings=readings
                data-from=from
                data-to=to
            >
                <g class="grid">
                    {ticks
                        .iter()
                        .map(|v| {
                            let py = format!("{:.1}", y.map(*v));
                            let ty = format!("{:.1}", y.map(*v) + 4.0);
                            view! {
                                <line x1=LEFT x2=w - RIGHT y1=py.clone() y2=py></line>
                                <text x=LEFT - 6.0 y=ty text-anchor="end">{format::value(*v)}</text>
                            }
                        })
                        .collect_view()}
                    {time_ticks(from, to, ((w / 130.0) as usize).clamp(2, 10))
                        .into_iter()
                        .map(|t| {
                            let tx = format!("{:.1}", x.map(t as f64));
                            let pattern = if span > 36 * 3_600_000 { "%a %H:%M" } else { "%H:%M" };
                            view! {
                                <line x1=tx.clone() x2=tx.clone() y1=TOP y2=h - BOTTOM></line>
                                <text x=tx y=h - 8.0 text-anchor="middle">
                                    {move || format::datetime(t, local.get(), pattern).trim_end_matches(" UTC").to_owned()}
                                </text>
                            }
                        })
                        .collect_view()}
                </g>
                {drawn}
            </svg>
            {legend.map(|l| view! { <ul class="legend">{l}</ul> })}
        </div>
    }
    .into_any()
}
