//! The live hub: every stored reading and status, fanned out to `/ws/live` clients.
//!
//! A `broadcast` channel gives every client its own bounded window: a client that falls
//! behind by more than the window loses the oldest events and is told to resync; the sender
//! never waits, so a slow client never stalls ingest or the other clients.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use telemetry::LiveEvent;
use tokio::sync::broadcast;

/// One event, serialised once for all clients (cloning the text shares it).
#[derive(Debug)]
pub struct HubEvent {
    pub device: Option<String>,
    pub json: Utf8Bytes,
}

#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<HubEvent>>,
}

impl Hub {
    pub fn new(client_queue: usize) -> Hub {
        let (tx, _) = broadcast::channel(client_queue.max(1));
        Hub { tx }
    }

    pub fn publish(&self, event: &LiveEvent) {
        if self.tx.receiver_count() > 0 {
            self.publish_json(event.device(), serde_json::to_string(event).expect("live events serialise"));
        }
    }

    /// Sends an event already serialised (as the store wrote it to the change log).
    pub fn publish_json(&self, device: Option<&str>, json: String) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let event = HubEvent { device: device.map(str::to_owned), json: json.into() };
        // An error only means nobody is listening.
        let _ = self.tx.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<HubEvent>> {
        self.tx.subscribe()
    }
}
