//! Alarms on the real server, with a real HTTP receiver for their notifications: rules made
//! through the API, readings through HTTP ingest and MQTT, the server killed with -9 at the
//! worst moments. Timers are seconds here where users would set minutes; the semantics are
//! the same.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use common::*;
use serde_json::{Value, json};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    headers: HeaderMap,
    body: String,
    at: Instant,
}

/// An HTTP receiver for webhooks and ntfy messages, answering from a script of statuses (then
/// 200), on a port of its own.
struct Receiver {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(answers: &[u16]) -> Receiver {
        Receiver::on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(), answers)
    }

    fn on(listener: tokio::net::TcpListener, answers: &[u16]) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(answers.iter().copied().collect::<VecDeque<_>>()));
        let (h, a) = (hits.clone(), answers.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
            let (hits, answers) = (h.clone(), a.clone());
            async move {
                hits.lock().unwrap().push(Hit { headers, body, at: Instant::now() });
                StatusCode::from_u16(answers.lock().unwrap().pop_front().unwrap_or(200)).unwrap()
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, hits, answers, task }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// The webhook bodies received, as JSON.
    fn events(&self) -> Vec<Value> {
        self.hits().iter().filter_map(|h| serde_json::from_str(&h.body).ok()).collect()
    }

    fn count(&self, event: &str) -> usize {
        self.events().iter().filter(|e| e["event"] == event).count()
    }

    fn stop(self) {
        self.task.abort();
    }
}

/// The settings every test server gets: quick retries, a short start grace.
fn quick() -> Vec<(&'static str, String)> {
    vec![
        ("IOT_NOTIFY_RETRY_SECS", "1,1,1,1".into()),
        ("IOT_ALARM_START_GRACE_SECS", "1".into()),
        ("IOT_DEVICE_MESSAGES_PER_SEC", "0".into()),
    ]
}

fn call(server: &ServerProcess, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let bytes = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
    let (status, _, text) = http_full(server.http, method, path, "application/json", &[], &bytes);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A webhook channel to `receiver`; answers (its id, its secret).
fn webhook(server: &ServerProcess, receiver: &Receiver) -> (String, String) {
    let (status, channel) = call(
        server,
        "POST",
        "/api/notification_channels",
        &json!({"kind": "webhook", "name": "ops", "url": format!("http://{}/hook", receiver.addr)}),
    );
    assert_eq!(status, 201, "{channel}");
    (channel["id"].as_str().unwrap().to_owned(), channel["secret"].as_str().unwrap().to_owned())
}

fn rule(server: &ServerProcess, rule: Value) -> String {
    let (status, stored) = call(server, "POST", "/api/alarm_rules", &rule);
    assert_eq!(status, 201, "{stored}");
    stored["id"].as_str().unwrap().to_owned()
}

fn alarms(server: &ServerProcess, query: &str) -> Vec<Value> {
    let (status, list) = call(server, "GET", &format!("/api/alarms?{query}"), &Value::Null);
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

/// Waits (up to 20 s) for `f` to hold.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn signed(hit: &Hit, secret: &str) -> bool {
    let h = |name: &str| hit.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let timestamp: i64 = h("webhook-timestamp").parse().unwrap_or(0);
    server::notify::sign::verify(
        secret,
        &h("webhook-id"),
        timestamp,
        hit.body.as_bytes(),
        &h("webhook-signature"),
    )
}

fn hot(device: &str, channel: &str, for_secs: u64) -> Value {
    json!({"name": "hot", "devices": [device], "kind": "threshold", "metric": "t", "op": ">",
        "levels": [{"severity": "critical", "value": 30}], "clear": 28, "for_secs": for_secs,
        "clear_for_secs": 2, "channels": [channel]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threshold_alarm_fires_after_its_pending_period_once_and_clears_with_hysteresis() {
    let receiver = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &quick());
    let (channel, secret) = webhook(&server, &receiver);
    rule(&server, hot("AL_1", &channel, 3));

    // Breaching for 3 s opens it; it opened 3 s (±1) after the first breaching reading.
    let first = now_ms();
    readings(&server, "AL_1", 31.0, 5.0).await;
    let active = alarms(&server, "status=active");
    assert_eq!(active.len(), 1, "{active:?}");
    let started = active[0]["started_at"].as_i64().unwrap();
    assert!(
        (first + 2_000..=first + 4_000).contains(&started),
        "fired {} ms after the first breach",
        started - first
    );
    until("the fired notice", || receiver.count("alarm.fired") == 1).await;
    let fired = receiver.hits().into_iter().find(|h| h.body.contains("alarm.fired")).unwrap();
    assert!(signed(&fired, &secret), "a valid Standard Webhooks signature");
    assert_eq!(receiver.events()[0]["status"], "ACTIVE_UNACK");

    // Between the clear level and the trip level: no change. At 27.9 for 2 s: cleared, once.
    readings(&server, "AL_1", 29.5, 3.0).await;
    assert_eq!(alarms(&server, "status=active").len(), 1, "29.5 never clears");
    readings(&server, "AL_1", 27.9, 3.5).await;
    assert!(alarms(&server, "status=active").is_empty());
    until("the cleared notice", || receiver.count("alarm.cleared") == 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!((receiver.count("alarm.fired"), receiver.count("alarm.cleared")), (1, 1));
    receiver.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_is_retried_with_the_same_id_and_a_refusal_is_final() {
    let receiver = Receiver::start(&[500, 500, 500, 200]).await;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &quick());
    let (channel, secret) = webhook(&server, &receiver);
    rule(&server, hot("AL_2", &channel, 0));
    reading(&server, "AL_2", 35.0);
    until("four attempts", || receiver.hits().len() >= 4).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hits = receiver.hits();
    assert_eq!(hits.len(), 4, "three failures and the success, no more");
    let ids: Vec<_> = hits.iter().map(|h| h.headers["webhook-id"].to_str().unwrap().to_owned()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "the same id every time: {ids:?}");
    assert!(hits.iter().all(|h| signed(h, &secret)), "each attempt signed");
    assert!(
        hits.windows(2).all(|w| w[1].at.duration_since(w[0].at) >= Duration::from_millis(900)),
        "backed off"
    );
    let (_, deliveries) = call(&server, "GET", "/api/notifications/deliveries", &Value::Null);
    assert_eq!(deliveries[0]["state"], "sent", "{deliveries}");
    assert_eq!(deliveries[0]["attempts"], 4);

    // A receiver refusing the request (400): given up at once, listed as failed, resendable.
    receiver.answers.lock().unwrap().extend([400]);
    readings(&server, "AL_2", 20.0, 3.0).await;
    until("the cleared notice's one attempt", || receiver.hits().len() == 5).await;
    let failed = until_failed(&server).await;
    assert_eq!((failed["last_status"].as_u64(), failed["attempts"].as_u64()), (Some(400), Some(1)));
    let (status, _) = call(
        &server,
        "POST",
        &format!("/api/notifications/deliveries/{}/resend", failed["id"].as_str().unwrap()),
        &Value::Null,
    );
    assert_eq!(status, 202);
    until("the resent notice", || receiver.hits().len() == 6).await;
    assert_eq!(receiver.hits()[5].headers["webhook-id"], receiver.hits()[4].headers["webhook-id"]);
    receiver.stop();
}

/// Waits until every notification delivery is recorded as sent.
async fn until_sent(server: &ServerProcess) {
    let start = Instant::now();
    loop {
        let (_, list) = call(server, "GET", "/api/notifications/deliveries", &Value::Null);
        let all = list.as_array().expect("a list of deliveries");
        if !all.is_empty() && all.iter().all(|d| d["state"] == "sent") {
            return;
        }
        assert!(start.elapsed() < TIMEOUT, "deliveries not recorded as sent: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn until_failed(server: &ServerProcess) -> Value {
    let start = Instant::now();
    loop {
        let (_, list) = call(server, "GET", "/api/notifications/deliveries", &Value::Null);
        if let Some(failed) = list.as_array().unwrap().iter().find(|d| d["state"] == "failed") {
            return failed.clone();
        }
        assert!(start.elapsed() < TIMEOUT, "no failed delivery: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_resumes_a_pending_period_keeps_an_alarm_and_sends_what_was_due_once() {
    let receiver = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let server = ServerProcess::start(&db, &quick());
    let (channel, _) = webhook(&server, &receiver);
    rule(&server, hot("AL_3", &channel, 6));

    // Killed 4 s into a 6 s pending period: fires about 2 s after the restart, not 6.
    let first = now_ms();
    readings(&server, "AL_3", 31.0, 4.0).await;
    assert!(alarms(&server, "status=active").is_empty());
    server.kill();
    let server = ServerProcess::start(&db, &quick());
    readings(&server, "AL_3", 31.0, 4.0).await;
    let active = alarms(&server, "status=active");
    assert_eq!(active.len(), 1);
    let started = active[0]["started_at"].as_i64().unwrap();
    assert!(
        started - first < 8_000,
        "the pending period went on: fired {} ms after the first breach",
        started - first
    );
    until("the fired notice", || receiver.count("alarm.fired") == 1).await;

    // Killed while firing: still active and unacknowledged after, and not notified again.
    server.kill();
    let server = ServerProcess::start(&db, &quick());
    readings(&server, "AL_3", 32.0, 2.0).await;
    let active = alarms(&server, "status=active");
    assert_eq!((active.len(), active[0]["acked"].as_bool()), (1, Some(false)));
    assert_eq!(receiver.count("alarm.fired"), 1, "no second fired notice");

    // The receiver is down when the alarm clears; the server is killed before it could send:
    // after the restart the notice goes out exactly once.
    let addr = receiver.addr;
    receiver.stop();
    readings(&server, "AL_3", 20.0, 3.0).await;
    assert!(alarms(&server, "status=active").is_empty(), "cleared (and its notice queued)");
    server.kill();
    let receiver = Receiver::on(tokio::net::TcpListener::bind(addr).await.unwrap(), &[]);
    let server = ServerProcess::start(&db, &quick());
    until("the cleared notice after the restart", || receiver.count("alarm.cleared") == 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.count("alarm.cleared"), 1, "once");
    drop(server);
    receiver.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_device_keeps_its_alarm_and_an_offline_rule_fires_after_its_will() {
    let receiver = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &quick());
    let (channel, _) = webhook(&server, &receiver);
    rule(&server, hot("AL_4", &channel, 0));
    rule(
        &server,
        json!({"name": "gone", "devices": ["AL_4"], "kind": "offline", "after_secs": 2, "channels": [channel]}),
    );
    let mut device = common::raw::Raw::try_connect_with(
        server.mqtt(),
        &common::raw::Connect {
            will: Some(("app/device/AL_4/status", b"offline".as_slice())),
            ..common::raw::Connect::new("AL_4")
        },
    )
    .expect("connected");
    let payload = json!({"telemetry": {"t": 40.0}}).to_string();
    assert_eq!(device.publish(b"app/device/AL_4/telemetry", payload.as_bytes()), common::raw::Answer::PubAck);
    until("the threshold alarm", || alarms(&server, "status=active").len() == 1).await;
    // The device drops off: its will says offline.
    let dropped = Instant::now();
    drop(device);
    until("the offline alarm", || alarms(&server, "status=active").len() == 2).await;
    let after = dropped.elapsed();
    assert!(
        after >= Duration::from_millis(1500) && after < Duration::from_secs(5),
        "offline alarm after {after:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let active = alarms(&server, "status=active");
    assert!(
        active.iter().any(|a| a["rule_name"] == "hot"),
        "silence did not clear the threshold alarm: {active:?}"
    );
    receiver.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_is_told_once_reminders_stop_when_acknowledged_and_a_hand_clear_starts_anew() {
    let receiver = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &quick());
    let (channel, _) = webhook(&server, &receiver);
    let mut flappy = hot("AL_5", &channel, 0);
    flappy["clear_for_secs"] = 0.into();
    rule(&server, flappy);
    for i in 0..12 {
        reading(&server, "AL_5", if i % 2 == 0 { 31.0 } else { 25.0 });
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        (receiver.count("alarm.fired"), receiver.count("alarm.flapping")),
        (1, 1),
        "{:?}",
        receiver.events()
    );
    assert_eq!(receiver.count("alarm.reopened"), 0);

    let mut reminding = hot("AL_6", &channel, 0);
    reminding["remind_secs"] = 1.into();
    rule(&server, reminding);
    reading(&server, "AL_6", 33.0);
    until("two reminders", || receiver.count("alarm.reminder") >= 2).await;
    let id = alarms(&server, "device=AL_6")[0]["id"].as_str().unwrap().to_owned();
    let (status, acked) = call(&server, "POST", &format!("/api/alarms/{id}/ack"), &Value::Null);
    assert_eq!((status, &acked["acked"]), (200, &Value::Bool(true)));
    let reminders = receiver.count("alarm.reminder");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(receiver.count("alarm.reminder"), reminders, "acknowledged: no more reminders");
    let (status, again) = call(&server, "POST", &format!("/api/alarms/{id}/ack"), &Value::Null);
    assert_eq!(status, 409, "{again}");
    // Cleared by hand while still breaching: a new alarm (with its own id) follows.
    let (status, cleared) = call(&server, "POST", &format!("/api/alarms/{id}/clear"), &Value::Null);
    assert_eq!((status, cleared["active"].as_bool()), (200, Some(false)));
    let (_, detail) = call(&server, "GET", &format!("/api/alarms/{id}"), &Value::Null);
    assert_eq!(detail["alarm"]["acked"], true, "CLEARED_ACK");
    let kinds: Vec<_> =
        detail["log"].as_array().unwrap().iter().map(|t| t["kind"].as_str().unwrap().to_owned()).collect();
    assert!(
        kinds.starts_with(&["fired".into(), "reminder".into()])
            && kinds.ends_with(&["acked".into(), "cleared".into()]),
        "{kinds:?}"
    );
    until("a new alarm", || alarms(&server, "device=AL_6&status=active").len() == 1).await;
    assert_ne!(alarms(&server, "device=AL_6&status=active")[0]["id"], id.as_str());
    receiver.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_alarms_at_once_reach_a_person_as_one_message() {
    let receiver = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &quick());
    let (status, phone) = call(
        &server,
        "POST",
        "/api/notification_channels",
        &json!({"kind": "ntfy", "name": "phone", "url": format!("http://{}/alarms", receiver.addr)}),
    );
    assert_eq!(status, 201, "{phone}");
    assert!(phone.get("secret").is_none(), "only webhooks have a secret");
    let mut all = hot("x", phone["id"].as_str().unwrap(), 0);
    all.as_object_mut().unwrap().remove("devices");
    rule(&server, all);
    let batch: Vec<Value> =
        (0..200).map(|i| json!({"device_id": format!("MANY_{i}"), "telemetry": {"t": 40.0}})).collect();
    let (status, answer) = server.post_json("/api/telemetry", Value::Array(batch).to_string().as_bytes());
    assert_eq!(status, 202, "{answer}");
    until("the message", || !receiver.hits().is_empty()).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let hits = receiver.hits();
    assert!(hits.len() <= 2, "{} messages", hits.len());
    assert!(
        hits[0].body.contains("MANY_")
            && hits[0].headers["title"].to_str().unwrap().contains("200 alarm changes"),
        "{:?}",
        hits[0]
    );
    assert_eq!(hits[0].headers["priority"], "5");
    assert_eq!(alarms(&server, "status=active&limit=500").len(), 200);
    // The message lists ten of them and counts the rest, which /metrics counts as suppressed.
    assert!(hits[0].body.contains("… and 190 more: http://"), "{}", hits[0].body);
    assert!(hits[0].body.len() < 4096, "within ntfy's message size: {} bytes", hits[0].body.len());
    assert_eq!(server.metric(r#"iot_notifications_total{outcome="suppressed"}"#), 190);
    assert_eq!(server.metric(r#"iot_notifications_total{outcome="sent"}"#), 10);
    let (_, deliveries) = call(&server, "GET", "/api/notifications/deliveries?limit=1000", &Value::Null);
    let suppressed = deliveries.as_array().unwrap().iter().filter(|d| d["state"] == "suppressed").count();
    assert_eq!(suppressed, 190, "listed as suppressed, each can be resent");
    receiver.stop();
}

#[test]
fn rules_and_channels_refuse_bad_input_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &quick());
    for bad in [
        json!({"name": "", "kind": "offline", "after_secs": 5}),
        json!({"name": "x", "kind": "offline", "after_secs": 0}),
        json!({"name": "x", "kind": "threshold", "metric": "t", "op": ">", "levels": []}),
        json!({"name": "x", "kind": "offline", "after_secs": 5, "channels": ["nope"]}),
    ] {
        let (status, answer) = call(&server, "POST", "/api/alarm_rules", &bad);
        assert_eq!(status, 422, "{bad}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let (status, _) = call(&server, "POST", "/api/alarm_rules", &json!({"name": "x", "kind": "telepathy"}));
    assert_eq!(status, 400, "not a rule at all");
    let (status, _) = call(
        &server,
        "POST",
        "/api/notification_channels",
        &json!({"kind": "webhook", "name": "x", "url": "file:///etc/passwd"}),
    );
    assert_eq!(status, 422);
    assert_eq!(call(&server, "GET", "/api/alarms/nope", &Value::Null).0, 404);
    assert_eq!(call(&server, "POST", "/api/alarms/nope/ack", &Value::Null).0, 404);
    assert_eq!(call(&server, "POST", "/api/alarms/nope/shelve", &json!({"hours": 3})).0, 422);
    assert_eq!(call(&server, "DELETE", "/api/alarm_rules/nope", &Value::Null).0, 404);
    assert_eq!(call(&server, "GET", "/api/alarms?status=sideways", &Value::Null).0, 400);
}

/// Readings `(device, ms, t)` through HTTP ingest, in one request.
fn backfill(server: &ServerProcess, readings: &[(&str, i64, f64)]) {
    let batch: Vec<Value> = readings
        .iter()
        .map(|(d, at, t)| json!({"device_id": d, "telemetry": {"t": t}, "timestamp": at}))
        .collect();
    let (status, answer) = server.post_json("/api/telemetry", Value::Array(batch).to_string().as_bytes());
    assert_eq!(status, 202, "{answer}");
}

#[test]
fn a_backtest_replays_stored_history_and_shows_a_flapping_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &quick());
    // Two hours ago on: one device hot for 10 minutes, then for 5, every 10 s; another crossing
    // the threshold every 30 s for an hour.
    let t0 = now_ms() / 1000 * 1000 - 7_200_000;
    let mut readings = Vec::new();
    for i in 0..660 {
        let hot = (120..180).contains(&i) || (360..390).contains(&i);
        readings.push(("BT_STEADY", t0 + i * 10_000, if hot { 35.0 } else { 25.0 }));
    }
    for i in 0..120 {
        readings.push(("BT_FLAPPY", t0 + i * 30_000, if i % 2 == 0 { 31.0 } else { 25.0 }));
    }
    backfill(&server, &readings);
    assert!(alarms(&server, "status=all").is_empty(), "backfilled readings open no alarm");

    // t > 30 for 60 s: the steady device's two hot spells, nothing from the flapping one.
    let mut rule = json!({"name": "hot", "devices": ["BT_STEADY", "BT_FLAPPY"], "kind": "threshold",
        "metric": "t", "op": ">", "levels": [{"severity": "critical", "value": 30}], "clear": 28,
        "for_secs": 60});
    let (status, answer) = call(&server, "POST", "/api/alarm_rules/backtest?window_secs=10800", &rule);
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["devices"].as_u64(), answer["readings"].as_u64()), (Some(2), Some(780)));
    assert_eq!((answer["opened"].as_u64(), answer["notifications"].as_u64()), (Some(2), Some(4)), "{answer}");
    let episodes = answer["episodes"].as_array().unwrap();
    let spans: Vec<(i64, i64)> = episodes
        .iter()
        .map(|e| (e["fired_at"].as_i64().unwrap() - t0, e["cleared_at"].as_i64().unwrap() - t0))
        .collect();
    assert_eq!(
        spans,
        [(1_260_000, 1_800_000), (3_660_000, 3_900_000)],
        "60 s after each spell began, until it ended"
    );
    assert!(episodes.iter().all(|e| e["device"] == "BT_STEADY" && e["severity"] == "critical"));
    assert!(answer.get("limited").is_none(), "{answer}");

    // Without the pending period, the flapping device opens it at every crossing; the flap
    // guard keeps the notifications to fired, cleared, flapping, and stable again half an hour
    // after the last crossing.
    rule["for_secs"] = 0.into();
    rule["devices"] = json!(["BT_FLAPPY"]);
    let (status, answer) = call(&server, "POST", "/api/alarm_rules/backtest?window_secs=10800", &rule);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["opened"].as_u64(), answer["notifications"].as_u64()),
        (Some(60), Some(4)),
        "{answer}"
    );
    assert_eq!(answer["episodes"].as_array().unwrap().len(), 60);
    // Over the last hour only: the flapping device's readings are older.
    let (_, answer) = call(&server, "POST", "/api/alarm_rules/backtest?window_secs=3600", &rule);
    assert_eq!((answer["devices"].as_u64(), answer["opened"].as_u64()), (Some(0), Some(0)), "{answer}");

    // A rule over every device replays every device that has the metric.
    rule.as_object_mut().unwrap().remove("devices");
    let (_, answer) = call(&server, "POST", "/api/alarm_rules/backtest", &rule);
    assert_eq!(answer["devices"].as_u64(), Some(2), "{answer}");

    let week = 7 * 86_400;
    let (status, answer) =
        call(&server, "POST", &format!("/api/alarm_rules/backtest?window_secs={}", week + 1), &rule);
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("window_secs"));
    let (status, _) = call(&server, "POST", "/api/alarm_rules/backtest?window_secs=soon", &rule);
    assert_eq!(status, 400);
    let (status, _) =
        call(&server, "POST", "/api/alarm_rules/backtest", &json!({"name": "x", "kind": "telepathy"}));
    assert_eq!(status, 400);
    let (status, _) = call(
        &server,
        "POST",
        "/api/alarm_rules/backtest",
        &json!({"name": "x", "kind": "offline", "after_secs": 0}),
    );
    assert_eq!(status, 422);
}

/// A real SMTP server requiring STARTTLS (`smtp_sink.py`, on Debian's python3-aiosmtpd) and
/// the mails it took, as JSON.
struct MailSink {
    child: std::process::Child,
    port: u16,
    mails: std::sync::mpsc::Receiver<Value>,
}

impl MailSink {
    fn start(cert: &std::path::Path, key: &std::path::Path) -> MailSink {
        use std::io::BufRead;
        // Debian's interpreter, which sees Debian's python3-aiosmtpd (a python3 found first on
        // PATH, pyenv's say, may not).
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py");
        let mut child = std::process::Command::new("/usr/bin/python3")
            .arg(script)
            .args([cert, key])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3 runs (scripts/setup.sh test installs python3-aiosmtpd)");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let port = first.strip_prefix("listening ").and_then(|p| p.parse().ok()).unwrap_or_else(|| {
            panic!("the mail sink did not start ({first:?}): is python3-aiosmtpd installed? scripts/setup.sh test")
        });
        let (tx, mails) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str(&line).unwrap_or(Value::Null));
            }
        });
        MailSink { child, port, mails }
    }
}

impl Drop for MailSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_email_channel_sends_one_mail_over_starttls_to_a_real_smtp_server() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = server::tls::self_signed::write(&dir.path().join("tls"), &[]).unwrap();
    let sink = MailSink::start(&cert, &key);
    let mut env = quick();
    env.extend([
        ("IOT_SMTP_HOST", "127.0.0.1".to_owned()),
        ("IOT_SMTP_PORT", sink.port.to_string()),
        ("IOT_SMTP_SECURITY", "starttls".to_owned()),
        ("IOT_SMTP_CA_FILE", cert.display().to_string()),
        ("IOT_SMTP_FROM", "IoT Dashboard <alarms@example.com>".to_owned()),
        ("IOT_NOTIFY_GROUP_WAIT_SECS", "1".to_owned()),
    ]);
    let server = ServerProcess::start(&dir.path().join("t.redb"), &env);
    let (status, channel) = call(
        &server,
        "POST",
        "/api/notification_channels",
        &json!({"kind": "email", "name": "ann", "to": ["ann@example.com", "ops@example.com"]}),
    );
    assert_eq!(status, 201, "{channel}");
    rule(&server, hot("MAIL_1", channel["id"].as_str().unwrap(), 0));
    reading(&server, "MAIL_1", 35.5);

    let mail = sink.mails.recv_timeout(TIMEOUT).expect("a mail arrived");
    assert_eq!(mail["tls"], true, "sent after STARTTLS (the sink refuses anything else)");
    assert_eq!(mail["mail_from"], "alarms@example.com");
    assert_eq!(mail["rcpt_tos"], json!(["ann@example.com", "ops@example.com"]));
    let data = mail["data"].as_str().unwrap();
    assert!(data.contains("Subject: Fired: hot on MAIL_1 (critical, 35.5)"), "{data}");
    assert!(data.contains("From: \"IoT Dashboard\" <alarms@example.com>"), "{data}");
    let id = alarms(&server, "device=MAIL_1")[0]["id"].as_str().unwrap().to_owned();
    assert!(data.contains(&format!("/alarms/{id}")), "the body links the alarm: {data}");
    assert!(
        sink.mails.recv_timeout(Duration::from_secs(3)).is_err(),
        "one mail, not one per recipient or per attempt"
    );
    let (_, deliveries) = call(&server, "GET", "/api/notifications/deliveries", &Value::Null);
    assert_eq!((&deliveries[0]["state"], &deliveries[0]["last_status"]), (&json!("sent"), &json!(250)));
}

/// A configuration file provisioning a webhook channel `ops` to `receiver` (signed with
/// `secret`) and a rule `greenhouse-hot` over PROV_1, pending for `for_secs`.
fn provisioning(receiver: &Receiver, secret: &str, for_secs: u64, channel: &str) -> String {
    format!(
        r#"
[[notify.channels]]
id = "ops"
name = "Ops webhook"
kind = "webhook"
url = "http://{}/hook"
secret = "{secret}"

[[alarms.rules]]
id = "greenhouse-hot"
name = "Greenhouse too hot"
devices = ["PROV_1"]
kind = "threshold"
metric = "t"
op = ">"
levels = [{{ severity = "critical", value = 30 }}]
clear = 28
for_secs = {for_secs}
channels = ["{channel}"]
"#,
        receiver.addr
    )
}

/// The server started with `config`, expected to refuse it: what it said on stderr.
fn refused_start(dir: &std::path::Path, config: &str) -> String {
    let path = dir.join("bad.toml");
    std::fs::write(&path, config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env("IOT_CONFIG", &path)
        .env("IOT_STORAGE_PATH", dir.join("t.redb"))
        .env("IOT_WEB_LISTEN", "127.0.0.1:0")
        .env("IOT_MQTT_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the server started with a bad provisioned item");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_and_channels_provisioned_from_the_config_file_are_created_then_replaced_by_id() {
    let receiver = Receiver::start(&[]).await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let dir = tempfile::tempdir().unwrap();
    let (db, config) = (dir.path().join("t.redb"), dir.path().join("iot.toml"));
    std::fs::write(&config, provisioning(&receiver, secret, 0, "ops")).unwrap();
    let mut env = quick();
    env.push(("IOT_CONFIG", config.display().to_string()));

    let server = ServerProcess::start(&db, &env);
    let (_, channels) = call(&server, "GET", "/api/notification_channels", &Value::Null);
    assert_eq!(channels.as_array().unwrap().len(), 1, "{channels}");
    assert_eq!((&channels[0]["id"], &channels[0]["kind"]), (&json!("ops"), &json!("webhook")));
    let (status, rule) = call(&server, "GET", "/api/alarm_rules/greenhouse-hot", &Value::Null);
    assert_eq!((status, &rule["version"], &rule["name"]), (200, &json!(1), &json!("Greenhouse too hot")));
    reading(&server, "PROV_1", 35.0);
    until("the fired notice", || receiver.count("alarm.fired") == 1).await;
    let fired = receiver.hits().into_iter().find(|h| h.body.contains("alarm.fired")).unwrap();
    assert!(signed(&fired, secret), "signed with the secret from the file");
    // Killed only once the delivery is recorded as sent: one sent but not yet recorded is sent
    // again after a restart (at least once), which is not what this test is about.
    until_sent(&server).await;

    // Started again with the same file: nothing replaced, the alarm and its state go on.
    server.kill();
    let server = ServerProcess::start(&db, &env);
    let (_, rule) = call(&server, "GET", "/api/alarm_rules/greenhouse-hot", &Value::Null);
    assert_eq!(rule["version"], 1, "an unchanged rule is left as it is");
    reading(&server, "PROV_1", 36.0);
    assert_eq!(alarms(&server, "status=active").len(), 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.count("alarm.fired"), 1, "still firing: not fired again");

    // The file changed: the rule with that id is replaced, not added.
    server.stop();
    std::fs::write(&config, provisioning(&receiver, secret, 30, "ops")).unwrap();
    let server = ServerProcess::start(&db, &env);
    let (_, rules) = call(&server, "GET", "/api/alarm_rules", &Value::Null);
    assert_eq!(rules.as_array().unwrap().len(), 1, "{rules}");
    assert_eq!((&rules[0]["version"], &rules[0]["for_secs"]), (&json!(2), &json!(30)));
    let (_, channels) = call(&server, "GET", "/api/notification_channels", &Value::Null);
    assert_eq!(channels.as_array().unwrap().len(), 1);
    server.stop();

    // A bad item stops the start, and the error names it.
    let said = refused_start(dir.path(), &provisioning(&receiver, secret, 30, "nope"));
    assert!(said.contains(r#"alarms.rules[0] (id "greenhouse-hot"): channels: no channel nope"#), "{said}");
    let typo = provisioning(&receiver, secret, 30, "ops").replace("for_secs", "for_sec");
    let said = refused_start(dir.path(), &typo);
    assert!(said.contains(r#"alarms.rules[0] (id "greenhouse-hot"): unknown setting `for_sec`"#), "{said}");
    let unsigned = provisioning(&receiver, secret, 30, "ops").replace(&format!("secret = \"{secret}\""), "");
    let said = refused_start(dir.path(), &unsigned);
    assert!(said.contains(r#"notify.channels[0] (id "ops"): secret"#), "{said}");
    receiver.stop();
}

/// A device as the simulator runs it: its own MQTT connection to `broker`, a retained
/// `offline` last will, `online` on every connect, a reading every second; trying to reconnect
/// every 4 s whenever the connection breaks (so after a restart the fleet is back within
/// 4 s, some of it only after the clock's first ticks), until the task is aborted.
async fn fleet_device(id: String, broker: SocketAddr) {
    use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
    let status = format!("app/device/{id}/status");
    let mut options = MqttOptions::new(&id, broker.ip().to_string(), broker.port());
    options.set_keep_alive(Duration::from_secs(5));
    options.set_last_will(LastWill::new(&status, "offline", QoS::AtLeastOnce, true));
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    let publisher = client.clone();
    let telemetry = format!("app/device/{id}/telemetry");
    let readings = tokio::spawn(async move {
        loop {
            // No timestamp: stamped when it arrives. Dropped while disconnected.
            let _ = publisher.try_publish(&telemetry, QoS::AtLeastOnce, false, r#"{"telemetry": {"t": 20}}"#);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let _ = client.try_publish(&status, QoS::AtLeastOnce, true, "online");
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_secs(4)).await,
        }
        if readings.is_finished() {
            return;
        }
    }
}

/// Every registered device and its last reading's server time.
fn last_seen(server: &ServerProcess) -> Vec<(String, i64)> {
    let devices = server.server_fn("devices", &[]);
    devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["id"].as_str().unwrap().to_owned(), d["last_seen"].as_i64().unwrap_or(0)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_100_devices_connected_pages_nobody_when_they_reconnect_within_the_grace() {
    const GRACE_SECS: u64 = 15;
    let receiver = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    // Devices are configured with the broker's address: the same port after the restart.
    let mqtt = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut env = quick();
    env.push(("IOT_MQTT_LISTEN", mqtt.to_string()));
    env.push(("IOT_ALARM_START_GRACE_SECS", GRACE_SECS.to_string()));
    let server = ServerProcess::start(&db, &env);
    let (channel, _) = webhook(&server, &receiver);
    rule(&server, json!({"name": "offline", "kind": "offline", "after_secs": 1, "channels": [channel]}));
    let fleet: Vec<_> = (0..100).map(|i| tokio::spawn(fleet_device(format!("FLEET_{i:03}"), mqtt))).collect();
    // One more device, which will not come back after the restart: the rule is live.
    let gone = tokio::spawn(fleet_device("GONE".into(), mqtt));
    until("101 devices reporting", || server.metric("iot_devices") == 101).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(alarms(&server, "status=all").is_empty());

    // Killed, and down for longer than a device takes to look offline on the clock (stale
    // after 60 s, then after_secs): without the grace every device would page on the restart.
    server.kill();
    gone.abort();
    tokio::time::sleep(Duration::from_secs(62)).await;
    let restarted = now_ms();
    let server = ServerProcess::start(&db, &env);
    until("the fleet back within the grace", || {
        last_seen(&server).iter().filter(|(id, seen)| id.starts_with("FLEET_") && *seen >= restarted).count()
            == 100
    })
    .await;
    assert!(
        now_ms() < restarted + GRACE_SECS as i64 * 1000,
        "the devices took longer than the grace to reconnect"
    );
    until("the grace to end and the offline device to page", || receiver.count("alarm.fired") >= 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fired: Vec<Value> = receiver.events().into_iter().filter(|e| e["event"] == "alarm.fired").collect();
    let devices: Vec<&str> = fired.iter().map(|e| e["device"].as_str().unwrap()).collect();
    assert_eq!(devices, ["GONE"], "only the device that stayed away pages, once");
    let active = alarms(&server, "status=active");
    assert_eq!(active.len(), 1, "{active:?}");
    for device in fleet {
        device.abort();
    }
    receiver.stop();
}
