//! The device payload contract (the seed's):
//! `{"telemetry": {"temperature": 25.5, "humidity": 60.2}, "timestamp": "2025-12-19T12:21:20"}`.
//!
//! A message is rejected as a whole when it is too large, not JSON, not an object, has no
//! `telemetry` object, or has no usable numeric metric. A single metric that is not a finite
//! number, or whose name is invalid, is dropped and the rest kept. Every outcome carries a
//! reason so callers can log and count it.

use std::fmt;

use serde_json::Value;

use crate::Millis;
use crate::name::{DeviceId, MAX_NAME_LEN, NameError, valid_name};
use crate::timestamp::{self, TimestampSource};

/// Largest accepted payload, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// An accepted message: one device's readings at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub device: DeviceId,
    pub ts: Millis,
    pub ts_source: TimestampSource,
    /// Metric name and value: finite, names valid, sorted by name.
    pub values: Vec<(String, f64)>,
    /// Metrics that were in the payload but not stored.
    pub dropped: Vec<DroppedMetric>,
}

impl Message {
    /// A message as a device stamps it (tests, benchmarks, tools): `values` sorted by name,
    /// as the decoder leaves them.
    pub fn new<'a>(
        device: DeviceId,
        ts: Millis,
        values: impl IntoIterator<Item = (&'a str, f64)>,
    ) -> Message {
        let mut values: Vec<(String, f64)> = values.into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
        values.sort_by(|a, b| a.0.cmp(&b.0));
        Message { device, ts, ts_source: TimestampSource::Device, values, dropped: Vec::new() }
    }
}

/// A metric left out of an otherwise accepted message.
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedMetric {
    /// The name as sent, cut to 64 bytes for logging.
    pub name: String,
    pub reason: DropReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    NotANumber,
    NotFinite,
    BadName(NameError),
    /// The device already has as many metrics as the server allows.
    TooManyMetrics,
}

impl DropReason {
    pub fn label(self) -> &'static str {
        match self {
            DropReason::NotANumber => "not_a_number",
            DropReason::NotFinite => "not_finite",
            DropReason::BadName(_) => "bad_metric_name",
            DropReason::TooManyMetrics => "too_many_metrics",
        }
    }
}

/// Why a whole message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    TooLarge(usize),
    NotJson(String),
    NotObject,
    MissingTelemetry,
    TelemetryNotObject,
    NoNumericMetric,
    BadDeviceId(NameError),
    MissingDeviceId,
}

impl RejectReason {
    /// A stable, low-cardinality label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            RejectReason::TooLarge(_) => "too_large",
            RejectReason::NotJson(_) => "not_json",
            RejectReason::NotObject => "not_object",
            RejectReason::MissingTelemetry => "missing_telemetry",
            RejectReason::TelemetryNotObject => "telemetry_not_object",
            RejectReason::NoNumericMetric => "no_numeric_metric",
            RejectReason::BadDeviceId(_) => "bad_device_id",
            RejectReason::MissingDeviceId => "missing_device_id",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::TooLarge(n) => {
                write!(f, "payload of {n} bytes exceeds {MAX_PAYLOAD_BYTES} bytes")
            }
            RejectReason::NotJson(e) => write!(f, "payload is not JSON: {e}"),
            RejectReason::NotObject => f.write_str("payload is not a JSON object"),
            RejectReason::MissingTelemetry => f.write_str("payload has no \"telemetry\" field"),
            RejectReason::TelemetryNotObject => f.write_str("\"telemetry\" is not an object"),
            RejectReason::NoNumericMetric => {
                f.write_str("\"telemetry\" has no metric with a finite numeric value")
            }
            RejectReason::BadDeviceId(e) => write!(f, "invalid device id: {e}"),
            RejectReason::MissingDeviceId => f.write_str("\"device_id\" is missing"),
        }
    }
}

mod reader;

use reader::Telemetry;

/// Parses an MQTT payload published by `device`.
pub fn parse_payload(device: DeviceId, payload: &[u8], received: Millis) -> Result<Message, RejectReason> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(RejectReason::TooLarge(payload.len()));
    }
    let fields = reader::read(payload)?;
    let metrics = match fields.telemetry {
        Telemetry::Metrics(m) => m,
        Telemetry::NotObject => return Err(RejectReason::TelemetryNotObject),
        Telemetry::Missing => return Err(RejectReason::MissingTelemetry),
    };
    accept(device, metrics, fields.timestamp.as_ref(), received)
}

/// Parses one HTTP ingest item: the MQTT payload plus a `device_id` field.
pub fn parse_http_item(item: &Value, received: Millis) -> Result<Message, RejectReason> {
    let object = item.as_object().ok_or(RejectReason::NotObject)?;
    let id = match object.get("device_id") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(RejectReason::BadDeviceId(NameError::BadChar)),
        None => return Err(RejectReason::MissingDeviceId),
    };
    let device = DeviceId::try_from(id).map_err(RejectReason::BadDeviceId)?;
    let metrics = match object.get("telemetry") {
        Some(Value::Object(t)) => t.iter().map(|(name, value)| (name.clone(), value.as_f64())).collect(),
        Some(_) => return Err(RejectReason::TelemetryNotObject),
        None => return Err(RejectReason::MissingTelemetry),
    };
    accept(device, metrics, object.get("timestamp"), received)
}

/// The message from `telemetry`'s metrics (sorted by name, each once; `None` where the value
/// is not a number) and the `timestamp` field.
fn accept(
    device: DeviceId,
    metrics: Vec<(String, Option<f64>)>,
    timestamp: Option<&Value>,
    received: Millis,
) -> Result<Message, RejectReason> {
    let mut values = Vec::with_capacity(metrics.len());
    let mut dropped = Vec::new();
    for (name, value) in metrics {
        let drop = |reason| DroppedMetric { name: truncate(&name), reason };
        if let Err(e) = valid_name(&name) {
            dropped.push(drop(DropReason::BadName(e)));
            continue;
        }
        match value {
            Some(v) if v.is_finite() => values.push((name, v)),
            Some(_) => dropped.push(drop(DropReason::NotFinite)),
            None => dropped.push(drop(DropReason::NotANumber)),
        }
    }
    if values.is_empty() {
        return Err(RejectReason::NoNumericMetric);
    }
    let (ts, ts_source) = timestamp::resolve(timestamp, received);
    Ok(Message { device, ts, ts_source, values, dropped })
}

fn truncate(name: &str) -> String {
    let mut end = name.len().min(MAX_NAME_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: Millis = 1_766_146_880_000; // 2025-12-19T12:21:20Z

    fn dev() -> DeviceId {
        DeviceId::try_from("ESP32_SIM_01").unwrap()
    }

    fn parse(s: &str) -> Result<Message, RejectReason> {
        parse_payload(dev(), s.as_bytes(), NOW + 5_000)
    }

    #[test]
    fn seed_payload_is_accepted_whole() {
        let m = parse(
            r#"{"telemetry": {"temperature": 25.5, "humidity": 60.2, "battery": 3.8}, "timestamp": "2025-12-19T12:21:20"}"#,
        )
        .unwrap();
        assert_eq!(m.ts, NOW);
        assert_eq!(m.ts_source, TimestampSource::Device);
        assert_eq!(
            m.values,
            vec![("battery".into(), 3.8), ("humidity".into(), 60.2), ("temperature".into(), 25.5)]
        );
        assert!(m.dropped.is_empty());
    }

    #[test]
    fn seed_mosquitto_pub_example_is_accepted() {
        let m = parse(r#"{"telemetry": {"temp": 25}, "timestamp": "2025-12-19T12:00:00"}"#).unwrap();
        assert_eq!(m.values, vec![("temp".into(), 25.0)]);
        assert_eq!(m.ts, NOW - (21 * 60 + 20) * 1000);
    }

    #[test]
    fn integers_and_negative_numbers_are_f64() {
        let m = parse(r#"{"telemetry": {"rssi": -67, "count": 12345678901}}"#).unwrap();
        assert_eq!(m.values, vec![("count".into(), 12_345_678_901.0), ("rssi".into(), -67.0)]);
        assert_eq!(m.ts_source, TimestampSource::Missing);
        assert_eq!(m.ts, NOW + 5_000);
    }

    #[test]
    fn whole_message_rejections() {
        assert_eq!(parse("").unwrap_err().label(), "not_json");
        assert_eq!(parse("not json").unwrap_err().label(), "not_json");
        assert_eq!(parse_payload(dev(), &[0xff, 0xfe], NOW).unwrap_err().label(), "not_json");
        assert_eq!(parse("[1,2]").unwrap_err(), RejectReason::NotObject);
        assert_eq!(parse("42").unwrap_err(), RejectReason::NotObject);
        assert_eq!(parse(r#"{"temperature": 1}"#).unwrap_err(), RejectReason::MissingTelemetry);
        assert_eq!(parse(r#"{"telemetry": [1]}"#).unwrap_err(), RejectReason::TelemetryNotObject);
        assert_eq!(parse(r#"{"telemetry": {}}"#).unwrap_err(), RejectReason::NoNumericMetric);
        assert_eq!(
            parse(r#"{"telemetry": {"a": "25.5", "b": null, "c": true}}"#).unwrap_err(),
            RejectReason::NoNumericMetric
        );
        let deep = "[".repeat(500) + &"]".repeat(500);
        assert_eq!(parse(&deep).unwrap_err().label(), "not_json");
    }

    #[test]
    fn a_repeated_key_counts_once_the_last_time() {
        let m = parse(r#"{"telemetry": {"a": "x", "b": 1, "a": 2}, "timestamp": 5, "timestamp": null}"#);
        let m = m.unwrap();
        assert_eq!(m.values, vec![("a".into(), 2.0), ("b".into(), 1.0)]);
        assert_eq!(m.ts_source, TimestampSource::Missing);
        assert_eq!(parse(r#"{"telemetry": {"a": 1, "a": "x"}}"#).unwrap_err(), RejectReason::NoNumericMetric);
        assert_eq!(
            parse(r#"{"telemetry": {"a": 1}, "telemetry": 7}"#).unwrap_err(),
            RejectReason::TelemetryNotObject
        );
    }

    #[test]
    fn nesting_limit_applies_to_skipped_fields() {
        let deep = format!(r#"{{"telemetry": {{"a": 1}}, "pad": {}{}}}"#, "[".repeat(500), "]".repeat(500));
        assert_eq!(parse(&deep).unwrap_err().label(), "not_json");
        let deep = format!(r#"{{"telemetry": {{"a": 1, "b": {}{}}}}}"#, "[".repeat(500), "]".repeat(500));
        assert_eq!(parse(&deep).unwrap_err().label(), "not_json");
        let shallow = format!(r#"{{"telemetry": {{"a": 1}}, "pad": {}{}}}"#, "[".repeat(20), "]".repeat(20));
        assert_eq!(parse(&shallow).unwrap().values, vec![("a".into(), 1.0)]);
    }

    /// Any JSON value, nested a few levels.
    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e300f64..1e300).prop_map(Value::from),
            "[a-z/# \\\"é]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map("[a-z_/ ]{0,5}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// The one-pass reader decides exactly as reading the whole document first does (the
        /// HTTP path), for any payload: accepted values, dropped metrics, time and reasons.
        #[test]
        fn one_pass_reader_agrees_with_the_parsed_document(
            telemetry in any_json(),
            timestamp in proptest::option::of(any_json()),
            extra in any_json(),
            whole in proptest::bool::weighted(0.9),
        ) {
            let mut object = serde_json::Map::new();
            object.insert("telemetry".into(), telemetry);
            if let Some(t) = timestamp {
                object.insert("timestamp".into(), t);
            }
            object.insert("extra".into(), extra.clone());
            let mut document = if whole { Value::Object(object) } else { extra };
            if let Some(o) = document.as_object_mut() {
                o.insert("device_id".into(), dev().as_str().into());
            }
            let text = document.to_string();
            let one_pass = parse_payload(dev(), text.as_bytes(), NOW);
            let parsed = parse_http_item(&serde_json::from_str(&text).unwrap(), NOW);
            proptest::prop_assert_eq!(one_pass, parsed);
        }
    }

    #[test]
    fn oversized_payload_is_refused_before_parsing() {
        let big = format!(r#"{{"telemetry": {{"a": 1}}, "pad": "{}"}}"#, "x".repeat(MAX_PAYLOAD_BYTES));
        assert!(matches!(parse(&big), Err(RejectReason::TooLarge(n)) if n > MAX_PAYLOAD_BYTES));
    }

    #[test]
    fn bad_metrics_are_dropped_and_the_rest_kept() {
        let long = "m".repeat(65);
        let payload = json!({"telemetry": {
            "temperature": 21.5, "status": "ok", "flag": true, "nested": {"x": 1},
            "a/b": 1.0, "": 2.0, long.clone(): 3.0, "huge": 1e308
        }})
        .to_string();
        let m = parse(&payload).unwrap();
        assert_eq!(m.values, vec![("huge".into(), 1e308), ("temperature".into(), 21.5)]);
        let mut reasons: Vec<_> = m.dropped.iter().map(|d| (d.name.as_str(), d.reason.label())).collect();
        reasons.sort();
        assert_eq!(
            reasons,
            vec![
                ("", "bad_metric_name"),
                ("a/b", "bad_metric_name"),
                ("flag", "not_a_number"),
                ("m".repeat(64).as_str(), "bad_metric_name"),
                ("nested", "not_a_number"),
                ("status", "not_a_number"),
            ]
        );
    }

    #[test]
    fn out_of_range_number_is_not_json() {
        // serde_json refuses 1e400 rather than producing infinity.
        assert_eq!(parse(r#"{"telemetry": {"a": 1e400}}"#).unwrap_err().label(), "not_json");
    }

    #[test]
    fn bad_timestamps_fall_back_to_receive_time() {
        let m = parse(r#"{"telemetry": {"a": 1}, "timestamp": "1990-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!((m.ts, m.ts_source), (NOW + 5_000, TimestampSource::OutOfRange));
        let m = parse(r#"{"telemetry": {"a": 1}, "timestamp": "soon"}"#).unwrap();
        assert_eq!((m.ts, m.ts_source), (NOW + 5_000, TimestampSource::Unparseable));
    }

    #[test]
    fn http_items_carry_their_device_id() {
        let ok = json!({"device_id": "dev-1", "telemetry": {"a": 1}, "timestamp": "2025-12-19T12:21:20Z"});
        let m = parse_http_item(&ok, NOW).unwrap();
        assert_eq!((m.device.as_str(), m.ts), ("dev-1", NOW));
        let missing = json!({"telemetry": {"a": 1}});
        assert_eq!(parse_http_item(&missing, NOW).unwrap_err(), RejectReason::MissingDeviceId);
        let bad = json!({"device_id": "a/#", "telemetry": {"a": 1}});
        assert_eq!(parse_http_item(&bad, NOW).unwrap_err().label(), "bad_device_id");
        let not_str = json!({"device_id": 7, "telemetry": {"a": 1}});
        assert_eq!(parse_http_item(&not_str, NOW).unwrap_err().label(), "bad_device_id");
    }
}
