//! A device's desired state (shadow): the desired document (keys and values) with its
//! version, who changed it and when; what the device last reported, with its version and
//! time; and how the two stand in words ("In sync", "Pending since 12:03 (the device has not
//! reported version 4)", "Rejected: …"). Read from the server, then kept current by the live
//! feed's `desired` events (this page watches its device in [`Live`]'s shadows). Admins (and
//! anyone while the dashboard is open) set a key to a JSON value or remove one; each edit is
//! made against the version shown, so a change made meanwhile by someone else is refused with
//! "changed meanwhile, reload" rather than overwritten. Plain forms: they work without
//! JavaScript too. Viewers see it read-only.

use std::collections::BTreeSet;

use leptos::form::ActionForm;
use leptos::prelude::*;
use telemetry::desired::{Shadow, Sync};

use crate::api::{SetDesired, control_state};
use crate::logic::desired::{MAX_KEY_LEN, MAX_VALUE_BYTES, entries, sync_text};
use crate::logic::format;
use crate::state::live::Live;

#[component]
pub fn DeviceDesired(id: String, local: Signal<bool>) -> impl IntoView {
    let live = expect_context::<Live>();
    let device = StoredValue::new(id.clone());
    // Watched at once (the server's render notes what it read), and again once mounted, after
    // the page left behind has let go of its own; only a browser leaves a page (see the
    // dashboard's controls), and then lets go of this device unless the next page watches it.
    let watched = StoredValue::new(BTreeSet::from([id]));
    live.shadows.watch(watched.get_value());
    Effect::new(move |_| live.shadows.watch(watched.get_value()));
    #[cfg(feature = "hydrate")]
    {
        let mine = watched.get_value();
        on_cleanup(move || live.shadows.unwatch(&mine));
    }
    let start = Resource::new(move || device.get_value(), |d| control_state(d, None));
    let set = ServerAction::<SetDesired>::new();
    Effect::new(move |_| {
        if let Some(Ok(shadow)) = set.value().get() {
            live.shadows.note(shadow);
        }
    });
    view! {
        <section class="device-desired" aria-labelledby="device-desired-title">
            <h2 id="device-desired-title">"Desired state"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading the desired state…"</p> }>
                {move || Suspend::new(async move {
                    match start.await {
                        Ok(start) => {
                            let first = start.seed.shadow.unwrap_or_else(|| Shadow::new(&device.get_value()));
                            live.shadows.note(first.clone());
                            let first = StoredValue::new(first);
                            let shadow = Memo::new(move |_| {
                                live.shadows.by_device.with(|s| {
                                    s.get(&device.get_value()).cloned().unwrap_or_else(|| first.get_value())
                                })
                            });
                            view! {
                                <Shown shadow local/>
                                {start.can_act.then(|| view! { <EditForm shadow set/> })}
                            }
                            .into_any()
                        }
                        Err(e) => view! {
                            <p class="error" role="alert">"Cannot load the desired state: " {e.to_string()}</p>
                        }
                        .into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// The sync state, then the desired and the reported documents side by side.
#[component]
fn Shown(shadow: Memo<Shadow>, local: Signal<bool>) -> impl IntoView {
    let sync = move || shadow.with(|s| sync_text(s, local.get()));
    let kind = move || match shadow.with(Shadow::sync) {
        Sync::InSync => "ok",
        Sync::Pending | Sync::Unknown => "pending",
        Sync::Rejected => "bad",
    };
    let changed = move || {
        shadow.with(|s| match (&s.updated_by, s.updated_at) {
            (Some(by), Some(at)) => format!("changed by {by} at {}", format::date_time(at, local.get())),
            _ => "never changed".to_owned(),
        })
    };
    let reported = move || {
        shadow.with(|s| match &s.reported {
            Some(r) => format!("version {}, at {}", r.v, format::date_time(r.at, local.get())),
            None => "never".to_owned(),
        })
    };
    view! {
        <p class="desired-sync" role="status" data-sync=kind>{sync}</p>
        <div class="desired-docs">
            <figure class="desired-doc" data-doc="desired">
                <figcaption>
                    "Desired: version " <span class="desired-v">{move || shadow.with(|s| s.v)}</span>
                    ", " <span class="desired-by">{changed}</span>
                </figcaption>
                {move || document(&shadow.with(|s| s.state.clone()), "Nothing desired yet.")}
            </figure>
            <figure class="desired-doc" data-doc="reported">
                <figcaption>"Reported: " <span class="reported-v">{reported}</span></figcaption>
                {move || {
                    let state = shadow.with(|s| s.reported.as_ref().map(|r| r.state.clone()).unwrap_or_default());
                    document(&state, "The device has not reported its state.")
                }}
            </figure>
        </div>
    }
}

fn document(state: &serde_json::Map<String, serde_json::Value>, empty: &'static str) -> AnyView {
    if state.is_empty() {
        return view! { <p class="muted">{empty}</p> }.into_any();
    }
    view! {
        <dl class="desired-keys">
            {entries(state)
                .into_iter()
                .map(|(k, v)| {
                    let name = k.clone();
                    view! { <div data-key=k><dt>{name}</dt><dd><code>{v}</code></dd></div> }
                })
                .collect_view()}
        </dl>
    }
    .into_any()
}

/// Setting one key to a JSON value, or removing it, against the version shown.
#[component]
fn EditForm(shadow: Memo<Shadow>, set: ServerAction<SetDesired>) -> impl IntoView {
    let device = move || shadow.with(|s| s.device.clone());
    let version = move || shadow.with(|s| s.v.to_string());
    view! {
        <ActionForm action=set attr:class="desired-edit">
            <input type="hidden" name="device" value=device/>
            <input type="hidden" name="version" value=version/>
            <label class="field">
                "Key"
                <input type="text" name="key" required maxlength=MAX_KEY_LEN.to_string() pattern="[A-Za-z0-9_.\\-]{1,64}" placeholder="interval_s"/>
            </label>
            <label class="field">
                "Value (JSON)"
                <input type="text" name="value" maxlength=MAX_VALUE_BYTES.to_string() placeholder="30"/>
            </label>
            <button type="submit" class="button primary">"Set"</button>
            <button type="submit" class="button" name="remove" value="yes" formnovalidate>"Remove key"</button>
            <span class="save-state" role="status">{move || if set.pending().get() { "Saving…" } else { "" }}</span>
            {move || set.value().get().and_then(Result::err).map(|e| view! {
                <p class="error" role="alert">{format!("Not changed: {e}")}</p>
            })}
        </ActionForm>
    }
}
