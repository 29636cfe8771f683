//! What an admin does to one alarm: acknowledge, clear, shelve for 1, 8 or 24 hours, unshelve,
//! comment. Plain forms, so they work without JavaScript; each shows only when it applies.

use leptos::form::ActionForm;
use leptos::prelude::*;
use telemetry::Millis;
use telemetry::alarm::{Alarm, MAX_COMMENT};

use crate::api::ActOnAlarm;

#[component]
pub fn AlarmActions(
    #[prop(into)] alarm: Signal<Alarm>,
    #[prop(into)] now: Signal<Millis>,
    act: ServerAction<ActOnAlarm>,
) -> impl IntoView {
    let form = move |action: &'static str, label: &'static str, class: &'static str| {
        let id = alarm.with_untracked(|a| a.id.clone());
        view! {
            <ActionForm action=act attr:class=format!("inline-form {class}")>
                <input type="hidden" name="id" value=id/>
                <input type="hidden" name="action" value=action/>
                <button class="button" type="submit">{label}</button>
            </ActionForm>
        }
    };
    // Re-made when the alarm's state changes, not every second.
    let state = Memo::new(move |_| alarm.with(|a| (a.active, a.acked, a.shelved(now.get()))));
    view! {
        <section class="alarm-actions" aria-label="Act on this alarm">
            {move || {
                let (active, acked, shelved) = state.get();
                let id = alarm.with_untracked(|a| a.id.clone());
                view! {
                    {(!acked).then(|| form("ack", "Acknowledge", "ack"))}
                    {active.then(|| form("clear", "Clear", "clear"))}
                    {(active && !shelved).then(|| view! {
                        <ActionForm action=act attr:class="inline-form shelve">
                            <input type="hidden" name="id" value=id/>
                            <input type="hidden" name="action" value="shelve"/>
                            <label class="choice">"Shelve for "
                                <select name="hours">
                                    <option value="1">"1 hour"</option>
                                    <option value="8">"8 hours"</option>
                                    <option value="24">"24 hours"</option>
                                </select>
                            </label>
                            <button class="button" type="submit">"Shelve"</button>
                        </ActionForm>
                    })}
                    {shelved.then(|| form("unshelve", "Unshelve", "unshelve"))}
                }
            }}
            {move || act.value().get().and_then(Result::err).map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
            <p class="hint">
                "Clearing by hand ends this alarm; if the condition still holds, a new one opens after the rule's pending time."
            </p>
        </section>
    }
}

/// Adds a comment to the alarm's log (and, once it is in, empties the box).
#[component]
pub fn CommentForm(id: String, act: ServerAction<ActOnAlarm>) -> impl IntoView {
    let form = NodeRef::<leptos::html::Form>::new();
    // What was sent last (the input is gone once the answer is in).
    let commenting = StoredValue::new(false);
    Effect::new(move |_| {
        if let Some(input) = act.input().get() {
            commenting.set_value(input.action == "comment");
        }
    });
    Effect::new(move |_| {
        if matches!(act.value().get(), Some(Ok(_))) && commenting.get_value() {
            #[cfg(feature = "hydrate")]
            if let Some(form) = form.get_untracked() {
                form.reset();
            }
        }
    });
    view! {
        <ActionForm action=act node_ref=form attr:class="comment-form">
            <input type="hidden" name="id" value=id/>
            <input type="hidden" name="action" value="comment"/>
            <label class="field">"Add a comment"
                <textarea name="text" rows="2" required maxlength=MAX_COMMENT></textarea>
            </label>
            <button class="button" type="submit">"Comment"</button>
        </ActionForm>
    }
}
