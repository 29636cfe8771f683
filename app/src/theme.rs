//! Light and dark: the system's choice unless the user picks one with the toggle, which is
//! kept in local storage (`public/theme.js` applies it before the first paint).

use leptos::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
}

impl Theme {
    pub fn key(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    fn other(self) -> Theme {
        match self {
            Theme::Light => Theme::Dark,
            Theme::Dark => Theme::Light,
        }
    }
}

/// The theme in effect in the browser: the chosen one, else the system's.
#[cfg(feature = "hydrate")]
fn current() -> Theme {
    let doc = web_sys::window().and_then(|w| w.document());
    let chosen = doc.and_then(|d| d.document_element()).and_then(|e| e.get_attribute("data-theme"));
    match chosen.as_deref() {
        Some("dark") => Theme::Dark,
        Some("light") => Theme::Light,
        _ => {
            let dark = web_sys::window()
                .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
                .is_some_and(|m| m.matches());
            if dark { Theme::Dark } else { Theme::Light }
        }
    }
}

#[component]
pub fn ThemeToggle() -> impl IntoView {
    // Unknown on the server: the button shows once the page is live.
    let theme: RwSignal<Option<Theme>> = RwSignal::new(None);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| theme.set(Some(current())));
    let toggle = move |_| {
        let Some(next) = theme.get_untracked().map(Theme::other) else { return };
        #[cfg(feature = "hydrate")]
        {
            use gloo_storage::Storage;
            let _ = gloo_storage::LocalStorage::set("theme", next.key());
            if let Some(root) =
                web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element())
            {
                let _ = root.set_attribute("data-theme", next.key());
            }
            // Charts take their colours from the theme.
            if let Some(doc) = web_sys::window().and_then(|w| w.document())
                && let Ok(event) = web_sys::Event::new("themechange")
            {
                let _ = doc.dispatch_event(&event);
            }
        }
        theme.set(Some(next));
    };
    view! {
        <button
            type="button"
            class="icon-button theme-toggle"
            hidden=move || theme.get().is_none()
            aria-label=move || match theme.get() {
                Some(Theme::Dark) => "Switch to light theme",
                _ => "Switch to dark theme",
            }
            data-theme=move || theme.get().map(Theme::key).unwrap_or_default()
            on:click=toggle
        >
            {move || if theme.get() == Some(Theme::Dark) { "☀" } else { "☾" }}
        </button>
    }
}
