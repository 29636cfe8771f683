//! What charts and gauges mark for alarms: the alarm rules, read once per page with its data
//! ([`fetch_rules`], then [`provide_rules`]; widgets read them with [`page_rules`]), and
//! charts' bands ([`use_bands`]): the
//! alarms of their devices that were active in their range, fetched once for charts that share
//! them (a zoomed chart draws the part of its range's bands it shows), and kept current by the
//! live feed (`Live::alarms`), so a band starts as its alarm fires and ends as it clears.

use std::sync::Arc;

use leptos::prelude::*;
use telemetry::alarm::{Alarm, Rule};
use telemetry::dashboard::TimeRange;

use crate::api::{ApiError, MAX_SPAN_DEVICES, alarm_spans, list_rules};
use crate::logic::chart_data::{AlarmBand, Guide};
use crate::logic::marks;
use crate::state::live::Live;

/// The page's alarm rules (a context).
#[derive(Clone)]
struct PageRules(Arc<Vec<Rule>>);

/// Reads the alarm rules, for a page to await with its data.
pub fn fetch_rules() -> Resource<Result<Vec<Rule>, ApiError>> {
    Resource::new(|| (), |_| list_rules())
}

/// Gives the page's charts and gauges `rules` (none when they could not be read: offline, say).
pub fn provide_rules(rules: Result<Vec<Rule>, ApiError>) {
    provide_context(PageRules(Arc::new(rules.unwrap_or_default())));
}

/// The page's rules (none if it provided none).
pub fn page_rules() -> Arc<Vec<Rule>> {
    use_context::<PageRules>().map(|r| r.0).unwrap_or_default()
}

/// The rules' levels a chart of `series` (device, metric) draws.
pub fn rule_guides(rules: Arc<Vec<Rule>>, series: Signal<Vec<(String, String)>>) -> Signal<Vec<Guide>> {
    Memo::new(move |_| series.with(|s| marks::rule_guides(&rules, s))).into()
}

/// Charts' alarms: fetched for their devices and range.
#[derive(Clone, Copy)]
pub struct ChartAlarms {
    fetched: Resource<Vec<Alarm>>,
}

/// The alarms of `devices` active in `range`.
pub fn use_bands(devices: Signal<Vec<String>>, range: Signal<TimeRange>) -> ChartAlarms {
    let devices = Memo::new(move |_| {
        let mut devices = devices.get();
        devices.sort();
        devices.dedup();
        devices.truncate(MAX_SPAN_DEVICES);
        devices
    });
    let fetched = Resource::new(
        move || (devices.get(), range.get()),
        |(devices, range)| async move {
            if devices.is_empty() {
                return Vec::new();
            }
            let answer = match range {
                TimeRange::Last { secs } => alarm_spans(devices, Some(secs), None, None).await,
                TimeRange::Between { from, to } => alarm_spans(devices, None, Some(from), Some(to)).await,
            };
            // Offline the live feed's (and the cache's) alarms are still shown.
            answer.unwrap_or_default()
        },
    );
    ChartAlarms { fetched }
}

impl ChartAlarms {
    /// Waits for the first answer.
    pub async fn loaded(self) {
        let _ = self.fetched.await;
    }

    /// The bands a chart of `series` (device, metric) draws with `rules`, following the live
    /// feed.
    pub fn bands(
        self,
        rules: Arc<Vec<Rule>>,
        series: Signal<Vec<(String, String)>>,
    ) -> Signal<Vec<AlarmBand>> {
        let live = expect_context::<Live>();
        let bands = Memo::new(move |_| {
            let series = series.get();
            self.fetched.with(|fetched| {
                let fetched = fetched.as_deref().unwrap_or_default();
                live.alarms.with(|known| marks::bands(fetched, known, &rules, &series))
            })
        });
        bands.into()
    }
}
