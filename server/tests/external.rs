//! The server as a subscriber of a real Mosquitto: readings published to the broker are
//! stored and pushed live, and a persistent QoS 1 session keeps what was published while the
//! server was down.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::mosquitto::{Mosquitto, external_env, subscribed};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_through_mosquitto_are_stored_live_and_kept_while_the_server_is_down() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let env = external_env(broker.addr, "dashboard-test");
    let server = ServerProcess::start(&db, &env);
    assert!(server.mqtt.is_none(), "no embedded broker in external mode");
    eventually("the server to connect to mosquitto", || subscribed(&server));
    // The subscription is set up right after CONNACK; give the SUBACK a moment.
    eventually("the subscription", || (server.metric("iot_mqtt_connected") == 1).then_some(()));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut live = LiveClient::connect(server.http, "").await;
    let mut device = Device::connect(broker.addr, "ESP32_EXT_01", |_| {}).await;
    let topic = "app/device/ESP32_EXT_01/telemetry";
    let at = now_ms() - 30_000;
    device.publish(topic, seed_payload(24.0, 55.0, 3.95, at)).await;
    let event = live.next().await;
    assert_eq!((event["type"].as_str(), event["device"].as_str()), (Some("reading"), Some("ESP32_EXT_01")));
    eventually("the reading in history", || {
        (server.readings("ESP32_EXT_01", "temperature") == 1).then_some(())
    });
    // No connection log with an external broker: the page says so instead of an empty list.
    let (status, log) = server.get("/api/device_log?id=ESP32_EXT_01");
    assert_eq!(status, 200, "{log}");
    let log: serde_json::Value = serde_json::from_str(&log).unwrap();
    assert_eq!((&log["connections_logged"], &log["connections"]), (&false.into(), &serde_json::json!([])));
    let (_, page) = server.get("/device/ESP32_EXT_01");
    assert!(page.contains("Not logged: devices connect to an external MQTT broker"), "{page}");

    // Bad input through the broker is counted, acknowledged and does not stall the session.
    device.publish(topic, "garbage").await;
    eventually("the rejection count", || {
        (server.metric_opt("iot_messages_rejected_total{reason=\"not_json\"}") == Some(1)).then_some(())
    });

    // While the server is down, the broker keeps its QoS 1 messages for the persistent session.
    server.stop();
    let missed: Vec<String> =
        (1..=5).map(|i| seed_payload(24.0 + i as f64, 55.0, 3.9, at + i * 1_000)).collect();
    device.publish_all(topic, missed).await;
    let server = ServerProcess::start(&db, &env);
    eventually("the messages published while the server was down", || {
        (server.readings("ESP32_EXT_01", "temperature") == 6).then_some(())
    });
    assert_eq!(server.device("ESP32_EXT_01")["message_count"], 6);
    assert_eq!(server.metric("iot_readings_duplicate_total"), 0);
}

/// A backlog larger than every queue between the broker and the store is all stored. The
/// broker sends it at once (Mosquitto does not hold back unacknowledged QoS 1 messages), so
/// the server makes it wait while still acknowledging what it has stored; once, the acks
/// waited behind the very messages they were to make room for, and ingest stopped for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_larger_than_every_queue_is_all_stored() {
    const DEVICES: usize = 8;
    const EACH: usize = 4_000;
    let broker = Mosquitto::start_persistent();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let env = external_env(broker.addr, "dashboard-backlog");
    let server = ServerProcess::start(&db, &env);
    eventually("the subscription", || (server.metric("iot_mqtt_connected") == 1).then_some(()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.stop();

    let at = now_ms() - 1_800_000;
    let publishers = (0..DEVICES).map(|d| async move {
        let id = format!("BACKLOG_{d}");
        let mut device = Device::connect(broker.addr, &id, |_| {}).await;
        let payloads =
            (0..EACH).map(|i| seed_payload(20.0, 50.0, 3.9, at + i as i64 * 100)).collect::<Vec<_>>();
        for chunk in payloads.chunks(500) {
            device.publish_all(&format!("app/device/{id}/telemetry"), chunk.to_vec()).await;
        }
    });
    futures::future::join_all(publishers).await;

    let server = ServerProcess::start(&db, &env);
    let total = (DEVICES * EACH) as u64;
    // Fails only if storing stops making progress, however slow the machine.
    let mut stored = 0;
    let mut last_progress = std::time::Instant::now();
    while stored < total {
        let now = server.metric_opt("iot_messages_stored_total").unwrap_or(0);
        if now > stored {
            (stored, last_progress) = (now, std::time::Instant::now());
        }
        assert!(last_progress.elapsed() < TIMEOUT, "ingest stopped at {stored} of {total} messages");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.device("BACKLOG_0")["message_count"], EACH);
    assert_eq!(server.metric("iot_mqtt_connected"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_waits_for_an_absent_broker_and_connects_when_it_appears() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &external_env(addr, "dashboard-late"));
    let (status, body) = server.get("/healthz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(r#""mqtt":"down""#), "{body}");

    // Start a broker on that very port: the back-off reconnect finds it.
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("m.conf");
    std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\n")).unwrap();
    let mut broker = Command::new("mosquitto").arg("-c").arg(&conf).stderr(Stdio::null()).spawn().unwrap();
    eventually("the server to connect", || subscribed(&server));
    let _ = broker.kill();
    let _ = broker.wait();
    eventually("the server to notice the broker is gone", || (server.get("/healthz").0 == 503).then_some(()));
}

/// What `server device` prints, run against the database at `db` with `env`.
fn server_device(db: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_server"))
        .arg("device")
        .args(args)
        .env("IOT_STORAGE_PATH", db)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "server device {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_with_the_generated_acl_keeps_each_device_to_its_own_topics() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let key_a = server_device(&db, &["key", "dev-a"], &[]).trim().to_owned();
    let key_b = server_device(&db, &["key", "dev-b"], &[]).trim().to_owned();
    let acl = server_device(&db, &["mosquitto-acl"], &[("IOT_MQTT_USERNAME", "dashboard")]);
    assert!(acl.contains("pattern write app/device/%u/#"), "{acl}");

    // Mosquitto, started as root, reads these as its own user.
    let files = tempfile::tempdir().unwrap();
    std::fs::set_permissions(files.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (passwd, acl_file) = (files.path().join("passwd"), files.path().join("acl"));
    std::fs::write(&acl_file, acl).unwrap();
    for (i, (user, password)) in
        [("dashboard", "dashboard password"), ("dev-a", &*key_a), ("dev-b", &*key_b)].into_iter().enumerate()
    {
        let create = if i == 0 { vec!["-c"] } else { vec![] };
        let ok = Command::new("mosquitto_passwd")
            .args(create)
            .arg("-b")
            .arg(&passwd)
            .args([user, password])
            .status()
            .expect("mosquitto_passwd (package mosquitto) runs");
        assert!(ok.success());
    }
    for f in [&passwd, &acl_file] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let broker = Mosquitto::start_secured(&passwd, &acl_file);
    let mut env = external_env(broker.addr, "dashboard-acl");
    env.push(("IOT_MQTT_USERNAME", "dashboard".into()));
    env.push(("IOT_MQTT_PASSWORD", "dashboard password".into()));
    let server = ServerProcess::start(&db, &env);
    eventually("subscribed to the secured broker", || subscribed(&server));

    let mut a = Device::connect(broker.addr, "dev-a", |o| {
        o.set_credentials("dev-a", key_a.as_str());
    })
    .await;
    // Its own topic, someone else's, its own again: Mosquitto drops the middle one.
    a.publish("app/device/dev-a/telemetry", seed_payload(20.0, 50.0, 3.9, now_ms() - 2_000)).await;
    a.publish("app/device/dev-b/telemetry", seed_payload(99.0, 99.0, 9.9, now_ms() - 1_000)).await;
    a.publish("app/device/dev-a/telemetry", seed_payload(21.0, 51.0, 3.9, now_ms())).await;
    eventually("dev-a's two readings stored", || {
        (server.device("dev-a")["message_count"].as_u64() == Some(2)).then_some(())
    });
    assert!(server.device("dev-b").is_null(), "dev-a could not write as dev-b");
}

/// `server tls self-signed` into `dir`, readable by Mosquitto's own user; answers (cert, key).
fn pair_for_mosquitto(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let out = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["tls", "self-signed", "--out"])
        .arg(dir)
        .env_remove("IOT_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    (cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_reaches_its_broker_over_tls_trusting_only_its_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = pair_for_mosquitto(&dir.path().join("tls"));
    let broker = Mosquitto::start_tls(&cert, &key);
    let tls = broker.tls_addr.unwrap();

    // Trusting the broker's certificate: connected over TLS, readings arrive.
    let mut env = external_env(tls, "dashboard-tls");
    env.push(("IOT_MQTT_TLS", "true".into()));
    env.push(("IOT_MQTT_CA_FILE", cert.display().to_string()));
    let server = ServerProcess::start(&dir.path().join("t.redb"), &env);
    eventually("subscribed over TLS", || subscribed(&server));
    let mut device = Device::connect(broker.addr, "tls-dev", |_| {}).await;
    device.publish("app/device/tls-dev/telemetry", seed_payload(20.0, 50.0, 3.9, now_ms())).await;
    eventually("the reading stored", || (server.device("tls-dev")["message_count"] == 1).then_some(()));
    server.stop();

    // Trusting another authority: never connected, and /healthz says so.
    let other = tempfile::tempdir().unwrap();
    let (other_cert, _) = pair_for_mosquitto(&other.path().join("tls"));
    let mut env = external_env(tls, "dashboard-tls-2");
    env.push(("IOT_MQTT_TLS", "true".into()));
    env.push(("IOT_MQTT_CA_FILE", other_cert.display().to_string()));
    let server = ServerProcess::start(&dir.path().join("u.redb"), &env);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(server.get("/healthz").0, 503, "a broker the CA file does not vouch for is not trusted");
}
