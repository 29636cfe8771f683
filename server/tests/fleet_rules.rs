//! The fleet-health alarm rules on the real server (issue 17's templates): no data for N × a
//! device's own interval, a reboot loop seen in its uptime, a firmware apart from the fleet's.
//! Readings through HTTP ingest, attributes over MQTT, the server killed with -9 between
//! reboots.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const FORM: &str = "application/x-www-form-urlencoded";

/// A short start grace (overdue rules wait it out), no pacing of readings.
fn quick() -> Vec<(&'static str, String)> {
    vec![("IOT_ALARM_START_GRACE_SECS", "1".into()), ("IOT_DEVICE_MESSAGES_PER_SEC", "0".into())]
}

fn call(server: &ServerProcess, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let bytes = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
    let (status, _, text) = http_full(server.http, method, path, "application/json", &[], &bytes);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn rule(server: &ServerProcess, rule: Value) -> String {
    let (status, stored) = call(server, "POST", "/api/alarm_rules", &rule);
    assert_eq!(status, 201, "{stored}");
    stored["id"].as_str().unwrap().to_owned()
}

/// One reading, stamped `ts`, through HTTP ingest.
fn reading(server: &ServerProcess, device: &str, values: Value, ts: i64) {
    let body = json!({"device_id": device, "telemetry": values, "timestamp": ts});
    let (status, answer) = server.post_json("/api/telemetry", body.to_string().as_bytes());
    assert_eq!(status, 202, "{answer}");
}

/// The alarms `status=…` answers, as (rule name, device).
fn alarms(server: &ServerProcess, status: &str) -> Vec<(String, String)> {
    let (code, list) = call(server, "GET", &format!("/api/alarms?status={status}"), &Value::Null);
    assert_eq!(code, 200, "{list}");
    let mut out: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["rule_name"].as_str().unwrap().to_owned(), a["device"].as_str().unwrap().to_owned()))
        .collect();
    out.sort();
    out
}

fn active(server: &ServerProcess) -> Vec<(String, String)> {
    alarms(server, "active")
}

fn pair(rule: &str, device: &str) -> (String, String) {
    (rule.to_owned(), device.to_owned())
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_data_for_n_intervals_waits_each_devices_own_interval() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &quick());
    // Two devices: one set to 10 s on its page, one to 1 h; none known for the third.
    for (id, interval) in [("fast", "10s"), ("slow", "1h")] {
        reading(&server, id, json!({"t": 1.0}), now_ms());
        let body = format!("id={id}&interval={interval}");
        let (status, answer) = http(server.http, "POST", "/api/device/interval", FORM, body.as_bytes());
        assert_eq!(status, 200, "{answer}");
    }
    reading(&server, "unknown", json!({"t": 1.0}), now_ms());
    rule(&server, json!({"name": "late", "kind": "overdue", "intervals": 1}));
    let quiet_from = Instant::now();
    until("the 10 s device overdue", || active(&server) == [pair("late", "fast")]).await;
    let after = quiet_from.elapsed();
    assert!(after >= Duration::from_secs(8) && after < Duration::from_secs(14), "overdue after {after:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(active(&server), [pair("late", "fast")], "the 1 h and the unknown devices are not");
    // Any reading clears it.
    reading(&server, "fast", json!({"rssi": -60.0}), now_ms());
    until("cleared by a reading", || active(&server).is_empty()).await;
    assert_eq!(alarms(&server, "cleared"), [pair("late", "fast")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_reboots_within_the_hour_open_a_reboot_loop_alarm_across_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let server = ServerProcess::start(&db, &quick());
    rule(&server, json!({"name": "reboot loop", "kind": "reboot_loop", "count": 3, "window_secs": 3600}));
    let t0 = now_ms();
    // Uptime 100 s, then 5 (a reboot), 50, 3 (a reboot): two so far.
    for (i, uptime) in [100.0, 5.0, 50.0, 3.0].into_iter().enumerate() {
        reading(&server, "looping", json!({"uptime_s": uptime}), t0 + i as i64 * 1000);
    }
    reading(&server, "steady", json!({"uptime_s": 100.0}), t0);
    reading(&server, "steady", json!({"uptime_s": 200.0}), t0 + 1000);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(active(&server).is_empty(), "two reboots are no loop");
    // Killed: the two reboots are remembered with the commits that saw them.
    server.kill();
    let server = ServerProcess::start(&db, &quick());
    reading(&server, "looping", json!({"uptime_s": 40.0}), t0 + 4000);
    assert!(active(&server).is_empty());
    reading(&server, "looping", json!({"uptime_s": 2.0}), t0 + 5000);
    until("the reboot loop", || active(&server) == [pair("reboot loop", "looping")]).await;
    // The device's page lists the three reboots the alarm counted.
    let (status, log) = call(&server, "GET", "/api/device_log?id=looping", &Value::Null);
    assert_eq!(status, 200, "{log}");
    let reboots = log["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "reboot").count();
    assert_eq!(reboots, 3, "{log}");
    // Another reboot: still the one alarm; and it is stored (killed again, still active).
    reading(&server, "looping", json!({"uptime_s": 1.0}), t0 + 6000);
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill();
    let server = ServerProcess::start(&db, &quick());
    assert_eq!(active(&server), [pair("reboot loop", "looping")]);
    assert_eq!(alarms(&server, "all").len(), 1, "one alarm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_on_another_firmware_than_the_fleet_opens_an_alarm_until_it_updates() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &quick());
    rule(&server, json!({"name": "fw apart", "kind": "firmware_drift"}));
    let mut devices = Vec::new();
    for (id, fw) in [("fw_a", "1.4.2"), ("fw_b", "1.4.2"), ("fw_c", "1.3.9"), ("fw_d", "1.4.2")] {
        let mut device = Device::connect(server.mqtt(), id, |_| {}).await;
        let attributes = json!({"fw": fw, "model": "esp32"}).to_string();
        device.publish(&format!("app/device/{id}/attributes"), attributes).await;
        devices.push(device);
    }
    until("the device on 1.3.9", || active(&server) == [pair("fw apart", "fw_c")]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(active(&server), [pair("fw apart", "fw_c")], "the three on 1.4.2 are in line");
    // It updates: cleared.
    devices[2].publish("app/device/fw_c/attributes", json!({"fw": "1.4.2"}).to_string()).await;
    until("cleared once updated", || active(&server).is_empty()).await;
    assert_eq!(alarms(&server, "cleared"), [pair("fw apart", "fw_c")]);
    // A rollout's first device is apart too, with a reason a person reads.
    devices[0].publish("app/device/fw_a/attributes", json!({"fw": "1.5.0"}).to_string()).await;
    until("the first updated device apart", || active(&server) == [pair("fw apart", "fw_a")]).await;
}
