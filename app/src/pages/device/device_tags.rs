//! A device's tags on its page: each a link to the fleet filtered by it, and a plain form to
//! change them (it works without JavaScript too). Live: an edit elsewhere shows here.

use leptos::form::ActionForm;
use leptos::prelude::*;
use telemetry::tags::{MAX_TAGS, Tags, tags_text};

use crate::api::SetDeviceTags;
use crate::logic::fleet::fleet_href;

#[component]
pub fn DeviceTags(id: String, tags: Signal<Tags>) -> impl IntoView {
    let action = ServerAction::<SetDeviceTags>::new();
    // Read now, not when the form's children are rendered (the page's signals may be gone).
    let initial = tags_text(&tags.get_untracked());
    let problem = move || action.value().get().and_then(Result::err).map(|e| e.to_string());
    view! {
        <section class="device-tags" aria-labelledby="device-tags-title">
            <h2 id="device-tags-title">"Tags"</h2>
            <ul class="tag-list">
                {move || {
                    let tags = tags.get();
                    if tags.is_empty() {
                        return view! { <li class="muted">"No tags yet."</li> }.into_any();
                    }
                    tags.into_iter()
                        .map(|(k, v)| {
                            let href = fleet_href(&format!("tag:{k}={v}"));
                            view! { <li><a class="tag" href=href>{k}"="{v}</a></li> }
                        })
                        .collect_view()
                        .into_any()
                }}
            </ul>
            <ActionForm action attr:class="tag-form">
                <input type="hidden" name="id" value=id/>
                <label class="field">
                    {format!("key=value, separated by spaces (at most {MAX_TAGS})")}
                    <input type="text" name="tags" value=initial maxlength=telemetry::tags::MAX_TAGS_TEXT.to_string() placeholder="site=greenhouse floor=2" autocomplete="off" spellcheck="false"/>
                </label>
                <button type="submit" class="button">"Save tags"</button>
                <span class="save-state" role="status">
                    {move || match action.value().get() {
                        Some(Ok(())) => "Saved",
                        _ if action.pending().get() => "Saving…",
                        _ => "",
                    }}
                </span>
            </ActionForm>
            {move || problem().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </section>
    }
}
