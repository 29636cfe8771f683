//! What a device says about itself (`app/device/<id>/attributes`: firmware, model, MAC, …), each
//! with when it last changed; live, and from the offline cache when there is no network.

use leptos::prelude::*;
use telemetry::DeviceSummary;

use crate::logic::format;

#[component]
pub fn DeviceAttributes(device: Memo<Option<DeviceSummary>>, local: Signal<bool>) -> impl IntoView {
    let attributes = move || device.with(|d| d.as_ref().map(|d| d.attributes.clone()).unwrap_or_default());
    let topic = device.with_untracked(|d| d.as_ref().map(|d| telemetry::topic::attributes_topic(&d.id)));
    view! {
        <section class="device-attributes" aria-labelledby="device-attributes-title">
            <h2 id="device-attributes-title">"Attributes"</h2>
            {move || {
                let all = attributes();
                if all.is_empty() {
                    return view! {
                        <p class="muted">
                            "None reported yet: a device publishes them (firmware, model, …) to "
                            <code>{topic.clone()}</code>"."
                        </p>
                    }
                        .into_any();
                }
                view! {
                    <dl class="attribute-list">
                        {all
                            .into_iter()
                            .map(|a| {
                                let since = format!("since {}", format::date_time(a.changed_at, local.get()));
                                view! {
                                    <div data-attribute=a.name.clone()>
                                        <dt>{a.name.clone()}</dt>
                                        <dd>
                                            <span class="value">{a.value.to_string()}</span>
                                            " "
                                            <span class="muted">{since}</span>
                                        </dd>
                                    </div>
                                }
                            })
                            .collect_view()}
                    </dl>
                }
                    .into_any()
            }}
        </section>
    }
}
