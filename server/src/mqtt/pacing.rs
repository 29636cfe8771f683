//! Keeps each MQTT connection's rate-limited publishes in step. The embedded broker runs a
//! connection's publishes concurrently (its pipeline) and holds a PUBACK back to slow a device
//! to its rate; were those holds computed all at once, they would add up and drop what a
//! device sending in order would merely have had to wait for. So while one of a connection's
//! publishes is held back, its next ones wait for it before admission; different connections
//! still go side by side (and so a device flooding over many connections is dropped).
//!
//! A connection with nothing held back costs one map lookup per publish: no allocation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

type Holds = HashMap<String, Arc<tokio::sync::Mutex<()>>>;

/// The connections with a publish held back right now, each with the lock its next
/// publishes wait on.
#[derive(Default)]
pub struct Pacing {
    holds: Mutex<Holds>,
}

/// A publish's turn at admission.
pub struct Turn<'a> {
    pacing: &'a Pacing,
    client: &'a str,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Pacing {
    /// Waits while an earlier publish of `client` is held back; at once otherwise.
    pub async fn turn<'a>(&'a self, client: &'a str) -> Turn<'a> {
        let held = self.lock().get(client).cloned();
        let guard = match held {
            Some(lock) => Some(lock.lock_owned().await),
            None => None,
        };
        Turn { pacing: self, client, guard }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Holds> {
        self.holds.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

impl Turn<'_> {
    /// This publish is held back: the connection's next ones wait until this turn is dropped.
    pub fn hold(&mut self) {
        if self.guard.is_none() {
            let lock = self.pacing.lock().entry(self.client.to_owned()).or_default().clone();
            // Free: a connection's publishes are polled by one task, none in between.
            self.guard = lock.try_lock_owned().ok();
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if self.guard.is_none() {
            return;
        }
        let mut holds = self.pacing.lock();
        self.guard.take();
        // Nobody else holds or waits for this connection's lock: forget it.
        if holds.get(self.client).is_some_and(|l| Arc::strong_count(l) == 1) {
            holds.remove(self.client);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_held_publish_makes_its_connection_wait_and_no_other() {
        let pacing = Arc::new(Pacing::default());
        drop(pacing.turn("a").await);
        assert_eq!(pacing.len(), 0, "nothing held back: nothing kept");
        let mut first = pacing.turn("a").await;
        first.hold();
        let other = tokio::time::timeout(Duration::from_secs(1), pacing.turn("b")).await;
        drop(other.expect("another connection goes at once"));
        let second = tokio::spawn({
            let pacing = pacing.clone();
            async move { drop(pacing.turn("a").await) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "the same connection waits for its held publish");
        drop(first);
        second.await.unwrap();
        assert_eq!(pacing.len(), 0, "connections are forgotten once through");
    }
}
