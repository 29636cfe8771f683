//! Light and dark in the browser: the theme in effect (the chosen one, else the system's) and
//! choosing one, which is kept in local storage (`public/theme.js` applies it before the first
//! paint).

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

    pub fn other(self) -> Theme {
        match self {
            Theme::Light => Theme::Dark,
            Theme::Dark => Theme::Light,
        }
    }
}

/// The theme in effect in the browser: the chosen one, else the system's.
#[cfg(feature = "hydrate")]
pub fn current() -> Theme {
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

/// Keeps `theme` as the user's choice and applies it to the page now.
#[cfg(feature = "hydrate")]
pub fn choose(theme: Theme) {
    use gloo_storage::Storage;
    let _ = gloo_storage::LocalStorage::set("theme", theme.key());
    if let Some(root) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element()) {
        let _ = root.set_attribute("data-theme", theme.key());
    }
    // Charts take their colours from the theme.
    if let Some(doc) = web_sys::window().and_then(|w| w.document())
        && let Ok(event) = web_sys::Event::new("themechange")
    {
        let _ = doc.dispatch_event(&event);
    }
}
