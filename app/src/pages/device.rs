//! A device's page: its facts (health, last seen, expected interval, and its well-known
//! metrics banded: `vitals`), its latest values and a chart of one metric over 1 h, 24 h or
//! 7 d, its attributes (`attributes`), events (`events`) and connections with its availability
//! (`connections`), the commands sent to it (`commands`), tags, name and note.
//! Metric and range live in the query string, so every view is a link that works without
//! JavaScript; with it, the chart refreshes as readings arrive.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use telemetry::DeviceSummary;

use crate::api::{DeleteDevice, DeviceDetail, SetDeviceInterval, UpdateDevice, get_device, get_device_log};
use crate::browser::zone::tz_param;
use crate::logic::format;
use crate::state::live::{Live, merge};
use crate::widgets::confirm_submit::ConfirmSubmit;
use crate::widgets::history_chart::HistoryChart;
use crate::widgets::icon::{Icon, Lucide};
use crate::widgets::refused_note::RefusedNote;

mod attributes;
mod commands;
mod connections;
mod desired;
mod device_tags;
mod events;
mod vitals;
use crate::widgets::use_marks::{fetch_rules, provide_rules, use_bands};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Hour,
    Day,
    Week,
}

impl Range {
    pub const ALL: [Range; 3] = [Range::Hour, Range::Day, Range::Week];

    pub fn parse(s: Option<&str>) -> Range {
        match s {
            Some("24h") => Range::Day,
            Some("7d") => Range::Week,
            _ => Range::Hour,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::Day => "24h",
            Range::Week => "7d",
        }
    }

    pub fn secs(self) -> i64 {
        match self {
            Range::Hour => 3600,
            Range::Day => 86_400,
            Range::Week => 7 * 86_400,
        }
    }
}

#[component]
pub fn DevicePage() -> impl IntoView {
    let live = expect_context::<Live>();
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let detail = Resource::new(id, get_device);
    // What the charts mark for alarms.
    let rules = fetch_rules();
    view! {
        <section class="device-page">
            <p class="back"><a href="/"><Icon icon=Lucide::ArrowLeft/>"All devices"</a></p>
            <Transition fallback=|| view! { <p class="loading">"Loading device…"</p> }>
                {move || Suspend::new(async move {
                    match detail.await {
                        Ok(DeviceDetail { server_time, last_seq, device: Some(device) }) => {
                            live.seed(last_seq, std::slice::from_ref(&device));
                            provide_rules(rules.await);
                            view! { <DeviceView device server_time/> }.into_any()
                        }
                        Ok(DeviceDetail { device: None, .. }) => {
                            view! {
                                <div class="empty">
                                    <h2>"Unknown device"</h2>
                                    <p>"Nothing has been received from " <code>{id()}</code> " yet."</p>
                                </div>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <p class="error" role="alert">"Cannot load device: " {e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn DeviceView(device: DeviceSummary, server_time: i64) -> impl IntoView {
    let live = expect_context::<Live>();
    let query = use_query_map();
    let id = device.id.clone();
    let interval = RwSignal::new(device.interval);
    let merged = {
        let id = id.clone();
        Memo::new(move |_| live.devices.with(|l| merge(std::slice::from_ref(&device), l).remove(&id)))
    };
    let now = Signal::derive(move || live.now.get().unwrap_or(server_time));
    let local = Signal::derive(move || live.hydrated());
    let first_metric =
        merged.get_untracked().and_then(|d| d.metrics.first().map(|m| m.name.clone())).unwrap_or_default();
    let metric = Memo::new(move |_| query.read().get("metric").unwrap_or_else(|| first_metric.clone()));
    let range = Memo::new(move |_| Range::parse(query.read().get("range").as_deref()));
    // The device's alarms over the range, for every chart.
    let alarms = use_bands(
        Signal::stored(vec![id.clone()]),
        Signal::derive(move || telemetry::dashboard::TimeRange::Last { secs: range.get().secs() }),
    );
    let field = move |f: fn(&DeviceSummary) -> i64| merged.with(|d| d.as_ref().map(f).unwrap_or_default());
    let last_seen = move || field(|d| d.last_seen);
    let health =
        move || merged.with(|d| d.as_ref().map(|d| d.health(now.get()).label()).unwrap_or("offline"));
    let refused = Signal::derive(move || {
        merged.with(|d| d.as_ref().and_then(|d| d.refused.clone().filter(|r| r.last >= d.last_seen)))
    });
    // Its events and connections, read once for both sections.
    let device_log = Resource::new(
        {
            let id = id.clone();
            move || id.clone()
        },
        get_device_log,
    );
    let id_for_links = id.clone();
    let link = move |m: String, r: Range| format!("/device/{}?metric={m}&range={}", id_for_links, r.key());
    let link2 = link.clone();
    let link3 = link.clone();
    let id2 = id.clone();
    let id_label = id.clone();
    // The other metrics' charts: re-made only when the set of metrics changes, not per reading.
    let others = Memo::new(move |_| {
        let shown = metric.get();
        merged.with(|d| {
            d.as_ref()
                .map(|d| d.metrics.iter().map(|m| m.name.clone()).filter(|m| *m != shown).collect::<Vec<_>>())
                .unwrap_or_default()
        })
    });
    let display_name = RwSignal::new(merged.get_untracked().and_then(|d| d.name));
    let device_note = merged.get_untracked().and_then(|d| d.note);
    // The CSV of what the main chart shows, with local times in the browser's zone (each row
    // at its own offset); UTC before hydration, as the page shows times.
    let csv_href = {
        let id = id.clone();
        move || {
            let to = now.get();
            let from = to - range.get().secs() * 1000;
            let tz = if local.get() { tz_param() } else { String::new() };
            format!("/api/export.csv?device={id}&metric={}&from={from}&to={to}{tz}", metric.get())
        }
    };

    view! {
        <header class="device-head" data-device=id.clone() data-health=health>
            <h1>
                <span class="dot" title=health></span>
                {
                    let id = id.clone();
                    move || display_name.get().unwrap_or_else(|| id.clone())
                }
                <Show when=move || display_name.get().is_some()>
                    <span class="device-id muted">{id_label.clone()}</span>
                </Show>
            </h1>
            <RefusedNote refused local/>
            <dl class="facts">
                <div><dt>"Status"</dt><dd class="health">{health}</dd></div>
                <div>
                    <dt>"Last seen"</dt>
                    <dd>
                        {move || format!("{} ({})", format::date_time(last_seen(), local.get()), format::age(now.get(), last_seen()))}
                    </dd>
                </div>
                <div>
                    <dt>"First seen"</dt>
                    <dd>{move || format::date_time(field(|d| d.first_seen), local.get())}</dd>
                </div>
                <div><dt>"Messages"</dt><dd>{move || field(|d| d.message_count as i64)}</dd></div>
                <div><dt>"Expected every"</dt><dd class="interval">{move || format::interval(interval.get())}</dd></div>
                <vitals::Vitals device=merged/>
            </dl>
        </header>
        <nav class="tabs metric-tabs" aria-label="Metric">
            {move || {
                merged
                    .with(|d| d.as_ref().map(|d| d.metrics.clone()).unwrap_or_default())
                    .into_iter()
                    .map(|m| {
                        let active = metric.get() == m.name;
                        let unit = format::unit_for(&m.name);
                        let href = link(m.name.clone(), range.get());
                        view! {
                            <a href=href class:active=active aria-current=active.then_some("page") data-metric=m.name.clone()>
                                <span class="name">{m.name.clone()}</span>
                                <span class="value">{format::value(m.value)}</span>
                                <span class="unit">{unit}</span>
                            </a>
                        }
                    })
                    .collect_view()
            }}
        </nav>
        <nav class="tabs range-tabs" aria-label="Time range">
            {Range::ALL
                .into_iter()
                .map(|r| {
                    let link = link2.clone();
                    let active = move || range.get() == r;
                    view! {
                        <a href=move || link(metric.get(), r) class:active=active data-range=r.key()>
                            {r.key()}
                        </a>
                    }
                })
                .collect_view()}
        </nav>
        <figure class="chart-box">
            <HistoryChart device=id.clone() metric=metric span_secs=Signal::derive(move || range.get().secs()) local alarms/>
            <figcaption>
                {move || format!("{} over the last {}, ", metric.get(), range.get().key())}
                {move || if local.get() { "local time" } else { "UTC" }}
                " · "
                <a class="csv" href=csv_href download>"Download CSV"</a>
            </figcaption>
        </figure>
        <section class="other-metrics" aria-label="Every metric">
            {move || {
                others
                    .get()
                    .into_iter()
                    .map(|m| {
                        let href = link3(m.clone(), range.get_untracked());
                        view! {
                            <figure class="chart-box small" data-metric=m.clone()>
                                <figcaption><a href=href>{m.clone()}</a></figcaption>
                                <HistoryChart device=id2.clone() metric=Signal::stored(m.clone()) span_secs=Signal::derive(move || range.get().secs()) local alarms/>
                            </figure>
                        }
                    })
                    .collect_view()
            }}
        </section>
        <attributes::DeviceAttributes device=merged local/>
        <events::DeviceEvents id=id.clone() log=device_log local/>
        <connections::DeviceConnections id=id.clone() log=device_log now local/>
        <commands::DeviceCommands id=id.clone() local/>
        <desired::DeviceDesired id=id.clone() local/>
        <device_tags::DeviceTags id=id.clone() tags=Signal::derive(move || merged.with(|d| d.as_ref().map(|d| d.tags.clone()).unwrap_or_default()))/>
        <DeviceAbout id=id.clone() name=display_name note=device_note interval/>
    }
}

/// A device's name, note and expected interval (editable), and deleting it with its history.
/// Plain forms: they work without JavaScript too.
#[component]
fn DeviceAbout(
    id: String,
    name: RwSignal<Option<String>>,
    note: Option<String>,
    interval: RwSignal<telemetry::device::Interval>,
) -> impl IntoView {
    let update = ServerAction::<UpdateDevice>::new();
    let delete = ServerAction::<DeleteDevice>::new();
    let set_interval = ServerAction::<SetDeviceInterval>::new();
    // The name being saved, so the heading can show it once the save succeeds.
    let saving: StoredValue<Option<String>> = StoredValue::new(None);
    Effect::new(move |_| {
        if let Some(input) = update.input().get() {
            saving.set_value(Some(input.name));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = update.value().get() {
            name.set(saving.get_value().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()));
        }
    });
    // The interval being saved, shown once the save succeeds.
    let saving_interval: StoredValue<Option<String>> = StoredValue::new(None);
    Effect::new(move |_| {
        if let Some(input) = set_interval.input().get() {
            saving_interval.set_value(Some(input.interval));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = set_interval.value().get()
            && let Some(Ok(set)) = saving_interval.get_value().map(|t| telemetry::device::parse_interval(&t))
        {
            interval.update(|i| i.set = set);
        }
    });
    let (id_meta, id_interval, id_delete) = (id.clone(), id.clone(), id);
    let initial = interval.get_untracked();
    let interval_value = initial.set.map(telemetry::device::format_interval).unwrap_or_default();
    let interval_hint = match initial.learned {
        Some(learned) => format!("learned: {}", telemetry::device::format_interval(learned)),
        None => "learned from its readings".to_owned(),
    };
    // Read now, not when the form's children are rendered: by then the page's signals may be
    // gone (the server renders a resource's view more than once).
    let initial_name = name.get_untracked().unwrap_or_default();
    let problem = move || {
        [update.value().get(), set_interval.value().get(), delete.value().get()]
            .into_iter()
            .flatten()
            .find_map(Result::err)
            .map(|e| e.to_string())
    };
    view! {
        <section class="device-about">
            <h2>"About this device"</h2>
            <ActionForm action=update attr:class="device-meta">
                <input type="hidden" name="id" value=id_meta.clone()/>
                <label class="field">
                    "Display name"
                    <input type="text" name="name" maxlength="64" value=initial_name placeholder=id_meta.clone()/>
                </label>
                <label class="field">
                    "Note"
                    <textarea name="note" maxlength="1000" rows="3">{note.unwrap_or_default()}</textarea>
                </label>
                <button type="submit" class="button primary">"Save"</button>
                <span class="save-state" role="status">
                    {move || match update.value().get() {
                        Some(Ok(())) => "Saved",
                        _ if update.pending().get() => "Saving…",
                        _ => "",
                    }}
                </span>
            </ActionForm>
            <ActionForm action=set_interval attr:class="device-interval">
                <input type="hidden" name="id" value=id_interval/>
                <label class="field">
                    "Expected interval"
                    <input type="text" name="interval" maxlength="16" value=interval_value placeholder=interval_hint/>
                </label>
                <p class="hint muted">
                    "How often it reports (90s, 5m, 1h); empty: learned from its readings. Stale once quiet for three times that, at least 30 s."
                </p>
                <button type="submit" class="button">"Save interval"</button>
                <span class="save-state" role="status">
                    {move || match set_interval.value().get() {
                        Some(Ok(())) => "Saved",
                        _ if set_interval.pending().get() => "Saving…",
                        _ => "",
                    }}
                </span>
            </ActionForm>
            <ActionForm action=delete attr:class="device-delete">
                <input type="hidden" name="id" value=id_delete.clone()/>
                <ConfirmSubmit
                    confirm="Yes, delete this device and all its readings (this cannot be undone)"
                    button="Delete device"
                />
            </ActionForm>
            {move || problem().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </section>
    }
}
