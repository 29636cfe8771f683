//! A chart that is server-rendered SVG first and, once the page is live and uPlot is loaded,
//! an interactive canvas chart (tooltip, drag to zoom) updated in place as readings arrive,
//! with its guide lines and alarm bands (elements over the canvas).

use leptos::prelude::*;

use super::line_chart::MultiChart;
#[cfg(feature = "hydrate")]
use crate::logic::chart_data::spec;
use crate::logic::chart_data::{AlarmBand, Guide, PALETTE, Series};

#[cfg(feature = "hydrate")]
mod js {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = iotCharts, catch)]
        pub fn available() -> Result<bool, JsValue>;
        #[wasm_bindgen(js_namespace = iotCharts, catch)]
        pub fn mount(
            el: &web_sys::HtmlElement,
            spec: &str,
            on_zoom: &js_sys::Function,
        ) -> Result<u32, JsValue>;
        #[wasm_bindgen(js_namespace = iotCharts)]
        pub fn update(id: u32, spec: &str) -> bool;
        #[wasm_bindgen(js_namespace = iotCharts)]
        pub fn destroy(id: u32);
    }
}

/// Whether the browser can draw interactive charts (after hydration only).
pub fn interactive() -> bool {
    #[cfg(feature = "hydrate")]
    {
        js::available().unwrap_or(false)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        false
    }
}

/// The narrowest range a drag zooms to, in milliseconds: narrower drags are ignored.
pub const MIN_ZOOM_MS: i64 = 1000;

#[component]
pub fn InteractiveChart(
    /// Every series, current.
    #[prop(into)]
    series: Signal<Vec<Series>>,
    /// Every series as fetched (and server-rendered), without later readings.
    #[prop(into)]
    fetched: Signal<Vec<Series>>,
    unit: String,
    decimals: Option<u8>,
    #[prop(into)] local: Signal<bool>,
    /// The measured size of the chart's box (for the SVG fallback).
    #[prop(into)]
    size: Signal<(f64, f64)>,
    /// Called with (from, to) in milliseconds when the user drags across a range.
    on_zoom: Callback<(i64, i64)>,
    /// Horizontal lines at fixed values (alarm rules' trip and clear levels).
    #[prop(optional, into)]
    guides: Signal<Vec<Guide>>,
    /// Times shaded (when alarms were active), following the live feed.
    #[prop(optional, into)]
    bands: Signal<Vec<AlarmBand>>,
    /// Whether the range follows now: an active alarm's band then reaches now.
    #[prop(optional, into)]
    follows_now: Signal<bool>,
) -> impl IntoView {
    let enhanced = RwSignal::new(false);
    // Until hydration is over, the SVG shows exactly what the server rendered; after that it
    // (or the interactive chart) follows the readings.
    let settled = RwSignal::new(false);
    Effect::new(move |_| {
        if interactive() {
            enhanced.set(true);
        }
        request_animation_frame(move || settled.set(true));
    });
    let host = NodeRef::<leptos::html::Div>::new();
    let labels = move || series.with(|s| s.iter().map(|s| s.label.clone()).collect::<Vec<_>>());

    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;
        let chart: StoredValue<Option<u32>> = StoredValue::new(None);
        let unit = unit.clone();
        Effect::new(move |_| {
            if !enhanced.get() {
                return;
            }
            let Some(el) = host.get() else { return };
            let json = series.with(|s| {
                let mut spec = spec(s, &unit, decimals);
                spec.guides = guides.get();
                spec.alarm_bands = bands.get();
                if follows_now.get() {
                    spec.to = spec.to.max(js_sys::Date::now() as i64);
                }
                serde_json::to_string(&spec).unwrap_or_default()
            });
            if let Some(id) = chart.get_value() {
                if js::update(id, &json) {
                    return;
                }
                js::destroy(id);
            }
            let zoom = Closure::<dyn FnMut(f64, f64)>::new(move |from: f64, to: f64| {
                on_zoom.run((from as i64, to as i64))
            });
            let el: &web_sys::HtmlElement = el.unchecked_ref();
            if let Ok(id) = js::mount(el, &json, zoom.as_ref().unchecked_ref()) {
                chart.set_value(Some(id));
            }
            zoom.forget();
        });
        on_cleanup(move || {
            if let Some(id) = chart.get_value() {
                js::destroy(id);
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (decimals, on_zoom, follows_now);

    view! {
        <Show
            when=move || enhanced.get()
            fallback={
                let unit = unit.clone();
                move || {
                    let shown = if settled.get() { series.get() } else { fetched.get() };
                    view! { <MultiChart series=shown unit=unit.clone() local size=size.get() guides=guides.get() bands=bands.get()/> }
                }
            }
        >
            <div class="chart-interactive">
                <div
                    class="uplot-host"
                    node_ref=host
                    data-points=move || series.with(|s| s.iter().map(|s| s.history.buckets.len()).sum::<usize>())
                    data-readings=move || series.with(|s| s.iter().map(|s| s.history.readings()).sum::<u64>())
                ></div>
                {move || {
                    let labels = labels();
                    (labels.len() > 1).then(|| view! {
                        <ul class="legend">
                            {labels
                                .into_iter()
                                .enumerate()
                                .map(|(i, l)| view! {
                                    <li><span class="swatch" style=format!("background:{}", PALETTE[i % PALETTE.len()])></span>{l}</li>
                                })
                                .collect_view()}
                        </ul>
                    })
                }}
            </div>
        </Show>
    }
}
