//! Groups on the fleet view: each a link to its devices, the current query saved as a new one,
//! and deleting one (refused while an alarm rule's scope names it). Plain forms.

use leptos::form::ActionForm;
use leptos::prelude::*;
use telemetry::query::{Group, MAX_GROUP_NAME};

use crate::api::{DeleteGroup, SaveGroup};
use crate::logic::fleet::{FleetView, fleet_href};
use crate::widgets::confirm_submit::ConfirmSubmit;

#[component]
pub fn Groups(
    groups: Vec<Group>,
    view: FleetView,
    can_act: bool,
    save: ServerAction<SaveGroup>,
    delete: ServerAction<DeleteGroup>,
) -> impl IntoView {
    let q = view.q.trim().to_owned();
    // Saving a query that is one group already would only copy it.
    let savable = can_act && !q.is_empty() && !groups.iter().any(|g| q == format!("group:{}", g.id));
    let problem = move || {
        [save.value().get().map(|r| r.map(drop)), delete.value().get()]
            .into_iter()
            .flatten()
            .find_map(Result::err)
            .map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })
    };
    let links = groups
        .iter()
        .map(|g| {
            let current = q == format!("group:{}", g.id);
            view! {
                <a class="chip group" class:active=current href=fleet_href(&format!("group:{}", g.id)) title=g.query.clone() data-group=g.id.clone()>
                    {g.name.clone()}
                </a>
            }
        })
        .collect_view();
    let deletions = (can_act && !groups.is_empty()).then(|| {
        let rows = groups
            .clone()
            .into_iter()
            .map(|g| {
                view! {
                    <li>
                        <ActionForm action=delete attr:class="group-delete">
                            <input type="hidden" name="id" value=g.id.clone()/>
                            <code>{format!("group:{}", g.id)}</code>" = "<code>{g.query}</code>
                            <ConfirmSubmit confirm="Yes, delete this group" button="Delete"/>
                        </ActionForm>
                    </li>
                }
            })
            .collect_view();
        view! {
            <details class="group-admin">
                <summary>"Manage groups"</summary>
                <ul>{rows}</ul>
            </details>
        }
    });
    view! {
        <section class="fleet-groups" aria-label="Groups">
            <nav class="chips">
                <span class="muted">"Groups:"</span>
                {if groups.is_empty() {
                    view! { <span class="muted">"none yet — filter, then save the query as a group"</span> }.into_any()
                } else {
                    links.into_any()
                }}
            </nav>
            {savable.then(|| view! {
                <ActionForm action=save attr:class="group-save">
                    <input type="hidden" name="query" value=q.clone()/>
                    <label class="field">
                        <span class="visually-hidden">"Group name"</span>
                        <input type="text" name="name" required maxlength=MAX_GROUP_NAME.to_string() placeholder="Name this query as a group"/>
                    </label>
                    <button class="button" type="submit">"Save as group"</button>
                </ActionForm>
            })}
            {deletions}
            {problem}
        </section>
    }
}
