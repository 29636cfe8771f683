//! The end of a form that destroys something: a box to tick, then the button, so nothing goes
//! with one stray click (and the server refuses the form without the box).

use leptos::prelude::*;

#[component]
pub fn ConfirmSubmit(
    /// What ticking the box agrees to.
    confirm: &'static str,
    button: &'static str,
) -> impl IntoView {
    view! {
        <label class="choice">
            <input type="checkbox" name="confirm" value="yes" required/>
            {confirm}
        </label>
        <button class="button danger" type="submit">{button}</button>
    }
}
