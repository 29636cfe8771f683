//! The whole server, as a process, with its embedded broker and a real redb file: what a
//! device publishes is stored, pushed live, kept across restarts and kills, and bad input
//! is refused without harming anything else.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_is_stored_pushed_live_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let mut live = LiveClient::connect(server.http, "?device=ESP32_SIM_01").await;
    let mut other_device = Device::connect(server.mqtt(), "ESP32_SIM_02", |_| {}).await;
    let mut device = Device::connect(server.mqtt(), "ESP32_SIM_01", |_| {}).await;

    let at = now_ms() - 1_000;
    other_device.publish(&telemetry_topic("ESP32_SIM_02"), seed_payload(1.0, 2.0, 3.0, at)).await;
    device.publish(&telemetry_topic("ESP32_SIM_01"), seed_payload(25.5, 60.2, 3.8, at)).await;

    // Live, filtered to the one device asked for.
    let event = live.next().await;
    assert_eq!(event["type"], "reading");
    assert_eq!(event["device"], "ESP32_SIM_01");
    assert_eq!(event["ts"], at);
    assert_eq!(event["values"], json!({"temperature": 25.5, "humidity": 60.2, "battery": 3.8}));

    // Registered, with its latest values, through the dashboard's server functions.
    let d = server.device("ESP32_SIM_01");
    assert_eq!(d["message_count"], 1);
    let latest: Vec<_> =
        d["metrics"].as_array().unwrap().iter().map(|m| (m["name"].clone(), m["value"].clone())).collect();
    assert_eq!(
        latest,
        [
            (json!("battery"), json!(3.8)),
            (json!("humidity"), json!(60.2)),
            (json!("temperature"), json!(25.5))
        ]
    );
    assert_eq!(server.readings("ESP32_SIM_01", "temperature"), 1);
    let devices = server.server_fn("devices", &[]);
    let ids: Vec<_> =
        devices["devices"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["ESP32_SIM_01", "ESP32_SIM_02"]);

    // Stop, start again on the same database and the same ports: everything is still there.
    let (http, mqtt) = (server.http, server.mqtt());
    drop(device);
    drop(other_device);
    server.stop();
    let server = ServerProcess::start(
        &dir.path().join("t.redb"),
        &[("IOT_WEB_LISTEN", http.to_string()), ("IOT_MQTT_LISTEN", mqtt.to_string())],
    );
    assert_eq!((server.http, server.mqtt()), (http, mqtt));
    assert_eq!(server.readings("ESP32_SIM_01", "temperature"), 1);
    assert_eq!(server.device("ESP32_SIM_01")["metrics"][2]["value"], 25.5);
    let mut device = Device::connect(server.mqtt(), "ESP32_SIM_01", |_| {}).await;
    device.publish(&telemetry_topic("ESP32_SIM_01"), seed_payload(26.0, 60.0, 3.8, at + 500)).await;
    assert_eq!(server.readings("ESP32_SIM_01", "temperature"), 2);
    assert_eq!(server.device("ESP32_SIM_01")["message_count"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_publish_survives_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let server = ServerProcess::start(&db, &[]);
    let start = now_ms() - 60_000;
    let per_device = 40;
    let mut tasks = Vec::new();
    for d in 0..5 {
        let addr = server.mqtt();
        tasks.push(tokio::spawn(async move {
            let id = format!("KILL_{d}");
            let mut device = Device::connect(addr, &id, |_| {}).await;
            let payloads = (0..per_device).map(|i| seed_payload(i as f64, 50.0, 3.7, start + i)).collect();
            device.publish_all(&telemetry_topic(&id), payloads).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Every PUBACK is in: kill at once, with no chance to flush anything.
    server.kill();

    let store = server::store::RedbStore::open(&db).expect("the database opens after a kill");
    assert_eq!(store.point_count().unwrap(), 5 * per_device as u64 * 3);
    use telemetry::TelemetrySource;
    for d in 0..5 {
        let h = store.history(&format!("KILL_{d}"), "temperature", start, start + 1_000, 5_000).unwrap();
        let values: Vec<f64> = h.buckets.iter().map(|b| b.last).collect();
        assert_eq!(values, (0..per_device).map(|i| i as f64).collect::<Vec<_>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_counted_and_harms_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let mut bad = Device::connect(server.mqtt(), "BAD", |o| {
        o.set_max_packet_size(1 << 20, 1 << 20);
    })
    .await;
    let mut good = Device::connect(server.mqtt(), "GOOD", |_| {}).await;
    let at = now_ms() - 10_000;

    let topic = telemetry_topic("BAD");
    // Each of these gets its PUBACK (a device must not resend garbage forever) and is counted.
    bad.publish(&topic, "not json").await;
    bad.publish(&topic, vec![0xff, 0xfe, 0x00]).await;
    bad.publish(&topic, "[1, 2, 3]").await;
    bad.publish(&topic, r#"{"temperature": 20}"#).await;
    bad.publish(&topic, r#"{"telemetry": {"status": "ok"}}"#).await;
    bad.publish(&topic, format!(r#"{{"telemetry": {{"t": 1}}, "pad": "{}"}}"#, "x".repeat(70_000))).await;
    bad.publish(&telemetry_topic(&"x".repeat(65)), r#"{"telemetry": {"t": 1}}"#).await;
    bad.publish(&telemetry_topic("bad$id"), r#"{"telemetry": {"t": 1}}"#).await;
    // Partly bad: the numeric metric is kept, the rest dropped.
    bad.publish(&topic, r#"{"telemetry": {"temperature": 19.5, "mode": "eco", "a/b": 1}, "timestamp": "1970-01-01T00:00:00"}"#)
        .await;
    good.publish(&telemetry_topic("GOOD"), seed_payload(22.0, 45.0, 4.0, at)).await;

    for (reason, n) in [
        ("not_json", 2),
        ("not_object", 1),
        ("missing_telemetry", 1),
        ("no_numeric_metric", 1),
        ("too_large", 1),
        ("bad_device_id", 2),
    ] {
        assert_eq!(
            server.metric(&format!("iot_messages_rejected_total{{reason=\"{reason}\"}}")),
            n,
            "{reason}"
        );
    }
    assert_eq!(server.metric("iot_metrics_dropped_total{reason=\"not_a_number\"}"), 1);
    assert_eq!(server.metric("iot_metrics_dropped_total{reason=\"bad_metric_name\"}"), 1);
    assert_eq!(server.metric("iot_timestamps_replaced_total{reason=\"out_of_range\"}"), 1);

    // Nothing of the garbage is stored; the partly bad reading is, at receive time.
    let bad_device = server.device("BAD");
    assert_eq!(bad_device["message_count"], 1);
    assert_eq!(bad_device["metrics"].as_array().unwrap().len(), 1);
    assert_eq!(server.readings("BAD", "temperature"), 1);
    // The other device is untouched and the server still takes readings.
    assert_eq!(server.readings("GOOD", "temperature"), 1);
    good.publish(&telemetry_topic("GOOD"), seed_payload(23.0, 45.0, 4.0, at + 1_000)).await;
    assert_eq!(server.readings("GOOD", "temperature"), 2);
    let (status, _) = server.get("/healthz");
    assert_eq!(status, 200);
}

/// A device with many QoS 1 messages in flight does not wait a commit for each: the broker
/// reads its next publishes while one is being stored, so they share commits; PUBACKs still
/// come in the order the messages were sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_s_messages_in_flight_share_commits_and_are_acknowledged_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let mut device = Device::connect(server.mqtt(), "BURST", |o| {
        o.set_inflight(100);
    })
    .await;
    let start = now_ms() - 600_000;
    let payloads = (0..300).map(|i| seed_payload(20.0, 50.0, 3.9, start + i * 1_000)).collect();
    let acked = device.publish_all(&telemetry_topic("BURST"), payloads).await;
    // The client numbers its messages 1 to 100 over and over (its in-flight window).
    let sent: Vec<u16> = (0..300).map(|i| i % 100 + 1).collect();
    assert_eq!(acked, sent, "PUBACKs out of order");
    assert_eq!(server.readings("BURST", "temperature"), 300);
    let commits = server.metric("iot_commits_total");
    assert!(commits <= 150, "300 messages from one connection took {commits} commits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let mut device = Device::connect(server.mqtt(), "DUP", |_| {}).await;
    let payload = seed_payload(20.0, 50.0, 3.9, now_ms() - 5_000);
    device.publish(&telemetry_topic("DUP"), payload.clone()).await;
    device.publish(&telemetry_topic("DUP"), payload).await;
    assert_eq!(server.readings("DUP", "temperature"), 1);
    assert_eq!(server.device("DUP")["message_count"], 1);
    assert_eq!(server.metric("iot_readings_duplicate_total"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_last_will_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let mut device = Device::connect(server.mqtt(), "LWT_1", |o| {
        o.set_last_will(rumqttc::LastWill::new(
            "app/device/LWT_1/status",
            "offline",
            rumqttc::QoS::AtLeastOnce,
            true,
        ));
    })
    .await;
    device.publish("app/device/LWT_1/status", "online").await;
    device.publish(&telemetry_topic("LWT_1"), seed_payload(20.0, 50.0, 3.9, now_ms() - 1_000)).await;
    assert_eq!(server.device("LWT_1")["status"]["online"], true);

    device.vanish();
    eventually("the last will", || (server.device("LWT_1")["status"]["online"] == false).then_some(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_ingest_accepts_valid_readings_and_explains_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let mut live = LiveClient::connect(server.http, "").await;
    let ts = chrono::Utc::now().to_rfc3339();

    let one = json!({"device_id": "HTTP_1", "telemetry": {"temperature": 20.5}, "timestamp": ts});
    let (status, body) = server.post_json("/api/telemetry", one.to_string().as_bytes());
    assert_eq!(status, 202, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((body["accepted"].as_u64(), body["rejected"].as_u64()), (Some(1), Some(0)));
    assert_eq!(live.next().await["device"], "HTTP_1");

    let batch = json!([
        {"device_id": "HTTP_2", "telemetry": {"temperature": 1.0, "note": "x"}},
        {"device_id": "HTTP_2", "telemetry": {}},
        {"device_id": "a/b", "telemetry": {"t": 1}},
        {"device_id": "HTTP_3", "telemetry": {"humidity": 40}}
    ]);
    let (status, body) = server.post_json("/api/telemetry", batch.to_string().as_bytes());
    assert_eq!(status, 202, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((body["accepted"].as_u64(), body["rejected"].as_u64()), (Some(2), Some(2)));
    assert_eq!(body["errors"][0]["index"], 1);
    assert_eq!(body["errors"][0]["reason"], "no_numeric_metric");
    assert_eq!(body["errors"][1]["reason"], "bad_device_id");
    assert_eq!(body["dropped_metrics"][0]["metric"], "note");
    assert_eq!(server.readings("HTTP_2", "temperature"), 1);
    assert_eq!(server.readings("HTTP_3", "humidity"), 1);

    let (status, body) = server.post_json("/api/telemetry", b"{not json");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not JSON"), "{body}");

    let (status, body) = server.post_json("/api/telemetry", br#"{"device_id": "HTTP_4"}"#);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("telemetry"), "{body}");

    let (status, body) =
        server.post_json("/api/telemetry", br##"{"device_id": "#", "telemetry": {"t": 1}}"##);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("device id"), "{body}");

    let big =
        format!(r#"{{"device_id": "HTTP_5", "telemetry": {{"t": 1}}, "pad": "{}"}}"#, "x".repeat(70_000));
    let (status, body) = server.post_json("/api/telemetry", big.as_bytes());
    assert_eq!(status, 413, "{body}");
    let huge = vec![b' '; 2 * 1024 * 1024];
    let (status, _) = server.post_json("/api/telemetry", &huge);
    assert_eq!(status, 413);

    assert!(server.device("HTTP_4").is_null());
    assert!(server.device("HTTP_5").is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_export_streams_every_reading_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let start = now_ms() - 3_600_000;
    // 12,000 readings: more than one storage page.
    for batch in 0..6 {
        let items: Vec<_> = (0..2_000)
            .map(|i| {
                let t = start + (batch * 2_000 + i) * 100;
                let ts = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(t).unwrap().to_rfc3339();
                json!({"device_id": "CSV_1", "telemetry": {"t": i as f64, "h": 1.0}, "timestamp": ts})
            })
            .collect();
        let (status, body) =
            server.post_json("/api/telemetry", serde_json::to_vec(&items).unwrap().as_slice());
        assert_eq!(status, 202, "{body}");
    }
    let to = start + 12_000 * 100;
    let (status, csv) =
        server.get(&format!("/api/export.csv?device=CSV_1&metric=t&from={start}&to={to}&offset=-300"));
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "time_utc,time_local,device,metric,value");
    assert_eq!(lines.len(), 1 + 12_000);
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(chrono::DateTime::parse_from_rfc3339(first[0]).unwrap().timestamp_millis(), start);
    assert!(first[1].ends_with("-05:00"), "{}", first[1]);
    assert_eq!(chrono::DateTime::parse_from_rfc3339(first[1]).unwrap().timestamp_millis(), start);
    assert_eq!(&first[2..], ["CSV_1", "t", "0"]);

    // Every metric of the device, within a narrower range.
    let (_, both) = server.get(&format!("/api/export.csv?device=CSV_1&from={start}&to={}", start + 999));
    assert_eq!(both.lines().count(), 1 + 2 * 10);
    let (status, _) = server.get("/api/export.csv?device=a/b");
    assert_eq!(status, 400);
    let (status, _) = server.get("/api/export.csv?device=NOBODY");
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_sites_cannot_post_or_open_the_live_feed_and_pages_carry_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let body = br#"{"device_id": "CSRF_1", "telemetry": {"t": 1}}"#;
    let own = format!("http://{}", server.http);
    let post = |headers: &[(&str, &str)]| {
        http_full(server.http, "POST", "/api/telemetry", "application/json", headers, body).0
    };

    assert_eq!(post(&[("Origin", "https://evil.example")]), 403);
    assert_eq!(post(&[("Sec-Fetch-Site", "cross-site"), ("Origin", "https://evil.example")]), 403);
    assert_eq!(post(&[("Origin", own.as_str())]), 202);
    assert_eq!(post(&[("Sec-Fetch-Site", "same-origin")]), 202);
    assert_eq!(post(&[]), 202, "devices and scripts send no Origin");
    // A cross-site form post to a server function is refused too.
    let (status, _, _) = http_full(
        server.http,
        "POST",
        "/api/device/delete",
        "application/x-www-form-urlencoded",
        &[("Origin", "https://evil.example")],
        b"id=CSRF_1&confirm=yes",
    );
    assert_eq!(status, 403);
    assert!(!server.device("CSRF_1").is_null(), "the device is still there");

    // The live feed refuses other sites' pages.
    let stream = tokio::net::TcpStream::connect(server.http).await.unwrap();
    let request = tokio_tungstenite::tungstenite::http::Request::builder()
        .uri(format!("ws://{}/ws/live", server.http))
        .header("Host", server.http.to_string())
        .header("Origin", "https://evil.example")
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(())
        .unwrap();
    assert!(tokio_tungstenite::client_async(request, stream).await.is_err());

    let (status, head, _) = http_full(server.http, "GET", "/", "", &[], b"");
    assert_eq!(status, 200);
    for expected in [
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
        "referrer-policy: same-origin",
        "content-security-policy: default-src 'self'; script-src 'self' 'nonce-",
        "frame-ancestors 'none'",
    ] {
        assert!(head.contains(expected), "{expected} missing from:\n{head}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_past_the_retention_are_pruned_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("IOT_RETENTION_DAYS", "1".to_owned()), ("IOT_PRUNE_INTERVAL_SECS", "1".to_owned())];
    let server = ServerProcess::start(&dir.path().join("t.redb"), &env);
    let at = |ms: i64| chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).unwrap().to_rfc3339();
    let three_days_ago = now_ms() - 3 * 86_400_000;
    let mut items: Vec<_> = (0..10)
        .map(|i| json!({"device_id": "RET_1", "telemetry": {"t": i}, "timestamp": at(three_days_ago + i * 1_000)}))
        .collect();
    items.push(json!({"device_id": "RET_1", "telemetry": {"t": 99}, "timestamp": at(now_ms() - 60_000)}));
    let (status, body) = server.post_json("/api/telemetry", serde_json::to_vec(&items).unwrap().as_slice());
    assert_eq!(status, 202, "{body}");

    eventually("the old readings to be pruned", || {
        (server.metric("iot_readings_pruned_total") >= 10).then_some(())
    });
    let (status, csv) =
        server.get(&format!("/api/export.csv?device=RET_1&from={}&to={}", three_days_ago - 1, now_ms()));
    assert_eq!(status, 200);
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{csv}");
    assert!(rows[0].ends_with(",RET_1,t,99"), "{csv}");
    assert_eq!(server.metric("iot_readings_pruned_total"), 10);
    assert_eq!(server.device("RET_1")["id"], "RET_1", "the device stays registered");
}
