//! `/admin`: users and device keys, for admins (the server refuses everyone else, page and
//! server functions alike). Forms are plain forms, except issuing a key, which needs
//! JavaScript: the key is shown once, on this page, and never travels in a URL.

mod device_keys;
mod outcome;
mod refused;
mod users;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use telemetry::AccountError;

use self::device_keys::DeviceKeys;
use self::refused::RefusedIds;
use self::users::Users;

#[component]
pub fn AdminPage() -> impl IntoView {
    let query = use_query_map();
    // A refused plain form post comes back as ?error=<code>; only known codes say anything,
    // so a link cannot put its own words on this page.
    let error = move || {
        query.with(|q| q.get("error")).and_then(|c| AccountError::from_code(&c)).map(|e| e.to_string())
    };
    view! {
        <section class="admin-page">
            <h1>"Users and device keys"</h1>
            {move || error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <Users/>
            <DeviceKeys/>
            <RefusedIds/>
        </section>
    }
}
