//! Desired and reported state against the real server (in process on free ports, or the binary
//! for the kill -9) and plain MQTT clients as devices: a state set while the device is away
//! reaches it when it subscribes, its report makes the state in sync (or rejected), a stale
//! If-Match is refused, who may do what, and a kill -9.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use common::listener::Listener;
use common::running::start;
use common::{ServerProcess, TIMEOUT, cli, http_full};
use rumqttc::QoS;
use serde_json::{Value, json};

/// An HTTP answer: status, headers (lower case) and JSON body.
struct Reply {
    status: u16,
    head: String,
    body: Value,
}

impl Reply {
    fn etag(&self) -> Option<&str> {
        self.head.lines().find_map(|l| l.strip_prefix("etag: ")).map(str::trim)
    }
}

/// One HTTP exchange off the runtime, as `login` if given, with `if_match` if given.
async fn call(
    http: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    login: Option<(&str, &str)>,
    if_match: Option<&str>,
) -> Reply {
    let (method, path, body) = (method.to_owned(), path.to_owned(), body.unwrap_or_default().to_owned());
    let auth = login.map(|(u, p)| {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
    });
    let if_match = if_match.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let mut headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        if let Some(m) = &if_match {
            headers.push(("If-Match", m.as_str()));
        }
        let (status, head, text) =
            http_full(http, &method, &path, "application/merge-patch+json", &headers, body.as_bytes());
        Reply { status, head, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
    })
    .await
    .unwrap()
}

async fn desired(http: SocketAddr, device: &str) -> Reply {
    call(http, "GET", &format!("/api/devices/{device}/desired"), None, None, None).await
}

async fn patch(http: SocketAddr, device: &str, body: Value, if_match: Option<&str>) -> Reply {
    let path = format!("/api/devices/{device}/desired");
    call(http, "PATCH", &path, Some(&body.to_string()), None, if_match).await
}

/// Reads the desired state until `sync` says `want`.
async fn until_sync(http: SocketAddr, device: &str, want: &str) -> Value {
    let start = std::time::Instant::now();
    loop {
        let shadow = desired(http, device).await.body;
        if shadow["sync"] == want {
            return shadow;
        }
        assert!(start.elapsed() < TIMEOUT, "sync never {want}: {shadow}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a device does with its desired state.
impl Listener {
    /// The next desired state received: its payload, checked not retained and QoS 1.
    async fn desired(&mut self, within: Duration) -> Option<Value> {
        let p = self.next(within).await?;
        assert!(p.topic.ends_with("/desired"), "{}", p.topic);
        assert!(!p.retain, "desired state is never retained");
        assert_eq!(p.qos, QoS::AtLeastOnce);
        Some(serde_json::from_slice(&p.payload).unwrap())
    }

    async fn report(&self, device: &str, report: Value) {
        let topic = format!("app/device/{device}/reported");
        self.client.publish(topic, QoS::AtLeastOnce, false, report.to_string()).await.unwrap();
    }
}

/// A device the server knows (it sent a reading over HTTP).
async fn known(http: SocketAddr, device: &str) {
    let body = json!({"device_id": device, "telemetry": {"t": 1.0}}).to_string();
    assert_eq!(call(http, "POST", "/api/telemetry", Some(&body), None, None).await.status, 202);
}

/// Set while the device is away, delivered when it subscribes; its report makes it in sync;
/// a change while it listens reaches it at once; a report of other values is rejected; it may
/// ask again on desired/get; If-Match and the bounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desired_state_reaches_the_device_and_its_report_says_whether_it_took_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("t.redb")).await;
    let http = server.http;
    known(http, "D1").await;

    let empty = desired(http, "D1").await;
    assert_eq!((empty.status, empty.etag()), (200, Some("\"0\"")));
    assert_eq!(
        (&empty.body["v"], &empty.body["state"], &empty.body["sync"]),
        (&json!(0), &json!({}), &json!("unknown"))
    );

    let set =
        patch(http, "D1", json!({"interval_s": 30, "relay": true, "colour": "red"}), Some("\"0\"")).await;
    assert_eq!((set.status, set.etag()), (200, Some("\"1\"")), "{}", set.body);
    assert_eq!(set.body["updated_by"], "open");
    let stale = patch(http, "D1", json!({"relay": false}), Some("\"0\"")).await;
    assert_eq!(stale.status, 412, "a stale If-Match: {}", stale.body);
    let merged = patch(http, "D1", json!({"colour": null}), Some("\"1\"")).await;
    assert_eq!((merged.status, &merged.body["v"]), (200, &json!(2)));
    assert_eq!(merged.body["state"], json!({"interval_s": 30, "relay": true}), "null deletes a key");

    // The device comes: it gets the state on subscribing.
    let mut device = Listener::connect(server.mqtt, "D1", None, |_| {}).await;
    assert!(device.subscribe("app/device/D1/desired", QoS::AtLeastOnce).await);
    let got = device.desired(TIMEOUT).await.expect("the desired state on subscribing");
    assert_eq!(got, json!({"v": 2, "state": {"interval_s": 30, "relay": true}}));
    let pending = desired(http, "D1").await.body;
    assert_eq!(pending["sync"], "unknown", "nothing reported yet");
    device.report("D1", json!({"v": 1, "state": {"interval_s": 10}})).await;
    let pending = until_sync(http, "D1", "pending").await;
    assert_eq!(pending["pending_since"], pending["updated_at"]);
    device.report("D1", json!({"v": 2, "state": {"interval_s": 30, "relay": true, "fw": "1.2"}})).await;
    let synced = until_sync(http, "D1", "in_sync").await;
    assert_eq!(synced["reported"]["v"], 2);
    assert_eq!(synced["pending_since"], Value::Null);
    let reported = call(http, "GET", "/api/devices/D1/reported", None, None, None).await;
    assert_eq!((reported.status, &reported.body["reported"]["state"]["fw"]), (200, &json!("1.2")));

    // A change while it listens reaches it at once; it keeps an old value: rejected.
    assert_eq!(patch(http, "D1", json!({"interval_s": 5}), None).await.status, 200, "no If-Match: any");
    let got = device.desired(TIMEOUT).await.expect("a change while subscribed");
    assert_eq!(got, json!({"v": 3, "state": {"interval_s": 5, "relay": true}}));
    device.report("D1", json!({"v": 3, "state": {"interval_s": 10, "relay": true}})).await;
    until_sync(http, "D1", "rejected").await;
    // It asks again.
    device.client.publish("app/device/D1/desired/get", QoS::AtLeastOnce, false, "").await.unwrap();
    assert_eq!(device.desired(TIMEOUT).await.expect("answered on desired/get")["v"], 3);
    assert!(device.desired(Duration::from_millis(300)).await.is_none(), "once");

    // Bounds and errors; none of them changes the state.
    let path = "/api/devices/D1/desired";
    assert_eq!(call(http, "PATCH", path, Some("{nope"), None, None).await.status, 400);
    assert_eq!(patch(http, "D1", json!([1]), None).await.status, 422);
    assert_eq!(patch(http, "D1", json!({"s": "x".repeat(4100)}), None).await.status, 413);
    let many: serde_json::Map<String, Value> = (0..65).map(|i| (format!("k{i}"), json!(i))).collect();
    assert_eq!(patch(http, "D1", Value::Object(many), None).await.status, 422);
    assert_eq!(patch(http, "D1", json!({"a": 1}), Some("soon")).await.status, 400);
    assert_eq!(patch(http, "NOBODY", json!({"a": 1}), None).await.status, 404);
    assert_eq!(desired(http, "NOBODY").await.status, 404);
    assert_eq!(desired(http, "D1").await.body["v"], 3, "unchanged");
    device.vanish();
    server.stop().await;
}

fn rejected(metrics: &str, reason: &str) -> u64 {
    let prefix = format!(r#"iot_messages_rejected_total{{reason="{reason}"}} "#);
    metrics.lines().find_map(|l| l.strip_prefix(&prefix)).map_or(0, |v| v.trim().parse().unwrap())
}

/// A viewer reads and may not change (403); a device may not report for another, listen to
/// another's desired state, nor publish desired state itself (each refused and counted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_change_desired_state_and_devices_only_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let db2 = db.clone();
    let (key_a, key_b) = tokio::task::spawn_blocking(move || {
        cli(&db2, &["user", "add", "root"], "admin password");
        cli(&db2, &["user", "add", "vic", "--role", "viewer"], "viewer password");
        (cli(&db2, &["device", "key", "DA"], ""), cli(&db2, &["device", "key", "DB"], ""))
    })
    .await
    .unwrap();
    let server = start(&db).await;
    let http = server.http;
    let admin = Some(("root", "admin password"));
    let viewer = Some(("vic", "viewer password"));
    let path = "/api/devices/DB/desired";
    let body = json!({"relay": true}).to_string();
    assert_eq!(call(http, "PATCH", path, Some(&body), viewer, None).await.status, 403, "a viewer");
    assert_eq!(call(http, "PATCH", path, Some(&body), None, None).await.status, 401);
    let set = call(http, "PATCH", path, Some(&body), admin, Some("\"0\"")).await;
    assert_eq!((set.status, &set.body["updated_by"]), (200, &json!("root")));
    let read = call(http, "GET", path, None, viewer, None).await;
    assert_eq!((read.status, &read.body["v"]), (200, &json!(1)), "a viewer reads");

    let mut a = Listener::connect(server.mqtt, "DA", Some(&key_a), |_| {}).await;
    assert!(!a.subscribe("app/device/DB/desired", QoS::AtLeastOnce).await, "not its desired state");
    a.report("DB", json!({"v": 1, "state": {"relay": true}})).await;
    a.client
        .publish("app/device/DA/desired", QoS::AtLeastOnce, false, r#"{"v":9,"state":{}}"#)
        .await
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        let metrics = call(http, "GET", "/metrics", None, admin, None).await.body;
        let text = metrics.as_str().unwrap_or_default();
        if rejected(text, "not_authorized") >= 1 && rejected(text, "desired_from_client") == 1 {
            break;
        }
        assert!(start.elapsed() < TIMEOUT, "the refusals are counted: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b_state = call(http, "GET", path, None, admin, None).await.body;
    assert_eq!(
        (&b_state["reported"], &b_state["sync"]),
        (&Value::Null, &json!("unknown")),
        "DA's report refused"
    );
    assert_eq!(call(http, "GET", "/api/devices/DA/desired", None, admin, None).await.body["v"], 0);

    // DB itself, signed in, gets its state and reports it.
    let mut b = Listener::connect(server.mqtt, "DB", Some(&key_b), |_| {}).await;
    assert!(b.subscribe("app/device/DB/desired", QoS::AtLeastOnce).await);
    assert_eq!(b.desired(TIMEOUT).await.expect("its own")["state"], json!({"relay": true}));
    b.report("DB", json!({"v": 1, "state": {"relay": true}})).await;
    let start = std::time::Instant::now();
    while call(http, "GET", path, None, admin, None).await.body["sync"] != "in_sync" {
        assert!(start.elapsed() < TIMEOUT, "DB's own report is taken");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.vanish();
    b.vanish();
    server.stop().await;
}

/// kill -9 after a change and a report: both are there after the restart, and a device
/// subscribing then gets the state again.
#[test]
fn desired_and_reported_state_survive_a_kill_9() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let server = ServerProcess::start(&db, &[]);
    let (http, mqtt) = (server.http, server.mqtt());
    let before = rt.block_on(async {
        known(http, "K9").await;
        assert_eq!(patch(http, "K9", json!({"interval_s": 30}), Some("\"0\"")).await.status, 200);
        let set = patch(http, "K9", json!({"relay": false}), Some("\"1\"")).await;
        assert_eq!(set.status, 200);
        let mut device = Listener::connect(mqtt, "K9", None, |_| {}).await;
        assert!(device.subscribe("app/device/K9/desired", QoS::AtLeastOnce).await);
        assert_eq!(device.desired(TIMEOUT).await.unwrap()["v"], 2);
        device.report("K9", json!({"v": 2, "state": {"interval_s": 30, "relay": false}})).await;
        let synced = until_sync(http, "K9", "in_sync").await;
        device.vanish();
        synced
    });
    server.kill();

    let server = ServerProcess::start(&db, &[]);
    let (http, mqtt) = (server.http, server.mqtt());
    rt.block_on(async {
        let after = desired(http, "K9").await;
        assert_eq!(after.etag(), Some("\"2\""));
        assert_eq!(after.body, before, "as it was answered before the kill");
        let mut device = Listener::connect(mqtt, "K9", None, |_| {}).await;
        assert!(device.subscribe("app/device/K9/#", QoS::AtLeastOnce).await);
        let got = device.desired(TIMEOUT).await.expect("sent again on subscribing");
        assert_eq!(got, json!({"v": 2, "state": {"interval_s": 30, "relay": false}}));
        let stale = patch(http, "K9", json!({"relay": true}), Some("\"1\"")).await;
        assert_eq!(stale.status, 412, "the version survived too");
        device.vanish();
    });
    server.stop();
}

/// With an external broker (Mosquitto): the desired state goes out through the server's client,
/// retained, so a device subscribing later gets it from the broker; its report comes back
/// through the broker and makes it in sync; desired/get publishes it again.
#[test]
fn through_an_external_broker_desired_state_is_retained_and_reports_come_back() {
    use common::mosquitto::{Mosquitto, external_env, subscribed};
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &external_env(broker.addr, "dash-desired"));
    common::eventually("subscribed to the broker", || subscribed(&server));
    let http = server.http;
    rt.block_on(async {
        let device = Listener::connect(broker.addr, "X1", None, |_| {}).await;
        let reading = json!({"telemetry": {"t": 1.0}}).to_string();
        device.client.publish("app/device/X1/telemetry", QoS::AtLeastOnce, false, reading).await.unwrap();
        let start = std::time::Instant::now();
        while desired(http, "X1").await.status != 200 {
            assert!(start.elapsed() < TIMEOUT, "X1's reading reached the server");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        device.vanish();
        assert_eq!(patch(http, "X1", json!({"interval_s": 30}), Some("\"0\"")).await.status, 200);

        // The device comes after the change: the broker hands it the retained state.
        let mut device = Listener::connect(broker.addr, "X1", None, |_| {}).await;
        device.client.subscribe("app/device/X1/desired", QoS::AtLeastOnce).await.unwrap();
        let p = tokio::time::timeout(TIMEOUT, device.received.recv()).await.expect("retained state").unwrap();
        assert!(p.retain, "retained at the external broker");
        assert_eq!(
            serde_json::from_slice::<Value>(&p.payload).unwrap(),
            json!({"v": 1, "state": {"interval_s": 30}})
        );
        device.report("X1", json!({"v": 1, "state": {"interval_s": 30}})).await;
        until_sync(http, "X1", "in_sync").await;
        device.client.publish("app/device/X1/desired/get", QoS::AtLeastOnce, false, "").await.unwrap();
        let again = tokio::time::timeout(TIMEOUT, device.received.recv()).await.expect("sent again").unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&again.payload).unwrap()["v"], 1);
        device.vanish();
    });
    server.stop();
}
