//! The alarm list: one row per alarm, kept current by the live feed (and, offline, by the
//! alarms the browser remembered), and for those who may act a plain form around it: tick
//! alarms, then acknowledge, clear, shelve or unshelve them all.

use leptos::form::ActionForm;
use leptos::prelude::*;
use telemetry::alarm::{Alarm, AlarmQuery};

use super::labels::{SeverityLabel, StatusLabel, value_text};
use crate::api::{ActOnAlarms, AlarmList, BulkOutcome};
use crate::logic::{alarms, format};
use crate::state::live::Live;

#[component]
pub fn AlarmTable(
    list: AlarmList,
    query: AlarmQuery,
    can_act: bool,
    bulk: ServerAction<ActOnAlarms>,
) -> impl IntoView {
    let live = expect_context::<Live>();
    let local = Signal::derive(move || live.hydrated());
    let server_time = list.server_time;
    let rows = RwSignal::new(list.alarms);
    // What the live feed (or the offline cache) says: new alarms this list would show appear,
    // changed ones change, and ones it no longer admits (acknowledged elsewhere, say) go.
    Effect::new(move |_| {
        live.alarms.with(|known| {
            rows.maybe_update(|rows| {
                let mut changed = false;
                for a in known.values() {
                    changed |= alarms::fold(rows, &query, a);
                }
                changed
            })
        });
    });
    let empty = move || rows.with(Vec::is_empty);
    view! {
        <ActionForm action=bulk attr:class="alarm-bulk">
            {can_act.then(|| view! {
                <div class="bulk-actions" role="group" aria-label="Act on the ticked alarms">
                    <button class="button" type="submit" name="action" value="ack">"Acknowledge"</button>
                    <button class="button" type="submit" name="action" value="clear">"Clear"</button>
                    <button class="button" type="submit" name="action" value="shelve_1">"Shelve 1 h"</button>
                    <button class="button" type="submit" name="action" value="shelve_8">"Shelve 8 h"</button>
                    <button class="button" type="submit" name="action" value="shelve_24">"Shelve 24 h"</button>
                    <button class="button" type="submit" name="action" value="unshelve">"Unshelve"</button>
                </div>
            })}
            <BulkResult bulk/>
            <Show when=move || !empty() fallback=|| view! { <p class="empty alarms-empty">"No alarms here."</p> }>
                <div class="alarm-table-wrap">
                    <table class="alarm-table">
                        <thead>
                            <tr>
                                {can_act.then(|| view! { <th class="select"><span class="visually-hidden">"Select"</span></th> })}
                                <th>"Severity"</th>
                                <th>"Status"</th>
                                <th>"Rule"</th>
                                <th>"Device"</th>
                                <th>"Value"</th>
                                <th>"Started"</th>
                            </tr>
                        </thead>
                        <tbody>
                            <For
                                each=move || rows.get()
                                key=|a| (a.id.clone(), a.seq)
                                children=move |alarm| {
                                    // try_: a server render cut short (the browser went away) has disposed `live`.
                                    let now = live.now.try_get_untracked().flatten().unwrap_or(server_time);
                                    view! { <AlarmRow alarm can_act now local/> }
                                }
                            />
                        </tbody>
                    </table>
                </div>
            </Show>
        </ActionForm>
    }
}

#[component]
fn AlarmRow(alarm: Alarm, can_act: bool, now: telemetry::Millis, local: Signal<bool>) -> impl IntoView {
    let select = format!("Select {} on {}", alarm.rule_name, alarm.device);
    let href = format!("/alarms/{}", alarm.id);
    let device_href = format!("/device/{}", alarm.device);
    let started = alarm.started_at;
    view! {
        <tr data-alarm=alarm.id.clone() data-status=alarm.status().as_str() data-severity=alarm.severity.as_str()>
            {can_act.then(|| view! {
                <td class="select"><input type="checkbox" name="ids[]" value=alarm.id.clone() aria-label=select/></td>
            })}
            <td><SeverityLabel severity=alarm.severity/></td>
            <td class="status"><StatusLabel alarm=alarm.clone() now local/></td>
            <td><a class="alarm-link" href=href>{alarm.rule_name.clone()}</a></td>
            <td><a href=device_href><code class="device-id">{alarm.device.clone()}</code></a></td>
            <td class="value">{value_text(&alarm)}</td>
            <td><time datetime=format::iso(started)>{move || format::date_time(started, local.get())}</time></td>
        </tr>
    }
}

/// What the latest bulk action did (with JavaScript; a plain form comes back to the list).
#[component]
fn BulkResult(bulk: ServerAction<ActOnAlarms>) -> impl IntoView {
    move || {
        bulk.value().get().map(|result| match result {
            Ok(BulkOutcome { done, refused }) => {
                let done = match done.len() {
                    1 => "Done for 1 alarm.".to_owned(),
                    n => format!("Done for {n} alarms."),
                };
                view! {
                    <div class="bulk-result" role="status">
                        <p class="done">{done}</p>
                        {(!refused.is_empty()).then(|| view! {
                            <ul class="refused">
                                {refused.into_iter().map(|(id, why)| view! { <li><code>{id}</code>": "{why}</li> }).collect_view()}
                            </ul>
                        })}
                    </div>
                }
                .into_any()
            }
            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    }
}
