//! The top bar's account corner: who is signed in, the admin page's link (admins only) and
//! "Sign out", or, while no user exists, the way to set up sign-in.

use leptos::prelude::*;
use telemetry::{Access, Role};

use crate::api::whoami;
use crate::widgets::icon::{Icon, Lucide};

#[component]
pub fn AccountMenu() -> impl IntoView {
    let access = Resource::new(|| (), |_| whoami());
    view! {
        <Suspense fallback=|| ()>
            {move || access.get().and_then(Result::ok).map(|a: Access| match a.user {
                Some(user) => view! {
                    {(user.role == Role::Admin).then(|| view! {
                        <a class="admin-link" href="/admin" title="Users & keys">
                            <Icon icon=Lucide::Users/>
                            <span class="label">"Users & keys"</span>
                        </a>
                    })}
                    <a class="account" href="/account" title="Your account" data-role=user.role.as_str()>
                        <span class="account-name">{user.name}</span>
                        <span class="account-role">{user.role.as_str()}</span>
                    </a>
                    <form class="sign-out" method="post" action="/auth/logout">
                        <button class="button" type="submit" title="Sign out">
                            <Icon icon=Lucide::LogOut/>
                            <span class="label">"Sign out"</span>
                        </button>
                    </form>
                }.into_any(),
                None if a.setup_needed => view! {
                    <a class="button setup-link" href="/setup" title="Set up sign-in: anyone who can reach this dashboard can change it">
                        <Icon icon=Lucide::LockOpen/>
                        <span class="label">"Set up sign-in"</span>
                    </a>
                }.into_any(),
                None => ().into_any(),
            })}
        </Suspense>
    }
}
