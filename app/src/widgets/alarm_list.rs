//! Alarm list widget: the active alarms of its devices (every device when none are chosen),
//! newest first, with severity, rule, device and age, each linking to its page; kept current
//! by the live feed (and, offline, by the alarms the browser remembered).

use leptos::prelude::*;
use telemetry::alarm::{Alarm, AlarmQuery, StatusFilter};
use telemetry::dashboard::Widget;

use crate::api::list_alarms;
use crate::logic::{alarms, format};
use crate::state::board::Board;
use crate::state::live::Live;

#[component]
pub fn AlarmListWidget(widget: Widget) -> impl IntoView {
    let list = Resource::new(|| (), |_| list_alarms(Some(StatusFilter::Active), None, None, None));
    // A fleet query narrows it to the devices it matches as the page opens ("" when none: an
    // id no device has, since an empty list means every device).
    let devices = match widget.query {
        Some(_) => {
            let ids = expect_context::<Board>().devices_of(&widget);
            if ids.is_empty() { vec![String::new()] } else { ids }
        }
        None => widget.devices,
    };
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading alarms…"</p> }>
            {move || {
                let devices = devices.clone();
                Suspend::new(async move {
                    match list.await {
                        Ok(list) => view! { <Rows alarms=list.alarms devices/> }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">"Cannot load alarms: " {e.to_string()}</p> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
}

#[component]
fn Rows(alarms: Vec<Alarm>, devices: Vec<String>) -> impl IntoView {
    let board = expect_context::<Board>();
    let live = expect_context::<Live>();
    let rows = RwSignal::new(alarms);
    let query = AlarmQuery { status: StatusFilter::Active, ..AlarmQuery::default() };
    // The live feed's (or, offline, the cache's) news of each alarm.
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
    let shown = move || {
        rows.with(|rows| {
            rows.iter()
                .filter(|a| devices.is_empty() || devices.contains(&a.device))
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    view! {
        {move || {
            let shown = shown();
            if shown.is_empty() {
                return view! { <p class="widget-empty">"No active alarms."</p> }.into_any();
            }
            view! {
                <ul class="alarm-list">
                    {shown
                        .into_iter()
                        .map(|a| {
                            let started = a.started_at;
                            view! {
                                <li data-alarm=a.id.clone() data-status=a.status().as_str()>
                                    <span class="severity" data-severity=a.severity.as_str()>{a.severity.as_str()}</span>
                                    <a href=format!("/alarms/{}", a.id)>{format!("{} on {}", a.rule_name, a.device)}</a>
                                    {a.acked.then(|| view! { <span class="muted">"acknowledged"</span> })}
                                    <span class="muted">{move || format::age(board.now.get(), started)}</span>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            }
            .into_any()
        }}
    }
}
