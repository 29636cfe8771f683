//! `/account`: who is signed in, and changing one's own password (a plain form posted to
//! `/auth/password`; every other session of the user ends, this browser stays signed in).

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use telemetry::AccountError;

use crate::api::whoami;

#[component]
pub fn AccountPage() -> impl IntoView {
    let query = use_query_map();
    let access = Resource::new(|| (), |_| whoami());
    // Only known codes say anything, so a link cannot put its own words on this page.
    let error = move || {
        query.with(|q| q.get("error")).and_then(|c| match c.as_str() {
            "mismatch" => Some("The new passwords differ.".to_owned()),
            code => AccountError::from_code(code).map(|e| e.to_string()),
        })
    };
    let done = move || query.with(|q| q.get("done")).is_some_and(|d| d == "password");
    view! {
        <section class="auth-page account-page">
            <h1>"Your account"</h1>
            <Suspense fallback=|| ()>
                {move || access.get().and_then(Result::ok).map(|a| match a.user {
                    Some(user) => view! {
                        <p>"Signed in as " <strong>{user.name}</strong> " (" {user.role.as_str()} ")."</p>
                    }.into_any(),
                    None => view! { <p class="muted">"Nobody is signed in: the dashboard is open."</p> }.into_any(),
                })}
            </Suspense>
            {move || done().then(|| view! {
                <p class="done" role="status">"Password changed. Your other sessions are signed out."</p>
            })}
            {move || error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <h2>"Change password"</h2>
            <form class="auth-form" method="post" action="/auth/password">
                <label class="field">"Current password"
                    <input type="password" name="current" autocomplete="current-password" required/>
                </label>
                <label class="field">"New password"
                    <input type="password" name="password" autocomplete="new-password" required minlength=telemetry::auth::MIN_PASSWORD_LEN/>
                </label>
                <label class="field">"New password again"
                    <input type="password" name="confirm" autocomplete="new-password" required minlength=telemetry::auth::MIN_PASSWORD_LEN/>
                </label>
                <button class="button primary" type="submit">"Change password"</button>
            </form>
        </section>
    }
}
