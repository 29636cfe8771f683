//! `/ws/live`: every stored reading and status change, as JSON text frames
//! ([`telemetry::LiveEvent`]). `?device=a,b` limits the feed to those devices.
//! A client that falls behind its queue gets `{"type":"resync","missed":n}` and carries on
//! from the newest events; it never slows ingest or other clients.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use futures::{Sink, SinkExt, Stream, StreamExt};
use serde::Deserialize;
use telemetry::LiveEvent;
use tokio::sync::{broadcast, watch};

use crate::hub::HubEvent;
use crate::ingest::now_ms;
use crate::metrics::Metrics;
use crate::routes::AppState;

/// A client that cannot take one frame in this long is disconnected.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Deserialize)]
pub struct LiveQuery {
    /// Comma-separated device ids; all devices when absent.
    pub device: Option<String>,
}

pub async fn live(
    ws: WebSocketUpgrade,
    Query(query): Query<LiveQuery>,
    State(state): State<AppState>,
) -> Response {
    let filter = query
        .device
        .map(|d| {
            d.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect::<HashSet<_>>()
        })
        .filter(|set| !set.is_empty());
    // Subscribe first, then read the high-water mark: a change in between is sent twice at
    // worst (clients ignore a seq they have), never lost.
    let rx = state.hub.subscribe();
    let store = state.store.clone();
    let last_seq =
        tokio::task::spawn_blocking(move || store.last_seq()).await.ok().and_then(Result::ok).unwrap_or(0);
    ws.on_upgrade(move |socket: WebSocket| {
        let (sink, stream) = socket.split();
        serve_client(sink, stream, rx, filter, last_seq, state.metrics, state.shutdown)
    })
}

/// Feeds one client until it leaves, the hub closes or the server shuts down.
pub async fn serve_client<S, R, E>(
    mut sink: S,
    mut stream: R,
    mut rx: broadcast::Receiver<Arc<HubEvent>>,
    filter: Option<HashSet<String>>,
    last_seq: u64,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
{
    metrics.live_client(1);
    let hello =
        serde_json::to_string(&LiveEvent::Hello { server_time: now_ms(), last_seq }).expect("serialises");
    if sink.send(Message::Text(hello.into())).await.is_ok() {
        loop {
            let text = tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => break,
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                },
                event = rx.recv() => match event {
                    Ok(event) => {
                        let wanted = match (&filter, &event.device) {
                            (Some(set), Some(device)) => set.contains(device),
                            _ => true,
                        };
                        if !wanted {
                            continue;
                        }
                        event.json.clone()
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        metrics.live_resync();
                        serde_json::to_string(&LiveEvent::Resync { missed }).expect("serialises").into()
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            };
            match tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Text(text))).await {
                Ok(Ok(())) => {}
                // Gone, or not reading at all: drop it rather than hold its events.
                Ok(Err(_)) | Err(_) => break,
            }
        }
    }
    let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Close(None))).await;
    metrics.live_client(-1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Hub;
    use futures::channel::mpsc;
    use std::collections::BTreeMap;

    fn reading(device: &str, ts: i64) -> LiveEvent {
        LiveEvent::Reading {
            seq: ts as u64 + 1,
            device: device.into(),
            ts,
            received: ts,
            values: BTreeMap::from([("t".into(), 1.0)]),
        }
    }

    fn text(m: Message) -> LiveEvent {
        match m {
            Message::Text(t) => serde_json::from_str(t.as_str()).unwrap(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn filters_by_device_and_resyncs_a_lagging_client() {
        let hub = Hub::new(4);
        let metrics = Arc::new(Metrics::default());
        let (_stop_tx, stop) = watch::channel(false);
        let (sink, mut out) = mpsc::channel::<Message>(0);
        let (_client_tx, client_rx) = mpsc::unbounded::<Result<Message, ()>>();
        let rx = hub.subscribe();
        // Fill the client's window past its capacity before it reads anything.
        for ts in 0..10 {
            hub.publish(&reading(if ts % 2 == 0 { "a" } else { "b" }, ts));
        }
        let filter = Some(HashSet::from(["a".to_owned()]));
        let task = tokio::spawn(serve_client(sink, client_rx, rx, filter, 10, metrics.clone(), stop));
        assert!(matches!(text(out.next().await.unwrap()), LiveEvent::Hello { last_seq: 10, .. }));
        assert_eq!(text(out.next().await.unwrap()), LiveEvent::Resync { missed: 6 });
        // Of the 4 newest (6..=9) only device a's pass the filter.
        assert_eq!(text(out.next().await.unwrap()), reading("a", 6));
        assert_eq!(text(out.next().await.unwrap()), reading("a", 8));
        hub.publish(&reading("b", 10));
        hub.publish(&reading("a", 11));
        assert_eq!(text(out.next().await.unwrap()), reading("a", 11));
        assert_eq!(
            metrics.render(None).lines().find(|l| l.starts_with("iot_live_resyncs_total ")),
            Some("iot_live_resyncs_total 1")
        );
        drop(_client_tx);
        assert!(matches!(out.next().await, Some(Message::Close(None))));
        task.await.unwrap();
    }
}
