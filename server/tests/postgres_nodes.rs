//! Two dashboard nodes on one real PostgreSQL (`storage.postgres_url`) and one real Mosquitto,
//! each the server binary: what one node stores, the other's live clients get and its history
//! shows; a dashboard saved on one is listed by the other; a sign-in on one is good on the
//! other, and signing out on one ends it on both (issue 18, acceptance 4). A second node with
//! its own embedded broker on the same database is refused.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::mosquitto::{Mosquitto, external_env};
use common::postgres::Postgres;
use common::*;

const FORM: &str = "application/x-www-form-urlencoded";

/// A node on `pg` taking devices' messages from `broker` with the others (`env` besides).
fn node(pg: &Postgres, broker: &Mosquitto, dir: &Path, env: &[(&'static str, String)]) -> ServerProcess {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let mut all = external_env(broker.addr, &name);
    all.push(("IOT_MQTT_SHARE_GROUP", "dashboards".into()));
    all.push(("IOT_POSTGRES_URL", pg.url.clone()));
    all.extend_from_slice(env);
    ServerProcess::start(&dir.join("t.redb"), &all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_node_stores_saves_or_signs_in_the_other_node_sees_at_once() {
    let pg = Postgres::start();
    let broker = Mosquitto::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(&pg, &broker, dir_a.path(), &[]);
    let b = node(&pg, &broker, dir_b.path(), &[]);

    // A reading sent to node a reaches node b's live client, numbered, and b's history.
    let mut live_b = LiveClient::connect(b.http, "").await;
    let at = now_ms() - 60_000;
    let mut reading: serde_json::Value = serde_json::from_str(&payload([("temperature", 21.5)], at)).unwrap();
    reading["device_id"] = "GREENHOUSE_1".into();
    let reading = reading.to_string();
    let (status, body) = a.post_json("/api/telemetry", reading.as_bytes());
    assert_eq!(status, 202, "{body}");
    let event = live_b.next().await;
    assert_eq!(
        (event["type"].as_str(), event["device"].as_str()),
        (Some("reading"), Some("GREENHOUSE_1")),
        "{event}"
    );
    assert!(event["seq"].as_u64().is_some_and(|s| s > 0), "{event}");
    assert_eq!(b.readings("GREENHOUSE_1", "temperature"), 1);
    assert_eq!(b.device("GREENHOUSE_1")["message_count"], 1);

    // A dashboard made on a is listed by b.
    let board = serde_json::json!({"dashboard": {"id": "x", "name": "Greenhouse", "widgets": [],
        "layouts": {"wide": [], "medium": [], "phone": []}, "range": {"type": "last", "secs": 3600}}});
    let (status, body) = a.post_json("/api/dashboards/create", board.to_string().as_bytes());
    assert_eq!(status, 200, "{body}");
    let (status, list) = b.get("/api/dashboards");
    assert_eq!(status, 200);
    assert!(list.contains("Greenhouse"), "{list}");

    // The first admin, made with the command line on the database both nodes use, closes
    // both; a session made on a is good on b, and ends on both when it ends on a.
    let out = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["user", "add", "root", "--role", "admin"])
        .env("IOT_POSTGRES_URL", &pg.url)
        .env("IOT_PASSWORD", "admin password")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eventually("node b to ask for sign-in", || (b.get("/api/devices").0 == 401).then_some(()));
    let (status, head, _) =
        http_full(a.http, "POST", "/auth/login", FORM, &[], b"name=root&password=admin+password");
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let whoami =
        |node: &ServerProcess| http_full(node.http, "GET", "/api/whoami", "", &[("Cookie", &cookie)], b"");
    let (status, _, who) = whoami(&b);
    assert_eq!(status, 200, "the session made on a is good on b: {who}");
    assert!(who.contains("\"name\":\"root\""), "{who}");
    let (status, _, _) = http_full(a.http, "POST", "/auth/logout", FORM, &[("Cookie", &cookie)], b"");
    assert_eq!(status, 303);
    let devices = http_full(b.http, "GET", "/api/devices", "", &[("Cookie", &cookie)], b"");
    assert_eq!(devices.0, 401, "signed out on a: refused on b at once");
    drop((a, b));
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}

/// Several nodes on one database do its upkeep once: the roll-up pass (PostgreSQL's sealing),
/// trimming the change log and pruning are done by the node holding the `upkeep` lease, the
/// other skipping them; when that node stops, the other takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_at_a_time_does_the_upkeep() {
    let pg = Postgres::start();
    let broker = Mosquitto::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let quick = |dir: &Path| node(&pg, &broker, dir, &[("IOT_SEAL_INTERVAL_SECS", "1".into())]);
    let (a, b) = (quick(dir_a.path()), quick(dir_b.path()));
    let sealed = |n: &ServerProcess| n.metric("iot_readings_sealed_total");
    let send = |n: &ServerProcess, device: &str| {
        let body =
            format!(r#"{{"device_id":"{device}","telemetry":{{"t":1}},"timestamp":{}}}"#, now_ms() - 60_000);
        assert_eq!(n.post_json("/api/telemetry", body.as_bytes()).0, 202);
    };
    // Readings through both nodes; they are rolled up by one of them only.
    for i in 0..10 {
        send(if i % 2 == 0 { &a } else { &b }, &format!("UPKEEP_{i}"));
    }
    eventually("the readings rolled up", || (sealed(&a) + sealed(&b) >= 10).then_some(()));
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (on_a, on_b) = (sealed(&a), sealed(&b));
    assert_eq!(on_a + on_b, 10, "each reading rolled up once");
    assert!(on_a == 0 || on_b == 0, "one node did the upkeep: {on_a} and {on_b}");
    // The node doing it stops (cleanly: its lease is handed on at once); the other goes on.
    let (doing, other) = if on_a > 0 { (a, b) } else { (b, a) };
    // Each node shows whether it holds it.
    let holds = |n: &ServerProcess| n.metric(r#"iot_lease_held{lease="upkeep"}"#);
    assert_eq!((holds(&doing), holds(&other)), (1, 0), "/metrics says which node does the upkeep");
    doing.stop();
    send(&other, "UPKEEP_AFTER");
    eventually("the other node rolling up", || (sealed(&other) >= 1).then_some(()));
    assert_eq!(holds(&other), 1);
    drop(other);
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}

/// Nodes on one database with their own embedded brokers would each reach only their own
/// devices (a command sent through one would never reach a device on the other). The second
/// is refused at start, naming the node that runs one and what to set instead; the first goes
/// on taking its devices' readings; once it stops, a node with the embedded broker starts.
#[test]
fn a_second_node_with_its_own_embedded_broker_on_one_database_is_refused() {
    let pg = Postgres::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let embedded = [("IOT_POSTGRES_URL", pg.url.clone())];
    let a = ServerProcess::start(&dir_a.path().join("t.redb"), &embedded);
    let started = std::time::Instant::now();
    let mut second = server_command(&dir_b.path().join("t.redb"), &embedded, Stdio::piped())
        .spawn()
        .expect("run the server");
    while second.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(30) {
            second.kill().unwrap();
            panic!("the second node with an embedded broker started and runs");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let refused = second.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "the second node with an embedded broker started: {said}");
    assert!(
        said.contains("runs the embedded MQTT broker")
            && said.contains(&format!("{}-", a.http))
            && said.contains("mqtt.mode = \"external\""),
        "{said}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "refused at once, not after the lease's length"
    );

    // a still takes its devices' readings.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut device = Device::connect(a.mqtt(), "EMB_1", |_| {}).await;
        device.publish("app/device/EMB_1/telemetry", payload([("t", 1.0)], now_ms())).await;
    });
    eventually("a to store the reading", || (a.readings("EMB_1", "t") == 1).then_some(()));

    // Stopped cleanly, a hands the broker's lease on: a node with the embedded broker starts.
    a.stop();
    let b = ServerProcess::start(&dir_b.path().join("t.redb"), &embedded);
    eventually("b to answer", || (b.get("/healthz").0 == 200).then_some(()));
    drop(b);
    drop(pg);
}
