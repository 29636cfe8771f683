//! What became of the latest change in an admin section, and the line that says it.

use leptos::prelude::*;

use crate::api::ApiError;

/// The outcome of the latest change in a section: what happened, or why it was refused.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Outcome {
    Done(&'static str),
    Refused(String),
}

/// Shows an [`Outcome`].
#[component]
pub(super) fn OutcomeLine(outcome: RwSignal<Option<Outcome>>) -> impl IntoView {
    move || {
        outcome.get().map(|o| match o {
            Outcome::Done(what) => view! { <p class="done" role="status">{what}</p> }.into_any(),
            Outcome::Refused(why) => view! { <p class="error" role="alert">{why}</p> }.into_any(),
        })
    }
}

/// Records each result of `action` in `outcome`, with `done` for a success.
pub(super) fn track<S>(action: ServerAction<S>, outcome: RwSignal<Option<Outcome>>, done: &'static str)
where
    S: leptos::server_fn::ServerFn<Error = ApiError> + Clone + Send + Sync + 'static,
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
