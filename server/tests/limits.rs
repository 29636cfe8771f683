//! Admission limits on the running server: a device over its message rate is slowed down
//! (its PUBACKs wait), what is still over is dropped and counted, and the caps on devices and
//! metrics per device hold. Everything sent is either stored or counted as refused.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// A message with each of `metrics` at 1.5.
fn ones(metrics: &[&str], ms: i64) -> String {
    payload(metrics.iter().map(|m| (*m, 1.5)), ms)
}

fn limited(rate: &str, burst: &str, devices: &str, metrics: &str) -> Vec<(&'static str, String)> {
    vec![
        ("IOT_DEVICE_MESSAGES_PER_SEC", rate.to_owned()),
        ("IOT_DEVICE_BURST", burst.to_owned()),
        ("IOT_MAX_DEVICES", devices.to_owned()),
        ("IOT_MAX_METRICS_PER_DEVICE", metrics.to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_device_is_slowed_to_its_rate_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &limited("2", "2", "100", "10"));
    let mut device = Device::connect(server.mqtt(), "FAST_1", |_| {}).await;
    let start = now_ms() - 60_000;
    let started = Instant::now();
    device.publish_all(&telemetry_topic("FAST_1"), (0..8).map(|i| ones(&["t"], start + i)).collect()).await;
    // 2 at once, then 6 more at 2 per second: at least 3 s, however fast storage is. (A commit
    // slower than half a second would space them out by itself; none is that slow.)
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(2_800), "8 publishes acknowledged in {took:?}");
    assert_eq!(server.readings("FAST_1", "t"), 8);
    assert!(server.metric("iot_messages_throttled_total") >= 1, "PUBACKs were held back");
    assert_eq!(
        server.metric_opt("iot_messages_rejected_total{reason=\"rate_limited\"}"),
        None,
        "nothing dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_beyond_the_rate_is_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &limited("5", "5", "100", "10"));
    let start = now_ms() - 60_000;
    // Ten connections publish as one device at once: at 5 per second, more than a second's
    // wait piles up.
    let mut tasks = Vec::new();
    for c in 0..10 {
        let addr = server.mqtt();
        tasks.push(tokio::spawn(async move {
            let mut conn = Device::connect(addr, &format!("FLOOD_conn{c}"), |_| {}).await;
            let payloads = (0..8).map(|i| ones(&["t"], start + c * 100 + i)).collect();
            conn.publish_all(&telemetry_topic("FLOOD_1"), payloads).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stored = server.readings("FLOOD_1", "t");
    let dropped = server.metric("iot_messages_rejected_total{reason=\"rate_limited\"}");
    assert!(dropped > 0, "nothing dropped; {stored} stored");
    assert!(stored >= 10, "the burst and a second's worth are stored, got {stored}");
    assert_eq!(stored + dropped, 80, "every message is stored or counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_on_devices_and_metrics_hold_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let env = limited("0", "1", "2", "2");
    let server = ServerProcess::start(&db, &env);
    let now = now_ms() - 1_000;
    let mut a = Device::connect(server.mqtt(), "CAP_A", |_| {}).await;
    a.publish(&telemetry_topic("CAP_A"), ones(&["t", "h", "v"], now)).await;
    let mut b = Device::connect(server.mqtt(), "CAP_B", |_| {}).await;
    b.publish(&telemetry_topic("CAP_B"), ones(&["t"], now)).await;
    let mut c = Device::connect(server.mqtt(), "CAP_C", |_| {}).await;
    c.publish(&telemetry_topic("CAP_C"), ones(&["t"], now)).await;

    assert_eq!(server.readings("CAP_A", "h"), 1);
    assert_eq!(server.readings("CAP_A", "t"), 1);
    assert_eq!(server.readings("CAP_A", "v"), 0, "a third metric is over the cap");
    assert_eq!(server.metric("iot_metrics_dropped_total{reason=\"too_many_metrics\"}"), 1);
    assert!(server.device("CAP_C").is_null(), "a third device is over the cap");
    assert_eq!(server.metric("iot_messages_rejected_total{reason=\"too_many_devices\"}"), 1);
    drop((a, b, c));
    server.stop();

    let server = ServerProcess::start(&db, &env);
    let mut c = Device::connect(server.mqtt(), "CAP_C2", |_| {}).await;
    c.publish(&telemetry_topic("CAP_C"), ones(&["t"], now + 1)).await;
    assert!(server.device("CAP_C").is_null(), "the stored devices still count");
    let mut a = Device::connect(server.mqtt(), "CAP_A2", |_| {}).await;
    a.publish(&telemetry_topic("CAP_A"), ones(&["v", "t"], now + 1)).await;
    assert_eq!(server.readings("CAP_A", "t"), 2);
    assert_eq!(server.readings("CAP_A", "v"), 0);
}
