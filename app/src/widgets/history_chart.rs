//! One metric's history on a device page: a chart that stays current (see
//! [`use_series`](crate::widgets::use_series)), with the levels of the alarm rules watching it,
//! shaded where its alarms were active; drag across it to zoom in.

use leptos::prelude::*;
use telemetry::dashboard::TimeRange;

use crate::browser::dom::use_size;
use crate::logic::chart_data::Series;
use crate::logic::format;
use crate::widgets::chart_widget::points_for;
use crate::widgets::interactive_chart::{InteractiveChart, MIN_ZOOM_MS};
use crate::widgets::use_marks::{ChartAlarms, page_rules, rule_guides, use_bands};
use crate::widgets::use_series::use_series;

#[component]
pub fn HistoryChart(
    device: String,
    #[prop(into)] metric: Signal<String>,
    #[prop(into)] span_secs: Signal<i64>,
    #[prop(into)] local: Signal<bool>,
    /// The device's alarms over `span_secs`, when the page fetched them for several charts.
    #[prop(optional)]
    alarms: Option<ChartAlarms>,
) -> impl IntoView {
    let zoom: RwSignal<Option<TimeRange>> = RwSignal::new(None);
    // A new metric or range ends the zoom.
    Effect::new(move |_| {
        let _ = (metric.get(), span_secs.get());
        zoom.set(None);
    });
    let range = Signal::derive(move || zoom.get().unwrap_or(TimeRange::Last { secs: span_secs.get() }));
    let box_ref = NodeRef::<leptos::html::Div>::new();
    let size = use_size(box_ref, (800.0, 280.0));
    let points = Signal::derive(move || points_for(size.get().0));
    let alarms = alarms.unwrap_or_else(|| {
        use_bands(
            Signal::stored(vec![device.clone()]),
            Signal::derive(move || TimeRange::Last { secs: span_secs.get() }),
        )
    });
    let shown = {
        let device = device.clone();
        Signal::derive(move || vec![(device.clone(), metric.get())])
    };
    let rules = StoredValue::new(page_rules());
    let follows_now = Signal::derive(move || range.get().follows_now());
    let data = use_series(Signal::stored(device.clone()), metric, range, points);
    let series = Signal::derive(move || {
        data.get()
            .and_then(Result::ok)
            .map(|history| vec![Series { label: format!("{} {}", history.device, history.metric), history }])
            .unwrap_or_default()
    });
    let fetched = Signal::derive(move || {
        data.fetched()
            .map(|history| vec![Series { label: format!("{} {}", history.device, history.metric), history }])
            .unwrap_or_default()
    });
    let on_zoom = Callback::new(move |(from, to): (i64, i64)| {
        if to - from >= MIN_ZOOM_MS {
            zoom.set(Some(TimeRange::Between { from, to }));
        }
    });
    view! {
        <div class="history-chart" node_ref=box_ref>
            <Show when=move || zoom.get().is_some()>
                <button type="button" class="button reset-zoom" on:click=move |_| zoom.set(None)>"Reset zoom"</button>
            </Show>
            <Transition fallback=|| view! { <p class="loading">"Loading chart…"</p> }>
                {move || Suspend::new(async move {
                    let _ = data.loaded().await;
                    alarms.loaded().await;
                    let bands = alarms.bands(rules.get_value(), shown);
                    let guides = rule_guides(rules.get_value(), shown);
                    let unit = format::unit_for(&metric.get_untracked()).to_owned();
                    // Offline, a failed fetch may still be covered by the copy kept in the browser.
                    let problem = Memo::new(move |_| match data.get() {
                        Some(Err(e)) => Some(e.to_string()),
                        _ => None,
                    });
                    move || match problem.get() {
                        None => view! { <InteractiveChart series fetched unit=unit.clone() decimals=None local size on_zoom guides bands follows_now/> }.into_any(),
                        Some(e) => view! { <p class="error" role="alert">"Cannot load history: " {e}</p> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}
