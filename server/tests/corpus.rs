//! The bad-input corpus, sent over raw MQTT (so nothing client-side cleans it up first) to the
//! embedded broker, interleaved with good readings from another device. Each bad message is
//! refused with its reason counted on `/metrics`, or (when it breaks the MQTT protocol itself)
//! ends only its own connection; every good reading is stored and the server keeps running.

mod common;

use common::raw::{Answer, Raw};
use common::*;

/// Topic, payload, what the broker answers, and the reason counted (None: a protocol error).
type Case<'a> = (&'a [u8], Vec<u8>, Answer, Option<&'a str>);

#[test]
fn every_bad_payload_class_is_refused_and_counted_and_good_readings_between_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let topic = b"app/device/CORPUS/telemetry".as_slice();
    let deep = format!(r#"{{"telemetry": {{"t": {}1{}}}}}"#, "[".repeat(10_000), "]".repeat(10_000));
    let many_keys = {
        let keys: Vec<String> = (0..10_000).map(|i| format!(r#""{i}":1"#)).collect();
        format!(r#"{{"telemetry": {{{}}}}}"#, keys.join(","))
    };
    let one_mb = format!(r#"{{"telemetry": {{"t": 1}}, "pad": "{}"}}"#, "x".repeat(1_000_000));
    let ok = br#"{"telemetry": {"t": 1}}"#.as_slice();
    let id65 = format!("app/device/{}/telemetry", "x".repeat(65));

    let corpus: Vec<Case> = vec![
        (topic, vec![0xff, 0xfe, 0xfd], Answer::PubAck, Some("not_json")),
        (topic, b"{not json".to_vec(), Answer::PubAck, Some("not_json")),
        (topic, b"".to_vec(), Answer::PubAck, Some("not_json")),
        (topic, b"null".to_vec(), Answer::PubAck, Some("not_object")),
        (topic, b"\"text\"".to_vec(), Answer::PubAck, Some("not_object")),
        (topic, deep.into_bytes(), Answer::PubAck, Some("not_json")),
        (topic, br#"{"telemetry": {"t": 1e999}}"#.to_vec(), Answer::PubAck, Some("not_json")),
        (
            topic,
            br#"{"telemetry": {"t": "NaN", "u": "Infinity"}}"#.to_vec(),
            Answer::PubAck,
            Some("no_numeric_metric"),
        ),
        (topic, br#"{"telemetry": [1, 2]}"#.to_vec(), Answer::PubAck, Some("telemetry_not_object")),
        (topic, many_keys.into_bytes(), Answer::PubAck, Some("too_large")),
        (topic, one_mb.into_bytes(), Answer::PubAck, Some("too_large")),
        (b"app/device//telemetry", ok.to_vec(), Answer::PubAck, Some("bad_device_id")),
        (id65.as_bytes(), ok.to_vec(), Answer::PubAck, Some("bad_device_id")),
        (b"app/device/a b/telemetry", ok.to_vec(), Answer::PubAck, Some("bad_device_id")),
        // Wildcards in a topic name (Mosquitto CVE-2017-7650 let `+`/`#` slip past its ACLs).
        (b"app/device/+/telemetry", ok.to_vec(), Answer::PubAck, Some("bad_topic")),
        (b"app/device/#/telemetry", ok.to_vec(), Answer::PubAck, Some("bad_topic")),
        (b"app/device/#", ok.to_vec(), Answer::PubAck, Some("bad_topic")),
        (b"elsewhere/+", ok.to_vec(), Answer::PubAck, Some("bad_topic")),
        (b"app/device/a/b/telemetry", ok.to_vec(), Answer::PubAck, Some("bad_device_id")),
        // An empty topic name breaks the MQTT protocol: the broker closes that connection
        // (Mosquitto CVE-2021-34432 crashed the whole broker).
        (b"", ok.to_vec(), Answer::Disconnected, None),
    ];

    let good_addr = server.mqtt();
    let at = now_ms() - 600_000;
    let mut good = Raw::connect(good_addr, "corpus-good");
    let mut bad = Raw::connect(server.mqtt(), "corpus-bad");
    let mut expected = std::collections::BTreeMap::<&str, u64>::new();
    for (i, (topic, payload, answer, reason)) in corpus.iter().enumerate() {
        let got = bad.publish(topic, payload);
        assert_eq!(&got, answer, "case {i}: {}", String::from_utf8_lossy(topic));
        if got == Answer::Disconnected {
            bad = reconnect(server.mqtt(), "corpus-bad");
        }
        if let Some(reason) = reason {
            *expected.entry(reason).or_default() += 1;
        }
        let reading = seed_payload(20.0 + i as f64, 50.0, 3.9, at + i as i64 * 1_000);
        assert_eq!(good.publish(b"app/device/CORPUS_GOOD/telemetry", reading.as_bytes()), Answer::PubAck);
    }

    for (reason, n) in &expected {
        let counted = server.metric(&format!("iot_messages_rejected_total{{reason=\"{reason}\"}}"));
        assert_eq!(counted, *n, "{reason}");
    }
    let corpus_size = corpus.len();
    println!("bad-input corpus: {corpus_size} messages; refused and counted: {expected:?}");
    assert_eq!(
        server.readings("CORPUS_GOOD", "temperature"),
        corpus_size as u64,
        "every good reading stored"
    );
    assert!(server.device("CORPUS").is_null(), "nothing of the garbage registered a device");
    let (status, _) = server.get("/healthz");
    assert_eq!(status, 200);
}

/// Connects again right after the broker dropped the same client id, as a device retries:
/// while rmqtt is still ending the dropped session it answers "server unavailable" (3).
fn reconnect(addr: std::net::SocketAddr, client_id: &str) -> Raw {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Raw::try_connect(addr, client_id) {
            Ok(raw) => return raw,
            Err(e) if e.to_string() == "CONNACK [32, 2, 0, 3]" && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("connect to {addr}: {e}"),
        }
    }
}
