//! `/admin`: users and device keys, for admins (the server refuses everyone else, page and
//! server functions alike). Forms are plain forms, except issuing a key, which needs
//! JavaScript: the key is shown once, on this page, and never travels in a URL.

mod device_keys;
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

/// The outcome of the latest change in a section: what happened, or why it was refused.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Done(&'static str),
    Refused(String),
}

/// Shows an [`Outcome`].
#[component]
fn OutcomeLine(outcome: RwSignal<Option<Outcome>>) -> impl IntoView {
    move || {
        outcome.get().map(|o| match o {
            Outcome::Done(what) => view! { <p class="done" role="status">{what}</p> }.into_any(),
            Outcome::Refused(why) => view! { <p class="error" role="alert">{why}</p> }.into_any(),
        })
    }
}

/// Records each result of `action` in `outcome`, with `done` for a success.
fn track<S>(action: ServerAction<S>, outcome: RwSignal<Option<Outcome>>, done: &'static str)
where
    S: leptos::server_fn::ServerFn<Error = crate::api::ApiError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    Effect::new(move |_| {
        if let Some(result) = action.value().get() {
            outcome.set(Some(match result {
                Ok(_) => Outcome::Done(done),
                Err(e) => Outcome::Refused(e.to_string()),
            }));
        }
    });
}
