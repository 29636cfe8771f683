//! Gauge widget: a radial dial from min to max with coloured threshold bands, marks at the
//! levels of the alarm rules watching its metric, the value and its unit; shaded when the
//! device is stale or offline.

use std::f64::consts::PI;

use leptos::prelude::*;
use telemetry::dashboard::Widget;
use telemetry::device::Health;

use crate::logic::chart_data::Guide;
use crate::logic::{format, marks};
use crate::state::board::Board;
use crate::widgets::use_marks::page_rules;

/// The dial sweeps 240°, from 210° (lower left) clockwise to -30° (lower right).
const START: f64 = 210.0;
const SWEEP: f64 = 240.0;
const R: f64 = 80.0;
const CX: f64 = 100.0;
const CY: f64 = 100.0;

fn point(deg: f64) -> (f64, f64) {
    let rad = deg * PI / 180.0;
    (CX + R * rad.cos(), CY - R * rad.sin())
}

/// The arc from fraction `a` to `b` (0..=1) of the dial.
fn arc(a: f64, b: f64) -> String {
    let (a, b) = (a.clamp(0.0, 1.0), b.clamp(0.0, 1.0));
    let (x0, y0) = point(START - a * SWEEP);
    let (x1, y1) = point(START - b * SWEEP);
    let large = if (b - a) * SWEEP > 180.0 { 1 } else { 0 };
    format!("M{x0:.2},{y0:.2} A{R},{R} 0 {large} 1 {x1:.2},{y1:.2}")
}

/// A mark across the dial at fraction `f` (0..=1), from just inside the track to just outside.
fn tick(f: f64) -> ((f64, f64), (f64, f64)) {
    let rad = (START - f * SWEEP) * PI / 180.0;
    let at = |r: f64| (CX + r * rad.cos(), CY - r * rad.sin());
    (at(R - 11.0), at(R + 11.0))
}

/// The marks of the guides within `[min, max]`: (guide, fraction of the dial).
fn on_dial(guides: Vec<Guide>, min: f64, max: f64) -> Vec<(Guide, f64)> {
    let span = if max > min { max - min } else { 1.0 };
    guides
        .into_iter()
        .filter(|g| (min..=max).contains(&g.value))
        .map(|g| (g.clone(), (g.value - min) / span))
        .collect()
}

/// Default bounds when none are configured, by unit.
pub fn default_bounds(unit: &str) -> (f64, f64) {
    match unit {
        "°C" => (-10.0, 50.0),
        "%" => (0.0, 100.0),
        "V" => (3.0, 4.3),
        _ => (0.0, 100.0),
    }
}

#[component]
pub fn Gauge(widget: Widget) -> impl IntoView {
    let board = expect_context::<Board>();
    let Some((device, metric)) = untrack(|| board.single_of(&widget)) else {
        return view! { <p class="widget-empty">"No data for this metric yet."</p> }.into_any();
    };
    let unit = widget.unit.clone().unwrap_or_else(|| format::unit_for(&metric).to_owned());
    let (dmin, dmax) = default_bounds(&unit);
    let (min, max) = (widget.min.unwrap_or(dmin), widget.max.unwrap_or(dmax));
    let span = if max > min { max - min } else { 1.0 };
    let frac = move |v: f64| (v - min) / span;
    let state = {
        let (device, metric) = (device.clone(), metric.clone());
        Memo::new(move |_| {
            board.devices.with(|all| {
                all.get(&device).map(|d| (d.metric(&metric).map(|m| m.value), d.health(board.now.get())))
            })
        })
    };
    let value = move || state.get().and_then(|(v, _)| v);
    let stale = move || board.offline.get() || state.get().is_some_and(|(_, h)| h != Health::Online);
    let bands: Vec<(String, String)> = widget
        .thresholds
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let end = widget.thresholds.get(i + 1).map(|n| n.value).unwrap_or(max);
            (arc(frac(t.value), frac(end)), t.color.clone())
        })
        .collect();
    let fill_color = {
        let widget = widget.clone();
        move || {
            value()
                .and_then(|v| widget.color_for(v).map(str::to_owned))
                .unwrap_or_else(|| "var(--accent)".into())
        }
    };
    let decimals = widget.decimals;
    // The levels of the rules watching it (an alarm's trip levels, where it clears).
    let marks = on_dial(marks::rule_guides(&page_rules(), &[(device.clone(), metric.clone())]), min, max)
        .into_iter()
        .map(|(g, f)| {
            let ((x1, y1), (x2, y2)) = tick(f);
            view! {
                <line
                    class=format!("gauge-mark {}", g.kind.key())
                    data-guide=g.kind.key()
                    data-value=g.value.to_string()
                    data-label=g.label
                    x1=format!("{x1:.2}")
                    y1=format!("{y1:.2}")
                    x2=format!("{x2:.2}")
                    y2=format!("{y2:.2}")
                ></line>
            }
        })
        .collect_view();
    view! {
        <div class="gauge" class:stale=stale data-device=device data-metric=metric>
            <svg viewBox="0 0 200 170" role="img" aria-label=move || format!("{} {}", value().map(format::value).unwrap_or_default(), unit)>
                <path class="gauge-track" d=arc(0.0, 1.0)></path>
                {bands
                    .into_iter()
                    .map(|(d, color)| view! { <path class="gauge-band" d=d style=format!("stroke:{color}")></path> })
                    .collect_view()}
                <path class="gauge-fill" d=move || value().map(|v| arc(0.0, frac(v))).unwrap_or_default() style=move || format!("stroke:{}", fill_color())></path>
                {marks}
                <text class="gauge-value" x=CX y=CY + 8.0 text-anchor="middle">
                    {move || value().map(|v| format::value_with(v, decimals)).unwrap_or_else(|| "–".into())}
                </text>
                <text class="gauge-unit" x=CX y=CY + 30.0 text-anchor="middle">{unit.clone()}</text>
                <text class="gauge-bound" x=point(START).0 y=point(START).1 + 18.0 text-anchor="middle">{format::compact(min)}</text>
                <text class="gauge-bound" x=point(START - SWEEP).0 y=point(START - SWEEP).1 + 18.0 text-anchor="middle">{format::compact(max)}</text>
            </svg>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arcs_start_lower_left_and_end_lower_right() {
        let full = arc(0.0, 1.0);
        assert!(full.starts_with("M30.72,140.00"), "{full}");
        assert!(full.ends_with("169.28,140.00"), "{full}");
        assert!(full.contains(" 0 1 1 "), "a 240° arc is the large one: {full}");
        assert!(arc(0.0, 0.5).contains(" 0 0 1 "));
        assert_eq!(arc(-1.0, 2.0), full, "clamped to the dial");
    }

    #[test]
    fn rule_levels_are_marked_where_they_fall_on_the_dial() {
        use crate::logic::chart_data::GuideKind;
        let guide = |value| Guide { kind: GuideKind::Trip, value, label: String::new() };
        let marks = on_dial(vec![guide(-20.0), guide(20.0), guide(50.0), guide(51.0)], -10.0, 50.0);
        assert_eq!(marks.iter().map(|(g, f)| (g.value, *f)).collect::<Vec<_>>(), [(20.0, 0.5), (50.0, 1.0)]);
        // Halfway is straight up: the mark runs vertically across the track.
        let ((x1, y1), (x2, y2)) = tick(0.5);
        assert!((x1 - CX).abs() < 1e-9 && (x2 - CX).abs() < 1e-9, "{x1} {x2}");
        assert!((y1 - (CY - R + 11.0)).abs() < 1e-9 && (y2 - (CY - R - 11.0)).abs() < 1e-9);
    }
}
