//! A device's commands, newest first: what was sent, its state (a badge), who sent it and
//! when, how long it took and what came back; the server's list (the latest
//! [`COMMANDS_LISTED`]), then each change the live feed brings. Older ones a page at a time
//! (`?commands_before=<id>`, a plain link; a page further back is shown as read, not followed
//! live). Admins (and anyone while the dashboard is open) send one from a small form and cancel
//! unfinished ones; viewers see the history only. Both are plain forms, so they work without
//! JavaScript too.

use std::collections::BTreeMap;

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use telemetry::LiveEvent;
use telemetry::command::{
    Command, DEFAULT_TIMEOUT_SECS, DEFAULT_TTL_SECS, MAX_METHOD_LEN, MAX_TIMEOUT_SECS, MAX_TTL_SECS,
};

use crate::api::{COMMANDS_LISTED, CancelCommand, SendCommand, list_commands, whoami};
use crate::logic::commands::{duration, fold, outcome, remember, status_class, status_text};
use crate::logic::format;
use crate::state::live::Live;

#[component]
pub fn DeviceCommands(id: String, local: Signal<bool>) -> impl IntoView {
    let live = expect_context::<Live>();
    let device = StoredValue::new(id.clone());
    let query = use_query_map();
    let before = Memo::new(move |_| query.read().get("commands_before"));
    // Links to another page of commands keep the page's chart (metric, range).
    let page_link = move |before: Option<String>| {
        let q = query.read_untracked();
        let mut params: Vec<String> =
            ["metric", "range"].iter().filter_map(|k| q.get(k).map(|v| format!("{k}={v}"))).collect();
        params.extend(before.map(|b| format!("commands_before={b}")));
        format!("/device/{}?{}#device-commands-title", device.get_value(), params.join("&"))
    };
    let listed = Resource::new(move || (device.get_value(), before.get()), |(d, b)| list_commands(d, b));
    let access = Resource::new(|| (), |_| whoami());
    let send = ServerAction::<SendCommand>::new();
    let cancel = ServerAction::<CancelCommand>::new();
    // What the feed and this page's own actions said since the list was read, by id.
    let news: RwSignal<BTreeMap<String, Command>> = RwSignal::new(BTreeMap::new());
    Effect::new(move |_| {
        let fresh: Vec<Command> = live.batch.with(|events| {
            events
                .iter()
                .filter_map(|e| match e {
                    LiveEvent::Command { command, .. } if command.device == device.get_value() => {
                        Some((**command).clone())
                    }
                    _ => None,
                })
                .collect()
        });
        if !fresh.is_empty() {
            news.update(|n| fresh.into_iter().for_each(|c| remember(n, c)));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(c)) = send.value().get() {
            news.update(|n| remember(n, c));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(c)) = cancel.value().get() {
            news.update(|n| remember(n, c));
        }
    });
    view! {
        <section class="device-commands" aria-labelledby="device-commands-title">
            <h2 id="device-commands-title">"Commands"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading commands…"</p> }>
                {move || Suspend::new(async move {
                    let can_act = access.await.is_ok_and(|a| a.can_change());
                    match listed.await {
                        Ok(page) => {
                            let paged = before.get_untracked().is_some();
                            let list = StoredValue::new(page.commands);
                            let shown = move || {
                                let rows = match paged {
                                    true => list.get_value(),
                                    false => news.with(|n| list.with_value(|l| fold(l, n, COMMANDS_LISTED))),
                                };
                                table(rows, can_act, cancel, local.get())
                            };
                            let older = page.older.map(|id| view! {
                                <a class="button" href=page_link(Some(id)) rel="next">"Older commands"</a>
                            });
                            let newest = paged.then(|| view! {
                                <a class="button" href=page_link(None)>"Newest commands"</a>
                            });
                            view! {
                                {can_act.then(|| view! { <SendForm device=device.get_value() send/> })}
                                {paged.then(|| view! { <p class="muted">"Older commands, as they were when this page was read."</p> })}
                                {shown}
                                <nav class="command-pages" aria-label="Command pages">{newest}{older}</nav>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <p class="error" role="alert">"Cannot load commands: " {e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// Sending a command: its method, params (a JSON object), how long to wait for its answer, how
/// long it may wait for the device (its time to live), and whether it is one-way (done once the
/// device has it, no answer awaited).
#[component]
fn SendForm(device: String, send: ServerAction<SendCommand>) -> impl IntoView {
    let timeout_hint = format!("{DEFAULT_TIMEOUT_SECS}");
    let ttl_hint = format!("{DEFAULT_TTL_SECS}");
    view! {
        <ActionForm action=send attr:class="command-send">
            <input type="hidden" name="device" value=device/>
            <label class="field">
                "Method"
                <input type="text" name="method" required maxlength=MAX_METHOD_LEN.to_string() placeholder="identify"/>
            </label>
            <label class="field params">
                "Params (JSON object)"
                <input type="text" name="params" maxlength="8192" placeholder="{\"secs\": 5}"/>
            </label>
            <label class="field">
                "Timeout (s)"
                <input type="number" name="timeout_secs" min="1" max=MAX_TIMEOUT_SECS.to_string() placeholder=timeout_hint/>
            </label>
            <label class="field">
                "Time to live (s)"
                <input type="number" name="ttl_secs" min="1" max=MAX_TTL_SECS.to_string() placeholder=ttl_hint/>
            </label>
            <label class="choice">
                <input type="checkbox" name="oneway" value="yes"/>
                "One-way (done once the device has it)"
            </label>
            <button type="submit" class="button primary">"Send command"</button>
            <span class="save-state" role="status">{move || if send.pending().get() { "Sending…" } else { "" }}</span>
            {move || send.value().get().and_then(Result::err).map(|e| view! {
                <p class="error" role="alert">{format!("Not sent: {e}")}</p>
            })}
        </ActionForm>
    }
}

fn table(rows: Vec<Command>, can_act: bool, cancel: ServerAction<CancelCommand>, local: bool) -> AnyView {
    let refused = move || {
        cancel.value().get().and_then(Result::err).map(|e| {
            view! {
                <p class="error" role="alert">{format!("Not canceled: {e}")}</p>
            }
        })
    };
    if rows.is_empty() {
        return view! {
            <p class="muted">"None yet: commands sent to this device show here with their state and answer."</p>
        }
        .into_any();
    }
    view! {
        {refused}
        <div class="connection-scroll">
            <table class="command-list">
                <thead>
                    <tr>
                        <th scope="col">"Method"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"By"</th>
                        <th scope="col">"Sent"</th>
                        <th scope="col">"Took"</th>
                        <th scope="col">"Result"</th>
                        {can_act.then(|| view! { <th scope="col"><span class="visually-hidden">"Cancel"</span></th> })}
                    </tr>
                </thead>
                <tbody>
                    {rows.into_iter().map(|c| row(c, can_act, cancel, local)).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

fn row(c: Command, can_act: bool, cancel: ServerAction<CancelCommand>, local: bool) -> impl IntoView {
    let unfinished = !c.status.is_terminal();
    let (device, id) = (c.device.clone(), c.id.clone());
    view! {
        <tr data-command=c.id.clone() data-status=c.status.label()>
            <td><code class="method">{c.method.clone()}</code></td>
            <td><span class="command-status" data-kind=status_class(c.status)>{status_text(&c)}</span></td>
            <td class="by">{c.created_by.clone()}</td>
            <td><time datetime=format::iso(c.created_at)>{format::date_time(c.created_at, local)}</time></td>
            <td class="took">{duration(&c)}</td>
            <td class="outcome">{outcome(&c)}</td>
            {can_act.then(|| view! {
                <td>
                    {unfinished.then(|| view! {
                        <ActionForm action=cancel attr:class="command-cancel">
                            <input type="hidden" name="device" value=device/>
                            <input type="hidden" name="id" value=id/>
                            <button type="submit" class="button">"Cancel"</button>
                        </ActionForm>
                    })}
                </td>
            })}
        </tr>
    }
}
