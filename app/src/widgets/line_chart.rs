//! A server-rendered SVG line chart of downsampled history, one or more series: each average
//! as a line, its min–max as a shaded band, gaps (missing buckets) left blank, round-number
//! axes, guide lines (an alarm's trip and clear levels) and alarm bands (the time an alarm was
//! active, shaded) if given. Renders without JavaScript; once the page is live,
//! `interactive_chart` takes over.

use leptos::prelude::*;
use telemetry::{Bucket, History};

use crate::logic::chart_data::{AlarmBand, Guide, PALETTE, Series, with_guides};
use crate::logic::format::{self, Shown};
use crate::logic::scale::{Scale, time_ticks, value_axis};

const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;
/// Ranges longer than this (in milliseconds) label their time ticks with the weekday.
const WEEKDAYS_AFTER_MS: i64 = 36 * 3_600_000;

/// Splits buckets into runs without gaps (see [`History::gap_threshold`]).
fn runs(history: &History) -> Vec<&[Bucket]> {
    let b = &history.buckets;
    let gap = history.gap_threshold();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..b.len() {
        if b[i].t - b[i - 1].t > gap {
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

/// Escapes text for HTML/SVG text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The chart as SVG markup. Built as a string and set as the box's content, so hydration never
/// compares it: the page may hydrate with newer readings or another size than the server had.
pub fn svg(
    series: &[Series],
    unit: &str,
    local: bool,
    size: (f64, f64),
    guides: &[Guide],
    bands: &[AlarmBand],
) -> Option<String> {
    use std::fmt::Write;
    let (w, h) = (size.0.max(200.0), size.1.max(120.0));
    let readings: u64 = series.iter().map(|s| s.history.readings()).sum();
    if readings == 0 {
        return None;
    }
    let all = || series.iter().flat_map(|s| s.history.buckets.iter());
    let lo = all().map(|b| b.min).fold(f64::INFINITY, f64::min);
    let hi = all().map(|b| b.max).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = with_guides((lo, hi), guides);
    let (domain, ticks) = value_axis(lo, hi, 5);
    let y = Scale { domain, range: (h - BOTTOM, TOP) };
    let from = series.iter().map(|s| s.history.from).min().unwrap_or_default();
    let to = series.iter().map(|s| s.history.to).max().unwrap_or_default();
    let x = Scale { domain: (from as f64, to as f64), range: (LEFT, w - RIGHT) };
    let points: usize = series.iter().map(|s| s.history.buckets.len()).sum();
    let latest: Vec<String> = series
        .iter()
        .filter_map(|s| {
            s.history.buckets.last().map(|b| format!("{} {} {unit}", s.label, format::value(b.last)))
        })
        .collect();
    let mut out = String::with_capacity(4096 + points * 40);
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{}" data-points="{points}" data-readings="{readings}" data-from="{from}" data-to="{to}"><g class="grid">"#,
        escape(&format!("{points} buckets from {readings} readings; latest: {}", latest.join(", "))),
    );
    for v in &ticks {
        let py = y.map(*v);
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" x2="{:.1}" y1="{py:.1}" y2="{py:.1}"></line><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            w - RIGHT,
            LEFT - 6.0,
            py + 4.0,
            format::value(*v)
        );
    }
    let shown = if to - from > WEEKDAYS_AFTER_MS { Shown::WeekdayMinute } else { Shown::Minute };
    for t in time_ticks(from, to, ((w / 130.0) as usize).clamp(2, 10)) {
        let tx = x.map(t as f64);
        let label = format::datetime(t, local, shown);
        let _ = write!(
            out,
            r#"<line x1="{tx:.1}" x2="{tx:.1}" y1="{TOP}" y2="{:.1}"></line><text x="{tx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            h - BOTTOM,
            h - 8.0,
            escape(label.trim_end_matches(" UTC"))
        );
    }
    out.push_str("</g>");
    for b in bands {
        let Some((start, end)) = b.within(from, to) else { continue };
        let (x0, x1) = (x.map(start as f64), x.map(end as f64));
        let _ = write!(
            out,
            r#"<rect class="alarm-band" data-alarm="{}" data-severity="{}" data-from="{}"{} x="{x0:.1}" y="{TOP}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
            escape(&b.alarm),
            b.severity,
            b.from,
            b.to.map(|t| format!(r#" data-to="{t}""#)).unwrap_or_default(),
            (x1 - x0).max(1.0),
            h - BOTTOM - TOP,
            escape(&b.label),
        );
    }
    for g in guides.iter().filter(|g| g.value.is_finite()) {
        let py = y.map(g.value);
        let _ = write!(
            out,
            r#"<g class="guide {kind}" data-guide="{kind}" data-value="{value}"><line x1="{LEFT}" x2="{:.1}" y1="{py:.1}" y2="{py:.1}"></line><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text></g>"#,
            w - RIGHT,
            w - RIGHT - 4.0,
            py - 4.0,
            escape(&g.label),
            kind = g.kind.key(),
            value = g.value,
        );
    }
    for (i, s) in series.iter().enumerate() {
        let (line, band) = paths(&s.history, &x, &y);
        let color = PALETTE[i % PALETTE.len()];
        let _ = write!(
            out,
            r#"<g class="series" data-series="{}" data-readings="{}"><path class="band" d="{band}" style="fill:{color}"></path><path class="line" d="{line}" style="stroke:{color}"></path></g>"#,
            escape(&s.label),
            s.history.readings()
        );
    }
    out.push_str("</svg>");
    Some(out)
}

#[component]
pub fn MultiChart(
    series: Vec<Series>,
    #[prop(into)] unit: String,
    #[prop(into)] local: Signal<bool>,
    /// Size in SVG units: the measured size of its box, so text is not stretched.
    #[prop(default = (800.0, 280.0))]
    size: (f64, f64),
    /// Horizontal lines at fixed values (an alarm's trip and clear levels).
    #[prop(optional)]
    guides: Vec<Guide>,
    /// Times shaded (when alarms were active).
    #[prop(optional)]
    bands: Vec<AlarmBand>,
) -> impl IntoView {
    let labels: Vec<String> = series.iter().map(|s| s.label.clone()).collect();
    let markup = move || svg(&series, &unit, local.get(), size, &guides, &bands);
    let legend = (labels.len() > 1).then(|| {
        labels
            .into_iter()
            .enumerate()
            .map(|(i, label)| {
                view! {
                    <li>
                        <span class="swatch" style=format!("background:{}", PALETTE[i % PALETTE.len()])></span>
                        {label}
                    </li>
                }
            })
            .collect_view()
    });
    view! {
        <div class="chart-wrap">
            {move || match markup() {
                Some(svg) => view! { <div class="svg-box" inner_html=svg></div> }.into_any(),
                None => view! { <p class="chart-empty">"No readings in this range."</p> }.into_any(),
            }}
            {legend.map(|l| view! { <ul class="legend">{l}</ul> })}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::Bucket;

    fn series(label: &str) -> Series {
        Series {
            label: label.into(),
            history: History {
                device: "d".into(),
                metric: "t".into(),
                from: 0,
                to: 3_600_000,
                bucket_ms: 60_000,
                buckets: (0..10)
                    .map(|i| Bucket { t: i * 60_000, min: 1.0, max: 3.0, avg: 2.0, count: 2, last: 2.0 })
                    .collect(),
                last_seq: 0,
                edges: Vec::new(),
                zone: None,
            },
        }
    }

    #[test]
    fn svg_carries_counts_and_escapes_text() {
        let markup = svg(&[series("a<b>\"")], "°C<", false, (800.0, 240.0), &[], &[]).unwrap();
        assert!(markup.contains(r#"data-readings="20""#));
        assert!(markup.contains(r#"data-points="10""#));
        assert!(markup.contains("a&lt;b&gt;&quot;"));
        assert!(!markup.contains("<b>"));
        assert_eq!(markup.matches(r#"class="line""#).count(), 1);
        assert!(svg(&[], "", false, (800.0, 240.0), &[], &[]).is_none());
    }

    #[test]
    fn guides_are_drawn_inside_the_axis_and_escaped() {
        use crate::logic::chart_data::GuideKind;
        let guides = [
            Guide { kind: GuideKind::Trip, value: 30.0, label: "critical > 30 <b>".into() },
            Guide { kind: GuideKind::Clear, value: 2.5, label: "clears at 2.5".into() },
        ];
        let markup = svg(&[series("a")], "°C", false, (800.0, 240.0), &guides, &[]).unwrap();
        assert!(markup.contains(r#"data-guide="trip" data-value="30""#));
        assert!(markup.contains(r#"data-guide="clear" data-value="2.5""#));
        assert!(markup.contains("critical &gt; 30 &lt;b&gt;"));
        // The data is 1..3, the trip line at 30: the axis reaches it.
        assert!(markup.contains(">30.0</text>"), "{markup}");
    }

    #[test]
    fn alarm_bands_shade_where_they_meet_the_range() {
        use telemetry::alarm::Severity;
        let band = |alarm: &str, from, to| AlarmBand {
            alarm: alarm.into(),
            severity: Severity::Critical,
            from,
            to,
            label: "hot <b> on d: critical".into(),
        };
        let bands = [
            band("half", 1_800_000, None),
            band("cleared", 0, Some(900_000)),
            band("before", -100, Some(-1)),
        ];
        let markup = svg(&[series("a")], "°C", false, (800.0, 240.0), &[], &bands).unwrap();
        // The plot is 800 - 56 - 12 = 732 wide from x = 56: an hour; the active band takes the
        // second half, the cleared one the first quarter.
        assert!(
            markup.contains(r#"data-alarm="half" data-severity="critical" data-from="1800000" x="422.0" y="12" width="366.0""#),
            "{markup}"
        );
        assert!(markup.contains(
            r#"data-alarm="cleared" data-severity="critical" data-from="0" data-to="900000" x="56.0""#
        ));
        assert!(!markup.contains("before"), "outside the range: not drawn");
        assert!(markup.contains("<title>hot &lt;b&gt; on d: critical</title>"));
    }
}
