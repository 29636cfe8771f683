//! The dashboard-wide time range: presets (15 m to 30 d) that follow now, or a custom from/to
//! in the browser's time zone. Presets are plain links, so they work without JavaScript.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use telemetry::dashboard::TimeRange;

use crate::logic::format;

/// The range a page's query asks for: `?range=6h`, or `?from=<ms>&to=<ms>`.
pub fn from_query(range: Option<String>, from: Option<String>, to: Option<String>) -> Option<TimeRange> {
    if let (Some(from), Some(to)) = (from.and_then(|f| f.parse().ok()), to.and_then(|t| t.parse().ok())) {
        return Some(TimeRange::Between { from, to });
    }
    TimeRange::preset(&range?)
}

/// Parses a `datetime-local` input value (browser local time) into UTC milliseconds.
#[cfg(feature = "hydrate")]
fn parse_local(value: &str) -> Option<i64> {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(value));
    let t = d.get_time();
    t.is_finite().then_some(t as i64)
}

#[component]
pub fn RangePicker(
    #[prop(into)] range: Signal<TimeRange>,
    #[prop(into)] local: Signal<bool>,
    base: String,
) -> impl IntoView {
    let custom_open = RwSignal::new(false);
    let from_input = NodeRef::<leptos::html::Input>::new();
    let to_input = NodeRef::<leptos::html::Input>::new();
    let navigate = use_navigate();
    let apply = {
        let base = base.clone();
        move |_| {
            #[cfg(feature = "hydrate")]
            {
                let value = |n: NodeRef<leptos::html::Input>| n.get().map(|i| i.value()).unwrap_or_default();
                if let (Some(from), Some(to)) =
                    (parse_local(&value(from_input)), parse_local(&value(to_input)))
                    && from < to
                {
                    navigate(&format!("{base}?from={from}&to={to}"), Default::default());
                    custom_open.set(false);
                }
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (&navigate, &base);
        }
    };
    let label = move || match range.get() {
        r @ TimeRange::Last { .. } => r.preset_key().map(|k| format!("Last {k}")).unwrap_or_default(),
        TimeRange::Between { from, to } => {
            format!("{} – {}", format::date_time(from, local.get()), format::date_time(to, local.get()))
        }
    };
    view! {
        <div class="range-picker" role="group" aria-label="Time range">
            {TimeRange::PRESETS
                .iter()
                .map(|(key, secs)| {
                    let secs = *secs;
                    let active = move || range.get() == TimeRange::Last { secs };
                    view! {
                        <a class="range" class:active=active href=format!("{base}?range={key}") data-range=*key>
                            {*key}
                        </a>
                    }
                })
                .collect_view()}
            <button type="button" class="range" class:active=move || !range.get().follows_now() on:click=move |_| custom_open.update(|o| *o = !*o)>
                "Custom"
            </button>
            <span class="range-label" data-follows=move || range.get().follows_now().to_string()>
                {label}
                {move || range.get().follows_now().then(|| view! { <span class="live-dot" title="Following now"></span> })}
            </span>
            <Show when=move || custom_open.get()>
                <div class="custom-range">
                    <label>"From " <input type="datetime-local" node_ref=from_input name="from"/></label>
                    <label>"To " <input type="datetime-local" node_ref=to_input name="to"/></label>
                    <button type="button" class="button" on:click=apply.clone()>"Apply"</button>
                </div>
            </Show>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_ranges() {
        assert_eq!(from_query(Some("6h".into()), None, None), Some(TimeRange::Last { secs: 21_600 }));
        assert_eq!(from_query(Some("2y".into()), None, None), None);
        assert_eq!(
            from_query(Some("6h".into()), Some("1000".into()), Some("2000".into())),
            Some(TimeRange::Between { from: 1000, to: 2000 })
        );
        assert_eq!(from_query(None, Some("x".into()), Some("2000".into())), None);
    }
}
