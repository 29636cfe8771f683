//! The desired and reported state (shadow) of the devices a dashboard's controls drive: seeded
//! by each control's first read, then kept current by the live feed's `desired` events. Only
//! the watched devices' are kept (a busy fleet's would add up without bound), at most
//! [`MAX_WATCHED`] of them; each shadow is itself bounded by the server (64 keys, 4 KiB).

use std::collections::{BTreeMap, BTreeSet};

use leptos::prelude::*;
use telemetry::LiveEvent;
use telemetry::dashboard::MAX_WIDGETS;
use telemetry::desired::Shadow;

use crate::logic::control::newer_shadow;

/// Most devices whose shadows are kept: one per widget of a dashboard at most.
pub const MAX_WATCHED: usize = MAX_WIDGETS;

#[derive(Clone, Copy)]
pub struct Shadows {
    pub by_device: RwSignal<BTreeMap<String, Shadow>>,
    watched: StoredValue<BTreeSet<String>>,
}

impl Default for Shadows {
    fn default() -> Self {
        Shadows { by_device: RwSignal::new(BTreeMap::new()), watched: StoredValue::new(BTreeSet::new()) }
    }
}

impl Shadows {
    /// Keeps the shadows of `devices` only (the first [`MAX_WATCHED`]), forgetting the rest.
    pub fn watch(&self, devices: BTreeSet<String>) {
        let devices: BTreeSet<String> = devices.into_iter().take(MAX_WATCHED).collect();
        self.by_device.maybe_update(|known| {
            let before = known.len();
            known.retain(|id, _| devices.contains(id));
            known.len() != before
        });
        self.watched.set_value(devices);
    }

    /// Stops watching `devices` if they are still what is watched: a page leaving, after the
    /// next page may already watch its own.
    pub fn unwatch(&self, devices: &BTreeSet<String>) {
        if self.watched.with_value(|w| w == devices) {
            self.watch(BTreeSet::new());
        }
    }

    /// Takes `shadow` if its device is watched and it is at least as new as the one known.
    pub fn note(&self, shadow: Shadow) {
        if !self.watched.with_value(|w| w.contains(&shadow.device)) {
            return;
        }
        self.by_device.maybe_update(|known| match known.get(&shadow.device) {
            Some(old) if !newer_shadow(&shadow, old) => false,
            _ => {
                known.insert(shadow.device.clone(), shadow);
                true
            }
        });
    }

    /// Takes the feed's `desired` events.
    pub fn apply(&self, events: &[LiveEvent]) {
        for e in events {
            if let LiveEvent::Desired { shadow, .. } = e {
                self.note((**shadow).clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    fn shadow(device: &str, v: u64) -> Shadow {
        Shadow {
            device: device.into(),
            v,
            state: Map::new(),
            updated_by: None,
            updated_at: None,
            reported: None,
        }
    }

    #[test]
    fn only_watched_devices_are_kept_and_older_news_is_ignored() {
        Owner::new().with(|| {
            let shadows = Shadows::default();
            let event = |s: Shadow| LiveEvent::Desired { seq: 1, at: 1, shadow: Box::new(s) };
            shadows.apply(&[event(shadow("a", 1))]);
            assert!(shadows.by_device.with_untracked(BTreeMap::is_empty), "nobody watches a");
            shadows.watch(BTreeSet::from(["a".to_owned()]));
            shadows.apply(&[event(shadow("a", 2)), event(shadow("b", 2)), event(shadow("a", 1))]);
            assert_eq!(shadows.by_device.with_untracked(|s| s.get("a").map(|s| s.v)), Some(2));
            assert!(!shadows.by_device.with_untracked(|s| s.contains_key("b")));
            shadows.unwatch(&BTreeSet::from(["b".to_owned()]));
            assert!(shadows.by_device.with_untracked(|s| s.contains_key("a")), "a page leaving b keeps a");
            shadows.unwatch(&BTreeSet::from(["a".to_owned()]));
            assert!(shadows.by_device.with_untracked(BTreeMap::is_empty), "forgotten once unwatched");
            let many: BTreeSet<String> = (0..MAX_WATCHED + 10).map(|i| format!("d{i}")).collect();
            shadows.watch(many);
            for i in 0..MAX_WATCHED + 10 {
                shadows.note(shadow(&format!("d{i}"), 1));
            }
            assert_eq!(shadows.by_device.with_untracked(BTreeMap::len), MAX_WATCHED);
        });
    }
}
