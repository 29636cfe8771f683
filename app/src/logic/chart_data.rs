//! What charts draw: [`Series`] and their colours, and ([`spec`]) the layout the interactive
//! chart takes: one shared time axis (bucket centres), and per series its averages, minima and
//! maxima, `null` where it has no bucket. A `null` row is put into every gap (see
//! `History::gap_threshold`), so lines break there instead of bridging it. [`Guide`]s are
//! horizontal lines at fixed values (an alarm rule's trip and clear levels); [`AlarmBand`]s
//! shade the time an alarm was active.

use serde::Serialize;
use telemetry::alarm::Severity;
use telemetry::{History, Millis};

/// Colours for series, in order (readable on light and dark backgrounds).
pub const PALETTE: [&str; 8] =
    ["#0f9f8f", "#e0663a", "#4f7be8", "#c2469c", "#d4a106", "#5aa02c", "#8a63d2", "#2aa3c7"];

/// One series to draw: a label (for the legend) and its history.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub history: History,
}

/// What a guide line marks: where an alarm trips, or where it clears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GuideKind {
    Trip,
    Clear,
}

impl GuideKind {
    pub fn key(self) -> &'static str {
        match self {
            GuideKind::Trip => "trip",
            GuideKind::Clear => "clear",
        }
    }
}

/// A horizontal line across a chart at `value`, labelled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Guide {
    pub kind: GuideKind,
    pub value: f64,
    pub label: String,
}

/// A span of time shaded across a chart, in its severity's colour: while an alarm on one of
/// its series was active.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmBand {
    pub alarm: String,
    pub severity: Severity,
    pub from: Millis,
    /// When it cleared; `None` while it is active (to the chart's end).
    pub to: Option<Millis>,
    pub label: String,
}

impl AlarmBand {
    /// Where it meets the time range `[from, to]`, if it does.
    pub fn within(&self, from: Millis, to: Millis) -> Option<(Millis, Millis)> {
        let end = self.to.unwrap_or(Millis::MAX).min(to);
        let start = self.from.max(from);
        (start <= end).then_some((start, end))
    }
}

/// The value range a chart shows: the data's, stretched to take in every guide.
pub fn with_guides((lo, hi): (f64, f64), guides: &[Guide]) -> (f64, f64) {
    guides
        .iter()
        .filter(|g| g.value.is_finite())
        .fold((lo, hi), |(lo, hi), g| (lo.min(g.value), hi.max(g.value)))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesStyle {
    pub label: String,
    pub color: String,
}

/// What `charts.js` draws.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChartSpec {
    pub unit: String,
    pub decimals: Option<u8>,
    /// The time range asked (the series' together), in which alarm bands are drawn: the time
    /// axis spans the data and the bands within it.
    pub from: Millis,
    pub to: Millis,
    pub series: Vec<SeriesStyle>,
    /// Milliseconds since the epoch.
    pub x: Vec<i64>,
    pub avg: Vec<Vec<Option<f64>>>,
    pub min: Vec<Vec<Option<f64>>>,
    pub max: Vec<Vec<Option<f64>>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub guides: Vec<Guide>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alarm_bands: Vec<AlarmBand>,
}

pub fn spec(series: &[Series], unit: &str, decimals: Option<u8>) -> ChartSpec {
    let width = series.iter().map(|s| s.history.bucket_ms).max().unwrap_or(1).max(1);
    let gap = series.iter().map(|s| s.history.gap_threshold()).max().unwrap_or(2 * width);
    let mut starts: Vec<i64> = series.iter().flat_map(|s| s.history.buckets.iter().map(|b| b.t)).collect();
    starts.sort_unstable();
    starts.dedup();
    // Break lines across gaps: a start after a silence gets an empty row just after the
    // previous bucket.
    let mut rows: Vec<Option<i64>> = Vec::with_capacity(starts.len() + 8);
    for (i, t) in starts.iter().enumerate() {
        if i > 0 && t - starts[i - 1] > gap {
            rows.push(None);
        }
        rows.push(Some(*t));
    }
    let mut out = ChartSpec {
        unit: unit.to_owned(),
        decimals,
        from: series.iter().map(|s| s.history.from).min().unwrap_or_default(),
        to: series.iter().map(|s| s.history.to).max().unwrap_or_default(),
        series: series
            .iter()
            .enumerate()
            .map(|(i, s)| SeriesStyle {
                label: s.label.clone(),
                color: PALETTE[i % PALETTE.len()].to_owned(),
            })
            .collect(),
        x: Vec::with_capacity(rows.len()),
        avg: vec![Vec::with_capacity(rows.len()); series.len()],
        min: vec![Vec::with_capacity(rows.len()); series.len()],
        max: vec![Vec::with_capacity(rows.len()); series.len()],
        guides: Vec::new(),
        alarm_bands: Vec::new(),
    };
    let mut cursor = vec![0usize; series.len()];
    let mut last_x = 0;
    for row in rows {
        let x = match row {
            Some(t) => t + width / 2,
            None => last_x + width,
        };
        last_x = x;
        out.x.push(x);
        for (k, s) in series.iter().enumerate() {
            let b = row.and_then(|t| {
                let buckets = &s.history.buckets;
                while cursor[k] < buckets.len() && buckets[cursor[k]].t < t {
                    cursor[k] += 1;
                }
                buckets.get(cursor[k]).filter(|b| b.t == t)
            });
            out.avg[k].push(b.map(|b| b.avg));
            out.min[k].push(b.map(|b| b.min));
            out.max[k].push(b.map(|b| b.max));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::{Bucket, History};

    fn series(label: &str, starts: &[i64]) -> Series {
        Series {
            label: label.into(),
            history: History {
                device: label.into(),
                metric: "t".into(),
                from: 0,
                to: 1_000,
                bucket_ms: 10,
                buckets: starts
                    .iter()
                    .map(|t| Bucket {
                        t: *t,
                        min: *t as f64 - 1.0,
                        max: *t as f64 + 1.0,
                        avg: *t as f64,
                        count: 1,
                        last: 0.0,
                    })
                    .collect(),
                last_seq: 0,
                edges: Vec::new(),
                zone: None,
            },
        }
    }

    #[test]
    fn series_share_one_axis_with_nulls_where_missing() {
        let s = spec(&[series("a", &[0, 10, 20]), series("b", &[10, 20, 30])], "°C", None);
        assert_eq!(s.x, [5, 15, 25, 35]);
        assert_eq!(s.avg[0], [Some(0.0), Some(10.0), Some(20.0), None]);
        assert_eq!(s.avg[1], [None, Some(10.0), Some(20.0), Some(30.0)]);
        assert_eq!(s.max[1][3], Some(31.0));
        assert_eq!(s.series[1].color, PALETTE[1]);
    }

    #[test]
    fn gaps_get_an_empty_row() {
        let s = spec(&[series("a", &[0, 10, 20, 30, 200])], "", None);
        assert_eq!(s.x, [5, 15, 25, 35, 45, 205]);
        assert_eq!(s.avg[0], [Some(0.0), Some(10.0), Some(20.0), Some(30.0), None, Some(200.0)]);
    }

    #[test]
    fn guides_stretch_the_value_range_and_travel_only_when_there_are_some() {
        let trip = Guide { kind: GuideKind::Trip, value: 30.0, label: "critical > 30".into() };
        let clear = Guide { kind: GuideKind::Clear, value: 2.0, label: "clears at 2".into() };
        assert_eq!(with_guides((20.0, 25.0), &[trip.clone(), clear]), (2.0, 30.0));
        assert_eq!(with_guides((20.0, 25.0), &[]), (20.0, 25.0));
        let mut s = spec(&[series("a", &[0])], "", None);
        assert!(!serde_json::to_string(&s).unwrap().contains("guides"));
        s.guides.push(trip);
        assert!(serde_json::to_string(&s).unwrap().contains(r#""guides":[{"kind":"trip","value":30.0"#));
    }

    #[test]
    fn alarm_bands_meet_a_range_where_they_overlap_it_and_travel_with_their_severity() {
        let band = |from, to| AlarmBand {
            alarm: "a1".into(),
            severity: Severity::Critical,
            from,
            to,
            label: "hot: critical".into(),
        };
        assert_eq!(band(100, Some(200)).within(0, 1000), Some((100, 200)));
        assert_eq!(band(100, Some(200)).within(150, 1000), Some((150, 200)));
        assert_eq!(band(100, None).within(0, 1000), Some((100, 1000)), "active: to the end");
        assert_eq!(band(100, Some(200)).within(201, 1000), None);
        assert_eq!(band(1001, None).within(0, 1000), None);
        let mut s = spec(&[series("a", &[0])], "", None);
        assert!(!serde_json::to_string(&s).unwrap().contains("alarm_bands"));
        s.alarm_bands.push(band(100, None));
        assert!(serde_json::to_string(&s).unwrap().contains(
            r#""alarm_bands":[{"alarm":"a1","severity":"critical","from":100,"to":null,"label":"hot: critical"}]"#
        ));
    }

    #[test]
    fn sparse_regular_readings_are_not_gaps() {
        let s = spec(&[series("a", &[0, 60, 120, 180])], "", None);
        assert!(s.avg[0].iter().all(Option::is_some));
    }
}
