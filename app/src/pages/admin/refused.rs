//! The admin page's refused ids: connections and messages the server refused from ids it has
//! never registered (a device without a key, a typo in a client id), the last few dozen, so
//! an admin sees who is knocking without any of them becoming a device.

use leptos::prelude::*;

use crate::api::list_refused_ids;
use crate::logic::format;
use crate::state::live::Live;

#[component]
pub fn RefusedIds() -> impl IntoView {
    let refused = Resource::new(|| (), |_| list_refused_ids());
    let live = expect_context::<Live>();
    let local = move || live.hydrated();
    view! {
        <section class="admin-section refused-ids">
            <h2>"Refused connections"</h2>
            <p class="hint">
                "Ids the server has never registered whose connections or messages it refused, newest "
                "first. A device of yours here needs a key (above)."
            </p>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match refused.await {
                        Ok(list) if list.is_empty() => view! { <p class="muted">"Nothing refused."</p> }.into_any(),
                        Ok(list) => view! {
                            <table class="refused-list">
                                <thead><tr><th>"Id"</th><th>"Why"</th><th>"Times"</th><th>"Last"</th><th>"From"</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|r| {
                                        let id = r.id.clone();
                                        view! {
                                        <tr data-id=id>
                                            <td><code>{r.id}</code></td>
                                            <td>{r.text}</td>
                                            <td>{r.count}</td>
                                            <td>{format::date_time(r.last, local())}</td>
                                            <td>{r.peer.unwrap_or_default()}</td>
                                        </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">"Cannot load: " {e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
