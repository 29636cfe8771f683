//! Saving a dashboard: one save in flight at a time, and the browser's copy of the last one
//! saved, shown at once (and offline) the next time the dashboard opens.

use leptos::prelude::*;
use telemetry::dashboard::Dashboard;

use crate::api::save_dashboard;

#[derive(Debug, Clone, PartialEq)]
enum SaveState {
    Idle,
    Saving,
    Saved,
    Failed(String),
}

/// Saves the dashboard being shown.
#[derive(Clone, Copy)]
pub(super) struct Saver {
    dashboard: RwSignal<Dashboard>,
    state: RwSignal<SaveState>,
    /// A save is on its way to the server.
    in_flight: StoredValue<bool>,
    /// Something changed while it was: it goes out when that save returns.
    changed_since: StoredValue<bool>,
}

impl Saver {
    pub(super) fn new(dashboard: RwSignal<Dashboard>) -> Saver {
        Saver {
            dashboard,
            state: RwSignal::new(SaveState::Idle),
            in_flight: StoredValue::new(false),
            changed_since: StoredValue::new(false),
        }
    }

    /// Saves the dashboard as it is now. One save is in flight at a time: changes made
    /// meanwhile go out, as the latest state, when it returns. So saves never land out of
    /// order, and "Saved" means the last change is stored. A refusal (409 when the copy is
    /// stale, someone having saved it since) stops there and says so.
    pub(super) fn save(self) {
        let Saver { dashboard, state, in_flight, changed_since } = self;
        state.set(SaveState::Saving);
        if in_flight.get_value() {
            changed_since.set_value(true);
            return;
        }
        in_flight.set_value(true);
        leptos::task::spawn_local(async move {
            loop {
                changed_since.set_value(false);
                match save_dashboard(dashboard.get_untracked()).await {
                    Ok(saved) => {
                        #[cfg(feature = "hydrate")]
                        crate::browser::offline::cache_dashboard(&saved);
                        dashboard.update(|d| d.updated = saved.updated);
                    }
                    Err(e) => {
                        state.set(SaveState::Failed(e.to_string()));
                        break;
                    }
                }
                if !changed_since.get_value() {
                    state.set(SaveState::Saved);
                    break;
                }
            }
            in_flight.set_value(false);
        });
    }

    /// What the status line says. Reactive.
    pub(super) fn status(self) -> String {
        match self.state.get() {
            SaveState::Idle => String::new(),
            SaveState::Saving => "Saving…".into(),
            SaveState::Saved => "Saved".into(),
            SaveState::Failed(e) => format!("Not saved: {e}"),
        }
    }
}

/// Shows the browser's copy of the dashboard instead of the server's when it is newer.
#[cfg(feature = "hydrate")]
pub(super) fn show_cached_copy(dashboard: RwSignal<Dashboard>) {
    Effect::new(move |_| {
        if let Some(cached) = crate::browser::offline::cached_dashboard(&dashboard.get_untracked().id)
            && cached.updated > dashboard.get_untracked().updated
        {
            dashboard.set(cached);
        }
    });
}
