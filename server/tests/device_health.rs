//! Device health against the whole server (issue 17): each device's expected interval,
//! learned or set, says when it is stale, and survives a kill -9.

mod common;

use common::*;
use telemetry::DeviceSummary;
use telemetry::device::Health;

const FORM: &str = "application/x-www-form-urlencoded";
const MIN: i64 = 60_000;

fn summary(server: &ServerProcess, id: &str) -> DeviceSummary {
    serde_json::from_value(server.device(id)).unwrap()
}

/// The health the device page shows (server-rendered, as without JavaScript).
fn page_health(server: &ServerProcess, id: &str) -> String {
    let (status, html) = server.get(&format!("/device/{id}"));
    assert_eq!(status, 200, "{html}");
    let marker = "<dd class=\"health\">";
    let from = html.find(marker).unwrap_or_else(|| panic!("no health on the page: {html}")) + marker.len();
    html[from..].split('<').next().unwrap().to_owned()
}

/// Sleeps until `at` (this machine's clock, which is the server's).
async fn until(at: i64) {
    let wait = at - now_ms();
    if wait > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_s_device_is_stale_after_30_s_and_a_5_min_one_not_at_6_min_even_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let server = ServerProcess::start(&db, &[]);
    let mut meter = Device::connect(server.mqtt(), "meter", |_| {}).await;
    let mut door = Device::connect(server.mqtt(), "door", |_| {}).await;

    // The meter reports every 10 s (its readings' own times: a backfill would not count).
    meter.publish(&telemetry_topic("meter"), payload([("kwh", 1.0)], now_ms())).await;
    door.publish(&telemetry_topic("door"), payload([("open", 0.0)], now_ms())).await;
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    meter.publish(&telemetry_topic("meter"), payload([("kwh", 1.1)], now_ms())).await;
    let learned = summary(&server, "meter").interval;
    assert!(learned.set.is_none());
    assert!(learned.learned.is_some_and(|ms| (10_000..10_500).contains(&ms)), "{learned:?}");

    // The door sensor reports every 5 min: set on its page (a plain form post).
    let (status, body) = http(server.http, "POST", "/api/device/interval", FORM, b"id=door&interval=5m");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(server.http, "POST", "/api/device/interval", FORM, b"id=door&interval=5s");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("between 10 s and 7 days"), "{body}");
    let door_summary = summary(&server, "door");
    assert_eq!(door_summary.interval.set, Some(5 * MIN));
    let door_seen = door_summary.last_seen;
    assert_eq!(door_summary.health(door_seen + 6 * MIN), Health::Online, "not stale at 6 min");
    assert_eq!(door_summary.health(door_seen + 15 * MIN), Health::Stale, "stale at 15 min");

    // Both unchanged by a kill -9 (the meter's only in the change log, not checkpointed yet).
    meter.vanish();
    door.vanish();
    server.kill();
    let server = ServerProcess::start(&db, &[]);
    let meter = summary(&server, "meter");
    assert_eq!(meter.interval, learned);
    assert_eq!(summary(&server, "door").interval, door_summary.interval);

    until(meter.last_seen + 25_000).await;
    assert_eq!(page_health(&server, "meter"), "online", "quiet for 25 s");
    until(meter.last_seen + 31_000).await;
    assert_eq!(page_health(&server, "meter"), "stale", "quiet for 31 s");
    assert_eq!(page_health(&server, "door"), "online", "a 5 min device quiet for as long is fine");
    let (_, html) = server.get("/device/door");
    assert!(html.contains("5m (set), stale after 15m"), "the page says how often it reports");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_will_from_an_older_session_is_ignored_and_the_current_one_is_offline_within_a_second() {
    use rumqttc::{LastWill, QoS};
    use telemetry::decode::status_payload;
    use telemetry::topic::status_topic;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let status = status_topic("valve");
    let with_will = |session| {
        let (topic, will) = (status.clone(), status_payload(false, session));
        move |o: &mut rumqttc::MqttOptions| {
            o.set_last_will(LastWill::new(topic, will, QoS::AtLeastOnce, true));
        }
    };
    // Session 16, on a connection that will outlive its successor (a half-open socket the
    // broker has not noticed yet, say).
    let mut old = Device::connect(server.mqtt(), "valve-16", with_will(16)).await;
    old.publish(&status, status_payload(true, 16)).await;
    let mut valve = Device::connect(server.mqtt(), "valve", with_will(17)).await;
    valve.publish(&status, status_payload(true, 17)).await;
    valve.publish(&telemetry_topic("valve"), payload([("flow", 2.5)], now_ms())).await;
    let mut live = LiveClient::connect(server.http, "?device=valve").await;

    // Session 16's will comes now: ignored, counted, not a change.
    old.vanish();
    eventually("the old session's will counted", || {
        (server.metric_opt("iot_stale_wills_total") == Some(1)).then_some(())
    });
    let seen = summary(&server, "valve");
    assert_eq!(seen.status.map(|s| (s.online, s.session)), Some((true, Some(17))));
    assert_eq!(page_health(&server, "valve"), "online");

    // Session 17's own will: offline within a second, its last reading still shown.
    let gone = std::time::Instant::now();
    valve.vanish();
    let event = live.next().await;
    assert!(gone.elapsed() < std::time::Duration::from_secs(1), "offline after {:?}", gone.elapsed());
    assert_eq!((event["type"].as_str(), event["online"].as_bool()), (Some("status"), Some(false)), "{event}");
    assert_eq!(event["session"], 17);
    assert_eq!(page_health(&server, "valve"), "offline");
    let (_, html) = server.get("/device/valve");
    let last_seen = telemetry::timestamp::format_utc(seen.last_seen);
    let minute = &last_seen[..16].replace('T', " ");
    assert!(html.contains(&format!("<dt>Last seen</dt><dd>{minute} UTC")), "last seen {minute} on the page");
}

#[test]
fn attributes_are_kept_with_their_change_times_and_a_firmware_change_or_a_reboot_is_an_event() {
    use base64::Engine;
    use common::raw::{Answer, Raw};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    cli(&db, &["user", "add", "root"], "admin password");
    let key = cli(&db, &["device", "key", "ATTR_A"], "");
    cli(&db, &["device", "key", "ATTR_B"], "");
    let server = ServerProcess::start(&db, &[]);
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("root:admin password"));
    let get = |path: &str| -> serde_json::Value {
        let (status, _, body) = http_full(server.http, "GET", path, "", &[("Authorization", &basic)], b"");
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    };
    let mut a = Raw::try_connect_as(server.mqtt(), "ATTR_A", Some(("ATTR_A", key.as_str()))).unwrap();
    let publish = |a: &mut Raw, topic: &str, payload: &str| {
        assert_eq!(a.publish(topic.as_bytes(), payload.as_bytes()), Answer::PubAck, "{topic} {payload}");
    };
    let reading = |uptime: f64| payload([("t", 21.0), ("uptime_s", uptime)], now_ms());
    publish(&mut a, &telemetry_topic("ATTR_A"), &reading(3_600.0));
    publish(&mut a, "app/device/ATTR_A/attributes", r#"{"fw": "1.4.1", "ip": "10.0.0.7", "ota": true}"#);
    // Its own attributes only; and what breaks the contract is refused (and acknowledged).
    publish(&mut a, "app/device/ATTR_B/attributes", r#"{"fw": "6.6.6"}"#);
    publish(&mut a, "app/device/ATTR_A/attributes", "[1]");
    publish(&mut a, "app/device/ATTR_A/attributes", r#"{"fw": null}"#);
    assert_eq!(server.metric(r#"iot_messages_rejected_total{reason="not_authorized"}"#), 1);
    assert_eq!(server.metric(r#"iot_messages_rejected_total{reason="bad_attributes"}"#), 2);
    assert!(get("/api/device?id=ATTR_B")["device"].is_null(), "nothing stored for another device");

    let first = get("/api/device?id=ATTR_A")["device"]["attributes"].clone();
    let first_at = first[0]["changed_at"].as_i64().unwrap();
    assert_eq!(
        first.as_array().unwrap().iter().map(|a| (a["name"].clone(), a["value"].clone())).collect::<Vec<_>>(),
        [
            (serde_json::json!("fw"), serde_json::json!("1.4.1")),
            (serde_json::json!("ip"), serde_json::json!("10.0.0.7")),
            (serde_json::json!("ota"), serde_json::json!(true))
        ]
    );
    assert!(get("/api/device_log?id=ATTR_A")["events"].as_array().unwrap().is_empty(), "a first report");

    // New firmware, after a reboot its uptime tells.
    std::thread::sleep(std::time::Duration::from_millis(20));
    publish(&mut a, &telemetry_topic("ATTR_A"), &reading(4.0));
    publish(&mut a, "app/device/ATTR_A/attributes", r#"{"fw": "1.4.2", "ip": "10.0.0.7"}"#);
    let device = get("/api/device?id=ATTR_A")["device"].clone();
    let fw = &device["attributes"][0];
    assert_eq!((fw["name"].as_str(), fw["value"].as_str()), (Some("fw"), Some("1.4.2")));
    assert!(fw["changed_at"].as_i64().unwrap() > first_at);
    assert_eq!(device["attributes"][1]["changed_at"].as_i64(), Some(first_at), "the address did not change");
    let events = get("/api/device_log?id=ATTR_A")["events"].clone();
    let kinds: Vec<(&str, Option<&str>)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["name"].as_str()))
        .collect();
    assert_eq!(kinds, [("attribute", Some("fw")), ("reboot", None)], "newest first: {events}");
    assert_eq!((events[0]["from"].as_str(), events[0]["to"].as_str()), (Some("1.4.1"), Some("1.4.2")));

    // Both on the device page, rendered by the server.
    let (_, _, html) = http_full(server.http, "GET", "/device/ATTR_A", "", &[("Authorization", &basic)], b"");
    assert!(html.contains("fw 1.4.1 → 1.4.2"), "the event on the page");
    assert!(html.contains(r#"data-attribute="fw""#) && html.contains("1.4.2"), "the attribute on the page");
}
