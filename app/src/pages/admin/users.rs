//! The admin page's users: who signs in with which role, adding, changing roles, removing.

use leptos::form::ActionForm;
use leptos::prelude::*;
use telemetry::Role;
use telemetry::auth::MIN_PASSWORD_LEN;

use super::outcome::{Outcome, OutcomeLine, track};
use crate::api::{AddUser, RemoveUser, SetUserRole, UserList, list_users};
use crate::widgets::confirm_submit::ConfirmSubmit;

#[component]
pub fn Users() -> impl IntoView {
    let add = ServerAction::<AddUser>::new();
    let set_role = ServerAction::<SetUserRole>::new();
    let remove = ServerAction::<RemoveUser>::new();
    let users = Resource::new(
        move || (add.version().get(), set_role.version().get(), remove.version().get()),
        |_| list_users(),
    );
    let listed = RwSignal::new(None::<Outcome>);
    let added = RwSignal::new(None::<Outcome>);
    track(set_role, listed, "Role changed.");
    track(remove, listed, "User removed; their sessions have ended.");
    track(add, added, "User added: they can sign in now.");
    view! {
        <section class="admin-section users">
            <h2>"Users"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading users…"</p> }>
                {move || Suspend::new(async move {
                    match users.await {
                        Ok(list) => view! { <UserTable list set_role remove/> }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">"Cannot load users: " {e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
            <OutcomeLine outcome=listed/>
            <h3>"Add a user"</h3>
            <ActionForm action=add attr:class="admin-form add-user">
                <label class="field">"User name"
                    <input type="text" name="name" required maxlength="64" autocomplete="off"/>
                </label>
                <label class="field">"Password"
                    <input type="password" name="password" required minlength=MIN_PASSWORD_LEN autocomplete="new-password"/>
                </label>
                <label class="field">"Role"
                    <select name="role">
                        <option value="viewer" selected>"viewer (looks)"</option>
                        <option value="admin">"admin (changes things)"</option>
                    </select>
                </label>
                <button class="button primary" type="submit">"Add user"</button>
            </ActionForm>
            <OutcomeLine outcome=added/>
        </section>
    }
}

#[component]
fn UserTable(
    list: UserList,
    set_role: ServerAction<SetUserRole>,
    remove: ServerAction<RemoveUser>,
) -> impl IntoView {
    let UserList { me, users } = list;
    let rows = users
        .into_iter()
        .map(|user| {
            let other = match user.role {
                Role::Admin => Role::Viewer,
                Role::Viewer => Role::Admin,
            };
            let you = (user.name == me).then(|| view! { <span class="muted">" (you)"</span> });
            let (row, shown, for_role, for_remove) =
                (user.name.clone(), user.name.clone(), user.name.clone(), user.name);
            view! {
                <tr data-user=row>
                    <td class="user-name">{shown} {you}</td>
                    <td class="user-role">{user.role.as_str()}</td>
                    <td class="row-actions">
                        <ActionForm action=set_role attr:class="inline-form set-role">
                            <input type="hidden" name="name" value=for_role/>
                            <input type="hidden" name="role" value=other.as_str()/>
                            <button class="button" type="submit">{format!("Make {other}")}</button>
                        </ActionForm>
                        <ActionForm action=remove attr:class="inline-form remove-user">
                            <input type="hidden" name="name" value=for_remove/>
                            <ConfirmSubmit confirm="Yes, remove" button="Remove"/>
                        </ActionForm>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="admin-table">
            <thead><tr><th>"Name"</th><th>"Role"</th><th>"Change"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
