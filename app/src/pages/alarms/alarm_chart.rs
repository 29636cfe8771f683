//! The alarm's metric around the alarm: from an hour before it fired to an hour after it
//! cleared (or to now, following live readings, while it is active), with the rule's trip and
//! clear levels drawn across it. Drag across it to zoom in.

use leptos::prelude::*;
use telemetry::dashboard::TimeRange;

use crate::browser::dom::use_size;
use crate::logic::chart_data::{Guide, Series};
use crate::logic::format;
use crate::widgets::chart_widget::points_for;
use crate::widgets::interactive_chart::{InteractiveChart, MIN_ZOOM_MS};
use crate::widgets::use_series::use_series;

#[component]
pub fn AlarmChart(
    device: String,
    metric: String,
    range: TimeRange,
    guides: Vec<Guide>,
    #[prop(into)] local: Signal<bool>,
) -> impl IntoView {
    let zoom: RwSignal<Option<TimeRange>> = RwSignal::new(None);
    let range = Signal::derive(move || zoom.get().unwrap_or(range));
    let box_ref = NodeRef::<leptos::html::Div>::new();
    let size = use_size(box_ref, (800.0, 280.0));
    let points = Signal::derive(move || points_for(size.get().0));
    let unit = format::unit_for(&metric).to_owned();
    let label = format!("{device} {metric}");
    let data = use_series(Signal::stored(device), Signal::stored(metric), range, points);
    let as_series = move |h: telemetry::History| vec![Series { label: label.clone(), history: h }];
    let series = {
        let as_series = as_series.clone();
        Signal::derive(move || data.get().and_then(Result::ok).map(as_series.clone()).unwrap_or_default())
    };
    let fetched = Signal::derive(move || data.fetched().map(as_series.clone()).unwrap_or_default());
    let on_zoom = Callback::new(move |(from, to): (i64, i64)| {
        if to - from >= MIN_ZOOM_MS {
            zoom.set(Some(TimeRange::Between { from, to }));
        }
    });
    view! {
        <div class="history-chart alarm-chart" node_ref=box_ref>
            <Show when=move || zoom.get().is_some()>
                <button type="button" class="button reset-zoom" on:click=move |_| zoom.set(None)>"Reset zoom"</button>
            </Show>
            <Transition fallback=|| view! { <p class="loading">"Loading chart…"</p> }>
                {move || Suspend::new({
                    let unit = unit.clone();
                    let guides = guides.clone();
                    async move {
                        match data.loaded().await {
                            Ok(()) => view! { <InteractiveChart series fetched unit decimals=None local size on_zoom guides/> }.into_any(),
                            Err(e) => view! { <p class="error" role="alert">"Cannot load history: " {e.to_string()}</p> }.into_any(),
                        }
                    }
                })}
            </Transition>
        </div>
    }
}
