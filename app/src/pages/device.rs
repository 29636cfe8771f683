//! A device's page: its latest values and a chart of one metric over 1 h, 24 h or 7 d.
//! Metric and range live in the query string, so every view is a link that works without
//! JavaScript; with it, the chart refreshes as readings arrive.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use telemetry::DeviceSummary;

use crate::api::{DeviceDetail, get_device};
use crate::format;
use crate::live::{Live, merge};
use crate::widgets::history_chart::HistoryChart;

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
    view! {
        <section class="device-page">
            <p class="back"><a href="/">"← All devices"</a></p>
            <Transition fallback=|| view! { <p class="loading">"Loading device…"</p> }>
                {move || Suspend::new(async move {
                    match detail.await {
                        Ok(DeviceDetail { server_time, last_seq, device: Some(device) }) => {
                            live.seed(last_seq, std::slice::from_ref(&device));
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
    let field = move |f: fn(&DeviceSummary) -> i64| merged.with(|d| d.as_ref().map(f).unwrap_or_default());
    let last_seen = move || field(|d| d.last_seen);
    let health =
        move || merged.with(|d| d.as_ref().map(|d| d.health(now.get()).label()).unwrap_or("offline"));
    let id_for_links = id.clone();
    let link = move |m: String, r: Range| format!("/device/{}?metric={m}&range={}", id_for_links, r.key());
    let link2 = link.clone();

    view! {
        <header class="device-head" data-device=id.clone() data-health=health>
            <h1><span class="dot" title=health></span>{id.clone()}</h1>
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
            <HistoryChart device=id.clone() metric=metric span_secs=Signal::derive(move || range.get().secs()) local/>
            <figcaption>
                {move || format!("{} over the last {}, ", metric.get(), range.get().key())}
                {move || if local.get() { "local time" } else { "UTC" }}
            </figcaption>
        </figure>
    }
}
