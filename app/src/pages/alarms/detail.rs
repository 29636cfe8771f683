//! `/alarms/:id`: one alarm. Its status and severity, its device (and "no data since" when the
//! device went quiet while the alarm is active: silence never clears it), the readings that
//! opened it, the metric's chart around it with the rule's trip and clear lines, the timeline
//! of what happened and who did it, comments, and the actions for admins. Kept current by the
//! live feed.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use telemetry::LiveEvent;
use telemetry::alarm::{Alarm, AlarmDetail, Rule};

use super::alarm_actions::{AlarmActions, CommentForm};
use super::alarm_chart::AlarmChart;
use super::labels::{SeverityLabel, StatusLabel, value_text};
use super::timeline::{Comments, Timeline};
use crate::api::{ActOnAlarm, AlarmPageData, ApiError, get_alarm, whoami};
use crate::logic::rule_form::summary;
use crate::logic::{alarms, format};
use crate::state::live::{Live, merge};
use crate::widgets::icon::{Icon, Lucide};

#[component]
pub fn AlarmPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let page = Resource::new(id, get_alarm);
    let access = Resource::new(|| (), |_| whoami());
    view! {
        <section class="alarm-page">
            <p class="back"><a href="/alarms"><Icon icon=Lucide::ArrowLeft/>"All alarms"</a></p>
            <Transition fallback=|| view! { <p class="loading">"Loading alarm…"</p> }>
                {move || Suspend::new(async move {
                    let can_act = access.await.is_ok_and(|a| a.can_change());
                    match page.await {
                        Ok(data) => view! { <AlarmView data can_act/> }.into_any(),
                        Err(ApiError::NotFound(_)) => view! {
                            <div class="empty">
                                <h2>"Unknown alarm"</h2>
                                <p>"No alarm has this id: it may have been cleared and pruned since."</p>
                            </div>
                        }
                        .into_any(),
                        Err(e) => view! { <p class="error" role="alert">"Cannot load alarm: " {e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn AlarmView(data: AlarmPageData, can_act: bool) -> impl IntoView {
    let live = expect_context::<Live>();
    let AlarmPageData { server_time, last_seq, detail: AlarmDetail { alarm, log }, rule, device } = data;
    if let Some(d) = &device {
        live.seed(last_seq, std::slice::from_ref(d));
    }
    let id = alarm.id.clone();
    let current = RwSignal::new(alarm.clone());
    let log = RwSignal::new(log);
    let act = ServerAction::<ActOnAlarm>::new();
    let now = Signal::derive(move || live.now.get().unwrap_or(server_time));
    let local = Signal::derive(move || live.hydrated());

    // Newer news of this alarm (from the live feed or an action here) replaces it, and its log
    // is fetched again; only the latest fetch's answer is shown, so a slow earlier answer
    // cannot put back a log without the newest entries.
    let fetches = StoredValue::new(0u64);
    let take = move |newer: Alarm| {
        if current.with_untracked(|c| newer.seq > c.seq || (newer.seq == c.seq && newer != *c)) {
            current.set(newer);
            let id = current.with_untracked(|c| c.id.clone());
            fetches.update_value(|n| *n += 1);
            let this = fetches.get_value();
            leptos::task::spawn_local(async move {
                if let Ok(page) = get_alarm(id).await
                    && fetches.get_value() == this
                {
                    log.set(page.detail.log);
                }
            });
        }
    };
    {
        let id = id.clone();
        Effect::new(move |_| {
            let news = live.batch.with(|events| {
                events.iter().rev().find_map(|e| match e {
                    LiveEvent::Alarm { alarm, .. } if alarm.id == id => Some(alarm.clone()),
                    _ => None,
                })
            });
            if let Some(alarm) = news {
                take(alarm);
            }
        });
    }
    Effect::new(move |_| {
        if let Some(Ok(alarm)) = act.value().get() {
            take(alarm);
        }
    });

    // What the page knows of the device now: the server's copy with live readings over it.
    let metric = rule.as_ref().and_then(|r| r.metric().map(str::to_owned));
    let heard = {
        let device = device.clone();
        Memo::new(move |_| {
            device
                .as_ref()
                .and_then(|d| live.devices.with(|l| merge(std::slice::from_ref(d), l).remove(&d.id)))
        })
    };
    let silent = {
        let metric = metric.clone();
        move || current.with(|a| alarms::silent_since(a, heard.get().as_ref(), metric.as_deref(), now.get()))
    };

    let device_id = alarm.device.clone();
    let title = format!("{} on {}", alarm.rule_name, alarm.device);
    let chart = metric.clone().map(|metric| {
        let guides = rule.as_ref().map(alarms::guides).unwrap_or_default();
        let range = alarms::chart_range(alarm.started_at, alarm.cleared_at, server_time);
        view! {
            <figure class="chart-box">
                <AlarmChart device=device_id.clone() metric=metric.clone() range guides local/>
                <figcaption>
                    {format!("{metric} from an hour before the alarm")}
                    {if alarm.cleared_at.is_some() { " to an hour after it cleared" } else { " to now" }}
                    {rule.is_some().then_some(", with the rule's levels as they are now")}
                </figcaption>
            </figure>
        }
    });
    view! {
        <header class="alarm-head" data-alarm=id.clone() data-status=move || current.with(|a| a.status().as_str())>
            <h1>{title}</h1>
            <p class="alarm-summary">
                {move || {
                    let a = current.get();
                    view! { <SeverityLabel severity=a.severity/> " " <StatusLabel alarm=a now=now.get_untracked() local/> }
                }}
            </p>
            {move || silent().map(|t| view! {
                <p class="no-data" role="status">
                    {move || format!("No data since {}", format::datetime(t, local.get(), format::Shown::Minute))}
                    " — the device went quiet while the alarm was active; it stays active until readings clear it."
                </p>
            })}
        </header>
        <Facts alarm=current rule=rule.clone() now local/>
        {can_act.then(|| view! { <AlarmActions alarm=current now act/> })}
        {chart}
        <Timeline log local/>
        <section class="alarm-comments" aria-labelledby="comments-heading">
            <h2 id="comments-heading">"Comments"</h2>
            <Comments log local/>
            {can_act.then(|| view! { <CommentForm id=id.clone() act/> })}
        </section>
    }
}

#[component]
fn Facts(
    alarm: RwSignal<Alarm>,
    rule: Option<Rule>,
    now: Signal<telemetry::Millis>,
    local: Signal<bool>,
) -> impl IntoView {
    let when = move |t: telemetry::Millis| {
        format!("{} ({})", format::date_time(t, local.get()), format::age(now.get(), t))
    };
    let rule_text = rule.as_ref().map(summary);
    view! {
        {move || {
            let a = alarm.get();
            let device_href = format!("/device/{}", a.device);
            let rule_href = format!("/alarms?status=all&rule={}", a.rule_id);
            let started = a.started_at;
            view! {
                <dl class="facts alarm-facts">
                    <div><dt>"Status"</dt><dd class="status">{alarms::status_label(a.status())}</dd></div>
                    <div><dt>"Severity"</dt><dd><SeverityLabel severity=a.severity/></dd></div>
                    <div><dt>"Device"</dt><dd><a href=device_href><code class="device-id">{a.device.clone()}</code></a></dd></div>
                    <div>
                        <dt>"Rule"</dt>
                        <dd>
                            <a href=rule_href>{a.rule_name.clone()}</a>
                            {rule_text.clone().map(|t| view! { <span class="muted">" · " {t}</span> })}
                        </dd>
                    </div>
                    <div><dt>"Value"</dt><dd class="value">{value_text(&a)}</dd></div>
                    <div><dt>"Started"</dt><dd>{move || when(started)}</dd></div>
                    {a.last_breach_at.map(|t| view! { <div><dt>"Last breach"</dt><dd>{move || when(t)}</dd></div> })}
                    {a.cleared_at.map(|t| view! { <div><dt>"Cleared"</dt><dd>{move || when(t)}</dd></div> })}
                    {a.acked_at.map(|t| {
                        let by = a.acked_by.clone().map(|b| format!(" by {b}")).unwrap_or_default();
                        view! { <div><dt>"Acknowledged"</dt><dd class="acked">{move || when(t)}{by}</dd></div> }
                    })}
                    {a.shelved_until.filter(|_| a.shelved(now.get_untracked())).map(|t| view! {
                        <div><dt>"Shelved until"</dt><dd>{move || format::date_time(t, local.get())}</dd></div>
                    })}
                    {(a.opened > 1).then(|| view! { <div><dt>"Opened"</dt><dd>{format!("{} times", a.opened)}</dd></div> })}
                </dl>
            }
        }}
    }
}
