//! The admin page's device keys: which devices may connect to the embedded broker, issuing a
//! key (shown once, with the MQTT settings that go with it) and revoking one.

use leptos::form::ActionForm;
use leptos::prelude::*;
use telemetry::IssuedKey;

use super::outcome::{Outcome, OutcomeLine, track};
use crate::api::{IssueDeviceKey, RevokeDeviceKey, list_device_keys};
use crate::state::live::Live;
use crate::widgets::confirm_submit::ConfirmSubmit;

#[component]
pub fn DeviceKeys() -> impl IntoView {
    let issue = ServerAction::<IssueDeviceKey>::new();
    let revoke = ServerAction::<RevokeDeviceKey>::new();
    let keys = Resource::new(move || (issue.version().get(), revoke.version().get()), |_| list_device_keys());
    let revoked = RwSignal::new(None::<Outcome>);
    track(revoke, revoked, "Key revoked: the device can no longer connect.");
    // Until hydrated the issue button stays off (see below).
    let live = expect_context::<Live>();
    let hydrated = move || live.hydrated();
    view! {
        <section class="admin-section device-keys">
            <h2>"Device keys"</h2>
            <p class="hint">
                "Once people sign in, devices do too: user name and client id are the device id, "
                "the password is its key."
            </p>
            <Transition fallback=|| view! { <p class="loading">"Loading device keys…"</p> }>
                {move || Suspend::new(async move {
                    match keys.await {
                        Ok(ids) if ids.is_empty() => view! { <p class="muted">"No device has a key yet."</p> }.into_any(),
                        Ok(ids) => view! { <KeyList ids revoke/> }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">"Cannot load device keys: " {e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
            <OutcomeLine outcome=revoked/>
            <h3>"Issue a key"</h3>
            <ActionForm action=issue attr:class="admin-form issue-key">
                <label class="field">"Device id"
                    <input type="text" name="device" required maxlength="64" autocomplete="off" placeholder="kitchen-1"/>
                </label>
                <button class="button primary" type="submit" disabled=move || !hydrated()>"Issue key"</button>
            </ActionForm>
            <p class="hint">"A device that has a key gets a new one: its old key stops working at once."</p>
            // Until hydrated (and for good without JavaScript): why the button is off.
            {move || (!hydrated()).then(|| view! {
                <p class="hint needs-js">"Issuing a key needs JavaScript: the key is shown once, on this page."</p>
            })}
            {move || issue.value().get().map(|result| match result {
                Ok(issued) => view! { <Issued issued/> }.into_any(),
                Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </section>
    }
}

#[component]
fn KeyList(ids: Vec<String>, revoke: ServerAction<RevokeDeviceKey>) -> impl IntoView {
    let rows = ids
        .into_iter()
        .map(|id| {
            let (row, shown) = (id.clone(), id.clone());
            view! {
                <li data-device=row>
                    <code class="device-id">{shown}</code>
                    <ActionForm action=revoke attr:class="inline-form revoke-key">
                        <input type="hidden" name="device" value=id/>
                        <ConfirmSubmit confirm="Yes, revoke" button="Revoke"/>
                    </ActionForm>
                </li>
            }
        })
        .collect_view();
    view! { <ul class="key-list">{rows}</ul> }
}

/// A key just issued, with the settings a device needs. Shown this once.
#[component]
fn Issued(issued: IssuedKey) -> impl IntoView {
    let IssuedKey { device, key, replaced } = issued;
    view! {
        <div class="issued-key" role="status">
            <p>
                <strong>"Key for " <code class="device-id">{device.clone()}</code></strong>
                " — copy it now: it is shown only this once."
            </p>
            {replaced.then(|| view! { <p class="note">"This replaced the device's previous key, which no longer works."</p> })}
            <label class="field">"Key"
                <input class="key-value" type="text" readonly value=key/>
            </label>
            <dl class="mqtt-settings">
                <dt>"User name"</dt><dd><code>{device.clone()}</code></dd>
                <dt>"Client id"</dt><dd><code>{device.clone()}</code></dd>
                <dt>"Password"</dt><dd>"the key above"</dd>
                <dt>"Publish to"</dt><dd><code>{format!("app/device/{device}/telemetry")}</code></dd>
                <dt>"Broker"</dt><dd>"this server, MQTT port 1883 (8883 with TLS) unless configured otherwise"</dd>
            </dl>
        </div>
    }
}
