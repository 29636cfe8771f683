//! Two dashboard nodes on one real PostgreSQL (`storage.postgres_url`), each the server
//! binary: what one node stores, the other's live clients get and its history shows; a
//! dashboard saved on one is listed by the other; a sign-in on one is good on the other, and
//! signing out on one ends it on both (issue 18, acceptance 4).

mod common;

use std::path::Path;
use std::process::Command;

use common::postgres::Postgres;
use common::*;

const FORM: &str = "application/x-www-form-urlencoded";

fn node(pg: &Postgres, dir: &Path) -> ServerProcess {
    ServerProcess::start(&dir.join("t.redb"), &[("IOT_POSTGRES_URL", pg.url.clone())])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_node_stores_saves_or_signs_in_the_other_node_sees_at_once() {
    let pg = Postgres::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(&pg, dir_a.path());
    let b = node(&pg, dir_b.path());

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
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let quick = |dir: &Path| {
        let env = [("IOT_POSTGRES_URL", pg.url.clone()), ("IOT_SEAL_INTERVAL_SECS", "1".into())];
        ServerProcess::start(&dir.join("t.redb"), &env)
    };
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
