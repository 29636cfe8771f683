//! Bulk commands against the real server (in process on free ports, or the binary for the
//! kill -9) and real MQTT devices: one request makes each device its own command, which runs
//! as any command does; the bulk's summary follows their states; the pace holds; who may make
//! one and what is refused; and a kill -9 right after the answer loses none.

mod common;

use std::time::{Duration, Instant};

use common::api::{call, known};
use common::listener::Listener;
use common::running::{start, start_with};
use common::{ServerProcess, TIMEOUT, cli};
use rumqttc::QoS;
use serde_json::{Value, json};

const BULK: &str = "/api/commands/bulk";

/// Each device's command id, from a bulk's `commands`.
fn ids(bulk: &Value) -> Vec<(String, String)> {
    bulk["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["device"].as_str().unwrap().to_owned(), c["id"].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// Waits until bulk `id`'s summary satisfies `done`.
async fn until_bulk(http: std::net::SocketAddr, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, bulk) = call(http, "GET", &format!("{BULK}/{id}"), None, None).await;
        assert_eq!(status, 200, "{bulk}");
        if done(&bulk) {
            return bulk;
        }
        assert!(start.elapsed() < TIMEOUT, "bulk {id} never got there: {bulk}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A device that subscribes to its commands and answers each with `{"n": <its name>}`.
async fn answering(mqtt: std::net::SocketAddr, id: &'static str) -> tokio::task::JoinHandle<Vec<String>> {
    let mut device = Listener::connect(mqtt, id, None, |_| {}).await;
    assert!(device.subscribe(&format!("app/device/{id}/cmd/+"), QoS::AtLeastOnce).await);
    tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(p) = device.next(Duration::from_secs(2)).await {
            let cmd = p.topic.rsplit('/').next().unwrap().to_owned();
            let answer = json!({"status": "ok", "result": {"n": id}}).to_string();
            let topic = format!("app/device/{id}/res/{cmd}");
            device.client.publish(topic, QoS::AtLeastOnce, false, answer).await.unwrap();
            got.push(cmd);
        }
        device.vanish();
        got
    })
}

/// A bulk by list and one by query: each device gets its own command with its own id, the online
/// ones run theirs, the offline one's waits QUEUED, and the summary counts them by state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_gives_each_device_its_own_command_and_its_summary_follows_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("t.redb")).await;
    for d in ["BA", "BB", "BC", "OTHER"] {
        known(server.http, d).await;
    }
    let a = answering(server.mqtt, "BA").await;
    let b = answering(server.mqtt, "BB").await;
    let body = json!({"devices": ["BA", "BB", "BC"], "method": "identify", "params": {"secs": 2}});
    let (status, bulk) = call(server.http, "POST", BULK, Some(body), None).await;
    assert_eq!(status, 202, "{bulk}");
    assert_eq!((bulk["requested"].as_u64(), bulk["count"].as_u64()), (Some(3), Some(3)));
    assert_eq!(bulk["created_by"], "open");
    let made = ids(&bulk);
    assert_eq!(made.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>(), ["BA", "BB", "BC"]);
    let id = bulk["id"].as_str().unwrap().to_owned();
    let done = until_bulk(server.http, &id, |b| b["statuses"]["SUCCEEDED"] == 2).await;
    assert_eq!(done["statuses"], json!({"QUEUED": 1, "SUCCEEDED": 2}), "BC is offline: {done}");
    assert_eq!((done["unfinished"].as_u64(), done["complete"].as_bool()), (Some(1), Some(true)));
    // Each device got its own command, once, and it is the device's command as any other.
    assert_eq!(a.await.unwrap(), [made[0].1.clone()]);
    assert_eq!(b.await.unwrap(), [made[1].1.clone()]);
    let (_, one) =
        call(server.http, "GET", &format!("/api/devices/BA/commands/{}", made[0].1), None, None).await;
    assert_eq!((one["status"].as_str(), &one["result"]), (Some("SUCCEEDED"), &json!({"n": "BA"})));
    let (_, queued) =
        call(server.http, "GET", &format!("/api/devices/BC/commands/{}", made[2].1), None, None).await;
    assert_eq!((queued["status"].as_str(), queued["method"].as_str()), (Some("QUEUED"), Some("identify")));

    // Chosen by a fleet query: the devices whose id starts with B, not OTHER.
    let body = json!({"query": "id:B*", "method": "reboot", "ttl_secs": 60});
    let (status, bulk) = call(server.http, "POST", BULK, Some(body), None).await;
    assert_eq!(status, 202, "{bulk}");
    assert_eq!(bulk["query"], "id:B*");
    let mut devices: Vec<String> = ids(&bulk).into_iter().map(|(d, _)| d).collect();
    devices.sort();
    assert_eq!(devices, ["BA", "BB", "BC"]);
    let (_, other) = call(server.http, "GET", "/api/devices/OTHER/commands", None, None).await;
    assert_eq!(other["commands"], json!([]), "not matched, not commanded");
    server.stop().await;
}

/// Commands are made at `commands.bulk_per_sec`: 100 at 50 a second take about 2 s, and the
/// answer comes once all are stored; four bulks are made at once, a fifth meanwhile is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_is_made_at_its_pace() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(&dir.path().join("t.redb"), |c| c.commands.bulk_per_sec = 50).await;
    let devices: Vec<String> = (0..100).map(|n| format!("P{n:03}")).collect();
    for d in &devices {
        known(server.http, d).await;
    }
    let started = Instant::now();
    let body = json!({"devices": devices, "method": "identify"});
    let (status, bulk) = call(server.http, "POST", BULK, Some(body), None).await;
    let took = started.elapsed();
    assert_eq!((status, bulk["count"].as_u64()), (202, Some(100)), "{bulk}");
    // Slices of 5 every 100 ms: the last one 1.9 s after the first.
    assert!(took >= Duration::from_millis(1_900), "made faster than its pace: {took:?}");
    let summary =
        call(server.http, "GET", &format!("{BULK}/{}", bulk["id"].as_str().unwrap()), None, None).await.1;
    assert_eq!(summary["statuses"], json!({"QUEUED": 100}), "all stored by the answer");

    // Four bulks of 25 share the pace (about 2 s together); a fifth while they are made: 429.
    let four: Vec<_> = devices
        .chunks(25)
        .map(|some| {
            let body = json!({"devices": some, "method": "reboot"});
            let http = server.http;
            tokio::spawn(async move { call(http, "POST", BULK, Some(body), None).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let body = json!({"devices": ["P000"], "method": "reboot"});
    let (status, why) = call(server.http, "POST", BULK, Some(body), None).await;
    assert_eq!(status, 429, "{why}");
    for bulk in four {
        let (status, bulk) = bulk.await.unwrap();
        assert_eq!((status, bulk["count"].as_u64()), (202, Some(25)), "{bulk}");
    }
    server.stop().await;
}

/// Only admins make bulks (viewers read them); bad requests get the right status and make
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_make_bulks_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let db2 = db.clone();
    tokio::task::spawn_blocking(move || {
        cli(&db2, &["user", "add", "root"], "admin password");
        cli(&db2, &["user", "add", "vic", "--role", "viewer"], "viewer password");
        cli(&db2, &["device", "key", "KA"], "");
    })
    .await
    .unwrap();
    let server = start(&db).await;
    let admin = Some(("root", "admin password"));
    let viewer = Some(("vic", "viewer password"));
    let body = |b: Value| Some(b);
    let good = json!({"devices": ["KA"], "method": "identify"});
    assert_eq!(call(server.http, "POST", BULK, body(good.clone()), viewer).await.0, 403);
    assert_eq!(call(server.http, "POST", BULK, body(good.clone()), None).await.0, 401);

    let bad = |b: Value| call(server.http, "POST", BULK, Some(b), admin);
    let cases = [
        (json!({"method": "identify"}), 422, "neither devices nor query"),
        (json!({"devices": ["KA"], "query": "id:K*", "method": "identify"}), 422, "both"),
        (json!({"devices": [], "method": "identify"}), 422, "no devices"),
        (json!({"devices": ["KA", "KA"], "method": "identify"}), 422, "listed twice"),
        (json!({"devices": ["KA", "NOBODY"], "method": "identify"}), 422, "an unknown device"),
        (json!({"devices": ["KA"], "method": "no spaces"}), 422, "a bad method"),
        (json!({"devices": ["KA"], "method": "m", "timeout_secs": 0}), 422, "a bad timeout"),
        (json!({"devices": ["KA"], "method": "m", "colour": "red"}), 422, "an unknown field"),
        (json!({"devices": ["KA"], "method": "m", "params": {"x": "y".repeat(1100)}}), 413, "params"),
        (json!({"query": "tag:(", "method": "m"}), 422, "a query that does not read"),
        (json!({"query": "id:NONE*", "method": "m"}), 422, "a query matching none"),
    ];
    for (request, status, what) in cases {
        let (got, why) = bad(request).await;
        assert_eq!(got, status, "{what}: {why}");
        assert!(why["error"].is_string(), "{what} says why: {why}");
    }
    let many: Vec<String> = (0..10_001).map(|n| format!("d{n}")).collect();
    let (status, why) = bad(json!({"devices": many, "method": "m"})).await;
    assert_eq!(status, 413, "over 10,000 devices: {why}");
    let (status, _) = call(server.http, "POST", BULK, None, admin).await;
    assert_eq!(status, 400, "not JSON");
    let (_, list) = call(server.http, "GET", "/api/devices/KA/commands", None, admin).await;
    assert_eq!(list["commands"], json!([]), "nothing made by a refused bulk");

    let (status, bulk) = call(server.http, "POST", BULK, body(good), admin).await;
    assert_eq!((status, bulk["created_by"].as_str()), (202, Some("root")), "{bulk}");
    let path = format!("{BULK}/{}", bulk["id"].as_str().unwrap());
    let (status, read) = call(server.http, "GET", &path, None, viewer).await;
    assert_eq!((status, &read["statuses"]), (200, &json!({"QUEUED": 1})), "a viewer reads: {read}");
    assert_eq!(call(server.http, "GET", &format!("{BULK}/zzzz"), None, admin).await.0, 404);
    assert_eq!(call(server.http, "GET", &format!("{BULK}/Not-An-Id"), None, admin).await.0, 404);
    server.stop().await;
}

/// A kill -9 right after the 202: every command the answer named is there after the restart,
/// QUEUED, and the bulk still sums them up.
#[test]
fn a_kill_9_right_after_the_answer_loses_no_command_of_the_bulk() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let server = ServerProcess::start(&db, &[]);
    let http = server.http;
    let devices: Vec<String> = (0..300).map(|n| format!("K{n:03}")).collect();
    let bulk = rt.block_on(async {
        for d in &devices {
            known(http, d).await;
        }
        let body = json!({"devices": devices, "method": "set_interval", "params": {"secs": 30}});
        let (status, bulk) = call(http, "POST", BULK, Some(body), None).await;
        assert_eq!((status, bulk["count"].as_u64()), (202, Some(300)), "{bulk}");
        bulk
    });
    server.kill();

    let server = ServerProcess::start(&db, &[]);
    let http = server.http;
    rt.block_on(async {
        for (device, id) in ids(&bulk) {
            let (status, command) =
                call(http, "GET", &format!("/api/devices/{device}/commands/{id}"), None, None).await;
            assert_eq!(
                (status, command["status"].as_str()),
                (200, Some("QUEUED")),
                "{device} {id}: {command}"
            );
        }
        let path = format!("{BULK}/{}", bulk["id"].as_str().unwrap());
        let (status, summary) = call(http, "GET", &path, None, None).await;
        assert_eq!(status, 200, "{summary}");
        assert_eq!(summary["statuses"], json!({"QUEUED": 300}));
        assert_eq!((summary["count"].as_u64(), summary["complete"].as_bool()), (Some(300), Some(true)));
    });
    server.stop();
}
