//! Commands to devices against the real server (in process on free ports, or the binary for the
//! kill -9) and real MQTT clients: the states a command goes through as a user sees them in the
//! API and on the live feed, delivery to devices that come later, deadlines, a kill -9, a device
//! that answers before its PUBACK, QoS 0 and MQTT 5 devices, no retained commands, and who may do
//! what.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::api::{call, known};
use common::listener::Listener;
use common::running::start;
use common::{LiveClient, ServerProcess, TIMEOUT, cli, http_full, now_ms, payload, telemetry_topic};
use rumqttc::{Publish, QoS};
use serde_json::{Value, json};
use tokio::sync::mpsc;

async fn post(http: SocketAddr, device: &str, query: &str, body: Value) -> (u16, Value) {
    call(http, "POST", &format!("/api/devices/{device}/commands{query}"), Some(body), None).await
}

async fn get(http: SocketAddr, device: &str, id: &str) -> Value {
    let (status, body) = call(http, "GET", &format!("/api/devices/{device}/commands/{id}"), None, None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until command `id` has `status`.
async fn until_status(http: SocketAddr, device: &str, id: &str, status: &str) -> Value {
    let start = std::time::Instant::now();
    loop {
        let c = get(http, device, id).await;
        if c["status"] == status {
            return c;
        }
        assert!(start.elapsed() < TIMEOUT, "command {id} never became {status}: {c}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn id_of(command: &Value) -> String {
    command["id"].as_str().unwrap().to_owned()
}

/// A device connected as `id` (with its key, if given); `manual_acks`: PUBACKs only by
/// [`Listener::ack`]; a persistent session unless `clean`.
async fn connect_device(
    mqtt: SocketAddr,
    id: &str,
    key: Option<&str>,
    manual_acks: bool,
    clean: bool,
) -> Listener {
    Listener::connect(mqtt, id, key, |opts| {
        opts.set_manual_acks(manual_acks).set_clean_session(clean);
    })
    .await
}

/// What a device does with commands.
impl Listener {
    /// The next command: (topic's id, payload).
    async fn command(&mut self) -> (String, Value) {
        let p = self.next(TIMEOUT).await.expect("a command in time");
        let topic = p.topic.clone();
        let id = topic.rsplit('/').next().unwrap().to_owned();
        assert!(!p.retain, "commands are never retained");
        (id, serde_json::from_slice(&p.payload).unwrap())
    }

    async fn answer(&self, device: &str, id: &str, answer: Value) {
        let topic = format!("app/device/{device}/res/{id}");
        self.client.publish(topic, QoS::AtLeastOnce, false, answer.to_string()).await.unwrap();
    }

    async fn ack(&self, publish: &Publish) {
        self.client.ack(publish).await.unwrap();
    }
}

/// The statuses the live feed shows for command `id`, until it reaches `last`.
async fn live_statuses(live: &mut LiveClient, id: &str, last: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let event = live.next().await;
        if event["type"] == "command" && event["command"]["id"] == id {
            let status = event["command"]["status"].as_str().unwrap().to_owned();
            seen.push(status.clone());
            if status == last {
                return seen;
            }
        }
    }
}

fn ok(result: Value) -> Value {
    json!({"status": "ok", "result": result})
}

/// Acceptance 1: an online device runs a command; the live feed shows each state once, in
/// order; `?wait` answers with the result once the device has answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_device_runs_a_command_and_every_state_shows_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("t.redb")).await;
    known(server.http, "C1").await;
    let mut device = connect_device(server.mqtt, "C1", None, false, true).await;
    assert!(device.subscribe("app/device/C1/cmd/+", QoS::AtLeastOnce).await);
    let mut live = LiveClient::connect(server.http, "?device=C1").await;
    let answering = tokio::spawn(async move {
        let (id, command) = device.command().await;
        assert_eq!(command["id"], id.as_str(), "the payload names the topic's id");
        assert_eq!(
            (command["method"].clone(), command["params"].clone()),
            (json!("identify"), json!({"secs": 3}))
        );
        assert!(command["exp"].as_i64().unwrap() > now_ms() / 1000, "expires in the future: {command}");
        // The device works a moment (its PUBACK went out at once).
        tokio::time::sleep(Duration::from_millis(300)).await;
        device.answer("C1", &id, ok(json!({"blinked": true}))).await;
        device
    });
    let (status, command) =
        post(server.http, "C1", "?wait=10", json!({"method": "identify", "params": {"secs": 3}})).await;
    assert_eq!(status, 200, "finished within the wait: {command}");
    assert_eq!(command["status"], "SUCCEEDED");
    assert_eq!(command["result"], json!({"blinked": true}));
    assert_eq!(command["delivery_observable"], true);
    assert_eq!(command["created_by"], "open");
    let id = id_of(&command);
    assert_eq!(
        live_statuses(&mut live, &id, "SUCCEEDED").await,
        ["QUEUED", "SENT", "DELIVERED", "SUCCEEDED"]
    );
    let stored = get(server.http, "C1", &id).await;
    assert_eq!(stored, command, "as the wait answered");
    assert!(stored["sent_at"].as_i64() <= stored["delivered_at"].as_i64());

    // Listed, newest first; a finished command cannot be canceled.
    let second = post(server.http, "C1", "", json!({"method": "identify", "ttl_secs": 60})).await.1;
    let (status, list) = call(server.http, "GET", "/api/devices/C1/commands?limit=1", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["commands"][0]["id"], second["id"]);
    let next = list["next"].as_str().unwrap();
    let (_, rest) =
        call(server.http, "GET", &format!("/api/devices/C1/commands?before={next}"), None, None).await;
    assert_eq!(rest["commands"][0]["id"], id.as_str());
    assert_eq!(rest["next"], Value::Null);
    let (status, body) =
        call(server.http, "DELETE", &format!("/api/devices/C1/commands/{id}"), None, None).await;
    assert_eq!(status, 409, "{body}");
    let (_, metrics) = call(server.http, "GET", "/metrics", None, None).await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    for status in ["QUEUED", "SENT", "DELIVERED", "SUCCEEDED"] {
        let line = format!("iot_command_transitions_total{{status=\"{status}\"}} ");
        assert!(metrics.contains(&line), "counted on /metrics: {status}");
    }
    let device = answering.await.unwrap();
    device.vanish();
    server.stop().await;
}

/// Acceptance 2 and 3: a command to an offline device waits QUEUED and is delivered once the
/// device subscribes; one whose ttl passes first expires, and the device never receives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_device_gets_its_command_on_subscribing_unless_it_expired() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("t.redb")).await;
    known(server.http, "C2").await;
    let (status, stale) = post(server.http, "C2", "", json!({"method": "identify", "ttl_secs": 1})).await;
    assert_eq!((status, stale["status"].as_str()), (202, Some("QUEUED")));
    let stale = until_status(server.http, "C2", &id_of(&stale), "EXPIRED").await;
    assert!(stale["finished_at"].as_i64().unwrap() >= stale["expires_at"].as_i64().unwrap());
    let (status, queued) = post(server.http, "C2", "", json!({"method": "identify"})).await;
    assert_eq!((status, queued["status"].as_str()), (202, Some("QUEUED")), "still offline");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get(server.http, "C2", &id_of(&queued)).await["status"], "QUEUED");

    let mut device = connect_device(server.mqtt, "C2", None, false, true).await;
    assert!(device.subscribe("app/device/C2/cmd/+", QoS::AtLeastOnce).await);
    let (id, _) = device.command().await;
    assert_eq!(id, id_of(&queued), "the queued one, not the expired one");
    device.answer("C2", &id, ok(json!(null))).await;
    until_status(server.http, "C2", &id, "SUCCEEDED").await;
    assert!(device.next(Duration::from_millis(700)).await.is_none(), "nothing else, the expired one never");
    device.vanish();
    server.stop().await;
}

/// A device with a persistent session keeps its subscription at the broker: reconnecting
/// without subscribing again, it still gets the command queued while it was away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_session_takes_commands_without_subscribing_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("t.redb")).await;
    known(server.http, "C3").await;
    let mut device = connect_device(server.mqtt, "C3", None, false, false).await;
    assert!(device.subscribe("app/device/C3/cmd/+", QoS::AtLeastOnce).await);
    device.client.disconnect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    device.vanish();
    let queued = post(server.http, "C3", "", json!({"method": "identify"})).await.1;
    assert_eq!(queued["status"], "QUEUED");
    let mut device = connect_device(server.mqtt, "C3", None, false, false).await;
    let (id, _) = device.command().await;
    assert_eq!(id, id_of(&queued));
    device.answer("C3", &id, ok(json!(1))).await;
    until_status(server.http, "C3", &id, "SUCCEEDED").await;
    device.vanish();
    server.stop().await;
}

/// Deleting a device ends its unfinished commands (CANCELED, on the live feed), so a device that
/// comes back under its id runs none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_device_cancels_its_commands() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("t.redb")).await;
    known(server.http, "C4").await;
    let mut live = LiveClient::connect(server.http, "?device=C4").await;
    let queued = post(server.http, "C4", "", json!({"method": "reboot"})).await.1;
    let http = server.http;
    let (status, _, body) = tokio::task::spawn_blocking(move || {
        let form = b"id=C4&confirm=yes";
        http_full(http, "POST", "/api/device/delete", "application/x-www-form-urlencoded", &[], form)
    })
    .await
    .unwrap();
    assert!(status < 400, "{status} {body}");
    let id = id_of(&queued);
    assert_eq!(live_statuses(&mut live, &id, "CANCELED").await, ["QUEUED", "CANCELED"]);
    let mut device = connect_device(server.mqtt, "C4", None, false, true).await;
    assert!(device.subscribe("app/device/C4/cmd/+", QoS::AtLeastOnce).await);
    assert!(
        device.next(Duration::from_millis(700)).await.is_none(),
        "the deleted device's command never runs"
    );
    device.vanish();
    server.stop().await;
}

/// Acceptance 5: a device that never answers times out, and the next command is then sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_never_answered_times_out_and_the_next_one_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("t.redb")).await;
    known(server.http, "C5").await;
    let mut device = connect_device(server.mqtt, "C5", None, false, true).await;
    assert!(device.subscribe("app/device/C5/cmd/+", QoS::AtLeastOnce).await);
    let first = post(server.http, "C5", "", json!({"method": "reboot", "timeout_secs": 1})).await.1;
    let second = post(server.http, "C5", "", json!({"method": "identify"})).await.1;
    let (id, _) = device.command().await;
    assert_eq!(id, id_of(&first));
    assert_eq!(get(server.http, "C5", &id_of(&second)).await["status"], "QUEUED", "one in flight per device");
    let timed_out = until_status(server.http, "C5", &id, "TIMED_OUT").await;
    assert!(timed_out["finished_at"].as_i64().unwrap() >= timed_out["respond_by"].as_i64().unwrap());
    let (next, _) = device.command().await;
    assert_eq!(next, id_of(&second), "the next one follows");
    // A late answer to the timed-out one changes nothing.
    device.answer("C5", &id, ok(json!(1))).await;
    device.answer("C5", &next, json!({"status": "error", "code": "unknown_method", "message": "no"})).await;
    let rejected = until_status(server.http, "C5", &next, "REJECTED").await;
    assert_eq!(rejected["error"], json!({"code": "unknown_method", "message": "no"}));
    assert_eq!(get(server.http, "C5", &id).await["status"], "TIMED_OUT");
    device.vanish();
    server.stop().await;
}

/// Acceptance 6: the device answers before it acknowledges the command: SUCCEEDED, and the
/// late PUBACK changes nothing (nor blocks the next command).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_before_the_puback_completes_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("t.redb")).await;
    known(server.http, "C6").await;
    let mut device = connect_device(server.mqtt, "C6", None, true, true).await;
    assert!(device.subscribe("app/device/C6/cmd/+", QoS::AtLeastOnce).await);
    let mut live = LiveClient::connect(server.http, "?device=C6").await;
    let command = post(server.http, "C6", "", json!({"method": "identify"})).await.1;
    let id = id_of(&command);
    let publish = device.next(TIMEOUT).await.expect("the command");
    until_status(server.http, "C6", &id, "SENT").await;
    device.answer("C6", &id, ok(json!("done"))).await;
    until_status(server.http, "C6", &id, "SUCCEEDED").await;
    device.ack(&publish).await;
    let next = post(server.http, "C6", "", json!({"method": "identify"})).await.1;
    let publish = device.next(TIMEOUT).await.expect("the next command is not held by the first");
    assert!(publish.topic.ends_with(&id_of(&next)));
    assert_eq!(live_statuses(&mut live, &id, "SUCCEEDED").await, ["QUEUED", "SENT", "SUCCEEDED"]);
    assert_eq!(get(server.http, "C6", &id).await["status"], "SUCCEEDED", "the late PUBACK changed nothing");
    device.vanish();
    server.stop().await;
}

/// Acceptance 7: a device subscribed at QoS 0 (as Arduino's PubSubClient does) gets its
/// commands at QoS 0; DELIVERED cannot be seen and the command says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos_0_device_gets_commands_without_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("t.redb")).await;
    known(server.http, "C7").await;
    let mut device = connect_device(server.mqtt, "C7", None, false, true).await;
    assert!(device.subscribe("app/device/C7/cmd/+", QoS::AtMostOnce).await);
    let mut live = LiveClient::connect(server.http, "?device=C7").await;
    let command = post(server.http, "C7", "", json!({"method": "identify"})).await.1;
    let publish = device.next(TIMEOUT).await.expect("the command");
    assert_eq!(publish.qos, QoS::AtMostOnce);
    let id = id_of(&command);
    let sent = until_status(server.http, "C7", &id, "SENT").await;
    assert_eq!(sent["delivery_observable"], false);
    assert!(sent["respond_by"].is_number(), "the timeout runs from SENT");
    device.answer("C7", &id, ok(json!(1))).await;
    assert_eq!(live_statuses(&mut live, &id, "SUCCEEDED").await, ["QUEUED", "SENT", "SUCCEEDED"]);
    device.vanish();
    server.stop().await;
}

/// Acceptance 7: an MQTT 5 device gets the response topic, the command id as correlation data
/// and the message expiry, and answers on that response topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt_5_device_gets_response_topic_and_correlation_data() {
    use rumqttc::v5::mqttbytes::v5::{Packet as Packet5, PublishProperties};
    use rumqttc::v5::{AsyncClient as Client5, Event as Event5, MqttOptions as Options5};
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("t.redb")).await;
    known(server.http, "C75").await;
    let mut opts = Options5::new("C75", server.mqtt.ip().to_string(), server.mqtt.port());
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = Client5::new(opts, 10);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            match event {
                Event5::Incoming(Packet5::SubAck(_)) => {
                    let _ = tx.send(None);
                }
                Event5::Incoming(Packet5::Publish(p)) => {
                    let _ = tx.send(Some(p));
                }
                _ => {}
            }
        }
    });
    client.subscribe("app/device/C75/cmd/+", rumqttc::v5::mqttbytes::QoS::AtLeastOnce).await.unwrap();
    assert!(tokio::time::timeout(TIMEOUT, rx.recv()).await.unwrap().unwrap().is_none(), "SUBACK");
    let command = post(server.http, "C75", "", json!({"method": "identify", "ttl_secs": 600})).await.1;
    let id = id_of(&command);
    let publish = tokio::time::timeout(TIMEOUT, rx.recv()).await.unwrap().unwrap().expect("the command");
    let props = publish.properties.clone().expect("MQTT 5 properties");
    assert_eq!(props.response_topic.as_deref(), Some(format!("app/device/C75/res/{id}").as_str()));
    assert_eq!(props.correlation_data.as_deref(), Some(id.as_bytes()));
    let expiry = props.message_expiry_interval.expect("message expiry");
    assert!((590..=600).contains(&expiry), "what is left of the ttl: {expiry}");
    let answer = PublishProperties { correlation_data: props.correlation_data.clone(), ..Default::default() };
    let body = ok(json!({"v": 5})).to_string();
    client
        .publish_with_properties(
            props.response_topic.unwrap(),
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            false,
            body,
            answer,
        )
        .await
        .unwrap();
    let done = until_status(server.http, "C75", &id, "SUCCEEDED").await;
    assert_eq!(done["result"], json!({"v": 5}));
    task.abort();
    server.stop().await;
}

/// Acceptance 4 and 9: kill -9 with one command SENT (never acknowledged) and one QUEUED: both
/// listed as they were after the restart; the device reconnects and gets the SENT one again
/// with the same id, then the queued one, each once; a restart after they finished sends
/// nothing again, and nothing is retained on the command topics.
#[test]
fn a_kill_9_keeps_every_command_and_a_reconnect_runs_each_once() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let server = ServerProcess::start(&db, &[]);
    let (http, mqtt) = (server.http, server.mqtt());
    let (sent, queued) = rt.block_on(async {
        let body = payload([("t", 1.0)], now_ms());
        let mut device = connect_device(mqtt, "K9", None, true, true).await;
        device.client.publish(telemetry_topic("K9"), QoS::AtLeastOnce, false, body).await.unwrap();
        common::eventually("K9 known", || (server.device("K9")["message_count"] == 1).then_some(()));
        assert!(device.subscribe("app/device/K9/cmd/+", QoS::AtLeastOnce).await);
        let sent = post(http, "K9", "", json!({"method": "identify"})).await.1;
        let queued = post(http, "K9", "", json!({"method": "set_interval", "params": {"secs": 5}})).await.1;
        // Received, never acknowledged: SENT.
        let (id, _) = device.command().await;
        assert_eq!(id, id_of(&sent));
        until_status(http, "K9", &id, "SENT").await;
        assert_eq!(get(http, "K9", &id_of(&queued)).await["status"], "QUEUED");
        device.vanish();
        (id, id_of(&queued))
    });
    server.kill();

    let server = ServerProcess::start(&db, &[]);
    let (http, mqtt) = (server.http, server.mqtt());
    rt.block_on(async {
        let (status, list) = call(http, "GET", "/api/devices/K9/commands", None, None).await;
        assert_eq!(status, 200);
        let states = common::api::id_and_status(&list);
        assert_eq!(states, [(queued.as_str(), "QUEUED"), (sent.as_str(), "SENT")], "both, as they were");
        let mut device = connect_device(mqtt, "K9", None, false, true).await;
        assert!(device.subscribe("app/device/K9/cmd/+", QoS::AtLeastOnce).await);
        let (again, _) = device.command().await;
        assert_eq!(again, sent, "the SENT one again, with the same id");
        device.answer("K9", &again, ok(json!(1))).await;
        let (next, command) = device.command().await;
        assert_eq!((next.as_str(), &command["method"]), (queued.as_str(), &json!("set_interval")));
        device.answer("K9", &next, ok(json!(2))).await;
        until_status(http, "K9", &next, "SUCCEEDED").await;
        assert_eq!(until_status(http, "K9", &sent, "SUCCEEDED").await["sends"], 2);
        assert!(device.next(Duration::from_millis(500)).await.is_none(), "each once");
        device.vanish();
    });
    server.stop();

    // A restart and a reconnect: nothing is sent again, and no command was retained.
    let server = ServerProcess::start(&db, &[]);
    let mqtt = server.mqtt();
    rt.block_on(async {
        let mut device = connect_device(mqtt, "K9", None, false, true).await;
        assert!(device.subscribe("app/device/K9/cmd/+", QoS::AtLeastOnce).await);
        let mut watcher = connect_device(mqtt, "watcher", None, false, true).await;
        assert!(watcher.subscribe("app/device/+/cmd/#", QoS::AtLeastOnce).await);
        assert!(device.next(Duration::from_secs(1)).await.is_none(), "no command again");
        assert!(watcher.next(Duration::from_millis(200)).await.is_none(), "nothing retained on cmd/");
    });
    server.stop();
}

/// Acceptance 11 and the limits: a viewer reads but may not command (403); a device may not
/// answer for another (refused and counted), nor subscribe to another's commands; bad requests
/// get the right status; the 101st unfinished command is refused with 429; cancel works once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_command_devices_answer_only_for_themselves_and_requests_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let db2 = db.clone();
    let (key_a, _) = tokio::task::spawn_blocking(move || {
        cli(&db2, &["user", "add", "root"], "admin password");
        cli(&db2, &["user", "add", "vic", "--role", "viewer"], "viewer password");
        (cli(&db2, &["device", "key", "CA"], ""), cli(&db2, &["device", "key", "CB"], ""))
    })
    .await
    .unwrap();
    let server = start(&db).await;
    let admin = Some(("root", "admin password"));
    let viewer = Some(("vic", "viewer password"));
    let path = "/api/devices/CB/commands";
    let body = || Some(json!({"method": "identify"}));
    let (status, _) = call(server.http, "POST", path, body(), viewer).await;
    assert_eq!(status, 403, "a viewer may not command");
    let (status, _) = call(server.http, "POST", path, body(), None).await;
    assert_eq!(status, 401);
    let (status, command) = call(server.http, "POST", path, body(), admin).await;
    assert_eq!(
        (status, command["created_by"].as_str()),
        (202, Some("root")),
        "a device with a key: {command}"
    );
    let id = id_of(&command);
    let (status, list) = call(server.http, "GET", path, None, viewer).await;
    assert_eq!((status, list["commands"][0]["id"].as_str()), (200, Some(id.as_str())), "a viewer reads");
    let one = format!("{path}/{id}");
    assert_eq!(call(server.http, "DELETE", &one, None, viewer).await.0, 403);

    // Device CA answers for CB, and listens to CB's commands: refused, counted.
    let mut device = connect_device(server.mqtt, "CA", Some(&key_a), false, true).await;
    assert!(!device.subscribe("app/device/CB/cmd/+", QoS::AtLeastOnce).await, "not its commands");
    device.answer("CB", &id, ok(json!(1))).await;
    let refused = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(r#"iot_messages_rejected_total{reason="not_authorized"} "#))
            .map(|v| v.trim().to_owned())
    };
    let start = std::time::Instant::now();
    loop {
        let (_, metrics) = call(server.http, "GET", "/metrics", None, admin).await;
        if refused(metrics.as_str().unwrap_or_default()).as_deref() == Some("1") {
            break;
        }
        assert!(start.elapsed() < TIMEOUT, "the refusal is counted: {metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(call(server.http, "GET", &one, None, admin).await.1["status"], "QUEUED", "unchanged");
    device.vanish();

    // Bad requests.
    let bad = |b: Value| call(server.http, "POST", path, Some(b), admin);
    assert_eq!(bad(json!({"method": "no spaces"})).await.0, 422);
    assert_eq!(bad(json!({"method": "m", "params": [1]})).await.0, 422);
    assert_eq!(bad(json!({"method": "m", "ttl_secs": 8 * 24 * 3600})).await.0, 422);
    assert_eq!(bad(json!({"method": "m", "timeout_secs": 0})).await.0, 422);
    assert_eq!(bad(json!({"method": "m", "params": {"x": "y".repeat(1100)}})).await.0, 413);
    assert_eq!(bad(json!({"method": "m", "colour": "red"})).await.0, 422, "unknown fields");
    let (status, _) = call(server.http, "POST", &format!("{path}?wait=31"), body(), admin).await;
    assert_eq!(status, 400);
    let (status, _) = call(server.http, "POST", "/api/devices/NOBODY/commands", body(), admin).await;
    assert_eq!(status, 404);
    assert_eq!(call(server.http, "GET", &format!("{path}/zzzz"), None, admin).await.0, 404);

    // Cancel, once; then the device's unfinished commands up to 100, and the 101st refused.
    let (status, canceled) = call(server.http, "DELETE", &one, None, admin).await;
    assert_eq!(
        (status, canceled["status"].as_str(), canceled["canceled_by"].as_str()),
        (200, Some("CANCELED"), Some("root"))
    );
    assert_eq!(call(server.http, "DELETE", &one, None, admin).await.0, 409);
    for n in 0..100 {
        let (status, c) = call(server.http, "POST", path, body(), admin).await;
        assert_eq!(status, 202, "command {n}: {c}");
    }
    let (status, why) = call(server.http, "POST", path, body(), admin).await;
    assert_eq!(status, 429, "{why}");
    server.stop().await;
}

/// With an external broker (Mosquitto): a command to a device whose status says online goes
/// out through the server's client, SENT at the broker's PUBACK, its delivery not observable,
/// and the device's answer comes back through the broker; a device whose status says offline
/// keeps its command QUEUED.
#[test]
fn through_an_external_broker_commands_go_to_devices_that_are_online() {
    use common::mosquitto::{Mosquitto, external_env, subscribed};
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start();
    let server =
        ServerProcess::start(&dir.path().join("t.redb"), &external_env(broker.addr, "dash-commands"));
    common::eventually("subscribed to the broker", || subscribed(&server));
    let http = server.http;
    rt.block_on(async {
        let mut online = connect_device(broker.addr, "X1", None, false, true).await;
        assert!(online.subscribe("app/device/X1/cmd/+", QoS::AtLeastOnce).await);
        online.client.publish("app/device/X1/status", QoS::AtLeastOnce, true, "online").await.unwrap();
        let reading = |t| payload([("t", t)], now_ms());
        online.client.publish(telemetry_topic("X1"), QoS::AtLeastOnce, false, reading(1.0)).await.unwrap();
        let offline = connect_device(broker.addr, "X2", None, false, true).await;
        offline.client.publish(telemetry_topic("X2"), QoS::AtLeastOnce, false, reading(2.0)).await.unwrap();
        offline.client.publish("app/device/X2/status", QoS::AtLeastOnce, true, "offline").await.unwrap();
        for id in ["X1", "X2"] {
            let start = std::time::Instant::now();
            while call(http, "GET", &format!("/api/devices/{id}/commands"), None, None).await.0 != 200 {
                assert!(start.elapsed() < TIMEOUT, "{id}'s reading reached the server");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let command = post(http, "X1", "", json!({"method": "identify"})).await.1;
        assert_eq!(command["delivery_observable"], false, "said from the start: {command}");
        let waiting = post(http, "X2", "", json!({"method": "identify"})).await.1;
        let (id, payload) = online.command().await;
        assert_eq!((id.as_str(), &payload["method"]), (id_of(&command).as_str(), &json!("identify")));
        until_status(http, "X1", &id, "SENT").await;
        online.answer("X1", &id, ok(json!({"blinked": true}))).await;
        let done = until_status(http, "X1", &id, "SUCCEEDED").await;
        assert_eq!(done["result"], json!({"blinked": true}));
        assert!(done.get("delivered_at").is_none(), "DELIVERED is never claimed");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(get(http, "X2", &id_of(&waiting)).await["status"], "QUEUED", "offline: not sent");
        online.vanish();
        offline.vanish();
    });
    server.stop();
}
