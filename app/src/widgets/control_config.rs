//! The widget editor's section for a control: what it drives (a command method with the params
//! key its value goes under and the metric that shows the device's state, or a desired-state
//! key), a number's range and step, a select's options, a button's value, the command timeout,
//! and whether it may queue while the device is offline. Each edit updates the draft widget's
//! control ([`ControlDraft`]); what does not hold is said under the fields.

use leptos::prelude::*;
use telemetry::command::MAX_TIMEOUT_SECS;
use telemetry::dashboard::{Widget, WidgetKind};

use crate::logic::control_form::ControlDraft;

#[component]
pub fn ControlSettings(draft: RwSignal<Widget>, kind: WidgetKind) -> impl IntoView {
    let fields = RwSignal::new(draft.with_untracked(|w| ControlDraft::of(w.control.as_ref())));
    let problem = Memo::new(move |_| fields.with(|f| f.control(kind).err()));
    Effect::new(move |_| {
        let control = fields.with(|f| f.control(kind).ok().flatten());
        draft.update(|w| w.control = control);
    });
    let text = move |get: fn(&ControlDraft) -> String| move || fields.with(get);
    let to_desired = move || fields.with(|f| f.to_desired);
    let parse_num = |s: String| s.trim().parse::<f64>().ok().filter(|v| v.is_finite());
    view! {
        <fieldset class="field control-settings">
            <legend>"Drives"</legend>
            <label class="choice">
                <input type="radio" name="binding" value="command" prop:checked=move || !to_desired() on:change=move |_| fields.update(|f| f.to_desired = false)/>
                "A command"
            </label>
            <label class="choice">
                <input type="radio" name="binding" value="desired" prop:checked=to_desired on:change=move |_| fields.update(|f| f.to_desired = true)/>
                "A desired-state key"
            </label>
            <Show when=move || !to_desired()>
                <div class="field-row">
                    <label class="field">
                        "Method"
                        <input type="text" name="method" maxlength="64" placeholder="set_relay" autocomplete="off"
                            prop:value=text(|f| f.method.clone()) on:input=move |e| fields.update(|f| f.method = event_target_value(&e))/>
                    </label>
                    <label class="field">
                        {if kind == WidgetKind::Button { "Params key (optional)" } else { "Params key" }}
                        <input type="text" name="params_key" maxlength="64" placeholder="on" autocomplete="off"
                            prop:value=text(|f| f.key.clone()) on:input=move |e| fields.update(|f| f.key = event_target_value(&e))/>
                    </label>
                    <label class="field">
                        "State metric (optional)"
                        <input type="text" name="state_metric" maxlength="64" placeholder="relay" autocomplete="off"
                            prop:value=text(|f| f.metric.clone()) on:input=move |e| fields.update(|f| f.metric = event_target_value(&e))/>
                    </label>
                    <label class="field">
                        "Answer within (s)"
                        <input type="number" name="timeout_secs" min="1" max=MAX_TIMEOUT_SECS.to_string() placeholder="30"
                            prop:value=text(|f| f.timeout_secs.clone()) on:input=move |e| fields.update(|f| f.timeout_secs = event_target_value(&e))/>
                    </label>
                </div>
            </Show>
            <Show when=to_desired>
                <label class="field">
                    "Desired key"
                    <input type="text" name="desired_key" maxlength="64" placeholder="relay" autocomplete="off"
                        prop:value=text(|f| f.key.clone()) on:input=move |e| fields.update(|f| f.key = event_target_value(&e))/>
                </label>
            </Show>
            {(kind == WidgetKind::Number).then(|| view! {
                <div class="field-row">
                    <label class="field">
                        "Min"
                        <input type="number" name="min" step="any"
                            prop:value=move || draft.with(|w| w.min.map(|v| v.to_string()).unwrap_or_default())
                            on:input=move |e| draft.update(|w| w.min = parse_num(event_target_value(&e)))/>
                    </label>
                    <label class="field">
                        "Max"
                        <input type="number" name="max" step="any"
                            prop:value=move || draft.with(|w| w.max.map(|v| v.to_string()).unwrap_or_default())
                            on:input=move |e| draft.update(|w| w.max = parse_num(event_target_value(&e)))/>
                    </label>
                    <label class="field">
                        "Step"
                        <input type="number" name="step" step="any" min="0"
                            prop:value=text(|f| f.step.clone()) on:input=move |e| fields.update(|f| f.step = event_target_value(&e))/>
                    </label>
                </div>
            })}
            {(kind == WidgetKind::Select).then(|| view! {
                <label class="field">
                    "Options (one per line: label=value)"
                    <textarea name="options" rows="4" maxlength="2000" placeholder="Eco=eco\nBoost=boost"
                        prop:value=text(|f| f.options.clone()) on:input=move |e| fields.update(|f| f.options = event_target_value(&e))></textarea>
                </label>
            })}
            {(kind == WidgetKind::Button).then(|| view! {
                <label class="field">
                    "Value sent (optional; true if empty)"
                    <input type="text" name="press" maxlength="256"
                        prop:value=text(|f| f.press.clone()) on:input=move |e| fields.update(|f| f.press = event_target_value(&e))/>
                </label>
            })}
            <label class="choice">
                <input type="checkbox" name="queue_offline" prop:checked=move || fields.with(|f| f.queue_offline)
                    on:change=move |e| fields.update(|f| f.queue_offline = event_target_checked(&e))/>
                "Queue while the device is offline"
            </label>
            {move || problem.get().map(|why| view! { <span class="error" role="alert">{why}</span> })}
        </fieldset>
    }
}
