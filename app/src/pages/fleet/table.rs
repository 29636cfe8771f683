//! The fleet's rows: one per device on this page, kept current by the live feed (health, last
//! seen, values, tags), with sortable headings (links), the pager, and for those who may
//! change things a plain form around them: tick devices (or all that match), add and remove
//! tags. Firmware, signal, battery and uptime columns show when a device on the page has them,
//! and how much of the last 24 h it was connected when the connection log says.

use std::collections::BTreeMap;

use leptos::form::ActionForm;
use leptos::prelude::*;
use telemetry::alarm::{AlarmQuery, StatusFilter};
use telemetry::fleet::{self, BatteryLevel, SortKey};
use telemetry::{DeviceSummary, Millis};

use crate::api::{EditFleetTags, FleetRow, MAX_BULK_IDS};
use crate::logic::alarms::list_href;
use crate::logic::fleet::FleetView;
use crate::logic::format;
use crate::state::live::{Live, LiveDevice, merge};

/// Which optional columns this page shows.
#[derive(Clone, Copy)]
struct Columns {
    fw: bool,
    rssi: bool,
    battery: bool,
    uptime: bool,
    /// Connected over the last 24 h (with the embedded broker's connection log).
    availability: bool,
}

impl Columns {
    fn of(rows: &[FleetRow]) -> Columns {
        let any = |f: fn(&DeviceSummary) -> bool| rows.iter().any(|r| f(&r.device));
        Columns {
            fw: any(|d| fleet::firmware(d).is_some()),
            rssi: any(|d| d.metric("rssi").is_some()),
            battery: any(|d| fleet::battery_level(d).is_some()),
            uptime: any(|d| fleet::uptime_s(d).is_some()),
            availability: rows.iter().any(|r| r.availability.is_some()),
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[component]
pub fn FleetTable(
    rows: Vec<FleetRow>,
    view: FleetView,
    server_time: Millis,
    last_seq: u64,
    matching: usize,
    page: usize,
    pages: usize,
    can_act: bool,
    bulk: ServerAction<EditFleetTags>,
) -> impl IntoView {
    let live = expect_context::<Live>();
    let base: Vec<DeviceSummary> = rows.iter().map(|r| r.device.clone()).collect();
    live.seed(last_seq, &base);
    let ids: Vec<String> = base.iter().map(|d| d.id.clone()).collect();
    // Only this page's devices' live news, merged once per change.
    let merged = Memo::new(move |_| {
        live.devices.with(|all| {
            let mine: BTreeMap<String, LiveDevice> =
                ids.iter().filter_map(|id| all.get(id).map(|l| (id.clone(), l.clone()))).collect();
            merge(&base, &mine)
        })
    });
    let now = Signal::derive(move || live.now.get().unwrap_or(server_time));
    let local = Signal::derive(move || live.hydrated());
    let columns = Columns::of(&rows);
    let heading = {
        let view = view.clone();
        move |key: SortKey, label: &'static str| {
            let active = view.sort.key == key;
            let href = view.sorted(view.sort.toggled(key)).href();
            let sort = active.then_some(if view.sort.desc { "descending" } else { "ascending" });
            let title = (key == SortKey::Up).then_some("Share of the last 24 h connected");
            view! { <th aria-sort=sort data-sort=key.key() title=title><a href=href>{label}</a></th> }
        }
    };
    let empty = rows.is_empty();
    let table = view! {
        <div class="fleet-table-wrap">
            <table class="fleet-table">
                <thead>
                    <tr>
                        {can_act.then(|| view! { <th class="select"><span class="visually-hidden">"Select"</span></th> })}
                        {heading(SortKey::Name, "Device")}
                        {heading(SortKey::Status, "Status")}
                        {heading(SortKey::Seen, "Last seen")}
                        {columns.fw.then(|| heading(SortKey::Fw, "Firmware"))}
                        {columns.rssi.then(|| heading(SortKey::Rssi, "Signal"))}
                        {columns.battery.then(|| heading(SortKey::Battery, "Battery"))}
                        {columns.uptime.then(|| heading(SortKey::Uptime, "Uptime"))}
                        {columns.availability.then(|| heading(SortKey::Up, "Up 24 h"))}
                        <th>"Tags"</th>
                        {heading(SortKey::Alarms, "Alarms")}
                    </tr>
                </thead>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|row| {
                            let id = row.device.id.clone();
                            // A memo: news of another device leaves this row alone.
                            let device = Memo::new(move |_| {
                                merged.with(|m| m.get(&id).cloned()).unwrap_or_else(|| row.device.clone())
                            });
                            view! { <Row device=device.into() alarms=row.alarms availability=row.availability view=view.clone() columns now local can_act/> }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    };
    let body =
        if empty { view! { <p class="empty">"No device matches."</p> }.into_any() } else { table.into_any() };
    if !can_act {
        return view! { {body} <Pager view page pages/> }.into_any();
    }
    let back = view.href();
    let q = view.q.clone();
    view! {
        <ActionForm action=bulk attr:class="fleet-bulk">
            <div class="bulk-actions" role="group" aria-label="Tag devices">
                <label class="field">"Add tags"
                    <input type="text" name="add" placeholder="site=greenhouse" maxlength=telemetry::tags::MAX_TAGS_TEXT.to_string() autocomplete="off" spellcheck="false"/>
                </label>
                <label class="field">"Remove tags"
                    <input type="text" name="remove" placeholder="floor or floor=2" maxlength=telemetry::tags::MAX_TAGS_TEXT.to_string() autocomplete="off" spellcheck="false"/>
                </label>
                <label class="choice">
                    <input type="checkbox" name="all" value="yes"/>
                    {format!("every device that matches ({matching}), not only the ticked")}
                </label>
                <input type="hidden" name="q" value=q/>
                <input type="hidden" name="back" value=back/>
                <button class="button" type="submit">"Apply"</button>
            </div>
            <BulkResult bulk/>
            {body}
        </ActionForm>
        <Pager view page pages/>
    }
    .into_any()
}

#[allow(clippy::too_many_arguments)]
#[component]
fn Row(
    device: Signal<DeviceSummary>,
    alarms: u32,
    availability: Option<f64>,
    view: FleetView,
    columns: Columns,
    now: Signal<Millis>,
    local: Signal<bool>,
    can_act: bool,
) -> impl IntoView {
    let d = device.get_untracked();
    let id = d.id.clone();
    let href = format!("/device/{id}");
    let health = move || device.with(|d| d.health(now.get()).label());
    let last_seen = move || device.with(|d| d.last_seen);
    let named = d.name.is_some();
    let alarms_href = list_href(&AlarmQuery {
        status: StatusFilter::Active,
        device: Some(id.clone()),
        ..AlarmQuery::default()
    });
    let tags = {
        let view = view.clone();
        move || {
            device.with(|d| {
                d.tags
                    .iter()
                    .map(|(k, v)| {
                        let href = view.narrowed(&format!("tag:{k}={v}")).href();
                        view! { <a class="tag" href=href>{k.clone()}"="{v.clone()}</a> }
                    })
                    .collect_view()
            })
        }
    };
    view! {
        <tr data-device=id.clone() data-health=health>
            {can_act.then(|| view! {
                <td class="select"><input type="checkbox" name="ids[]" value=id.clone() aria-label=format!("Select {id}")/></td>
            })}
            <td class="device">
                <a href=href>{move || device.with(|d| d.label().to_owned())}</a>
                {named.then(|| view! { <span class="device-id muted">{id.clone()}</span> })}
            </td>
            <td class="health"><span class="dot" aria-hidden="true"></span>{health}</td>
            <td class="seen">
                <time datetime=move || format::iso(last_seen()) title=move || format::date_time(last_seen(), local.get())>
                    {move || format::age(now.get(), last_seen())}
                </time>
                <span class="muted absolute">{move || format::date_time(last_seen(), local.get())}</span>
            </td>
            {columns.fw.then(|| view! {
                <td class="fw">{move || device.with(|d| fleet::firmware(d).map(|f| f.into_owned()).unwrap_or_default())}</td>
            })}
            {columns.rssi.then(|| view! {
                <td class="rssi" data-band=move || device.with(|d| fleet::signal(d).map(|s| s.label()))>
                    {move || device.with(|d| d.metric("rssi").map(|m| format!("{} dBm", format::value(m.value)))).unwrap_or_default()}
                </td>
            })}
            {columns.battery.then(|| view! {
                <td class="battery" data-band=move || device.with(|d| fleet::battery(d).map(|b| b.label()))>
                    {move || device.with(|d| fleet::battery_level(d).map(battery_text)).unwrap_or_default()}
                </td>
            })}
            {columns.uptime.then(|| view! {
                <td class="uptime">{move || device.with(|d| fleet::uptime_s(d).map(format::uptime)).unwrap_or_default()}</td>
            })}
            {columns.availability.then(|| view! {
                <td class="availability">{availability.map(format::percent).unwrap_or_default()}</td>
            })}
            <td class="tags">{tags}</td>
            <td class="alarms">
                {(alarms > 0).then(|| view! { <a href=alarms_href>{alarms}</a> })}
            </td>
        </tr>
    }
}

fn battery_text(level: BatteryLevel) -> String {
    match level {
        BatteryLevel::Percent(p) => format!("{} %", format::value(p)),
        BatteryLevel::Volts(v) => format!("{} V", format::value(v)),
    }
}

/// Previous and next pages, as links.
#[component]
fn Pager(view: FleetView, page: usize, pages: usize) -> impl IntoView {
    (pages > 1).then(|| {
        let prev = (page > 1).then(|| view.at_page(page - 1).href());
        let next = (page < pages).then(|| view.at_page(page + 1).href());
        view! {
            <nav class="pager" aria-label="Pages">
                {prev.map(|href| view! { <a rel="prev" href=href>"← Previous"</a> })}
                <span>{format!("Page {page} of {pages}")}</span>
                {next.map(|href| view! { <a rel="next" href=href>"Next →"</a> })}
            </nav>
        }
    })
}

/// What the latest bulk edit did (with JavaScript; a plain form comes back to the list).
#[component]
fn BulkResult(bulk: ServerAction<EditFleetTags>) -> impl IntoView {
    move || {
        bulk.value().get().map(|result| match result {
            Ok(t) => view! {
                <p class="bulk-result" role="status">
                    {format!("Tags changed on {} of {} device{}.", t.changed, t.matched, if t.matched == 1 { "" } else { "s" })}
                </p>
            }
            .into_any(),
            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    }
}

/// Most devices a page may tick (the server refuses more).
const _: () = assert!(crate::logic::fleet::PAGE_ROWS <= MAX_BULK_IDS);
