//! The alarm list's filters: status tabs (links) and a plain GET form for severity, device and
//! rule, so filtering works without JavaScript and every filtered list has an address.

use leptos::prelude::*;
use telemetry::alarm::{AlarmQuery, Rule, Severity};

use crate::logic::alarms::{STATUS_FILTERS, list_href, status_key};

#[component]
pub fn StatusTabs(#[prop(into)] query: Signal<AlarmQuery>) -> impl IntoView {
    view! {
        <nav class="tabs status-tabs" aria-label="Status">
            {STATUS_FILTERS
                .into_iter()
                .map(|(filter, key, label)| {
                    let href = move || list_href(&AlarmQuery { status: filter, ..query.get() });
                    let active = move || query.with(|q| q.status == filter);
                    view! {
                        <a href=href class:active=active aria-current=move || active().then_some("page") data-status=key>
                            {label}
                        </a>
                    }
                })
                .collect_view()}
        </nav>
    }
}

#[component]
pub fn FilterForm(query: AlarmQuery, rules: Vec<Rule>) -> impl IntoView {
    let q = query;
    let severity = q.severity;
    let rule = q.rule.clone().unwrap_or_default();
    view! {
        <form class="alarm-filters" method="get" action="/alarms">
            <input type="hidden" name="status" value=status_key(q.status)/>
            <label class="field">"Severity"
                <select name="severity">
                    <option value="" selected=severity.is_none()>"any"</option>
                    {Severity::ALL
                        .into_iter()
                        .rev()
                        .map(|s| view! { <option value=s.as_str() selected=severity == Some(s)>{s.as_str()}</option> })
                        .collect_view()}
                </select>
            </label>
            <label class="field">"Device"
                <input type="text" name="device" maxlength="64" placeholder="any" value=q.device.clone().unwrap_or_default()/>
            </label>
            <label class="field">"Rule"
                <select name="rule">
                    <option value="" selected=rule.is_empty()>"any"</option>
                    {rules
                        .into_iter()
                        .map(|r| {
                            let selected = r.id == rule;
                            view! { <option value=r.id selected=selected>{r.name}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <button class="button" type="submit">"Filter"</button>
            {(q.severity.is_some() || q.device.is_some() || q.rule.is_some()).then(|| view! {
                <a class="clear-filters" href=list_href(&AlarmQuery { status: q.status, ..AlarmQuery::default() })>"Clear filters"</a>
            })}
        </form>
    }
}
