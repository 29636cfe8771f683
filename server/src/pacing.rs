//! Keeps each MQTT connection's rate-limited publishes in step. The embedded broker runs a
//! connection's publishes concurrently (its pipeline) and holds a PUBACK back to slow a device
//! to its rate; were those holds computed all at once, they would add up and drop what a
//! device sending in order would merely have had to wait for. So one connection's publishes
//! pass admission one at a time, each after the previous one's hold; different connections
//! still go side by side (and so a device flooding over many connections is dropped).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// One lock per connection with a publish in admission; a connection's entry goes once its
/// last publish is through, so the map holds only connections being admitted right now.
#[derive(Default)]
pub struct Pacing {
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A connection's turn at admission; the next publish of that connection waits for its drop.
pub struct Turn<'a> {
    pacing: &'a Pacing,
    client: &'a str,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Pacing {
    /// Waits until the connection's earlier publishes are through admission (and their holds).
    pub async fn turn<'a>(&'a self, client: &'a str) -> Turn<'a> {
        let lock = self.lock().entry(client.to_owned()).or_default().clone();
        Turn { pacing: self, client, guard: Some(lock.lock_owned().await) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        self.turns.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut turns = self.pacing.lock();
        self.guard.take();
        // Nobody else holds or waits for this connection's lock: forget it.
        if turns.get(self.client).is_some_and(|l| Arc::strong_count(l) == 1) {
            turns.remove(self.client);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_connection_waits_its_turn_and_others_do_not() {
        let pacing = Arc::new(Pacing::default());
        let first = pacing.turn("a").await;
        let other = tokio::time::timeout(Duration::from_secs(1), pacing.turn("b")).await;
        drop(other.expect("another connection goes at once"));
        let second = tokio::spawn({
            let pacing = pacing.clone();
            async move { drop(pacing.turn("a").await) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "the same connection waits for its earlier publish");
        drop(first);
        second.await.unwrap();
        assert_eq!(pacing.len(), 0, "connections are forgotten once through");
    }
}
