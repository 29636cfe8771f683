//! `/fleet`: every device in one list, one row each (health, last seen, firmware, signal,
//! battery, uptime, tags, open alarms), filtered by a fleet query and sorted, both kept in the
//! address (`/fleet?q=tag:site%3Dgreenhouse&sort=-seen&page=2`), a page of 100 rows at a time
//! from the server, so it stays quick with 10,000 devices and renders without JavaScript.
//!
//! Split by what a person sees: [`search`] (the query form and its help), [`chips`] (what the
//! matching devices are: statuses, firmware versions, weak signal, low battery; each a link
//! narrowing the query), [`groups`] (saved queries: links, saving, deleting) and [`table`]
//! (the rows, their sortable headings, the pager and the bulk tag form around them).

mod chips;
mod groups;
mod search;
mod table;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use telemetry::fleet::MAX_EXPORT_DEVICES;

use self::chips::Chips;
use self::groups::Groups;
use self::search::SearchForm;
use self::table::FleetTable;
use crate::api::{DeleteGroup, EditFleetTags, FleetList, SaveGroup, list_fleet, whoami};
use crate::logic::fleet::FleetView;

#[component]
pub fn FleetPage() -> impl IntoView {
    let params = use_query_map();
    let view =
        Memo::new(move |_| params.with(|p| FleetView::from_params(p.get("q"), p.get("sort"), p.get("page"))));
    let access = Resource::new(|| (), |_| whoami());
    let bulk = ServerAction::<EditFleetTags>::new();
    let save = ServerAction::<SaveGroup>::new();
    let delete = ServerAction::<DeleteGroup>::new();
    let data = Resource::new(
        move || (view.get(), bulk.version().get(), save.version().get(), delete.version().get()),
        |(v, ..)| list_fleet(Some(v.q), Some(v.sort.as_string()), Some(v.page as u32)),
    );
    view! {
        <section class="fleet-page">
            <header class="page-head">
                <h1>"Fleet"</h1>
            </header>
            <SearchForm view/>
            <Transition fallback=|| view! { <p class="loading">"Loading devices…"</p> }>
                {move || Suspend::new(async move {
                    let can_act = access.await.is_ok_and(|a| a.can_change());
                    match data.await {
                        Ok(page) => view! { <FleetBody page view=view.get_untracked() can_act bulk save delete/> }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn FleetBody(
    page: FleetList,
    view: FleetView,
    can_act: bool,
    bulk: ServerAction<EditFleetTags>,
    save: ServerAction<SaveGroup>,
    delete: ServerAction<DeleteGroup>,
) -> impl IntoView {
    let FleetList { server_time, last_seq, rows, matching, fleet, page, pages, summary, groups } = page;
    let counted = if matching == fleet {
        format!("{fleet} device{}", if fleet == 1 { "" } else { "s" })
    } else {
        format!("{matching} of {fleet} devices")
    };
    // Readings go out for a chosen few: the export by query holds at most so many devices.
    let readings = (!view.q.trim().is_empty() && (1..=MAX_EXPORT_DEVICES).contains(&matching)).then(|| {
        view! {
            " · "
            <a class="csv readings" href=view.readings_href() download>"Their readings, last 24 h (CSV)"</a>
        }
    });
    view! {
        <p class="summary fleet-count" role="status">{counted}</p>
        <p class="downloads">
            <a class="csv list" href=view.csv_href() download>"Download this list (CSV)"</a>
            {readings}
        </p>
        <Chips summary view=view.clone()/>
        <Groups groups view=view.clone() can_act save delete/>
        <FleetTable rows view server_time last_seq matching page pages can_act bulk/>
    }
}
