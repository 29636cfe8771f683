//! Notification channels: where rules send alarms (a webhook, an ntfy topic, email). Listed
//! with a test button and deletion; created with a form whose webhook signing secret is shown
//! once, here (so creating a webhook needs JavaScript; ntfy and email work as plain forms).

use leptos::form::ActionForm;
use leptos::prelude::*;
use telemetry::notify::ChannelInfo;

use crate::api::{CreateChannel, CreatedChannel, DeleteChannel, TestChannel};
use crate::logic::format;
use crate::state::live::Live;
use crate::widgets::confirm_submit::ConfirmSubmit;

#[component]
pub fn Channels(
    list: Vec<ChannelInfo>,
    can_act: bool,
    create: ServerAction<CreateChannel>,
    delete: ServerAction<DeleteChannel>,
    test: ServerAction<TestChannel>,
) -> impl IntoView {
    let live = expect_context::<Live>();
    let local = move || live.hydrated();
    let rows = list
        .into_iter()
        .map(|c| {
            let (for_test, for_delete) = (c.id.clone(), c.id.clone());
            view! {
                <tr data-channel=c.id.clone()>
                    <td class="channel-name">{c.name}</td>
                    <td>{c.kind}</td>
                    <td class="channel-target">{c.target}</td>
                    <td>{format::date_time(c.created, local())}</td>
                    {can_act.then(|| view! {
                        <td class="row-actions">
                            <ActionForm action=test attr:class="inline-form test-channel">
                                <input type="hidden" name="id" value=for_test/>
                                <button class="button" type="submit">"Send a test"</button>
                            </ActionForm>
                            <ActionForm action=delete attr:class="inline-form delete-channel">
                                <input type="hidden" name="id" value=for_delete/>
                                <ConfirmSubmit confirm="Yes, delete" button="Delete"/>
                            </ActionForm>
                        </td>
                    })}
                </tr>
            }
        })
        .collect_view();
    let outcome = move || {
        let tested = test.value().get().map(|r| r.map(|()| "Test sent: see its delivery below."));
        let deleted = delete.value().get().map(|r| r.map(|()| "Channel deleted."));
        tested.or(deleted).map(|r| match r {
            Ok(done) => view! { <p class="done" role="status">{done}</p> }.into_any(),
            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    };
    view! {
        <section class="channels" id="channels" aria-labelledby="channels-heading">
            <h2 id="channels-heading">"Notification channels"</h2>
            {if rows.is_empty() {
                view! { <p class="muted">"No channels yet: alarms show in the app only."</p> }.into_any()
            } else {
                view! {
                    <div class="alarm-table-wrap">
                        <table class="admin-table channel-list">
                            <thead>
                                <tr>
                                    <th>"Name"</th><th>"Kind"</th><th>"Sends to"</th><th>"Created"</th>
                                    {can_act.then(|| view! { <th>"Change"</th> })}
                                </tr>
                            </thead>
                            <tbody>{rows}</tbody>
                        </table>
                    </div>
                }
                .into_any()
            }}
            {outcome}
            {can_act.then(|| view! { <NewChannel create/> })}
        </section>
    }
}

#[component]
fn NewChannel(create: ServerAction<CreateChannel>) -> impl IntoView {
    let live = expect_context::<Live>();
    let hydrated = move || live.hydrated();
    let kind = RwSignal::new("webhook".to_owned());
    let hide_unless =
        move |k: &'static [&'static str]| move || hydrated() && !k.contains(&kind.get().as_str());
    view! {
        <h3>"Add a channel"</h3>
        <ActionForm action=create attr:class="admin-form new-channel">
            <div class="field-row">
                <label class="field">"Name"
                    <input type="text" name="name" required maxlength="100" autocomplete="off"/>
                </label>
                <label class="field">"Kind"
                    <select name="kind" on:change=move |e| kind.set(event_target_value(&e))>
                        <option value="webhook" selected>"webhook (signed POST)"</option>
                        <option value="ntfy">"ntfy topic"</option>
                        <option value="email">"email"</option>
                    </select>
                </label>
            </div>
            <label class="field" hidden=hide_unless(&["webhook", "ntfy"])>"URL (webhook, or ntfy topic like https://ntfy.sh/my-alarms)"
                <input type="url" name="url" maxlength="2048" autocomplete="off" placeholder="https://"/>
            </label>
            <label class="field" hidden=hide_unless(&["ntfy"])>"Access token (ntfy, if the topic needs one)"
                <input type="password" name="token" maxlength="256" autocomplete="off"/>
            </label>
            <label class="field" hidden=hide_unless(&["email"])>"To (email addresses, separated by commas)"
                <input type="text" name="to" autocomplete="off" placeholder="ops@example.com"/>
            </label>
            <button class="button primary" type="submit">"Add channel"</button>
        </ActionForm>
        {move || (!hydrated()).then(|| view! {
            <p class="hint needs-js">"Adding a webhook needs JavaScript: its signing secret is shown once, on this page."</p>
        })}
        {move || create.value().get().map(|result| match result {
            Ok(created) => view! { <Created created/> }.into_any(),
            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
        })}
    }
}

/// A channel just added, with a webhook's signing secret: shown this once.
#[component]
fn Created(created: CreatedChannel) -> impl IntoView {
    let CreatedChannel { channel, secret } = created;
    view! {
        <div class="created-channel" role="status">
            <p><strong>{format!("Channel “{}” added.", channel.name)}</strong></p>
            {secret.map(|secret| view! {
                <p>"Its signing secret — copy it now: it is shown only this once. Receivers check each request's "
                    <code>"webhook-signature"</code>" with it (Standard Webhooks)."</p>
                <label class="field">"Signing secret"
                    <input class="secret-value" type="text" readonly value=secret/>
                </label>
            })}
        </div>
    }
}
