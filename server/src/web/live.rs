//! `/ws/live`: every stored reading and status change, as JSON text frames
//! ([`telemetry::LiveEvent`]). `?device=a,b` limits the feed to those devices.
//! A client that falls behind its queue gets `{"type":"resync","missed":n}` and carries on
//! from the newest events; it never slows ingest or other clients.
//!
//! A feed lasts only as long as the rights it was opened with: it closes when its session ends
//! (sign-out, expiry, the user removed, a password change) or, if it was opened while the
//! dashboard was open, when sign-in becomes required. Rights are checked again on every change
//! to them and every [`RECHECK_EVERY`]. Clients send nothing but control frames: messages over
//! [`MAX_CLIENT_MESSAGE`] bytes close the connection.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{Sink, SinkExt, Stream, StreamExt};
use serde::Deserialize;
use telemetry::{Access, LiveEvent, valid_name};
use tokio::sync::{broadcast, watch};

use super::sign_in::session_user;
use crate::auth::{Auth, AuthEvent};
use crate::clock::now_ms;
use crate::hub::HubEvent;
use crate::metrics::Metrics;
use crate::state::AppState;

/// A client that cannot take one frame in this long is disconnected.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a feed's rights are checked again when nothing announced a change (sessions
/// expire without an announcement).
pub const RECHECK_EVERY: Duration = Duration::from_secs(30);
/// Largest message (and frame) a client may send.
pub const MAX_CLIENT_MESSAGE: usize = 1024;
/// Most devices one feed may be limited to.
pub const MAX_FILTER_DEVICES: usize = 1000;

/// Whether a feed may go on.
pub type Rights = Box<dyn Fn() -> bool + Send + Sync>;

/// The rights a request came with, as a check that can be run again later.
fn rights(auth: Arc<Auth>, headers: &HeaderMap, access: &Access) -> Rights {
    let Some(user) = access.user.clone() else {
        // Opened while the dashboard was open: as long as it is.
        return Box::new(move || auth.access(None).open);
    };
    if session_user(&auth, headers).is_some() {
        // By a session cookie: as long as that session is this user's.
        let mut cookies = HeaderMap::new();
        for value in headers.get_all(axum::http::header::COOKIE) {
            cookies.append(axum::http::header::COOKIE, value.clone());
        }
        Box::new(move || auth.access(None).open || session_user(&auth, &cookies).as_ref() == Some(&user))
    } else {
        // By Basic credentials: as long as the user keeps their role and password.
        let Some(stamp) = auth.credentials_stamp(&user.name).filter(|(role, _)| *role == user.role) else {
            return Box::new(|| false);
        };
        Box::new(move || auth.access(None).open || auth.credentials_stamp(&user.name) == Some(stamp))
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct LiveQuery {
    /// Comma-separated device ids; all devices when absent.
    pub device: Option<String>,
}

pub async fn live(
    ws: WebSocketUpgrade,
    Query(query): Query<LiveQuery>,
    State(state): State<AppState>,
    access: Option<Extension<Access>>,
    headers: HeaderMap,
) -> Response {
    let filter: Option<HashSet<String>> = match query.device.as_deref().map(device_filter) {
        Some(Ok(set)) => Some(set).filter(|set| !set.is_empty()),
        Some(Err(why)) => return (StatusCode::BAD_REQUEST, why).into_response(),
        None => None,
    };
    let access = access.map(|Extension(a)| a).unwrap_or_default();
    let rights = rights(state.auth.clone(), &headers, &access);
    let changes = state.auth.events();
    // Subscribe first, then read the high-water mark: a change in between is sent twice at
    // worst (clients ignore a seq they have), never lost.
    let rx = state.hub.subscribe();
    let store = state.store.clone();
    let last_seq =
        tokio::task::spawn_blocking(move || store.last_seq()).await.ok().and_then(Result::ok).unwrap_or(0);
    ws.max_message_size(MAX_CLIENT_MESSAGE).max_frame_size(MAX_CLIENT_MESSAGE).on_upgrade(
        move |socket: WebSocket| {
            let (sink, stream) = socket.split();
            let feed = Feed {
                rx,
                filter,
                last_seq,
                metrics: state.metrics,
                shutdown: state.shutdown,
                rights,
                recheck: RECHECK_EVERY,
                changes,
            };
            serve_client(sink, stream, feed)
        },
    )
}

/// `a,b,c`: at most [`MAX_FILTER_DEVICES`] valid device ids.
fn device_filter(list: &str) -> Result<HashSet<String>, &'static str> {
    let ids: Vec<&str> =
        list.split(',').map(str::trim).filter(|s| !s.is_empty()).take(MAX_FILTER_DEVICES + 1).collect();
    if ids.len() > MAX_FILTER_DEVICES {
        return Err("device: at most 1000 ids");
    }
    if ids.iter().any(|id| valid_name(id).is_err()) {
        return Err("device: ids are 1 to 64 of A-Z a-z 0-9 _ . -");
    }
    Ok(ids.into_iter().map(str::to_owned).collect())
}

/// One client's feed: what it listens to and what it may go on with.
pub struct Feed {
    pub rx: broadcast::Receiver<Arc<HubEvent>>,
    pub filter: Option<HashSet<String>>,
    pub last_seq: u64,
    pub metrics: Arc<Metrics>,
    pub shutdown: watch::Receiver<bool>,
    /// Checked on every change to who may do what and every `recheck`.
    pub rights: Rights,
    /// [`RECHECK_EVERY`], but for tests.
    pub recheck: Duration,
    pub changes: broadcast::Receiver<AuthEvent>,
}

/// Feeds one client until it leaves, its rights end, the hub closes or the server shuts down.
pub async fn serve_client<S, R, E>(mut sink: S, mut stream: R, feed: Feed)
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
{
    let Feed { mut rx, filter, last_seq, metrics, mut shutdown, rights, recheck, mut changes } = feed;
    metrics.live_client(1);
    let hello =
        serde_json::to_string(&LiveEvent::Hello { server_time: now_ms(), last_seq }).expect("serialises");
    let mut recheck = tokio::time::interval(recheck);
    recheck.reset();
    if sink.send(Message::Text(hello.into())).await.is_ok() {
        loop {
            let text = tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => break,
                change = changes.recv() => match change {
                    Err(broadcast::error::RecvError::Closed) => break,
                    _ if !rights() => break,
                    _ => continue,
                },
                _ = recheck.tick() => {
                    if !rights() {
                        break;
                    }
                    continue;
                }
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
        let (_auth_tx, changes) = broadcast::channel(1);
        let feed = Feed {
            rx,
            filter,
            last_seq: 10,
            metrics: metrics.clone(),
            shutdown: stop,
            rights: Box::new(|| true),
            recheck: RECHECK_EVERY,
            changes,
        };
        let task = tokio::spawn(serve_client(sink, client_rx, feed));
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

    #[tokio::test]
    async fn a_feed_ends_when_its_rights_do() {
        let hub = Hub::new(4);
        let (_stop_tx, stop) = watch::channel(false);
        let (sink, mut out) = mpsc::channel::<Message>(0);
        let (_client_tx, client_rx) = mpsc::unbounded::<Result<Message, ()>>();
        let allowed = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (auth_tx, changes) = broadcast::channel(4);
        let still = allowed.clone();
        let feed = Feed {
            rx: hub.subscribe(),
            filter: None,
            last_seq: 0,
            metrics: Arc::new(Metrics::default()),
            shutdown: stop,
            rights: Box::new(move || still.load(std::sync::atomic::Ordering::SeqCst)),
            recheck: RECHECK_EVERY,
            changes,
        };
        let task = tokio::spawn(serve_client(sink, client_rx, feed));
        assert!(matches!(text(out.next().await.unwrap()), LiveEvent::Hello { .. }));
        auth_tx.send(AuthEvent::Sessions).unwrap();
        hub.publish(&reading("a", 1));
        assert_eq!(text(out.next().await.unwrap()), reading("a", 1), "rights unchanged: the feed goes on");
        allowed.store(false, std::sync::atomic::Ordering::SeqCst);
        auth_tx.send(AuthEvent::Sessions).unwrap();
        assert!(matches!(out.next().await, Some(Message::Close(None))), "signed out: the feed closes");
        task.await.unwrap();
    }

    /// Sessions expire without an announcement: the periodic check ends the feed.
    #[tokio::test]
    async fn a_feed_ends_when_its_session_expires() {
        use crate::auth::users::UserDb;
        let config = crate::auth::AuthConfig {
            open: false,
            session_days: 1,
            secure_cookies: false,
            setup_token: Default::default(),
        };
        let auth = Arc::new(Auth::new(UserDb::in_memory().unwrap(), config).unwrap());
        auth.add_user("ann", "correct horse", telemetry::Role::Viewer).unwrap();
        let token = auth.session_until("ann", now_ms() + 300).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(axum::http::header::COOKIE, format!("iot_session={token}").parse().unwrap());
        let access = auth.access(session_user(&auth, &headers));
        assert!(access.user.is_some(), "signed in when the feed opens");
        let hub = Hub::new(4);
        let (_stop_tx, stop) = watch::channel(false);
        let (sink, mut out) = mpsc::channel::<Message>(0);
        let (_client_tx, client_rx) = mpsc::unbounded::<Result<Message, ()>>();
        let feed = Feed {
            rx: hub.subscribe(),
            filter: None,
            last_seq: 0,
            metrics: Arc::new(Metrics::default()),
            shutdown: stop,
            rights: rights(auth.clone(), &headers, &access),
            recheck: Duration::from_millis(200),
            changes: auth.events(),
        };
        let task = tokio::spawn(serve_client(sink, client_rx, feed));
        assert!(matches!(text(out.next().await.unwrap()), LiveEvent::Hello { .. }));
        hub.publish(&reading("a", 1));
        assert_eq!(text(out.next().await.unwrap()), reading("a", 1), "the session is valid");
        // Nothing announces the session's end: the next periodic check finds it.
        let closed = tokio::time::timeout(Duration::from_secs(5), out.next()).await;
        assert!(matches!(closed, Ok(Some(Message::Close(None)))), "the feed closes: {closed:?}");
        task.await.unwrap();
    }

    #[test]
    fn device_filters_are_bounded_and_valid() {
        assert_eq!(device_filter("a, b,,c").unwrap().len(), 3);
        assert!(device_filter("a/b").is_err());
        let many: Vec<String> = (0..=MAX_FILTER_DEVICES).map(|i| format!("d{i}")).collect();
        assert!(device_filter(&many.join(",")).is_err());
    }
}
