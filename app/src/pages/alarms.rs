//! `/alarms` and the pages under it, by what a person sees: the list ([`AlarmsPage`]: status
//! tabs and filters in the address, the table with bulk actions), one alarm
//! ([`AlarmPage`]: facts, chart, timeline, comments, actions) and the rules page
//! ([`RulesPage`]: rules and their editor with a backtest, channels, deliveries). Everyone
//! signed in sees them; the forms that act show for admins (and while the dashboard is open),
//! and work without JavaScript except where an answer is shown once (a webhook's secret, a
//! backtest).

mod alarm_actions;
mod alarm_chart;
mod alarm_table;
mod detail;
mod filters;
mod labels;
mod rules;
mod timeline;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use self::alarm_table::AlarmTable;
pub use self::detail::AlarmPage;
use self::filters::{FilterForm, StatusTabs};
pub use self::rules::RulesPage;
use crate::api::{ActOnAlarms, list_alarms, list_rules, whoami};
use crate::logic::alarms::query_from;

#[component]
pub fn AlarmsPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| {
        params.with(|p| {
            query_from(p.get_str("status"), p.get_str("severity"), p.get_str("device"), p.get_str("rule"))
        })
    });
    let access = Resource::new(|| (), |_| whoami());
    let bulk = ServerAction::<ActOnAlarms>::new();
    let list = Resource::new(
        move || (query.get(), bulk.version().get()),
        |(q, _)| list_alarms(Some(q.status), q.severity, q.device, q.rule),
    );
    let rules = Resource::new(|| (), |_| list_rules());
    view! {
        <section class="alarms-page">
            <header class="page-head">
                <h1>"Alarms"</h1>
                <a class="rules-link" href="/alarms/rules">"Rules and notifications"</a>
            </header>
            <StatusTabs query/>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let rules = rules.await.unwrap_or_default();
                    view! { <FilterForm query=query.get() rules/> }
                })}
            </Transition>
            <Transition fallback=|| view! { <p class="loading">"Loading alarms…"</p> }>
                {move || Suspend::new(async move {
                    let can_act = access.await.is_ok_and(|a| a.can_change());
                    match list.await {
                        Ok(list) => view! { <AlarmTable list query=query.get_untracked() can_act bulk/> }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">"Cannot load alarms: " {e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
