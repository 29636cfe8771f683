//! The rule editor: one plain form for every kind of rule (threshold with up to four levels
//! and a clear level, no data, offline, and the fleet-health kinds: no data for N × the
//! device's interval, reboot loop, firmware apart from the fleet's), its timing, the devices it watches and the channels it
//! notifies. Without JavaScript every field shows and the kind picks which count; once the
//! page is live, only the kind's fields show. The backtest buttons try the form as it stands.

use leptos::form::ActionForm;
use leptos::prelude::*;
use telemetry::alarm::{MAX_RULE_NAME, Severity};
use telemetry::notify::ChannelInfo;

use super::backtest::BacktestButtons;
use crate::api::SaveRule;
use crate::logic::rule_form::{KINDS, LevelForm, OPS, RuleForm, parse_op};
use crate::state::live::Live;

#[component]
pub fn RuleEditor(form: RuleForm, channels: Vec<ChannelInfo>, save: ServerAction<SaveRule>) -> impl IntoView {
    let live = expect_context::<Live>();
    let hydrated = move || live.hydrated();
    let kind = RwSignal::new(form.kind.clone());
    let band = RwSignal::new(parse_op(&form.op).is_some_and(|op| op.is_band()));
    // Only the kind's fields, once the page is live (without JavaScript, all of them).
    let hide_unless = move |k: &'static str| move || hydrated() && kind.get() != k;
    let form_ref = NodeRef::<leptos::html::Form>::new();
    let heading =
        if form.id.is_empty() { "New rule".to_owned() } else { format!("Edit rule “{}”", form.name) };
    let is_new = form.id.is_empty();
    let text = |name: &'static str, value: &str| {
        view! { <input type="text" name=format!("rule[{name}]") value=value.to_owned() autocomplete="off"/> }
    };
    view! {
        <section class="rule-editor" id="rule-editor" aria-labelledby="rule-editor-heading">
            <h2 id="rule-editor-heading">{heading}</h2>
            {(!is_new).then(|| view! { <p><a href="/alarms/rules#rule-editor">"New rule instead"</a></p> })}
            <ActionForm action=save node_ref=form_ref attr:class="admin-form rule-form">
                <input type="hidden" name="rule[id]" value=form.id.clone()/>
                <div class="field-row">
                    <label class="field">"Name"
                        <input type="text" name="rule[name]" required maxlength=MAX_RULE_NAME value=form.name.clone()/>
                    </label>
                    <label class="field">"Kind"
                        <select name="rule[kind]" on:change=move |e| kind.set(event_target_value(&e))>
                            {KINDS
                                .into_iter()
                                .map(|(key, label)| view! { <option value=key selected=form.kind == key>{label}</option> })
                                .collect_view()}
                        </select>
                    </label>
                    <label class="choice enabled">
                        <input type="checkbox" name="rule[enabled]" value="on" checked=form.enabled.is_some()/>
                        "Enabled"
                    </label>
                </div>
                <label class="field">"Devices (ids separated by commas; empty: every device)"
                    <input type="text" name="rule[devices]" value=form.devices.clone() placeholder="every device" autocomplete="off"/>
                </label>
                <label class="field">"Scope (a fleet query: tag:site=greenhouse, group:greenhouse; empty: every device)"
                    <input type="text" name="rule[scope]" value=form.scope.clone() maxlength=telemetry::query::MAX_QUERY_LEN.to_string() placeholder="every device" autocomplete="off" spellcheck="false"/>
                </label>
                <label class="field" hidden=hide_unless_either(hydrated, kind)>"Metric (a no-data rule without one watches any)"
                    {text("metric", &form.metric)}
                </label>
                <fieldset class="field threshold-fields" hidden=hide_unless("threshold")>
                    <legend>"Threshold"</legend>
                    <label class="field">"Alarm when the metric is"
                        <select name="rule[op]" on:change=move |e| band.set(parse_op(&event_target_value(&e)).is_some_and(|op| op.is_band()))>
                            {OPS
                                .into_iter()
                                .map(|(op, label)| view! { <option value=op.as_str() selected=form.op == op.as_str()>{label}</option> })
                                .collect_view()}
                        </select>
                    </label>
                    <table class="levels">
                        <thead>
                            <tr>
                                <th>"Severity"</th>
                                <th>"Value"</th>
                                <th hidden=move || hydrated() && !band.get()>"Band's upper end"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {form
                                .levels
                                .iter()
                                .enumerate()
                                .map(|(i, row)| view! { <LevelRow i row=row.clone() band hydrated=Signal::derive(hydrated)/> })
                                .collect_view()}
                        </tbody>
                    </table>
                    <p class="hint">"Up to four levels; leave a value empty to leave the level out. The highest level breached is the alarm's severity."</p>
                    <div class="field-row">
                        <label class="field">"Clear level (empty: below the lowest level)"
                            {text("clear", &form.clear)}
                        </label>
                        <label class="field" hidden=move || hydrated() && !band.get()>"Clear level's upper end (bands)"
                            {text("clear_high", &form.clear_high)}
                        </label>
                    </div>
                </fieldset>
                <fieldset class="field quiet-fields" hidden=move || hydrated() && kind.get() == "threshold">
                    <legend>"No data, offline and fleet health"</legend>
                    <div class="field-row">
                        <label class="field" hidden=move || hydrated() && matches!(kind.get().as_str(), "overdue" | "firmware_drift")>
                            "After (e.g. 5m); a reboot loop's window (e.g. 1h)" {text("after", &form.after)}
                        </label>
                        <label class="field" hidden=move || hydrated() && !matches!(kind.get().as_str(), "overdue" | "reboot_loop")>
                            "Count: expected intervals without data, or reboots within the window" {text("count", &form.count)}
                        </label>
                        <label class="field" hidden=move || hydrated() && kind.get() != "firmware_drift">
                            "Compare among devices with the same tag (a tag key, e.g. site; empty: all it watches)" {text("tag", &form.tag)}
                        </label>
                        <label class="field">"Severity"
                            <select name="rule[severity]">
                                {Severity::ALL
                                    .into_iter()
                                    .rev()
                                    .map(|s| view! { <option value=s.as_str() selected=form.severity == s.as_str()>{s.as_str()}</option> })
                                    .collect_view()}
                            </select>
                        </label>
                    </div>
                </fieldset>
                <fieldset class="field timing-fields">
                    <legend>"Timing (30s, 5m, 2h, 1d)"</legend>
                    <div class="field-row">
                        <label class="field">"For (pending)" {text("pending", &form.pending)}</label>
                        <label class="field" hidden=move || hydrated() && !matches!(kind.get().as_str(), "threshold" | "reboot_loop" | "firmware_drift")>"Clear for" {text("clear_for", &form.clear_for)}</label>
                        <label class="field" hidden=hide_unless("threshold")>"Minimum samples" {text("min_samples", &form.min_samples)}</label>
                        <label class="field">"Remind every (empty: never)" {text("remind", &form.remind)}</label>
                        <label class="field">"Flapping window" {text("flap_window", &form.flap_window)}</label>
                    </div>
                </fieldset>
                <fieldset class="field channel-fields">
                    <legend>"Notify"</legend>
                    {if channels.is_empty() {
                        view! { <p class="muted">"No channels yet (below): alarms show in the app only."</p> }.into_any()
                    } else {
                        channels
                            .into_iter()
                            .map(|c| {
                                let checked = form.channels.contains(&c.id);
                                view! {
                                    <label class="choice">
                                        <input type="checkbox" name="rule[channels][]" value=c.id.clone() checked=checked/>
                                        {c.name} <span class="muted">{format!(" ({})", c.kind)}</span>
                                    </label>
                                }
                            })
                            .collect_view()
                            .into_any()
                    }}
                </fieldset>
                <div class="form-actions">
                    <button class="button primary" type="submit">{if is_new { "Create rule" } else { "Save rule" }}</button>
                </div>
                <SaveResult save/>
            </ActionForm>
            <BacktestButtons form=form_ref/>
        </section>
    }
}

/// The metric field serves threshold and no-data rules.
fn hide_unless_either(
    hydrated: impl Fn() -> bool + Copy + 'static,
    kind: RwSignal<String>,
) -> impl Fn() -> bool {
    move || hydrated() && !matches!(kind.get().as_str(), "threshold" | "no_data")
}

#[component]
fn LevelRow(i: usize, row: LevelForm, band: RwSignal<bool>, hydrated: Signal<bool>) -> impl IntoView {
    let name = |field: &str| format!("rule[levels][{i}][{field}]");
    view! {
        <tr class="level">
            <td>
                <select name=name("severity") aria-label=format!("Level {} severity", i + 1)>
                    {Severity::ALL
                        .into_iter()
                        .rev()
                        .map(|s| view! { <option value=s.as_str() selected=row.severity == s.as_str()>{s.as_str()}</option> })
                        .collect_view()}
                </select>
            </td>
            <td><input type="text" inputmode="decimal" name=name("value") value=row.value aria-label=format!("Level {} value", i + 1)/></td>
            <td hidden=move || hydrated.get() && !band.get()>
                <input type="text" inputmode="decimal" name=name("high") value=row.high aria-label=format!("Level {} upper end", i + 1)/>
            </td>
        </tr>
    }
}

#[component]
fn SaveResult(save: ServerAction<SaveRule>) -> impl IntoView {
    move || {
        save.value().get().map(|result| match result {
            Ok(rule) => view! { <p class="done" role="status">{format!("Rule “{}” saved.", rule.name)}</p> }
                .into_any(),
            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    }
}
