//! A control's input, by kind: a switch (`role="switch"`, showing the device's actual state),
//! a button, a number (a slider when it has both bounds, and a box, set with Set or Enter) and
//! a select of fixed options. Each shows what the device has, and hands what the user chose
//! to `operate`; none changes what it shows by itself.

use leptos::prelude::*;
use serde_json::Value;
use telemetry::control::{Binding, Control, number};
use telemetry::dashboard::{Widget, WidgetKind};

use crate::logic::control::{is_on, text};
use crate::logic::format;

#[component]
pub fn ControlInput(
    widget: Widget,
    control: Control,
    /// The device's actual value (`None`: not known).
    value: Signal<Option<Value>>,
    /// Why it cannot be used now (its tooltip), if it cannot.
    disabled: Signal<Option<String>>,
    operate: Callback<Value>,
) -> impl IntoView {
    let off = move || disabled.get().is_some();
    let tip = move || disabled.get().unwrap_or_default();
    match widget.kind {
        WidgetKind::Switch => {
            let on = move || value.with(|v| v.as_ref().is_some_and(is_on));
            let state = move || match value.get() {
                None => "Unknown",
                Some(v) if is_on(&v) => "On",
                Some(_) => "Off",
            };
            view! {
                <button
                    type="button"
                    role="switch"
                    class="switch"
                    aria-label=widget.title.clone()
                    aria-checked=move || on().to_string()
                    disabled=off
                    title=tip
                    on:click=move |_| operate.run(Value::Bool(!on()))
                >
                    <span class="switch-track" aria-hidden="true"><span class="switch-thumb"></span></span>
                    <span class="switch-state">{state}</span>
                </button>
            }
            .into_any()
        }
        WidgetKind::Button => {
            let label = match &control.binding {
                Binding::Command { method, .. } => method.clone(),
                Binding::Desired { key } => format!("Set {key}"),
            };
            view! {
                <button type="button" class="button primary control-press" disabled=off title=tip on:click=move |_| operate.run(Value::Null)>
                    {label}
                </button>
            }
            .into_any()
        }
        WidgetKind::Number => number_input(widget, control, value, disabled, operate).into_any(),
        WidgetKind::Select => {
            let options = StoredValue::new(control.options.clone());
            let current = move || value.get().map(|v| text(&v)).unwrap_or_else(|| "unknown".into());
            // The device's option, set again whenever the control is enabled or disabled, so a
            // choice shows only once the device has it (a pending or failed one goes back).
            let shown_index = move || {
                disabled.track();
                value
                    .with(|v| options.with_value(|o| o.iter().position(|c| Some(&c.value) == v.as_ref())))
                    .map(|i| i.to_string())
                    .unwrap_or_default()
            };
            view! {
                <label class="field control-select">
                    <span class="visually-hidden">{widget.title.clone()}</span>
                    <select
                        disabled=off
                        title=tip
                        prop:value=shown_index
                        on:change=move |e| {
                            let i: usize = event_target_value(&e).parse().unwrap_or(usize::MAX);
                            if let Some(choice) = options.with_value(|o| o.get(i).cloned()) {
                                operate.run(choice.value);
                            }
                        }
                    >
                        <option value="" selected=move || value.with(|v| options.with_value(|o| !o.iter().any(|c| Some(&c.value) == v.as_ref())))>
                            "Choose…"
                        </option>
                        {control
                            .options
                            .iter()
                            .enumerate()
                            .map(|(i, c)| {
                                let own = c.value.clone();
                                view! {
                                    <option value=i.to_string() selected=move || value.with(|v| v.as_ref() == Some(&own))>
                                        {c.label.clone()}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                </label>
                <p class="control-now">"Device: " {current}</p>
            }
            .into_any()
        }
        _ => view! { <p class="widget-empty">"Not a control."</p> }.into_any(),
    }
}

fn number_input(
    widget: Widget,
    control: Control,
    value: Signal<Option<Value>>,
    disabled: Signal<Option<String>>,
    operate: Callback<Value>,
) -> impl IntoView {
    let off = move || disabled.get().is_some();
    let tip = move || disabled.get().unwrap_or_default();
    let step = control.step.map_or_else(|| "any".to_owned(), |s| s.to_string());
    let (min, max) = (widget.min, widget.max);
    let bound = |b: Option<f64>| b.map(|b| b.to_string()).unwrap_or_default();
    // What the user is about to set; starts at (and follows, until edited) the device's value.
    let draft: RwSignal<Option<f64>> = RwSignal::new(None);
    let actual = move || value.with(|v| v.as_ref().and_then(Value::as_f64));
    let shown = move || draft.get().or_else(actual).map(|x| x.to_string()).unwrap_or_default();
    let set = move || {
        if let Some(x) = draft.get_untracked().or_else(|| untrack(actual)) {
            draft.set(None);
            operate.run(number(x));
        }
    };
    let edit = move |e: leptos::ev::Event| {
        draft.set(event_target_value(&e).trim().parse().ok().filter(|x: &f64| x.is_finite()))
    };
    let unit = widget.unit.clone().unwrap_or_default();
    let decimals = widget.decimals;
    let now = move || match actual() {
        Some(x) => {
            let shown = decimals.map_or_else(|| format::compact(x), |d| format::value_with(x, Some(d)));
            format!("{shown} {unit}").trim_end().to_owned()
        }
        None => "unknown".into(),
    };
    view! {
        <div class="control-number">
            {(min.is_some() && max.is_some()).then(|| view! {
                <input
                    type="range"
                    aria-label=format!("{} (slider)", widget.title)
                    min=bound(min)
                    max=bound(max)
                    step=step.clone()
                    disabled=off
                    title=tip
                    prop:value=shown
                    on:input=edit
                />
            })}
            <input
                type="number"
                aria-label=widget.title.clone()
                min=bound(min)
                max=bound(max)
                step=step
                disabled=off
                title=tip
                prop:value=shown
                on:input=edit
                on:keydown=move |e| if e.key() == "Enter" { set() }
            />
            <button type="button" class="button" disabled=off title=tip on:click=move |_| set()>"Set"</button>
        </div>
        <p class="control-now">"Device: " {now}</p>
    }
}
