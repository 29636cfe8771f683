//! The dialog that configures a widget: title, devices (and a fleet query they must match),
//! metrics, unit, decimals, min/max, thresholds with colours, and its own time range; for a
//! control, its one device and what it drives ([`ControlSettings`]).

use leptos::prelude::*;
use telemetry::dashboard::{Threshold, TimeRange, Widget, WidgetKind};

use crate::logic::format;
use crate::state::board::Board;
use crate::widgets::control_config::ControlSettings;
use crate::widgets::icon::{Icon, Lucide};

fn parse_opt(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() { None } else { s.parse().ok().filter(|v: &f64| v.is_finite()) }
}

#[component]
pub fn WidgetConfig(
    widget: Widget,
    /// Called with the edited widget on Save.
    on_save: Callback<Widget>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let board = expect_context::<Board>();
    let draft = RwSignal::new(widget.clone());
    let devices = Memo::new(move |_| board.devices.with(|d| d.keys().cloned().collect::<Vec<_>>()));
    let metrics = Memo::new(move |_| board.all_metrics());
    let control = widget.kind.is_control();
    let single = control || matches!(widget.kind, WidgetKind::Gauge | WidgetKind::Stat);
    let uses_metrics = !control && !matches!(widget.kind, WidgetKind::StatusList | WidgetKind::AlarmList);

    let toggle = move |list: fn(&mut Widget) -> &mut Vec<String>, name: String, single: bool| {
        move |_| {
            draft.update(|w| {
                let l = list(w);
                if let Some(i) = l.iter().position(|x| *x == name) {
                    l.remove(i);
                } else if single {
                    *l = vec![name.clone()];
                } else {
                    l.push(name.clone());
                }
            })
        }
    };
    let text = move |f: fn(&Widget) -> String| move || draft.with(f);

    view! {
        <div class="dialog-backdrop" on:click=move |_| on_cancel.run(())></div>
        <div class="dialog" role="dialog" aria-modal="true" aria-label="Configure widget">
            <h2>"Configure " {widget.kind.label()}</h2>
            <label class="field">
                "Title"
                <input
                    type="text"
                    name="title"
                    maxlength="100"
                    prop:value=text(|w| w.title.clone())
                    on:input=move |e| draft.update(|w| w.title = event_target_value(&e))
                />
            </label>
            <fieldset class="field">
                <legend>{if single { "Device" } else { "Devices (none chosen: every device)" }}</legend>
                <div class="choices">
                    {move || {
                        devices
                            .get()
                            .into_iter()
                            .map(|d| {
                                let checked = {
                                    let d = d.clone();
                                    move || draft.with(|w| w.devices.contains(&d))
                                };
                                view! {
                                    <label class="choice">
                                        <input type="checkbox" name="device" value=d.clone() prop:checked=checked on:change=toggle(|w| &mut w.devices, d.clone(), single)/>
                                        {d.clone()}
                                    </label>
                                }
                            })
                            .collect_view()
                    }}
                </div>
            </fieldset>
            {control.then(|| view! { <ControlSettings draft kind=widget.kind/> })}
            <Show when=move || !control>
            <label class="field">
                "Only devices matching a fleet query (tag:site=greenhouse, group:north; empty: no filter)"
                <input
                    type="text"
                    name="query"
                    maxlength=telemetry::query::MAX_QUERY_LEN.to_string()
                    autocomplete="off"
                    spellcheck="false"
                    prop:value=text(|w| w.query.clone().unwrap_or_default())
                    on:input=move |e| {
                        let q = event_target_value(&e);
                        draft.update(|w| w.query = Some(q.trim().to_owned()).filter(|q| !q.is_empty()))
                    }
                />
                {move || {
                    draft
                        .with(|w| w.query.as_deref().map(telemetry::query::Query::parse))
                        .and_then(Result::err)
                        .map(|e| view! { <span class="error" role="alert">{e.to_string()}</span> })
                }}
            </label>
            </Show>
            <Show when=move || uses_metrics>
                <fieldset class="field">
                    <legend>{if single { "Metric" } else { "Metrics" }}</legend>
                    <div class="choices">
                        {move || {
                            metrics
                                .get()
                                .into_iter()
                                .map(|m| {
                                    let checked = {
                                        let m = m.clone();
                                        move || draft.with(|w| w.metrics.contains(&m))
                                    };
                                    view! {
                                        <label class="choice">
                                            <input type="checkbox" name="metric" value=m.clone() prop:checked=checked on:change=toggle(|w| &mut w.metrics, m.clone(), single)/>
                                            {m.clone()}
                                        </label>
                                    }
                                })
                                .collect_view()
                        }}
                    </div>
                </fieldset>
                <div class="field-row">
                    <label class="field">
                        "Unit"
                        <input
                            type="text"
                            name="unit"
                            maxlength="16"
                            placeholder=move || draft.with(|w| w.metrics.first().map(|m| format::unit_for(m).to_owned()).unwrap_or_default())
                            prop:value=text(|w| w.unit.clone().unwrap_or_default())
                            on:input=move |e| draft.update(|w| w.unit = Some(event_target_value(&e)).filter(|u| !u.trim().is_empty()))
                        />
                    </label>
                    <label class="field">
                        "Decimals"
                        <input
                            type="number"
                            name="decimals"
                            min="0"
                            max="6"
                            prop:value=text(|w| w.decimals.map(|d| d.to_string()).unwrap_or_default())
                            on:input=move |e| draft.update(|w| w.decimals = event_target_value(&e).parse().ok().map(|d: u8| d.min(6)))
                        />
                    </label>
                    <label class="field">
                        "Min"
                        <input
                            type="number"
                            name="min"
                            step="any"
                            prop:value=text(|w| w.min.map(|v| v.to_string()).unwrap_or_default())
                            on:input=move |e| draft.update(|w| w.min = parse_opt(&event_target_value(&e)))
                        />
                    </label>
                    <label class="field">
                        "Max"
                        <input
                            type="number"
                            name="max"
                            step="any"
                            prop:value=text(|w| w.max.map(|v| v.to_string()).unwrap_or_default())
                            on:input=move |e| draft.update(|w| w.max = parse_opt(&event_target_value(&e)))
                        />
                    </label>
                </div>
                <fieldset class="field">
                    <legend>"Thresholds (a value at or above one takes its colour)"</legend>
                    {move || {
                        draft
                            .with(|w| w.thresholds.clone())
                            .into_iter()
                            .enumerate()
                            .map(|(i, t)| {
                                view! {
                                    <div class="threshold" data-index=i>
                                        <input
                                            type="number"
                                            step="any"
                                            name="threshold-value"
                                            aria-label="Threshold value"
                                            prop:value=t.value.to_string()
                                            on:change=move |e| {
                                                if let Some(v) = parse_opt(&event_target_value(&e)) {
                                                    draft.update(|w| {
                                                        w.thresholds[i].value = v;
                                                        w.thresholds.sort_by(|a, b| a.value.total_cmp(&b.value));
                                                    })
                                                }
                                            }
                                        />
                                        <input
                                            type="color"
                                            name="threshold-color"
                                            aria-label="Threshold colour"
                                            prop:value=t.color.clone()
                                            on:input=move |e| draft.update(|w| w.thresholds[i].color = event_target_value(&e))
                                        />
                                        <button type="button" class="icon-button" aria-label="Remove threshold" title="Remove threshold" on:click=move |_| draft.update(|w| {
                                            w.thresholds.remove(i);
                                        })><Icon icon=Lucide::X/></button>
                                    </div>
                                }
                            })
                            .collect_view()
                    }}
                    <button type="button" class="button" on:click=move |_| draft.update(|w| {
                        let next = w.thresholds.last().map(|t| t.value + 10.0).unwrap_or(0.0);
                        w.thresholds.push(Threshold { value: next, color: "#d97706".into() });
                    })>"Add threshold"</button>
                </fieldset>
                <label class="field">
                    "Time range"
                    <select
                        name="range"
                        on:change=move |e| {
                            let v = event_target_value(&e);
                            draft.update(|w| {
                                w.range = TimeRange::preset(&v)
                            })
                        }
                    >
                        <option value="" selected=move || draft.with(|w| w.range.is_none())>"The dashboard's"</option>
                        {TimeRange::PRESETS
                            .iter()
                            .map(|(key, secs)| {
                                let secs = *secs;
                                view! {
                                    <option value=*key selected=move || draft.with(|w| w.range == Some(TimeRange::Last { secs }))>
                                        {format!("Last {key}")}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                </label>
            </Show>
            <div class="dialog-actions">
                <button type="button" class="button" on:click=move |_| on_cancel.run(())>"Cancel"</button>
                <button type="button" class="button primary" on:click=move |_| on_save.run(draft.get_untracked())>"Save"</button>
            </div>
        </div>
    }
}
