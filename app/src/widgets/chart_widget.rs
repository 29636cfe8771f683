//! Line chart widget: one series per chosen device and metric over the widget's time range.

use leptos::prelude::*;
use telemetry::dashboard::Widget;

use crate::board::Board;
use crate::dom::use_size;
use crate::format;
use crate::series::{SeriesData, use_series};
use crate::widgets::line_chart::{MultiChart, Series};

/// Most series one chart draws.
pub const MAX_SERIES: usize = 12;
/// Buckets per series: never more than the chart has pixels.
const POINTS: u32 = 600;

#[component]
pub fn ChartWidget(widget: Widget) -> impl IntoView {
    let board = expect_context::<Board>();
    let range = board.range_of(&widget);
    // The set of series changes only when devices come or go.
    let pairs = {
        let widget = widget.clone();
        Memo::new(move |_| {
            let metrics = board.metrics_of(&widget);
            let mut pairs: Vec<(String, String)> = board
                .devices_of(&widget)
                .into_iter()
                .flat_map(|d| metrics.iter().map(move |m| (d.clone(), m.clone())))
                .collect();
            pairs.truncate(MAX_SERIES);
            pairs
        })
    };
    let unit = widget.unit.clone();
    let box_ref = NodeRef::<leptos::html::Div>::new();
    let size = use_size(box_ref, (800.0, 240.0));
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
                (label, use_series(Signal::stored(d.clone()), Signal::stored(m.clone()), range, POINTS))
            })
            .collect();
        let unit = unit.clone().unwrap_or_else(|| format::unit_for(&pairs[0].1).to_owned());
        view! {
            <Transition fallback=|| view! { <p class="loading">"Loading chart…"</p> }>
                {
                    let sources = sources.clone();
                    let unit = unit.clone();
                    move || {
                        let sources = sources.clone();
                        let unit = unit.clone();
                        Suspend::new(async move {
                            let mut series = Vec::new();
                            for (label, data) in sources {
                                match data.history().await {
                                    Ok(history) => series.push(Series { label, history }),
                                    Err(e) => {
                                        return view! { <p class="error" role="alert">"Cannot load history: " {e.to_string()}</p> }.into_any();
                                    }
                                }
                            }
                            // The legend takes a line below the plot.
                            let (w, h) = size.get();
                            let h = if series.len() > 1 { h - 24.0 } else { h };
                            view! { <MultiChart series unit local=board.local size=(w, h)/> }.into_any()
                        })
                    }
                }
            </Transition>
        }
        .into_any()
    };
    view! { <div class="chart-box-fill" node_ref=box_ref>{chart}</div> }
}
