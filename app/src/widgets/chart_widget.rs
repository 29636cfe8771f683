//! Line chart widget: one series per chosen device and metric over the widget's time range,
//! with the levels of the alarm rules watching them, shaded where their alarms were active;
//! drag across it to zoom in (fetching finer data for that range).

use leptos::prelude::*;
use telemetry::dashboard::{TimeRange, Widget};

use crate::browser::dom::use_size;
use crate::logic::chart_data::Series;
use crate::logic::format;
use crate::state::board::Board;
use crate::widgets::interactive_chart::{InteractiveChart, MIN_ZOOM_MS};
use crate::widgets::use_marks::{page_rules, rule_guides, use_bands};
use crate::widgets::use_series::{SeriesData, use_series};

/// Most series one chart draws.
pub const MAX_SERIES: usize = 12;

/// Buckets to ask for: about one per pixel of the chart's width, in steps of 100 (so small
/// resizes do not refetch).
pub fn points_for(width: f64) -> u32 {
    ((width / 100.0).round() * 100.0).clamp(200.0, 2000.0) as u32
}

#[component]
pub fn ChartWidget(widget: Widget) -> impl IntoView {
    let board = expect_context::<Board>();
    let own = board.range_of(&widget);
    let zoom: RwSignal<Option<TimeRange>> = RwSignal::new(None);
    let range = Signal::derive(move || zoom.get().unwrap_or_else(|| own.get()));
    let box_ref = NodeRef::<leptos::html::Div>::new();
    let size = use_size(box_ref, (800.0, 240.0));
    let points = Signal::derive(move || points_for(size.get().0));
    // The set of series changes only when devices come or go.
    let pairs = {
        let widget = widget.clone();
        Memo::new(move |_| {
            let metrics = board.metrics_of(&widget);
            // Cut before collecting: the cross product of a widget's lists is never built whole.
            board
                .devices_of(&widget)
                .into_iter()
                .flat_map(|d| metrics.iter().map(move |m| (d.clone(), m.clone())))
                .take(MAX_SERIES)
                .collect::<Vec<(String, String)>>()
        })
    };
    // Fetched for the widget's range: a zoomed chart shows part of it.
    let alarms =
        use_bands(Signal::derive(move || pairs.with(|p| p.iter().map(|(d, _)| d.clone()).collect())), own);
    let shown: Signal<Vec<(String, String)>> = pairs.into();
    let follows_now = Signal::derive(move || range.get().follows_now());
    let rules = StoredValue::new(page_rules());
    let unit = widget.unit.clone();
    let decimals = widget.decimals;
    let on_zoom = Callback::new(move |(from, to): (i64, i64)| {
        if to - from >= MIN_ZOOM_MS {
            zoom.set(Some(TimeRange::Between { from, to }));
        }
    });
    let chart = move || {
        let pairs = pairs.get();
        if pairs.is_empty() {
            return view! { <p class="widget-empty">"No data for these devices and metrics yet."</p> }
                .into_any();
        }
        let several_metrics = pairs.iter().any(|(_, m)| *m != pairs[0].1);
        let sources: Vec<(String, SeriesData)> = pairs
            .iter()
            .map(|(d, m)| {
                let label = if several_metrics { format!("{d} {m}") } else { d.clone() };
                (label, use_series(Signal::stored(d.clone()), Signal::stored(m.clone()), range, points))
            })
            .collect();
        let unit = unit.clone().unwrap_or_else(|| format::unit_for(&pairs[0].1).to_owned());
        let series = {
            let sources = sources.clone();
            Signal::derive(move || {
                sources
                    .iter()
                    .filter_map(|(label, data)| {
                        data.get()
                            .and_then(Result::ok)
                            .map(|history| Series { label: label.clone(), history })
                    })
                    .collect::<Vec<_>>()
            })
        };
        let fetched = {
            let sources = sources.clone();
            Signal::derive(move || {
                sources
                    .iter()
                    .filter_map(|(label, data)| {
                        data.fetched().map(|history| Series { label: label.clone(), history })
                    })
                    .collect::<Vec<_>>()
            })
        };
        view! {
            <Transition fallback=|| view! { <p class="loading">"Loading chart…"</p> }>
                {
                    let sources = sources.clone();
                    let unit = unit.clone();
                    move || {
                        let sources = sources.clone();
                        let unit = unit.clone();
                        Suspend::new(async move {
                            for (_, data) in &sources {
                                let _ = data.loaded().await;
                            }
                            alarms.loaded().await;
                            let bands = alarms.bands(rules.get_value(), shown);
                            let guides = rule_guides(rules.get_value(), shown);
                            // Offline, a failed fetch may still be covered by the copy kept in the browser.
                            let problem = Memo::new(move |_| {
                                sources.iter().find_map(|(_, d)| match d.get() {
                                    Some(Err(e)) => Some(e.to_string()),
                                    _ => None,
                                })
                            });
                            move || match problem.get() {
                                None => view! { <InteractiveChart series fetched unit=unit.clone() decimals local=board.local size on_zoom guides bands follows_now/> }.into_any(),
                                Some(e) => view! { <p class="error" role="alert">"Cannot load history: " {e}</p> }.into_any(),
                            }
                        })
                    }
                }
            </Transition>
        }
        .into_any()
    };
    view! {
        <div class="chart-box-fill" node_ref=box_ref>
            <Show when=move || zoom.get().is_some()>
                <button type="button" class="button reset-zoom" on:click=move |_| zoom.set(None)>"Reset zoom"</button>
            </Show>
            {chart}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_points_than_pixels() {
        assert_eq!(points_for(1150.0), 1200);
        assert_eq!(points_for(1149.0), 1100);
        assert_eq!(points_for(90.0), 200);
        assert_eq!(points_for(9000.0), 2000);
    }
}
