//! Retained messages in the embedded broker, with the clients people test a broker with
//! (mosquitto_pub and mosquitto_sub, MQTT 3.1.1 and 5): a retained message reaches whoever
//! subscribes later, with the retain flag, until an empty retained payload clears it; it
//! survives a restart and a kill -9; it is bounded per device and in all; it reaches only
//! subscribers whose rights allow it; and nothing is ever retained on a command topic.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::{Device, ServerProcess, cli, eventually, now_ms, payload, telemetry_topic};
use telemetry::decode::status_payload;
use telemetry::topic::status_topic;

/// Whom a client connects as: anonymous, or a device with its key.
type As<'a> = Option<(&'a str, &'a str)>;

fn credentials(who: As, args: &mut Vec<String>) {
    if let Some((id, key)) = who {
        args.extend(["-i", id, "-u", id, "-P", key].map(String::from));
    }
}

/// mosquitto_pub, retained, QoS 1 (it returns once the PUBACK is in); `None` sends an empty
/// payload. Answers whether it succeeded, and what it printed.
fn publish(mqtt: SocketAddr, who: As, topic: &str, message: Option<&str>, extra: &[&str]) -> (bool, String) {
    let mut args: Vec<String> =
        ["-h", "127.0.0.1", "-p", &mqtt.port().to_string(), "-q", "1", "-r", "-t", topic]
            .map(String::from)
            .to_vec();
    match message {
        Some(m) => args.extend(["-m".into(), m.into()]),
        None => args.push("-n".into()),
    }
    credentials(who, &mut args);
    args.extend(extra.iter().map(|a| a.to_string()));
    let out = Command::new("mosquitto_pub").args(&args).output().expect("mosquitto_pub runs");
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), printed)
}

fn retain(mqtt: SocketAddr, who: As, topic: &str, message: &str) {
    let (ok, printed) = publish(mqtt, who, topic, Some(message), &[]);
    assert!(ok, "mosquitto_pub -r {topic}: {printed}");
}

/// mosquitto_pub, not retained, QoS 1.
fn send(mqtt: SocketAddr, who: As, topic: &str, message: &str) {
    let mut args: Vec<String> =
        ["-h", "127.0.0.1", "-p", &mqtt.port().to_string(), "-q", "1", "-t", topic, "-m", message]
            .map(String::from)
            .to_vec();
    credentials(who, &mut args);
    let out = Command::new("mosquitto_pub").args(&args).output().expect("mosquitto_pub runs");
    assert!(out.status.success(), "mosquitto_pub {topic}: {}", String::from_utf8_lossy(&out.stderr));
}

fn clear(mqtt: SocketAddr, who: As, topic: &str) {
    let (ok, printed) = publish(mqtt, who, topic, None, &[]);
    assert!(ok, "mosquitto_pub -r -n {topic}: {printed}");
}

/// What a new mosquitto_sub on `filter` gets: up to `count` messages as "retain-flag topic
/// payload", sorted, waiting at most `secs` seconds for them.
fn subscribe(
    mqtt: SocketAddr,
    who: As,
    filter: &str,
    count: usize,
    secs: u32,
    extra: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "-h",
        "127.0.0.1",
        "-p",
        &mqtt.port().to_string(),
        "-q",
        "1",
        "-t",
        filter,
        "-F",
        "%r %t %p",
        "-C",
        &count.to_string(),
        "-W",
        &secs.to_string(),
    ]
    .map(String::from)
    .to_vec();
    credentials(who, &mut args);
    args.extend(extra.iter().map(|a| a.to_string()));
    let out = Command::new("mosquitto_sub").args(&args).output().expect("mosquitto_sub runs");
    let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    got.sort();
    got
}

/// Everything retained under `filter`, as a newcomer sees it (waiting a second past the last).
fn retained(mqtt: SocketAddr, filter: &str, expected: usize) -> Vec<String> {
    subscribe(mqtt, None, filter, expected + 1, if expected == 0 { 2 } else { 3 }, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_status_reaches_later_subscribers_until_cleared_and_survives_a_restart_and_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let server = ServerProcess::start(&db, &[]);
    let mqtt = server.mqtt();
    let status = status_topic("RET_1");

    // Published before anyone subscribes: stored as the device's status, once, and retained.
    retain(mqtt, None, &status, "online");
    let reading = payload([("t", 21.5)], now_ms());
    retain(mqtt, None, &telemetry_topic("RET_1"), &reading);
    retain(mqtt, None, "home/lamp", "on");
    assert_eq!(server.device("RET_1")["status"]["online"], true);
    assert_eq!(server.readings("RET_1", "t"), 1);

    let expected = vec![format!("1 {status} online")];
    assert_eq!(subscribe(mqtt, None, &status, 1, 5, &[]), expected, "MQTT 3.1.1, retain flag set");
    assert_eq!(subscribe(mqtt, None, &status, 1, 5, &["-V", "mqttv5"]), expected, "MQTT 5");
    let all = retained(mqtt, "app/device/RET_1/#", 2);
    assert_eq!(all, [format!("1 {status} online"), format!("1 {} {reading}", telemetry_topic("RET_1"))]);
    assert_eq!(retained(mqtt, "home/+", 1), ["1 home/lamp on"], "any topic, on an open broker");
    // Handing it out again stores nothing again.
    assert_eq!(server.readings("RET_1", "t"), 1);
    assert_eq!(server.device("RET_1")["message_count"], 1);

    // A subscriber already there gets the next one as a live message (no retain flag), and
    // a newcomer gets the latest.
    let live = std::thread::spawn(move || subscribe(mqtt, None, "app/device/RET_1/status", 2, 10, &[]));
    std::thread::sleep(Duration::from_millis(700));
    retain(mqtt, None, &status, "offline");
    assert_eq!(live.join().unwrap(), [format!("0 {status} offline"), format!("1 {status} online")]);
    assert_eq!(subscribe(mqtt, None, &status, 1, 5, &[]), [format!("1 {status} offline")]);

    // A clean stop and start: still there.
    server.stop();
    let server = ServerProcess::start(&db, &[]);
    let mqtt = server.mqtt();
    assert_eq!(retained(mqtt, "#", 3).len(), 3, "status, reading and lamp after a restart");
    assert_eq!(subscribe(mqtt, None, &status, 1, 5, &[]), [format!("1 {status} offline")]);

    // Replaced, then a kill -9 right after the PUBACK: the new one is what a newcomer gets.
    retain(mqtt, None, &status, "online");
    server.kill();
    let server = ServerProcess::start(&db, &[]);
    let mqtt = server.mqtt();
    assert_eq!(subscribe(mqtt, None, &status, 1, 5, &[]), [format!("1 {status} online")]);

    // An empty retained payload clears it, for readings too (not refused as a bad payload),
    // and is delivered to those already subscribed (MQTT 3.3.1.3); then a kill -9.
    let live = std::thread::spawn(move || subscribe(mqtt, None, "app/device/RET_1/status", 2, 10, &[]));
    std::thread::sleep(Duration::from_millis(700));
    clear(mqtt, None, &status);
    assert_eq!(live.join().unwrap(), [format!("0 {status} "), format!("1 {status} online")]);
    clear(mqtt, None, &telemetry_topic("RET_1"));
    assert_eq!(retained(mqtt, "app/device/RET_1/#", 0), Vec::<String>::new());
    assert_eq!(server.metric_opt(r#"iot_messages_rejected_total{reason="not_json"}"#), None);
    assert_eq!(server.device("RET_1")["status"]["online"], true, "a clear is no status");
    server.kill();
    let server = ServerProcess::start(&db, &[]);
    assert_eq!(retained(server.mqtt(), "#", 1), ["1 home/lamp on"], "cleared for good");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_last_will_is_kept_for_later_subscribers_and_a_delayed_one_does_not_replace_it() {
    use rumqttc::{LastWill, QoS};
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let status = status_topic("pump");
    // As the simulator does: a retained, numbered offline will, and a retained online status.
    let with_will = |session| {
        let (topic, will) = (status.clone(), status_payload(false, session));
        move |o: &mut rumqttc::MqttOptions| {
            o.set_last_will(LastWill::new(topic, will, QoS::AtLeastOnce, true));
        }
    };
    let old = Device::connect(server.mqtt(), "pump-16", with_will(16)).await;
    old.client.publish(&status, QoS::AtLeastOnce, true, status_payload(true, 16)).await.unwrap();
    // Kept before session 17 says it is online: two connections' messages have no order of
    // their own, and 17's must be the later one.
    let online_16 = format!("1 {status} {}", status_payload(true, 16));
    eventually("session 16's online retained", || {
        (subscribe(server.mqtt(), None, &status, 1, 2, &[]) == [online_16.clone()]).then_some(())
    });
    let mut pump = Device::connect(server.mqtt(), "pump", with_will(17)).await;
    pump.client.publish(&status, QoS::AtLeastOnce, true, status_payload(true, 17)).await.unwrap();
    pump.publish(&telemetry_topic("pump"), payload([("flow", 2.5)], now_ms())).await;
    let online = format!("1 {status} {}", status_payload(true, 17));
    eventually("session 17's online retained", || {
        (subscribe(server.mqtt(), None, &status, 1, 2, &[]) == [online.clone()]).then_some(())
    });

    // Session 16's will comes late: the store ignores it, and so does the retained status.
    old.vanish();
    eventually("the old session's will counted", || {
        (server.metric_opt("iot_stale_wills_total") == Some(1)).then_some(())
    });
    assert_eq!(subscribe(server.mqtt(), None, &status, 1, 2, &[]), [online]);

    // Session 17's own will: retained for whoever subscribes later, also after a restart.
    pump.vanish();
    let offline = format!("1 {status} {}", status_payload(false, 17));
    eventually("the will retained", || {
        (subscribe(server.mqtt(), None, &status, 1, 2, &[]) == [offline.clone()]).then_some(())
    });
    assert_eq!(server.device("pump")["status"]["online"], false);
}

#[test]
fn retained_messages_reach_only_those_with_the_right_and_never_stay_on_commands() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    cli(&db, &["user", "add", "root"], "admin password");
    let key_a = cli(&db, &["device", "key", "RA"], "");
    let key_b = cli(&db, &["device", "key", "RB"], "");
    let server = ServerProcess::start(&db, &[]);
    let mqtt = server.mqtt();
    let (a, b) = (Some(("RA", key_a.as_str())), Some(("RB", key_b.as_str())));
    send(mqtt, a, &telemetry_topic("RA"), &payload([("t", 20.0)], now_ms()));
    retain(mqtt, a, "app/device/RA/status", "online");
    retain(mqtt, a, "app/device/RA/attributes", r#"{"fw": "1.0"}"#);
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("root:admin password"));
    let (status, _, body) =
        common::http_full(server.http, "GET", "/api/device?id=RA", "", &[("Authorization", &basic)], b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""online":true"#), "the retained status is the device's status: {body}");

    // Its owner reads it back; another device gets nothing of it, whatever filter it tries.
    let own = subscribe(mqtt, a, "app/device/RA/+", 2, 5, &[]);
    assert_eq!(own, [r#"1 app/device/RA/attributes {"fw": "1.0"}"#, "1 app/device/RA/status online"]);
    for filter in ["app/device/RA/status", "app/device/RA/#", "app/device/+/status", "#"] {
        assert!(subscribe(mqtt, b, filter, 1, 2, &[]).is_empty(), "RB reads nothing of RA's on {filter}");
        assert!(subscribe(mqtt, b, filter, 1, 2, &["-V", "mqttv5"]).is_empty(), "nor over MQTT 5");
    }
    // Nor can it retain anything on RA's topics.
    let (_, printed) = publish(mqtt, b, "app/device/RA/status", Some("offline"), &["-V", "mqttv5"]);
    assert!(printed.to_lowercase().contains("not authori"), "{printed}");
    assert_eq!(subscribe(mqtt, a, "app/device/RA/status", 1, 5, &[]), ["1 app/device/RA/status online"]);

    // A retained command is refused and counted, over 3.1.1 and 5, and nothing is kept (as
    // any command a client publishes: only the server sends commands).
    publish(mqtt, a, "app/device/RA/cmd/17", Some(r#"{"method": "reboot"}"#), &[]);
    let (_, printed) =
        publish(mqtt, a, "app/device/RA/cmd/18", Some(r#"{"method": "reboot"}"#), &["-V", "mqttv5"]);
    assert!(printed.to_lowercase().contains("not authori"), "MQTT 5 is told why: {printed}");
    assert_eq!(server.metric(r#"iot_messages_rejected_total{reason="command_from_client"}"#), 2);
    assert!(subscribe(mqtt, a, "app/device/RA/cmd/#", 1, 2, &[]).is_empty());
    server.kill();
    let server = ServerProcess::start(&db, &[]);
    assert!(subscribe(server.mqtt(), a, "app/device/RA/cmd/#", 1, 2, &[]).is_empty(), "nor after a restart");
    assert_eq!(
        subscribe(server.mqtt(), a, "app/device/RA/status", 1, 5, &[]),
        ["1 app/device/RA/status online"]
    );
}

#[test]
fn retained_messages_are_capped_per_device_and_in_all_and_refusals_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[limits]\nmax_retained_per_device = 2\nmax_retained_bytes_per_device = 64\nmax_retained = 3\n",
    )
    .unwrap();
    let server =
        ServerProcess::start(&dir.path().join("t.redb"), &[("IOT_CONFIG", config.display().to_string())]);
    let mqtt = server.mqtt();
    let refused = |reason: &str| {
        server.metric_opt(&format!(r#"iot_messages_rejected_total{{reason="{reason}"}}"#)).unwrap_or(0)
    };

    for device in ["C1", "C3"] {
        send(mqtt, None, &telemetry_topic(device), &payload([("t", 20.0)], now_ms()));
    }
    retain(mqtt, None, "app/device/C1/a", "1");
    retain(mqtt, None, "app/device/C1/b", "2");
    // A third topic of the same device is refused whole: not retained, and its status not
    // stored either. MQTT 5 is told the quota is exceeded.
    retain(mqtt, None, "app/device/C1/status", "online");
    let (_, printed) = publish(mqtt, None, "app/device/C1/c", Some("3"), &["-V", "mqttv5"]);
    assert!(printed.to_lowercase().contains("quota"), "{printed}");
    assert_eq!(refused("too_many_retained"), 2);
    assert!(server.device("C1")["status"].is_null(), "the refused status was not stored");
    // Replacing one of its own takes no new place; more bytes than its share does not fit.
    retain(mqtt, None, "app/device/C1/a", "one");
    retain(mqtt, None, "app/device/C1/a", &"x".repeat(64));
    assert_eq!(refused("retained_too_large"), 1);
    assert_eq!(retained(mqtt, "app/device/C1/#", 2), ["1 app/device/C1/a one", "1 app/device/C1/b 2"]);

    // The broker's total: a third message fits, a fourth does not, until one is cleared.
    retain(mqtt, None, "app/device/C2/status", "online");
    retain(mqtt, None, "app/device/C3/status", "online");
    assert_eq!(refused("retained_full"), 1);
    clear(mqtt, None, "app/device/C1/b");
    retain(mqtt, None, "app/device/C3/status", "online");
    assert_eq!(retained(mqtt, "#", 3).len(), 3);
    assert_eq!(server.device("C3")["status"]["online"], true);
    // What /metrics says of them: C1's "one" and two statuses.
    assert_eq!(server.metric("iot_retained_messages"), 3);
    assert_eq!(server.metric("iot_retained_bytes"), 3 + 6 + 6);
}

/// The same retained publishes and subscriptions against `mqtt`, as what each subscriber printed.
fn transcript(mqtt: SocketAddr) -> Vec<String> {
    let v5 = ["-V", "mqttv5"];
    let properties = [
        "-V",
        "mqttv5",
        "-D",
        "publish",
        "content-type",
        "application/json",
        "-D",
        "publish",
        "user-property",
        "unit",
        "celsius",
        "-D",
        "publish",
        "payload-format-indicator",
        "1",
    ];
    let with_properties = ["-V", "mqttv5", "-F", "%r %q %t %p |%C|%P|%F|"];
    let mut out = Vec::new();
    let mut record = |what: &str, got: Vec<String>| out.push(format!("{what}: {got:?}"));
    retain(mqtt, None, "app/device/CMP/status", "online");
    let (ok, printed) =
        publish(mqtt, None, "app/device/CMP/attributes", Some(r#"{"fw":"2.0"}"#), &properties);
    assert!(ok, "{printed}");
    retain(mqtt, None, &telemetry_topic("CMP"), &payload([("t", 1.5)], 1_765_000_000_000));
    retain(mqtt, None, "home/lamp", "on");
    record("+/status", subscribe(mqtt, None, "app/device/+/status", 2, 2, &[]));
    record(
        "CMP/# at QoS 0",
        subscribe(mqtt, None, "app/device/CMP/#", 4, 2, &["-q", "0", "-F", "%r %q %t %p"]),
    );
    record("CMP/# over 5", subscribe(mqtt, None, "app/device/CMP/#", 4, 2, &with_properties));
    record("#", subscribe(mqtt, None, "#", 5, 2, &v5));
    record("home/lamp", subscribe(mqtt, None, "home/lamp", 2, 2, &[]));
    clear(mqtt, None, "app/device/CMP/status");
    clear(mqtt, None, "home/lamp");
    record("cleared: #", subscribe(mqtt, None, "#", 5, 2, &[]));
    record("nothing", subscribe(mqtt, None, "nothing/+", 1, 1, &[]));
    out
}

#[test]
fn the_embedded_broker_answers_retained_subscriptions_as_mosquitto_does() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let mosquitto = common::mosquitto::Mosquitto::start();
    let ours = transcript(server.mqtt());
    let theirs = transcript(mosquitto.addr);
    assert_eq!(ours, theirs);
    // And what both printed is what MQTT says.
    let lines = theirs.join("\n");
    let attributes = r#"1 1 app/device/CMP/attributes {\"fw\":\"2.0\"} |application/json|unit:celsius|1|"#;
    assert!(lines.contains(attributes), "MQTT 5 properties kept: {lines}");
    assert!(lines.contains("1 0 app/device/CMP/status online"), "the subscription's QoS: {lines}");
    let cleared = &theirs[theirs.len() - 2];
    assert!(cleared.contains("CMP/attributes") && cleared.contains("CMP/telemetry"), "{cleared}");
    assert!(!cleared.contains("CMP/status") && !cleared.contains("home/lamp"), "{cleared}");
    assert_eq!(theirs.last().map(String::as_str), Some("nothing: []"));
}

#[test]
fn deleting_a_device_clears_its_retained_messages_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let server = ServerProcess::start(&db, &[]);
    let mqtt = server.mqtt();
    for device in ["GONE", "STAYS"] {
        send(mqtt, None, &telemetry_topic(device), &payload([("t", 20.0)], now_ms()));
        retain(mqtt, None, &status_topic(device), "online");
        retain(mqtt, None, &format!("app/device/{device}/attributes"), r#"{"fw": "1.0"}"#);
    }
    assert_eq!(retained(mqtt, "app/device/+/+", 4).len(), 4);
    let (status, _, body) = common::http_full(
        server.http,
        "POST",
        "/api/device/delete",
        "application/x-www-form-urlencoded",
        &[],
        b"id=GONE&confirm=yes",
    );
    assert!(status < 400, "{status} {body}");
    assert!(server.device("GONE").is_null());
    let left = ["1 app/device/STAYS/attributes {\"fw\": \"1.0\"}", "1 app/device/STAYS/status online"];
    assert_eq!(retained(mqtt, "app/device/+/+", 2), left, "GONE's retained messages are gone");
    server.kill();
    let server = ServerProcess::start(&db, &[]);
    assert_eq!(retained(server.mqtt(), "app/device/+/+", 2), left, "also after a kill -9");
}

#[test]
fn with_no_room_for_retained_messages_mqtt_5_devices_are_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[limits]\nmax_retained = 0\n").unwrap();
    let server =
        ServerProcess::start(&dir.path().join("t.redb"), &[("IOT_CONFIG", config.display().to_string())]);
    let mqtt = server.mqtt();
    // A retained will is refused at CONNECT, as MQTT 5 says when retain is not available.
    let will = ["--will-topic", "app/device/NR/status", "--will-payload", "offline", "--will-retain"];
    let (ok, printed) =
        publish(mqtt, None, "app/device/NR/status", Some("online"), &[&["-V", "mqttv5"][..], &will].concat());
    assert!(!ok && printed.to_lowercase().contains("retain"), "{printed}");
    // A retained publish is refused and counted (3.1.1 has no way to be told beforehand).
    retain(mqtt, None, "app/device/NR/status", "online");
    assert_eq!(server.metric(r#"iot_messages_rejected_total{reason="retained_full"}"#), 1);
    assert!(retained(mqtt, "#", 0).is_empty());
    // Without the retain flag all is as before.
    send(mqtt, None, "app/device/NR/status", "online");
    assert_eq!(server.metric(r#"iot_messages_rejected_total{reason="retained_full"}"#), 1);
}
