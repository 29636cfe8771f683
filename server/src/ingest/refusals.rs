//! Who is being refused, and why: the dashboard shows a registered device whose messages or
//! connections are refused ("Refused since 15:03 — not signed in (issue a key), 12 times")
//! until one of its messages is stored again, and lists the last few refused ids the server
//! has never registered (on the admin page) without making them devices. Refusals are logged
//! once, then summarised at most once a minute per id and reason.
//!
//! Memory is bounded: one entry per registered device (capped by `limits.max_devices`) and
//! [`MAX_STRANGERS`] strangers.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use telemetry::text::untrusted;
use telemetry::{LiveEvent, Millis, Refused, RefusedId, Rejection};
use tracing::warn;

use crate::hub::Hub;
use crate::log_limit::LogLimit;

/// Refused ids the server has never registered, newest first, kept for the admin page.
pub const MAX_STRANGERS: usize = 50;

/// A device's refusal state goes out live at most this often while refusals repeat (each new
/// reason goes out at once, and the last of a burst goes out when its second is up, so a page
/// ends with the true count).
const LIVE_EVERY: Duration = Duration::from_secs(1);

struct Entry {
    refused: Refused,
    pushed: Instant,
    /// A push of the latest state is scheduled (refusals came faster than [`LIVE_EVERY`]).
    trailing: bool,
}

type Devices = Arc<Mutex<HashMap<String, Entry>>>;

pub struct Refusals {
    devices: Devices,
    /// `devices.len()`, read without the lock on every stored message.
    count: AtomicUsize,
    strangers: Mutex<VecDeque<RefusedId>>,
    log: LogLimit,
    hub: Hub,
}

impl Refusals {
    pub fn new(hub: Hub) -> Refusals {
        Refusals {
            devices: Devices::default(),
            count: AtomicUsize::new(0),
            strangers: Mutex::default(),
            log: LogLimit::default(),
            hub,
        }
    }

    /// Notes that `id` was refused for `why`. `registered` tells whether the server knows the
    /// device (then the dashboard shows it), else it is listed as a stranger.
    pub fn refused(&self, id: &str, registered: bool, why: &Rejection, peer: Option<&str>, now: Millis) {
        if let Some(earlier) = self.log.check(why.label(), id, Instant::now()) {
            let id = untrusted(id);
            match earlier {
                0 => warn!(%id, reason = why.label(), "refused: {why}"),
                n => warn!(%id, reason = why.label(), "refused: {why} ({n} more since the last line)"),
            }
        }
        if registered {
            self.device(id, why, now);
        } else {
            self.stranger(id, why, peer, now);
        }
    }

    fn device(&self, id: &str, why: &Rejection, now: Millis) {
        let mut devices = self.lock();
        let instant = Instant::now();
        let entry = devices.entry(id.to_owned()).or_insert_with(|| Entry {
            refused: Refused { reason: String::new(), text: String::new(), since: now, last: now, count: 0 },
            pushed: instant - LIVE_EVERY,
            trailing: false,
        });
        let new_reason = entry.refused.reason != why.label();
        if new_reason {
            entry.refused.reason = why.label().to_owned();
            entry.refused.text = why.to_string();
        }
        entry.refused.last = now;
        entry.refused.count += 1;
        let since_push = instant.duration_since(entry.pushed);
        let push = (new_reason || since_push >= LIVE_EVERY).then(|| {
            entry.pushed = instant;
            entry.refused.clone()
        });
        // Too soon to push again: push the latest state once its second is up.
        let trail = (push.is_none() && !entry.trailing).then(|| {
            entry.trailing = true;
            LIVE_EVERY.saturating_sub(since_push)
        });
        self.count.store(devices.len(), Ordering::Relaxed);
        drop(devices);
        if let Some(refused) = push {
            self.hub.publish(&LiveEvent::Refused { device: id.to_owned(), refused: Some(refused) });
        }
        if let (Some(wait), Ok(runtime)) = (trail, tokio::runtime::Handle::try_current()) {
            let (devices, hub, id) = (self.devices.clone(), self.hub.clone(), id.to_owned());
            runtime.spawn(async move {
                tokio::time::sleep(wait).await;
                let latest = {
                    let mut devices = devices.lock().unwrap_or_else(|e| e.into_inner());
                    // Gone: accepted (which said so) or forgotten in the meantime.
                    let Some(entry) = devices.get_mut(&id) else { return };
                    entry.trailing = false;
                    entry.pushed = Instant::now();
                    entry.refused.clone()
                };
                hub.publish(&LiveEvent::Refused { device: id, refused: Some(latest) });
            });
        }
    }

    fn stranger(&self, id: &str, why: &Rejection, peer: Option<&str>, now: Millis) {
        let id: String = id.chars().take(64).collect();
        let mut strangers = self.strangers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = strangers.iter().position(|s| s.id == id) {
            let mut s = strangers.remove(i).expect("found");
            s.reason = why.label().to_owned();
            s.text = why.to_string();
            s.last = now;
            s.count += 1;
            s.peer = peer.map(str::to_owned).or(s.peer);
            strangers.push_front(s);
        } else {
            strangers.truncate(MAX_STRANGERS - 1);
            strangers.push_front(RefusedId {
                id,
                reason: why.label().to_owned(),
                text: why.to_string(),
                peer: peer.map(str::to_owned),
                last: now,
                count: 1,
            });
        }
    }

    /// Whether any registered device is being refused (one atomic load: the writer asks
    /// after every commit).
    pub fn watching(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// A message of `device` was stored: it is not refused any more.
    pub fn accepted(&self, device: &str) {
        if !self.watching() {
            return;
        }
        let mut devices = self.lock();
        let removed = devices.remove(device).is_some();
        self.count.store(devices.len(), Ordering::Relaxed);
        drop(devices);
        if removed {
            self.hub.publish(&LiveEvent::Refused { device: device.to_owned(), refused: None });
        }
    }

    /// A device was deleted.
    pub fn forget(&self, device: &str) {
        let mut devices = self.lock();
        devices.remove(device);
        self.count.store(devices.len(), Ordering::Relaxed);
    }

    /// The refusal state of `device`, if it is being refused.
    pub fn of(&self, device: &str) -> Option<Refused> {
        if !self.watching() {
            return None;
        }
        self.lock().get(device).map(|e| e.refused.clone())
    }

    /// Refused ids the server has never registered, newest first.
    pub fn strangers(&self) -> Vec<RefusedId> {
        self.strangers.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.devices.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_device_is_refused_until_accepted_and_the_feed_hears_both() {
        let hub = Hub::new(16);
        let mut feed = hub.subscribe();
        let r = Refusals::new(hub);
        r.refused("d1", true, &Rejection::NotSignedIn, None, 1_000);
        r.refused("d1", true, &Rejection::NotSignedIn, None, 3_000);
        let state = r.of("d1").unwrap();
        assert_eq!(
            (state.reason.as_str(), state.since, state.last, state.count),
            ("not_signed_in", 1_000, 3_000, 2)
        );
        assert_eq!(state.text, "not signed in (issue a key)");
        let first = feed.recv().await.unwrap();
        assert!(
            first.json.contains("\"type\":\"refused\"") && first.json.contains("\"count\":1"),
            "{}",
            first.json
        );
        assert!(feed.try_recv().is_err(), "a repeat within a second is not pushed at once");
        let trailing = tokio::time::timeout(LIVE_EVERY * 3, feed.recv()).await.expect("pushed").unwrap();
        assert!(
            trailing.json.contains("\"count\":2"),
            "the last of a burst, once its second is up: {}",
            trailing.json
        );
        r.refused("d1", true, &Rejection::WrongKey, None, 4_000);
        assert!(feed.recv().await.unwrap().json.contains("wrong_key"), "a new reason is pushed at once");
        r.accepted("d1");
        assert_eq!(r.of("d1"), None);
        assert!(feed.recv().await.unwrap().json.contains("\"refused\":null"));
        assert!(r.strangers().is_empty(), "registered devices are not strangers");
    }

    #[test]
    fn strangers_are_listed_newest_first_and_bounded() {
        let r = Refusals::new(Hub::new(1));
        for i in 0..(MAX_STRANGERS + 10) {
            r.refused(&format!("s{i}"), false, &Rejection::NotSignedIn, Some("10.0.0.9:5000"), i as Millis);
        }
        r.refused("s20", false, &Rejection::WrongKey, None, 999);
        let list = r.strangers();
        assert_eq!(list.len(), MAX_STRANGERS);
        assert_eq!((list[0].id.as_str(), list[0].count, list[0].reason.as_str()), ("s20", 2, "wrong_key"));
        assert_eq!(list[0].peer.as_deref(), Some("10.0.0.9:5000"), "the last known address stays");
        assert_eq!(list[1].id, format!("s{}", MAX_STRANGERS + 9));
        assert_eq!(r.of("s20"), None, "strangers are not devices");
        r.refused(&"x".repeat(70_000), false, &Rejection::NotSignedIn, None, 1);
        assert_eq!(r.strangers()[0].id.len(), 64);
    }
}
