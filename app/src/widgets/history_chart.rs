//! One metric's history as a chart that stays current (see [`crate::series`]).

use leptos::prelude::*;
use telemetry::dashboard::TimeRange;

use crate::format;
use crate::series::use_series;
use crate::widgets::line_chart::LineChart;

/// Buckets asked for: about one per horizontal pixel pair of the chart.
pub const CHART_POINTS: u32 = 720;

#[component]
pub fn HistoryChart(
    device: String,
    #[prop(into)] metric: Signal<String>,
    #[prop(into)] span_secs: Signal<i64>,
    #[prop(into)] local: Signal<bool>,
) -> impl IntoView {
    let range = Signal::derive(move || TimeRange::Last { secs: span_secs.get() });
    let series = use_series(Signal::stored(device), metric, range, CHART_POINTS);
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading chart…"</p> }>
            {move || Suspend::new(async move {
                match series.history().await {
                    Ok(h) => {
                        let unit = format::unit_for(&h.metric);
                        view! { <LineChart history=h unit local/> }.into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert">"Cannot load history: " {e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}
