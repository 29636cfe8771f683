//! The light/dark toggle: the system's choice unless the user picks one here (see
//! [`crate::browser::theme`] for how the choice is kept).

use leptos::prelude::*;

use crate::browser::theme::Theme;
use crate::widgets::icon::{Icon, Lucide};

#[component]
pub fn ThemeToggle() -> impl IntoView {
    // Unknown on the server: the button shows once the page is live.
    let theme: RwSignal<Option<Theme>> = RwSignal::new(None);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| theme.set(Some(crate::browser::theme::current())));
    let toggle = move |_| {
        let Some(next) = theme.get_untracked().map(Theme::other) else { return };
        #[cfg(feature = "hydrate")]
        crate::browser::theme::choose(next);
        theme.set(Some(next));
    };
    let label = move || match theme.get() {
        Some(Theme::Dark) => "Switch to light theme",
        _ => "Switch to dark theme",
    };
    view! {
        <button
            type="button"
            class="icon-button theme-toggle"
            hidden=move || theme.get().is_none()
            aria-label=label
            title=label
            data-theme=move || theme.get().map(Theme::key).unwrap_or_default()
            on:click=toggle
        >
            {move || {
                let icon = if theme.get() == Some(Theme::Dark) { Lucide::Sun } else { Lucide::Moon };
                view! { <Icon icon/> }
            }}
        </button>
    }
}
