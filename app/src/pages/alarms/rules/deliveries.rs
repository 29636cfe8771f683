//! Deliveries: each notification sent (or being sent) to a channel, newest first, with its
//! state, the receiver's last response code, attempts and error, and "resend" for those that
//! are done. Fetched again after a test or a resend, when alarms change, and on "Refresh".

use leptos::form::ActionForm;
use leptos::prelude::*;
use telemetry::LiveEvent;
use telemetry::notify::{ChannelInfo, Delivery, DeliveryState};

use crate::api::{ResendDelivery, TestChannel, list_deliveries};
use crate::logic::format;
use crate::state::live::Live;

#[component]
pub fn Deliveries(
    channels: Vec<ChannelInfo>,
    can_act: bool,
    test: ServerAction<TestChannel>,
) -> impl IntoView {
    let live = expect_context::<Live>();
    let local = move || live.hydrated();
    let resend = ServerAction::<ResendDelivery>::new();
    let refresh = RwSignal::new(0u32);
    // A change of any alarm may have queued notifications.
    Effect::new(move |_| {
        if live.batch.with(|b| b.iter().any(|e| matches!(e, LiveEvent::Alarm { .. }))) {
            refresh.update(|n| *n += 1);
        }
    });
    let list = Resource::new(
        move || (resend.version().get(), test.version().get(), refresh.get()),
        |_| list_deliveries(Some(50)),
    );
    let channel_name = move |id: &str| {
        channels.iter().find(|c| c.id == id).map_or_else(|| id.to_owned(), |c| c.name.clone())
    };
    view! {
        <section class="deliveries" id="deliveries" aria-labelledby="deliveries-heading">
            <h2 id="deliveries-heading">"Deliveries"</h2>
            <p class="hint">
                "Each notification per channel, newest first. Failed ones were refused (a 4xx other than 429) or failed for a day; "
                "suppressed ones went over the channel's rate and were counted in a summary."
                {move || live.hydrated().then(|| view! {
                    " " <button type="button" class="button refresh" on:click=move |_| refresh.update(|n| *n += 1)>"Refresh"</button>
                })}
            </p>
            <Transition fallback=|| view! { <p class="loading">"Loading deliveries…"</p> }>
                {
                    let channel_name = channel_name.clone();
                    move || {
                        let channel_name = channel_name.clone();
                        Suspend::new(async move {
                            match list.await {
                                Ok(list) if list.is_empty() => view! { <p class="muted">"Nothing sent yet."</p> }.into_any(),
                                Ok(list) => view! {
                                    <div class="alarm-table-wrap">
                                        <table class="admin-table delivery-list">
                                            <thead>
                                                <tr>
                                                    <th>"Queued"</th><th>"Channel"</th><th>"What"</th><th>"State"</th>
                                                    <th>"Response"</th><th>"Attempts"</th>
                                                    {can_act.then(|| view! { <th></th> })}
                                                </tr>
                                            </thead>
                                            <tbody>
                                                {list
                                                    .into_iter()
                                                    .map(|d| view! { <DeliveryRow channel=channel_name(&d.channel) d can_act resend local=Signal::derive(local)/> })
                                                    .collect_view()}
                                            </tbody>
                                        </table>
                                    </div>
                                }
                                .into_any(),
                                Err(e) => view! { <p class="error" role="alert">"Cannot load deliveries: " {e.to_string()}</p> }.into_any(),
                            }
                        })
                    }
                }
            </Transition>
            {move || resend.value().get().map(|r| match r {
                Ok(()) => view! { <p class="done" role="status">"Sending again, with the same id."</p> }.into_any(),
                Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </section>
    }
}

fn state_key(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "pending",
        DeliveryState::Sent => "sent",
        DeliveryState::Failed => "failed",
        DeliveryState::Suppressed => "suppressed",
    }
}

#[component]
fn DeliveryRow(
    d: Delivery,
    channel: String,
    can_act: bool,
    resend: ServerAction<ResendDelivery>,
    local: Signal<bool>,
) -> impl IntoView {
    let created = d.created;
    let what = d.notice.line();
    let alarm_href = (d.notice.alarm_id != "test").then(|| format!("/alarms/{}", d.notice.alarm_id));
    let response = d.last_status.map(|s| s.to_string()).unwrap_or_else(|| "–".to_owned());
    let state = state_key(d.state);
    view! {
        <tr data-delivery=d.id.clone() data-state=state>
            <td><time datetime=format::iso(created)>{move || format::date_time(created, local.get())}</time></td>
            <td>{channel}</td>
            <td class="delivery-what">
                {match alarm_href {
                    Some(href) => view! { <a href=href>{what}</a> }.into_any(),
                    None => view! { <span>{what}</span> }.into_any(),
                }}
                {d.last_error.map(|e| view! { <span class="muted delivery-error">" — " {e}</span> })}
            </td>
            <td class="delivery-state">{state}</td>
            <td class="delivery-status">{response}</td>
            <td>{d.attempts}</td>
            {can_act.then(|| {
                let id = d.id.clone();
                view! {
                    <td class="row-actions">
                        {(d.state != DeliveryState::Pending).then(|| view! {
                            <ActionForm action=resend attr:class="inline-form resend">
                                <input type="hidden" name="id" value=id/>
                                <button class="button" type="submit">"Resend"</button>
                            </ActionForm>
                        })}
                    </td>
                }
            })}
        </tr>
    }
}
