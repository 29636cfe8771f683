//! Property-based fuzz tests: the telemetry parsers and validators never panic on arbitrary input.
//!
//! Covered: MQTT payloads (`parse_payload`), HTTP ingest items (`parse_http_item`), MQTT topics,
//! statuses and attributes (`decode`), timestamps (`parse_str`, `resolve`, `format_utc`), names and device ids, dashboard validation
//! and history bucketing. Beyond "no panic", each property checks the documented contract.
//!
//! The expected outcomes are computed by small oracles written here, independently of the
//! code under test (own name rule, own calendar arithmetic, own grid arithmetic in `u64`).
//! Failure persistence is off so no `proptest-regressions/` files are written; a failing case
//! is printed (shrunk) in the test output instead.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Number, Value};
use telemetry::Millis;
use telemetry::control::{Binding, Choice, Control};
use telemetry::dashboard::{
    Breakpoint, Dashboard, Layouts, MAX_WIDGETS, Placement, Threshold, TimeRange, Widget, WidgetKind,
};
use telemetry::history::{self, DAY_MS, History, LocalDays, MAX_POINTS};
use telemetry::name::{DeviceId, MAX_NAME_LEN, NameError, valid_name};
use telemetry::payload::{self, DropReason, MAX_PAYLOAD_BYTES, Message, RejectReason};
use telemetry::timestamp::{self, EARLIEST, MAX_AHEAD_MS, TimestampSource};
use telemetry::topic::{self, DeviceTopic, TopicError};

/// 2025-12-19T12:21:20Z, the seed's example time.
const NOW: Millis = 1_766_146_880_000;
/// 2000-01-01 .. 2100-01-01: any plausible server clock.
const RECEIVED: RangeInclusive<Millis> = EARLIEST..=4_102_444_800_000;
const GOOD_NAME: &str = "[A-Za-z0-9_.-]{1,64}";
const YEAR_SECS: i64 = 366 * 86_400;

/// `cases` per property, unless `PROPTEST_CASES` asks for another number (for a long soak).
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(cases);
    Config { cases, failure_persistence: None, ..Config::default() }
}

fn dev() -> DeviceId {
    DeviceId::try_from("ESP32_SIM_01").unwrap()
}

// ---------------------------------------------------------------------------------------------
// Oracles, written without the crate's helpers.
// ---------------------------------------------------------------------------------------------

/// `[A-Za-z0-9_.-]{1,64}`.
fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The error `valid_name` must give: emptiness first, then length in bytes, then characters.
fn name_error(s: &str) -> Option<NameError> {
    if s.is_empty() {
        Some(NameError::Empty)
    } else if s.len() > 64 {
        Some(NameError::TooLong)
    } else if name_ok(s) {
        None
    } else {
        Some(NameError::BadChar)
    }
}

/// The longest prefix of whole characters that fits in 64 bytes.
fn cut64(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if out.len() + c.len_utf8() > 64 {
            break;
        }
        out.push(c);
    }
    out
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Milliseconds in a fraction-of-second digit string, truncated (`"5"` → 500, `"1239"` → 123).
fn frac_ms(digits: &str) -> i64 {
    let three: String = digits.chars().chain("000".chars()).take(3).collect();
    three.parse().unwrap()
}

/// The time rule: a device time before 2000 or more than an hour ahead is replaced.
fn rule(t: Millis, received: Millis) -> (Millis, TimestampSource) {
    if t < EARLIEST || t > received + MAX_AHEAD_MS {
        (received, TimestampSource::OutOfRange)
    } else {
        (t, TimestampSource::Device)
    }
}

// ---------------------------------------------------------------------------------------------
// Generators.
// ---------------------------------------------------------------------------------------------

/// Metric names and ids: mostly valid, plus empty, 65+ bytes, one bad character, multi-byte
/// text around the 64-byte cut, and anything at all.
fn any_name() -> BoxedStrategy<String> {
    prop_oneof![
        6 => GOOD_NAME,
        1 => Just(String::new()),
        1 => "[A-Za-z0-9_.-]{65,70}",
        2 => r#"[A-Za-z0-9_.-]{0,8}[/+#$ \t\n\x00"\\éü€😀<>:,{}\[\]][A-Za-z0-9_.-]{0,8}"#,
        1 => "[éa€😀]{10,40}",
        1 => any::<String>(),
    ]
    .boxed()
}

fn finite_number() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1000i64..1000).prop_map(Value::from),
        prop::sample::select(vec![
            1e308,
            -1e308,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            0.0,
            -0.0,
            25.5
        ])
        .prop_map(Value::from),
    ]
    .boxed()
}

fn non_number_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        prop::sample::select(vec!["NaN", "nan", "Infinity", "-Infinity", "inf", "1e400", "25.5", "", "0x10"])
            .prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        any::<String>().prop_map(Value::String),
    ]
    .boxed()
}

/// Any JSON value, nested a few levels.
fn any_json() -> BoxedStrategy<Value> {
    prop_oneof![finite_number(), non_number_leaf()]
        .prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((any_name(), inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
        .boxed()
}

/// A metric's value: numbers (huge ones included) or anything else.
fn metric_value() -> BoxedStrategy<Value> {
    prop_oneof![4 => finite_number(), 3 => any_json()].boxed()
}

/// A date-time in one of the accepted text forms, and the Unix millis it denotes (computed
/// without chrono).
fn datetime_text(years: RangeInclusive<i64>) -> impl Strategy<Value = (String, Millis)> {
    (years, 1i64..=12, 1i64..=31, 0i64..24, 0i64..60, 0i64..60, "[0-9]{0,9}", 0u8..6, -14 * 60i64..=14 * 60)
        .prop_map(|(y, mo, d, h, mi, s, frac, form, off)| {
            let d = d.min(days_in_month(y, mo));
            let base = days_from_civil(y, mo, d) * 86_400_000 + h * 3_600_000 + mi * 60_000;
            let t = base + s * 1000 + frac_ms(&frac);
            let date = format!("{y:04}-{mo:02}-{d:02}");
            let time = format!("{h:02}:{mi:02}:{s:02}");
            let dot = if frac.is_empty() { String::new() } else { format!(".{frac}") };
            match form {
                0 => (format!("{date}T{time}{dot}Z"), t),
                1 => {
                    let sign = if off < 0 { '-' } else { '+' };
                    let (oh, om) = (off.abs() / 60, off.abs() % 60);
                    (format!("{date}T{time}{dot}{sign}{oh:02}:{om:02}"), t - off * 60_000)
                }
                2 => (format!("{date}T{time}{dot}"), t),
                3 => (format!("{date} {time}{dot}"), t),
                4 => (format!("{date}T{h:02}:{mi:02}"), base),
                _ => (format!(" \t{date}T{time}{dot}Z\n"), t),
            }
        })
}

/// A payload's `timestamp` field and what it means.
#[derive(Debug, Clone)]
enum TsField {
    Absent,
    Null,
    /// Readable, denoting these millis.
    Known(Value, Millis),
    /// Present but unreadable.
    Bad(Value),
    /// Anything: only the generic rule is checked.
    Other(Value),
}

impl TsField {
    fn value(&self) -> Option<Value> {
        match self {
            TsField::Absent => None,
            TsField::Null => Some(Value::Null),
            TsField::Known(v, _) | TsField::Bad(v) | TsField::Other(v) => Some(v.clone()),
        }
    }

    fn millis(&self) -> Option<Millis> {
        match self {
            TsField::Known(_, t) => Some(*t),
            _ => None,
        }
    }
}

fn ts_field() -> BoxedStrategy<TsField> {
    let text = |years| datetime_text(years).prop_map(|(s, t)| TsField::Known(Value::String(s), t));
    prop_oneof![
        1 => Just(TsField::Absent),
        1 => Just(TsField::Null),
        4 => text(1995..=2030),
        1 => text(0..=9999),
        // Epoch milliseconds (at least 1e11, so not taken for seconds), incl. around 2000-01-01.
        1 => (100_000_000_000i64..100_000_000_000_000).prop_map(|t| TsField::Known(Value::from(t), t)),
        1 => (EARLIEST - 3..=EARLIEST + 3).prop_map(|t| TsField::Known(Value::from(t), t)),
        // Epoch seconds, whole and with milliseconds.
        1 => (0i64..100_000_000_000).prop_map(|s| TsField::Known(Value::from(s), s * 1000)),
        1 => (0i64..4_102_444_800_000).prop_map(|t| TsField::Known(Value::from(t as f64 / 1000.0), t)),
        // Unreadable: negative or far-future epochs, impossible dates, words, non-scalars.
        1 => prop_oneof![
            (i64::MIN..0).prop_map(Value::from),
            (1e15f64..1e300).prop_map(Value::from),
            prop::sample::select(vec![
                "", "soon", "yesterday", "2025-13-01T00:00:00Z", "2025-02-30T00:00:00",
                "2025-12-19T24:00:00Z", "2025-12-19", "12:21:20", "2025-12-19T12:21:20+25:00",
                "NaN", "1766146880",
            ]).prop_map(Value::from),
            any::<bool>().prop_map(Value::Bool),
            prop::collection::vec(finite_number(), 0..3).prop_map(Value::Array),
            Just(serde_json::json!({"t": "2025-12-19T12:21:20Z"})),
        ].prop_map(TsField::Bad),
        1 => any_json().prop_map(|v| if v.is_null() { TsField::Null } else { TsField::Other(v) }),
        1 => any::<String>().prop_map(|s| TsField::Other(Value::String(s))),
    ]
    .boxed()
}

/// The receive time: any plausible clock, or (when the field is a known time) right at the
/// edge of "an hour ahead".
fn received_for(ts: &TsField, abs: Millis, edge: Option<i64>) -> Millis {
    match (ts.millis(), edge) {
        (Some(t), Some(d)) => t - MAX_AHEAD_MS + d,
        _ => abs,
    }
}

/// What goes under `telemetry`.
#[derive(Debug, Clone)]
enum TelemetryField {
    Absent,
    NotObject(Value),
    Object(Vec<(String, Value)>),
}

/// A payload object: junk fields, a `telemetry` field mixing good and bad metrics, and a
/// timestamp.
fn payload_object() -> impl Strategy<Value = (Map<String, Value>, TsField)> {
    let telemetry = prop_oneof![
        1 => Just(TelemetryField::Absent),
        1 => any_json().prop_filter("not an object", |v| !v.is_object()).prop_map(TelemetryField::NotObject),
        12 => prop::collection::vec((any_name(), metric_value()), 0..12).prop_map(TelemetryField::Object),
    ];
    let junk = prop::collection::vec((any_name(), any_json()), 0..3);
    (telemetry, ts_field(), junk).prop_map(|(telemetry, ts, junk)| {
        let mut obj: Map<String, Value> = junk.into_iter().collect();
        for k in ["telemetry", "timestamp", "device_id"] {
            obj.remove(k);
        }
        match telemetry {
            TelemetryField::Absent => {}
            TelemetryField::NotObject(v) => {
                obj.insert("telemetry".into(), v);
            }
            TelemetryField::Object(kv) => {
                obj.insert("telemetry".into(), Value::Object(kv.into_iter().collect()));
            }
        }
        if let Some(v) = ts.value() {
            obj.insert("timestamp".into(), v);
        }
        (obj, ts)
    })
}

// ---------------------------------------------------------------------------------------------
// Checks shared by the payload properties.
// ---------------------------------------------------------------------------------------------

fn drop_label(reason: DropReason) -> String {
    match reason {
        DropReason::BadName(e) => format!("bad_name:{e:?}"),
        other => other.label().to_owned(),
    }
}

/// Properties every accepted message has, whatever the input.
fn check_message_invariants(m: &Message, received: Millis) -> Result<(), TestCaseError> {
    prop_assert!(!m.values.is_empty(), "accepted with no value");
    for (name, v) in &m.values {
        prop_assert!(name_ok(name), "kept bad name {name:?}");
        prop_assert!(v.is_finite(), "kept non-finite {name:?} = {v}");
    }
    prop_assert!(m.values.windows(2).all(|w| w[0].0 < w[1].0), "values not sorted by name: {:?}", m.values);
    for d in &m.dropped {
        prop_assert!(d.name.len() <= MAX_NAME_LEN, "dropped name not cut: {:?}", d.name);
    }
    match m.ts_source {
        TimestampSource::Device => prop_assert!(
            (EARLIEST..=received + MAX_AHEAD_MS).contains(&m.ts),
            "device time {} outside [2000, received + 1h] (received {received})",
            m.ts
        ),
        _ => prop_assert_eq!(m.ts, received, "fallback must use the receive time"),
    }
    Ok(())
}

/// The full contract for a parsed JSON object: which reason a rejection has, which metrics are
/// kept (exact values) and dropped (name cut, reason), and the timestamp.
fn check_object(
    obj: &Map<String, Value>,
    ts: &TsField,
    received: Millis,
    got: &Result<Message, RejectReason>,
) -> Result<(), TestCaseError> {
    let telemetry = match obj.get("telemetry") {
        None => {
            prop_assert_eq!(got, &Err(RejectReason::MissingTelemetry));
            return Ok(());
        }
        Some(Value::Object(t)) => t,
        Some(_) => {
            prop_assert_eq!(got, &Err(RejectReason::TelemetryNotObject));
            return Ok(());
        }
    };
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for (name, value) in telemetry {
        if let Some(e) = name_error(name) {
            dropped.push((cut64(name), format!("bad_name:{e:?}")));
            continue;
        }
        match value {
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.is_finite() => kept.push((name.clone(), f)),
                _ => dropped.push((cut64(name), "not_finite".to_owned())),
            },
            _ => dropped.push((cut64(name), "not_a_number".to_owned())),
        }
    }
    if kept.is_empty() {
        prop_assert_eq!(got, &Err(RejectReason::NoNumericMetric));
        return Ok(());
    }
    let m = match got {
        Ok(m) => m,
        Err(e) => return Err(TestCaseError::fail(format!("rejected ({e}) but {kept:?} are usable"))),
    };
    check_message_invariants(m, received)?;
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    prop_assert_eq!(&m.values, &kept);
    prop_assert_eq!(m.values.len() + m.dropped.len(), telemetry.len(), "kept + dropped != metrics sent");
    let mut got_dropped: Vec<_> = m.dropped.iter().map(|d| (d.name.clone(), drop_label(d.reason))).collect();
    got_dropped.sort();
    dropped.sort();
    prop_assert_eq!(got_dropped, dropped);
    match ts {
        TsField::Absent | TsField::Null => {
            prop_assert_eq!((m.ts, m.ts_source), (received, TimestampSource::Missing))
        }
        TsField::Known(_, t) => {
            prop_assert_eq!((m.ts, m.ts_source), rule(*t, received), "timestamp {:?}", ts)
        }
        TsField::Bad(_) => prop_assert_eq!((m.ts, m.ts_source), (received, TimestampSource::Unparseable)),
        TsField::Other(_) => prop_assert_ne!(m.ts_source, TimestampSource::Missing),
    }
    Ok(())
}

/// `parse_payload` on any bytes must agree with `check_object` on what serde_json makes of them.
fn check_bytes(bytes: &[u8], received: Millis) -> Result<(), TestCaseError> {
    let got = payload::parse_payload(dev(), bytes, received);
    let _ = got.as_ref().map_err(|e| (e.label(), e.to_string()));
    if bytes.len() > MAX_PAYLOAD_BYTES {
        prop_assert_eq!(got, Err(RejectReason::TooLarge(bytes.len())));
        return Ok(());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Err(_) => prop_assert!(matches!(got, Err(RejectReason::NotJson(_))), "{got:?}"),
        Ok(Value::Object(obj)) => {
            let ts = obj.get("timestamp").cloned().map_or(TsField::Absent, TsField::Other);
            let ts = if matches!(ts, TsField::Other(Value::Null)) { TsField::Null } else { ts };
            check_object(&obj, &ts, received, &got)?;
            if let Ok(m) = &got {
                prop_assert_eq!(&m.device, &dev());
            }
        }
        Ok(_) => prop_assert_eq!(got, Err(RejectReason::NotObject)),
    }
    Ok(())
}

/// JSON-ish token soup: mostly almost-valid payloads.
fn json_soup() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        " ",
        "\"telemetry\"",
        "\"timestamp\"",
        "\"a\"",
        "\"a/b\"",
        "\"\"",
        "1",
        "-0",
        "1e308",
        "1e400",
        "-1e309",
        "18446744073709551616",
        "0.5",
        "null",
        "true",
        "\"x\"",
        "\"NaN\"",
        "\"2025-12-19T12:21:20Z\"",
        "1766146880",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"\\uDFFF\"",
        "\u{feff}",
        "\"é\"",
        "/*",
        "\\",
    ]);
    prop::collection::vec(token, 0..40).prop_map(|t| format!("{{\"telemetry\":{}", t.concat()))
}

#[derive(Debug, Clone)]
enum Edit {
    Replace(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Edit::Delete),
    ];
    prop::collection::vec(edit, 1..4)
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        match e {
            Edit::Replace(i, b) if !bytes.is_empty() => {
                let i = i.index(bytes.len());
                bytes[i] = *b;
            }
            Edit::Insert(i, b) => {
                let i = i.index(bytes.len() + 1);
                bytes.insert(i, *b);
            }
            Edit::Delete(i) if !bytes.is_empty() => {
                let i = i.index(bytes.len());
                bytes.remove(i);
            }
            _ => {}
        }
    }
    bytes
}

// ---------------------------------------------------------------------------------------------
// Payloads.
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn payload_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512), received in RECEIVED) {
        check_bytes(&bytes, received)?;
    }

    #[test]
    fn payload_arbitrary_strings(s in any::<String>(), received in RECEIVED) {
        check_bytes(s.as_bytes(), received)?;
    }

    #[test]
    fn payload_json_soup(s in json_soup(), received in RECEIVED) {
        check_bytes(s.as_bytes(), received)?;
    }

    #[test]
    fn payload_mutated(
        (obj, _ts) in payload_object(),
        edits in edits(),
        received in RECEIVED,
    ) {
        let bytes = serde_json::to_vec(&Value::Object(obj)).unwrap();
        check_bytes(&apply(bytes, &edits), received)?;
    }

    /// The structured generator: good and bad metrics, all kinds of timestamps, as MQTT bytes.
    #[test]
    fn payload_contract(
        (obj, ts) in payload_object(),
        abs in RECEIVED,
        edge in prop::option::weighted(0.3, -3i64..=3),
    ) {
        let received = received_for(&ts, abs, edge);
        let bytes = serde_json::to_vec(&Value::Object(obj)).unwrap();
        // serde_json's text round trip of a float may move it by an ulp: judge by what it reads.
        let reparsed = match serde_json::from_slice::<Value>(&bytes).unwrap() {
            Value::Object(o) => o,
            _ => unreachable!(),
        };
        let got = payload::parse_payload(dev(), &bytes, received);
        check_object(&reparsed, &ts, received, &got)?;
        if let Ok(m) = &got {
            prop_assert_eq!(&m.device, &dev());
        }
    }

    /// The same payloads as HTTP ingest items, with a `device_id` that may be missing or bad.
    #[test]
    fn http_item_contract(
        (mut obj, ts) in payload_object(),
        id in prop_oneof![
            1 => Just(None),
            6 => any_name().prop_map(|s| Some(Value::String(s))),
            1 => any_json().prop_map(Some),
        ],
        abs in RECEIVED,
        edge in prop::option::weighted(0.3, -3i64..=3),
    ) {
        let received = received_for(&ts, abs, edge);
        if let Some(id) = &id {
            obj.insert("device_id".into(), id.clone());
        }
        let item = Value::Object(obj.clone());
        let got = payload::parse_http_item(&item, received);
        match &id {
            None => prop_assert_eq!(got, Err(RejectReason::MissingDeviceId)),
            Some(Value::String(s)) => match name_error(s) {
                Some(e) => prop_assert_eq!(got, Err(RejectReason::BadDeviceId(e))),
                None => {
                    check_object(&obj, &ts, received, &got)?;
                    if let Ok(m) = &got {
                        prop_assert_eq!(m.device.as_str(), s.as_str());
                    }
                }
            },
            Some(_) => prop_assert_eq!(got, Err(RejectReason::BadDeviceId(NameError::BadChar))),
        }
    }

    #[test]
    fn http_item_any_json(v in any_json(), received in RECEIVED) {
        let got = payload::parse_http_item(&v, received);
        if !v.is_object() {
            prop_assert_eq!(got, Err(RejectReason::NotObject));
        } else if let Ok(m) = got {
            check_message_invariants(&m, received)?;
        }
    }
}

proptest! {
    #![proptest_config(config(48))]

    /// Whitespace padding up to twice the limit: refused as too large exactly past 64 KiB.
    #[test]
    fn payload_size_limit(pad in 0usize..2 * MAX_PAYLOAD_BYTES) {
        let body = br#"{"telemetry": {"a": 1}}"#;
        let mut bytes = vec![b' '; pad];
        bytes.extend_from_slice(body);
        let got = payload::parse_payload(dev(), &bytes, NOW);
        if bytes.len() > MAX_PAYLOAD_BYTES {
            prop_assert_eq!(got, Err(RejectReason::TooLarge(bytes.len())));
        } else {
            prop_assert_eq!(got.map(|m| m.values), Ok(vec![("a".to_owned(), 1.0)]));
        }
    }
}

#[test]
fn payload_size_limit_edges() {
    for len in MAX_PAYLOAD_BYTES - 2..=MAX_PAYLOAD_BYTES + 2 {
        let mut bytes = br#"{"telemetry": {"a": 1}, "pad": ""#.to_vec();
        bytes.resize(len - 2, b'x');
        bytes.extend_from_slice(b"\"}");
        assert_eq!(bytes.len(), len);
        let got = payload::parse_payload(dev(), &bytes, NOW);
        assert_eq!(got.is_ok(), len <= MAX_PAYLOAD_BYTES, "{len}: {:?}", got.map(|m| m.values));
    }
}

fn nested(open: &str, close: &str, depth: usize) -> String {
    format!("{}1{}", open.repeat(depth), close.repeat(depth))
}

#[test]
fn deep_nesting_is_rejected_cleanly() {
    for (open, close) in [("[", "]"), (r#"{"a":"#, "}")] {
        for depth in [129, 1_000, 10_000] {
            let whole = nested(open, close, depth);
            let in_metric =
                format!(r#"{{"telemetry": {{"ok": 1, "deep": {}}}}}"#, nested(open, close, depth));
            let unclosed = open.repeat(depth);
            for doc in [whole, in_metric, unclosed] {
                assert!(doc.len() <= MAX_PAYLOAD_BYTES);
                match payload::parse_payload(dev(), doc.as_bytes(), NOW) {
                    Err(RejectReason::NotJson(e)) => assert!(e.contains("recursion limit"), "{depth}: {e}"),
                    other => panic!("{open} x {depth}: {other:?}"),
                }
            }
        }
        // Within serde_json's limit: accepted, only the nested metric dropped.
        let doc = format!(r#"{{"telemetry": {{"ok": 1, "deep": {}}}}}"#, nested(open, close, 100));
        let m = payload::parse_payload(dev(), doc.as_bytes(), NOW).unwrap();
        assert_eq!(m.values, vec![("ok".to_owned(), 1.0)]);
        assert_eq!(m.dropped.len(), 1);
        assert_eq!(m.dropped[0].reason, DropReason::NotANumber);
    }
    // The largest nesting that fits in a payload.
    let doc = "[".repeat(MAX_PAYLOAD_BYTES);
    assert_eq!(payload::parse_payload(dev(), doc.as_bytes(), NOW).unwrap_err().label(), "not_json");
}

#[test]
fn deep_value_in_http_item() {
    // A `Value` built in memory has no recursion limit; the parser must not recurse into it.
    let deep = || (0..10_000).fold(Value::from(1), |v, _| Value::Array(vec![v]));
    // Assembled by hand: `json!` would serialise (recursively copy) the deep values.
    let mut telemetry = Map::new();
    telemetry.insert("ok".into(), Value::from(1));
    telemetry.insert("deep".into(), deep());
    let mut item = Map::new();
    item.insert("device_id".into(), Value::from("d"));
    item.insert("telemetry".into(), Value::Object(telemetry));
    item.insert("timestamp".into(), deep());
    let item = Value::Object(item);
    let m = payload::parse_http_item(&item, NOW).unwrap();
    assert_eq!(m.values, vec![("ok".to_owned(), 1.0)]);
    assert_eq!((m.ts, m.ts_source), (NOW, TimestampSource::Unparseable));
    // serde_json's `Value` drops recursively; keep the test's own stack out of it.
    std::mem::forget(item);
}

#[test]
fn ten_thousand_keys() {
    let mut telemetry = Map::new();
    for i in 0..10_000 {
        let (k, v) = match i % 4 {
            0 => (format!("m{i}"), Value::from(i)),
            1 => (format!("bad/{i}"), Value::from(i)),
            2 => (format!("{}{i}", "x".repeat(64)), Value::from(i)),
            _ => (format!("s{i}"), Value::from("NaN")),
        };
        telemetry.insert(k, v);
    }
    let item =
        serde_json::json!({"device_id": "d", "telemetry": telemetry, "timestamp": "2025-12-19T12:21:20Z"});
    let m = payload::parse_http_item(&item, NOW).unwrap();
    assert_eq!((m.values.len(), m.dropped.len()), (2_500, 7_500));
    assert!(m.values.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!((m.ts, m.ts_source), (NOW, TimestampSource::Device));
    // As MQTT bytes the same message is over the size limit.
    let bytes = serde_json::to_vec(&item).unwrap();
    assert_eq!(payload::parse_payload(dev(), &bytes, NOW), Err(RejectReason::TooLarge(bytes.len())));

    // As many keys as fit in 64 KiB, half of them bad.
    let keys: Vec<String> =
        (0..6_000).map(|i| format!("{}{i:x}", if i % 2 == 0 { "k" } else { "/" })).collect();
    let body: Vec<String> = keys.iter().map(|k| format!("\"{k}\":1")).collect();
    let doc = format!(r#"{{"telemetry":{{{}}}}}"#, body.join(","));
    assert!(doc.len() <= MAX_PAYLOAD_BYTES, "{}", doc.len());
    let m = payload::parse_payload(dev(), doc.as_bytes(), NOW).unwrap();
    assert_eq!((m.values.len(), m.dropped.len()), (3_000, 3_000));
    // 10k copies of one key: the last one wins.
    let dup = format!(
        r#"{{"telemetry":{{{}}}}}"#,
        (0..10_000).map(|i| format!("\"a\":{}", i % 10)).collect::<Vec<_>>().join(",")
    );
    assert!(dup.len() <= MAX_PAYLOAD_BYTES, "{}", dup.len());
    let m = payload::parse_payload(dev(), dup.as_bytes(), NOW).unwrap();
    assert_eq!((m.values, m.dropped.len()), (vec![("a".to_owned(), 9.0)], 0));
}

// ---------------------------------------------------------------------------------------------
// Names and topics.
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn names_follow_the_rule(s in prop_oneof![any_name(), any::<String>()]) {
        prop_assert_eq!(valid_name(&s).err(), name_error(&s));
        let id = DeviceId::try_from(s.as_str());
        prop_assert_eq!(id.as_ref().err().copied(), name_error(&s));
        prop_assert_eq!(DeviceId::try_from(s.clone()).ok(), id.clone().ok());
        if let Ok(id) = &id {
            prop_assert_eq!(id.as_str(), s.as_str());
            prop_assert_eq!(id.to_string(), s.clone());
            prop_assert_eq!(String::from(id.clone()), s.clone());
        }
        let de = serde_json::from_value::<DeviceId>(Value::String(s.clone()));
        prop_assert_eq!(de.ok(), id.ok());
    }

    /// Anything `DeviceTopic::parse` accepts is exactly
    /// `app/device/<valid id>/{telemetry,status,attributes}`.
    #[test]
    fn topic_arbitrary_strings(s in prop_oneof![
        any::<String>(),
        "app/device/[A-Za-z0-9_.+#/ -]{0,70}(/telemetry|/status|/attributes|/|/Telemetry|/config|)",
        "(app|App|app/|/app)(/device|/devices|device)/[a-z/+#]{0,5}/(telemetry|status|attributes)",
    ]) {
        match DeviceTopic::parse(&s) {
            Ok(DeviceTopic::Telemetry(id)) => {
                prop_assert!(name_ok(id.as_str()));
                prop_assert_eq!(topic::telemetry_topic(id.as_str()), s);
            }
            Ok(DeviceTopic::Status(id)) => {
                prop_assert!(name_ok(id.as_str()));
                prop_assert_eq!(topic::status_topic(id.as_str()), s);
            }
            Ok(DeviceTopic::Attributes(id)) => {
                prop_assert!(name_ok(id.as_str()));
                prop_assert_eq!(topic::attributes_topic(id.as_str()), s);
            }
            Err(TopicError::Foreign) => prop_assert!(!s.starts_with("app/device/")),
            Err(_) => prop_assert!(s.starts_with("app/device/")),
        }
    }

    #[test]
    fn topic_shape(
        id in any_name(),
        kind in prop::sample::select(vec![
            "telemetry", "status", "attributes", "", "Telemetry", "telemetry ", "config", "telemetry/x",
            "attribute", "+", "#",
        ]),
    ) {
        let t = format!("app/device/{id}/{kind}");
        let got = DeviceTopic::parse(&t);
        let known_kind = ["telemetry", "status", "attributes"].contains(&kind);
        prop_assert_eq!(got.is_ok(), known_kind && name_ok(&id), "{:?} -> {:?}", t, got);
        if known_kind {
            match name_error(&id) {
                Some(e) => prop_assert_eq!(got, Err(TopicError::BadDeviceId(e))),
                None => {
                    let id = DeviceId::try_from(id.as_str()).unwrap();
                    let want = match kind {
                        "telemetry" => DeviceTopic::Telemetry(id),
                        "status" => DeviceTopic::Status(id),
                        _ => DeviceTopic::Attributes(id),
                    };
                    prop_assert_eq!(got, Ok(want));
                }
            }
        }
    }

    /// One wildcard or separator anywhere in a valid topic makes it invalid.
    #[test]
    fn topic_wildcards_and_separators_refused(
        id in GOOD_NAME,
        status in any::<bool>(),
        at in any::<prop::sample::Index>(),
        c in prop::sample::select(vec!['+', '#', '/']),
    ) {
        let mut t = if status { topic::status_topic(&id) } else { topic::telemetry_topic(&id) };
        let i = at.index(t.len() + 1);
        t.insert(i, c);
        prop_assert!(DeviceTopic::parse(&t).is_err(), "{:?} accepted", t);
    }

    #[test]
    fn topic_round_trip(id in GOOD_NAME) {
        let d = DeviceId::try_from(id.as_str()).unwrap();
        let telemetry = DeviceTopic::parse(&topic::telemetry_topic(&id));
        prop_assert_eq!(telemetry, Ok(DeviceTopic::Telemetry(d.clone())));
        prop_assert_eq!(DeviceTopic::parse(&topic::status_topic(&id)), Ok(DeviceTopic::Status(d)));
    }
}

// ---------------------------------------------------------------------------------------------
// Statuses and attributes.
// ---------------------------------------------------------------------------------------------

/// What an attributes message holds when accepted: a bounded object of valid names to short
/// strings, finite numbers and bools.
fn attributes_ok(values: &[(String, telemetry::attributes::AttrValue)]) -> Result<(), TestCaseError> {
    use telemetry::attributes::{AttrValue, MAX_ATTRIBUTES, MAX_TEXT_BYTES};
    prop_assert!(values.len() <= MAX_ATTRIBUTES);
    prop_assert!(values.windows(2).all(|w| w[0].0 < w[1].0), "sorted, each name once");
    for (name, value) in values {
        prop_assert!(name_ok(name), "{:?}", name);
        match value {
            AttrValue::Text(s) => prop_assert!(s.len() <= MAX_TEXT_BYTES),
            AttrValue::Number(n) => prop_assert!(n.is_finite()),
            AttrValue::Bool(_) => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn attributes_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2100)) {
        if let Ok(values) = telemetry::attributes::parse_attributes(&bytes) {
            prop_assert!(bytes.len() <= telemetry::attributes::MAX_ATTRIBUTES_BYTES);
            attributes_ok(&values)?;
        }
    }

    #[test]
    fn attributes_json_soup(s in json_soup()) {
        if let Ok(values) = telemetry::attributes::parse_attributes(s.as_bytes()) {
            attributes_ok(&values)?;
        }
    }

    /// Any object of good names to strings, numbers and bools within bounds is taken whole.
    #[test]
    fn attributes_contract(
        fields in prop::collection::btree_map(
            GOOD_NAME,
            prop_oneof![
                "[ -~]{0,40}".prop_map(Value::String),
                any::<bool>().prop_map(Value::Bool),
                (-1e9f64..1e9).prop_map(|f| Value::Number(Number::from_f64(f).unwrap())),
            ],
            0..=telemetry::attributes::MAX_ATTRIBUTES,
        )
    ) {
        let json = serde_json::to_vec(&Value::Object(fields.clone().into_iter().collect())).unwrap();
        let got = telemetry::attributes::parse_attributes(&json);
        if json.len() > telemetry::attributes::MAX_ATTRIBUTES_BYTES {
            prop_assert!(got.is_err());
        } else {
            let values = got.unwrap();
            attributes_ok(&values)?;
            prop_assert_eq!(values.len(), fields.len());
        }
    }

    /// A status is `online`, `offline`, or `{"state": …, "session": n}`; anything else is refused.
    #[test]
    fn status_payloads(
        payload in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            json_soup().prop_map(String::into_bytes),
            (any::<bool>(), any::<u64>()).prop_map(|(online, n)| {
                telemetry::decode::status_payload(online, n).into_bytes()
            }),
        ],
    ) {
        let got = telemetry::decode("app/device/d1/status", &payload, NOW);
        match got {
            Ok(telemetry::Decoded::Status { session, .. }) => {
                let text = String::from_utf8_lossy(&payload);
                let plain = ["online", "offline"].contains(&text.trim());
                prop_assert!(plain != session.is_some() || text.contains("state"), "{:?}", text);
            }
            Ok(telemetry::Decoded::StatusCleared(_)) => prop_assert!(payload.trim_ascii().is_empty()),
            Ok(other) => prop_assert!(false, "{:?}", other),
            Err(e) => prop_assert_eq!(e, telemetry::Rejection::BadStatus),
        }
    }
}

#[test]
fn topic_edges() {
    let x65 = "x".repeat(65);
    for bad in [
        "app/device//telemetry",
        "app/device/+/telemetry",
        "app/device/#/telemetry",
        &format!("app/device/{x65}/telemetry"),
    ] {
        assert!(DeviceTopic::parse(bad).is_err(), "{bad}");
    }
    assert!(DeviceTopic::parse(&format!("app/device/{}/telemetry", "x".repeat(64))).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Timestamps.
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn parse_str_arbitrary(s in prop_oneof![
        any::<String>(),
        concat!(
            "[0-9+-]{0,6}-[0-9]{1,3}-[0-9]{1,3}[T t][0-9]{1,3}:[0-9]{1,3}(:[0-9]{1,3})?",
            "(\\.[0-9]{0,20})?(Z|z|[+-][0-9]{1,2}:[0-9]{1,2})?",
        ),
    ]) {
        let t = timestamp::parse_str(&s);
        // Surrounding whitespace never changes the reading.
        prop_assert_eq!(timestamp::parse_str(&format!(" \t{s}\n ")), t);
    }

    /// A generated RFC 3339 / naive date-time reads as the millis the calendar says.
    #[test]
    fn parse_str_reads_the_right_millis((text, t) in datetime_text(0..=9999)) {
        prop_assert_eq!(timestamp::parse_str(&text), Some(t), "{:?}", text);
    }

    #[test]
    fn format_round_trips(t in prop_oneof![
        EARLIEST..=4_102_444_800_000,
        // Years 0000 ..= 9999: what RFC 3339 can write.
        -62_167_219_200_000i64..=253_402_300_799_999,
    ]) {
        prop_assert_eq!(timestamp::parse_str(&timestamp::format_utc(t)), Some(t));
    }

    #[test]
    fn format_never_panics(t in any::<Millis>()) {
        let s = timestamp::format_utc(t);
        if let Some(back) = timestamp::parse_str(&s) {
            prop_assert_eq!(back, t);
        }
    }

    /// `resolve` on any field: the documented source and the receive-time fallback.
    #[test]
    fn resolve_contract(ts in ts_field(), abs in RECEIVED, edge in prop::option::weighted(0.3, -3i64..=3)) {
        let received = received_for(&ts, abs, edge);
        let field = ts.value();
        let (t, src) = timestamp::resolve(field.as_ref(), received);
        match &ts {
            TsField::Absent | TsField::Null => {
                prop_assert_eq!((t, src), (received, TimestampSource::Missing));
            }
            TsField::Known(_, want) => prop_assert_eq!((t, src), rule(*want, received), "{:?}", ts),
            TsField::Bad(_) => prop_assert_eq!((t, src), (received, TimestampSource::Unparseable)),
            TsField::Other(_) => {
                prop_assert_ne!(src, TimestampSource::Missing);
                if src == TimestampSource::Device {
                    prop_assert!((EARLIEST..=received + MAX_AHEAD_MS).contains(&t));
                } else {
                    prop_assert_eq!(t, received);
                }
            }
        }
    }

    /// Epoch numbers: seconds below 1e11, milliseconds from there, nothing from 1e15 on.
    #[test]
    fn resolve_epoch_integers(
        n in prop_oneof![
            any::<i64>(),
            0i64..2_000_000_000_000_000,
            // The seconds/milliseconds switch and the upper cut-off, exactly.
            99_999_999_998i64..=100_000_000_002,
            999_999_999_999_998i64..=1_000_000_000_000_002,
            -2i64..=2,
        ],
        received in RECEIVED,
    ) {
        let got = timestamp::resolve(Some(&Value::from(n)), received);
        let ms = if n < 0 {
            None
        } else if n < 100_000_000_000 {
            Some(n * 1000)
        } else if n < 1_000_000_000_000_000 {
            Some(n)
        } else {
            None
        };
        match ms {
            Some(ms) => prop_assert_eq!(got, rule(ms, received)),
            None => prop_assert_eq!(got, (received, TimestampSource::Unparseable)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dashboards.
// ---------------------------------------------------------------------------------------------

fn color_ok(s: &str) -> bool {
    s.strip_prefix('#').is_some_and(|h| h.len() == 6 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The documented rules for a client's dashboard, with the grid arithmetic done in `u64`.
fn dashboard_ok(d: &Dashboard) -> bool {
    let short = |s: &str, max: usize| s.chars().count() <= max;
    if !name_ok(&d.id) || d.name.trim().is_empty() || !short(&d.name, 100) || d.widgets.len() > MAX_WIDGETS {
        return false;
    }
    let mut ids = BTreeSet::new();
    for w in &d.widgets {
        let ok = name_ok(&w.id)
            && ids.insert(w.id.as_str())
            && short(&w.title, 100)
            && w.devices.iter().chain(&w.metrics).all(|n| name_ok(n))
            && w.unit.as_deref().is_none_or(|u| short(u, 16))
            && w.thresholds.len() <= 10
            && w.thresholds.iter().all(|t| t.value.is_finite() && color_ok(&t.color))
            && w.min.is_none_or(f64::is_finite)
            && w.max.is_none_or(f64::is_finite)
            && w.control
                .as_ref()
                .is_none_or(|c| w.kind.is_control() && w.devices.len() <= 1 && control_ok(w.kind, c));
        if !ok {
            return false;
        }
    }
    for (places, cols) in [(&d.layouts.wide, 12u64), (&d.layouts.medium, 6), (&d.layouts.phone, 1)] {
        let mut placed = BTreeSet::new();
        for p in places {
            if !ids.contains(p.widget.as_str())
                || !placed.insert(p.widget.as_str())
                || p.w == 0
                || p.h == 0
                || u64::from(p.x) + u64::from(p.w) > cols
                || p.y > 1000
                || p.h > 1000
            {
                return false;
            }
        }
    }
    range_ok(d.range) && d.widgets.iter().all(|w| w.range.is_none_or(range_ok))
}

/// The documented rules for a control's settings: names for the method and keys, a params key
/// unless it is a button, a step above 0, a timeout of 1 to 3600 s, values that are booleans,
/// numbers or strings of at most 256 bytes as JSON, labels of 1 to 40 characters, 1 to 20
/// options for a select (at most 20 for the others).
fn control_ok(kind: WidgetKind, c: &Control) -> bool {
    let scalar = |v: &Value| {
        matches!(v, Value::Bool(_) | Value::Number(_) | Value::String(_)) && v.to_string().len() <= 256
    };
    let binding = match &c.binding {
        Binding::Command { method, key, metric } => {
            name_ok(method)
                && key.as_deref().map_or(kind == WidgetKind::Button, name_ok)
                && metric.as_deref().is_none_or(name_ok)
        }
        Binding::Desired { key } => name_ok(key),
    };
    let options =
        if kind == WidgetKind::Select { (1..=20).contains(&c.options.len()) } else { c.options.len() <= 20 };
    binding
        && c.step.is_none_or(|s| s.is_finite() && s > 0.0)
        && c.timeout_secs.is_none_or(|t| (1..=3600).contains(&t))
        && c.press.as_ref().is_none_or(scalar)
        && c.options.iter().all(|o| scalar(&o.value) && (1..=40).contains(&o.label.trim().chars().count()))
        && options
}

/// A control's settings that hold for a widget of `kind`.
fn valid_control(kind: WidgetKind) -> impl Strategy<Value = Control> {
    let binding = prop_oneof![
        GOOD_NAME.prop_map(|key| Binding::Desired { key }),
        (GOOD_NAME, GOOD_NAME, prop::option::of(GOOD_NAME))
            .prop_map(|(method, key, metric)| Binding::Command { method, key: Some(key), metric }),
    ];
    let value = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        "[\\PC]{0,40}".prop_map(Value::String),
    ];
    let choice =
        ("[A-Za-z][A-Za-z ]{0,20}", value.clone()).prop_map(|(label, value)| Choice { label, value });
    let options = if kind == WidgetKind::Select { 1..=5usize } else { 0..=2 };
    (
        binding,
        prop::option::of(0.01f64..100.0),
        prop::collection::vec(choice, options),
        prop::option::of(value),
        any::<bool>(),
        prop::option::of(1u64..=3600),
    )
        .prop_map(|(binding, step, options, press, queue_offline, timeout_secs)| Control {
            binding,
            step,
            options,
            press,
            queue_offline,
            timeout_secs,
        })
}

/// The last minute to year, or fixed bounds from 1970 to 2100.
fn range_ok(r: TimeRange) -> bool {
    match r {
        TimeRange::Last { secs } => (60..=YEAR_SECS).contains(&secs),
        TimeRange::Between { from, to } => [from, to].iter().all(|t| (0..=4_102_444_800_000).contains(t)),
    }
}

/// Any range folded into the ones [`range_ok`] accepts.
fn sane(r: TimeRange) -> TimeRange {
    match r {
        TimeRange::Last { secs } => TimeRange::Last { secs: secs.rem_euclid(YEAR_SECS - 59) + 60 },
        TimeRange::Between { from, to } => TimeRange::Between {
            from: from.rem_euclid(4_102_444_800_001),
            to: to.rem_euclid(4_102_444_800_001),
        },
    }
}

fn any_kind() -> impl Strategy<Value = WidgetKind> {
    prop::sample::select(WidgetKind::ALL.to_vec())
}

fn any_range() -> impl Strategy<Value = TimeRange> {
    prop_oneof![
        (60..=YEAR_SECS).prop_map(|secs| TimeRange::Last { secs }),
        any::<i64>().prop_map(|secs| TimeRange::Last { secs }),
        (any::<i64>(), any::<i64>()).prop_map(|(from, to)| TimeRange::Between { from, to }),
    ]
}

fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |f| f.is_finite())
}

fn valid_widget(id: String) -> impl Strategy<Value = Widget> {
    (
        any_kind(),
        "\\PC{0,100}",
        prop::collection::vec(GOOD_NAME, 0..3),
        prop::collection::vec(GOOD_NAME, 0..3),
        prop::option::of("\\PC{0,16}"),
        any::<Option<u8>>(),
        prop::option::of(finite()),
        prop::option::of(finite()),
        prop::collection::vec((finite(), "#[0-9a-fA-F]{6}"), 0..=10),
        prop::option::of(any_range().prop_map(sane)),
    )
        .prop_flat_map(|fields| {
            let kind = fields.0;
            let control = if kind.is_control() {
                valid_control(kind).prop_map(Some).boxed()
            } else {
                Just(None).boxed()
            };
            (Just(fields), control)
        })
        .prop_map(
            move |(
                (kind, title, mut devices, metrics, unit, decimals, min, max, thresholds, range),
                control,
            )| {
                if control.is_some() {
                    devices.truncate(1);
                }
                Widget {
                    id: id.clone(),
                    kind,
                    title,
                    devices,
                    query: None,
                    metrics,
                    unit,
                    decimals,
                    min,
                    max,
                    thresholds: thresholds
                        .into_iter()
                        .map(|(value, color)| Threshold { value, color })
                        .collect(),
                    range,
                    control,
                }
            },
        )
}

/// Some of `ids`, each placed once, within `cols` columns.
fn placement_within(ids: Vec<String>, cols: u32) -> impl Strategy<Value = Vec<Placement>> {
    let n = ids.len();
    prop::sample::subsequence(ids, 0..=n).prop_flat_map(move |chosen| {
        chosen
            .into_iter()
            .map(|widget| {
                (1..=cols, any::<prop::sample::Index>(), 0u32..=1000, 1u32..=1000).prop_map(
                    move |(w, x, y, h)| Placement {
                        widget: widget.clone(),
                        x: x.index((cols - w + 1) as usize) as u32,
                        y,
                        w,
                        h,
                    },
                )
            })
            .collect::<Vec<_>>()
    })
}

/// A dashboard the rules accept.
fn valid_dashboard() -> impl Strategy<Value = Dashboard> {
    (
        prop::collection::btree_set(GOOD_NAME, 1..8),
        GOOD_NAME,
        "[A-Za-zé€😀][\\PC]{0,99}",
        any_range(),
        any::<i64>(),
    )
        .prop_flat_map(|(ids, id, name, range, updated)| {
            let ids: Vec<String> = ids.into_iter().collect();
            let widgets: Vec<_> = ids.iter().cloned().map(valid_widget).collect();
            let range = sane(range);
            (
                widgets,
                placement_within(ids.clone(), Breakpoint::Wide.cols()),
                placement_within(ids.clone(), Breakpoint::Medium.cols()),
                placement_within(ids, Breakpoint::Phone.cols()),
            )
                .prop_map(move |(widgets, wide, medium, phone)| Dashboard {
                    id: id.clone(),
                    name: name.clone(),
                    widgets,
                    layouts: Layouts { wide, medium, phone },
                    range,
                    updated,
                })
        })
}

/// One rule broken.
#[derive(Debug, Clone)]
enum Breakage {
    Id(String),
    BlankName(String),
    LongName,
    TooManyWidgets,
    DuplicateWidget,
    WidgetId(String),
    LongTitle,
    DeviceName(String),
    MetricName(String),
    LongUnit,
    TooManyThresholds,
    ThresholdValue(f64),
    ThresholdColor(String),
    Min(f64),
    UnknownWidget(String),
    PlacedTwice(Breakpoint),
    ZeroSize(bool),
    OffGrid(Breakpoint, u32, u32),
    TooLow(u32),
    TooTall(u32),
    Range(i64),
}

fn bad_name() -> impl Strategy<Value = String> {
    any_name().prop_filter("invalid", |s| !name_ok(s))
}

fn breakage() -> impl Strategy<Value = Breakage> {
    let bp = prop::sample::select(Breakpoint::ALL.to_vec());
    let non_finite = prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
    let off_grid = (bp.clone(), any::<u32>(), 1..=u32::MAX)
        .prop_filter("off the grid", |(bp, x, w)| u64::from(*x) + u64::from(*w) > u64::from(bp.cols()))
        .prop_map(|(bp, x, w)| Breakage::OffGrid(bp, x, w));
    prop_oneof![
        bad_name().prop_map(Breakage::Id),
        "[ \t\n\u{a0}\u{3000}]{0,5}".prop_map(Breakage::BlankName),
        Just(Breakage::LongName),
        Just(Breakage::TooManyWidgets),
        Just(Breakage::DuplicateWidget),
        bad_name().prop_map(Breakage::WidgetId),
        Just(Breakage::LongTitle),
        bad_name().prop_map(Breakage::DeviceName),
        bad_name().prop_map(Breakage::MetricName),
        Just(Breakage::LongUnit),
        Just(Breakage::TooManyThresholds),
        non_finite.clone().prop_map(Breakage::ThresholdValue),
        "[#0-9a-zA-Z ]{0,9}".prop_filter("bad colour", |s| !color_ok(s)).prop_map(Breakage::ThresholdColor),
        non_finite.prop_map(Breakage::Min),
        "[a-z]{1,8}".prop_map(|s| Breakage::UnknownWidget(format!("ghost-{s}"))),
        bp.clone().prop_map(Breakage::PlacedTwice),
        any::<bool>().prop_map(Breakage::ZeroSize),
        off_grid.clone(),
        off_grid,
        (Just(u32::MAX), 1u32..=12).prop_map(|(x, w)| Breakage::OffGrid(Breakpoint::Wide, x - w + 1, w)),
        (1001..=u32::MAX).prop_map(Breakage::TooLow),
        (1001..=u32::MAX).prop_map(Breakage::TooTall),
        any::<i64>().prop_filter("out of range", |s| !(60..=YEAR_SECS).contains(s)).prop_map(Breakage::Range),
    ]
}

fn break_dashboard(d: &mut Dashboard, b: Breakage) {
    let first = d.widgets[0].id.clone();
    let place = |x, y, w, h| Placement { widget: first.clone(), x, y, w, h };
    let w0 = &mut d.widgets[0];
    match b {
        Breakage::Id(s) => d.id = s,
        Breakage::BlankName(s) => d.name = s,
        Breakage::LongName => d.name = "n".repeat(101),
        Breakage::TooManyWidgets => {
            let w = w0.clone();
            d.widgets = (0..=MAX_WIDGETS).map(|i| Widget { id: format!("w{i}"), ..w.clone() }).collect();
        }
        Breakage::DuplicateWidget => {
            let w = w0.clone();
            d.widgets.push(w);
        }
        Breakage::WidgetId(s) => w0.id = s,
        Breakage::LongTitle => w0.title = "é".repeat(101),
        Breakage::DeviceName(s) => w0.devices.push(s),
        Breakage::MetricName(s) => w0.metrics.push(s),
        Breakage::LongUnit => w0.unit = Some("u".repeat(17)),
        Breakage::TooManyThresholds => {
            w0.thresholds = vec![Threshold { value: 1.0, color: "#000000".into() }; 11];
        }
        Breakage::ThresholdValue(v) => w0.thresholds.push(Threshold { value: v, color: "#00ff00".into() }),
        Breakage::ThresholdColor(c) => w0.thresholds.push(Threshold { value: 1.0, color: c }),
        Breakage::Min(v) => w0.min = Some(v),
        Breakage::UnknownWidget(s) => d.layouts.phone.push(Placement { widget: s, x: 0, y: 0, w: 1, h: 1 }),
        Breakage::PlacedTwice(bp) => {
            let places = d.layouts.get_mut(bp);
            places.extend([place(0, 0, 1, 1), place(0, 2, 1, 1)]);
        }
        Breakage::ZeroSize(zero_w) => {
            d.layouts.wide.push(if zero_w { place(0, 0, 0, 1) } else { place(0, 0, 1, 0) });
        }
        Breakage::OffGrid(bp, x, w) => d.layouts.get_mut(bp).push(place(x, 0, w, 1)),
        Breakage::TooLow(y) => d.layouts.medium.push(place(0, y, 1, 1)),
        Breakage::TooTall(h) => d.layouts.medium.push(place(0, 0, 1, h)),
        Breakage::Range(secs) => d.range = TimeRange::Last { secs },
    }
}

/// Dashboards anywhere between sound and absurd.
fn wild_dashboard() -> impl Strategy<Value = Dashboard> {
    let id = || prop_oneof![3 => prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from), 1 => any_name()];
    let num =
        || prop_oneof![3 => 0u32..16, 1 => 995u32..1005, 1 => any::<u32>(), 1 => (u32::MAX - 16)..=u32::MAX];
    let placement =
        (id(), num(), num(), num(), num()).prop_map(|(widget, x, y, w, h)| Placement { widget, x, y, w, h });
    let places = || prop::collection::vec(placement.clone(), 0..5);
    let regex = |r: &str| proptest::string::string_regex(r).unwrap();
    let text = |n: usize| prop_oneof![regex(&format!("\\PC{{0,{}}}", n + 2)), regex("[ \t]{0,3}")];
    let f = || prop_oneof![finite(), prop::sample::select(vec![f64::NAN, f64::INFINITY, -f64::INFINITY])];
    let widget = (
        id(),
        any_kind(),
        text(100),
        prop::collection::vec(any_name(), 0..2),
        prop::collection::vec(any_name(), 0..2),
        prop::option::of(text(16)),
        prop::option::of(f()),
        prop::option::of(f()),
        prop::collection::vec((f(), prop_oneof!["#[0-9a-fA-F]{6}", "[#0-9a-g]{0,8}"]), 0..12),
        prop::option::of(prop_oneof![text(40), regex("[ a-z:=!<>()\"*-]{0,40}")]),
    )
        .prop_map(|(id, kind, title, devices, metrics, unit, min, max, thresholds, query)| Widget {
            id,
            kind,
            title,
            devices,
            query,
            metrics,
            unit,
            decimals: None,
            min,
            max,
            thresholds: thresholds.into_iter().map(|(value, color)| Threshold { value, color }).collect(),
            range: None,
            control: None,
        });
    (id(), text(100), prop::collection::vec(widget, 0..5), places(), places(), places(), any_range())
        .prop_map(|(id, name, widgets, wide, medium, phone, range)| Dashboard {
            id,
            name,
            widgets,
            layouts: Layouts { wide, medium, phone },
            range,
            updated: 0,
        })
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn sound_dashboards_are_accepted(d in valid_dashboard()) {
        prop_assert!(dashboard_ok(&d));
        prop_assert_eq!(d.validate(), Ok(()));
        // And what the browser sends (JSON) reads back as a dashboard that is still sound.
        let back: Dashboard = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        prop_assert_eq!(back.validate(), Ok(()));
    }

    #[test]
    fn broken_dashboards_are_refused(mut d in valid_dashboard(), b in breakage()) {
        break_dashboard(&mut d, b.clone());
        prop_assert!(!dashboard_ok(&d), "{:?} did not break the oracle", b);
        let got = d.validate();
        prop_assert!(got.is_err(), "{:?} accepted", b);
        prop_assert!(!got.unwrap_err().to_string().is_empty());
    }

    #[test]
    fn wild_dashboards_match_the_rules(d in wild_dashboard()) {
        prop_assert_eq!(d.validate().is_ok(), dashboard_ok(&d), "{:?}", d.validate());
    }

    /// Dashboard JSON from a client: arbitrary edits never make parsing or validation panic,
    /// and whatever still parses is judged by the rules.
    #[test]
    fn dashboard_json_mutated(d in valid_dashboard(), edits in edits()) {
        let bytes = apply(serde_json::to_vec(&d).unwrap(), &edits);
        if let Ok(d) = serde_json::from_slice::<Dashboard>(&bytes) {
            prop_assert_eq!(d.validate().is_ok(), dashboard_ok(&d));
        }
    }

    #[test]
    fn dashboard_json_arbitrary(v in any_json()) {
        if let Ok(d) = serde_json::from_value::<Dashboard>(v) {
            prop_assert_eq!(d.validate().is_ok(), dashboard_ok(&d));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// History bucketing (the client chooses `max_points` and the range).
// ---------------------------------------------------------------------------------------------

/// Buckets of `width` aligned to multiples of it that `[from, to]` touches.
fn buckets_touched(from: Millis, to: Millis, width: Millis) -> i64 {
    to.div_euclid(width) - from.div_euclid(width) + 1
}

fn check_bucketing(from: Millis, to: Millis, max_points: usize) -> Result<(), TestCaseError> {
    let width = history::bucket_width(from, to, max_points);
    prop_assert!(width >= 1);
    let touched = buckets_touched(from, to, width);
    let max = max_points.clamp(2, MAX_POINTS) as i64;
    prop_assert!(touched <= max, "[{from}, {to}] in {touched} buckets of {width}, max {max_points}");
    // Readings at both ends and at every bucket start in between: one bucket each.
    let first = from.div_euclid(width) * width;
    let points: Vec<(Millis, f64)> = std::iter::once(from)
        .chain((1..touched).map(|i| first + i * width))
        .chain(std::iter::once(to))
        .map(|t| (t, t as f64))
        .collect();
    let buckets = history::downsample(points.iter().copied(), width);
    prop_assert_eq!(buckets.len() as i64, touched);
    prop_assert!(buckets.windows(2).all(|w| w[0].t < w[1].t));
    prop_assert_eq!(buckets.iter().map(|b| u64::from(b.count)).sum::<u64>(), points.len() as u64);
    Ok(())
}

/// A zone with one change: `offsets.0` seconds east of UTC before `change`, `offsets.1` from
/// it (any of them, in quarter hours, up to ±14 hours).
#[derive(Debug)]
struct OneChange {
    offsets: (Millis, Millis),
    change: Millis,
}

impl OneChange {
    fn offset(&self, t: Millis) -> Millis {
        if t < self.change { self.offsets.0 } else { self.offsets.1 }
    }
}

impl LocalDays for OneChange {
    fn name(&self) -> &str {
        "Test/One_Change"
    }
    fn day_of(&self, t: Millis) -> Option<i64> {
        Some(t.checked_add(self.offset(t))?.div_euclid(DAY_MS))
    }
    fn day_start(&self, day: i64) -> Option<Millis> {
        let midnight = day.checked_mul(DAY_MS)?;
        let early = midnight - self.offsets.0;
        // A midnight the change skips: the day starts at the change.
        Some(if early < self.change { early } else { (midnight - self.offsets.1).max(self.change) })
    }
}

fn one_change() -> impl Strategy<Value = OneChange> {
    (-56i64..=56, -56i64..=56, 0i64..4_102_444_800_000)
        .prop_map(|(a, b, change)| OneChange { offsets: (a * 900_000, b * 900_000), change })
}

proptest! {
    #![proptest_config(config(256))]

    /// Local days in any zone (offsets, changes either way, midnights skipped or doubled):
    /// never more buckets than asked, starting at its local midnights, covering the range,
    /// and live readings land where a fold over the same edges puts them.
    #[test]
    fn local_days_never_more_buckets_than_asked(
        zone in one_change(),
        from_before_change in -40i64 * DAY_MS..40 * DAY_MS,
        span in 0i64..=YEAR_SECS * 1000,
        max_points in prop_oneof![2usize..40, 2usize..=MAX_POINTS],
        live in prop::collection::vec((0i64..3 * DAY_MS, -1000i32..1000), 0..30),
    ) {
        let from = zone.change + from_before_change;
        let to = from + span;
        let Some((width, edges)) = history::day_edges(from, to, max_points, &zone) else {
            prop_assert!(history::bucket_width(from, to, max_points) < DAY_MS);
            return Ok(());
        };
        prop_assert!(width >= history::bucket_width(from, to, max_points) && width % DAY_MS == 0);
        prop_assert!(edges.windows(2).all(|w| w[0] < w[1]), "increasing");
        prop_assert!(edges[0] <= from && *edges.last().unwrap() > to + 7 * DAY_MS - DAY_MS);
        let touched = edges.windows(2).filter(|w| w[1] > from && w[0] <= to).count();
        prop_assert!(touched <= max_points.clamp(2, MAX_POINTS), "{touched} buckets");
        let n = width / DAY_MS;
        for edge in &edges {
            let day = zone.day_of(*edge).unwrap();
            prop_assert_eq!(zone.day_start(day), Some(*edge), "a local midnight");
            // A skipped day's bucket starts at the next day's midnight.
            prop_assert!(day.rem_euclid(n) == 0 || zone.day_start(day - 1) == Some(*edge));
        }

        let mut h = History {
            device: "d".into(),
            metric: "m".into(),
            from,
            to,
            bucket_ms: width,
            buckets: Vec::new(),
            last_seq: 0,
            edges: edges.clone(),
            zone: Some(zone.name().into()),
        };
        let (mut t, mut all) = (to, Vec::new());
        for (dt, v) in live {
            t += dt;
            let before = h.clone();
            if !h.add_point(t, f64::from(v)) {
                prop_assert!(t >= *edges.last().unwrap());
                prop_assert_eq!(&h, &before, "refused: unchanged");
                break;
            }
            all.push((t, f64::from(v)));
            prop_assert_eq!(h.to - h.from, span, "the window keeps its span");
        }
        let want = history::downsample_between(all.iter().copied(), &edges);
        let kept: Vec<_> = want.into_iter().filter(|b| h.edges[0] <= b.t).collect();
        prop_assert_eq!(&h.buckets, &kept);
    }

    #[test]
    fn history_never_more_buckets_than_asked(
        from in 0i64..4_102_444_800_000,
        span in prop_oneof![0i64..10_000, 0i64..=YEAR_SECS * 1000],
        max_points in prop_oneof![2usize..20, 2usize..=MAX_POINTS, Just(MAX_POINTS), MAX_POINTS..usize::MAX],
    ) {
        check_bucketing(from, from + span, max_points)?;
    }

    /// Live points added one by one bucket exactly like the server's downsampling.
    #[test]
    fn history_live_points_match_downsampling(
        from in 0i64..4_102_444_800_000,
        span in 1i64..10_000_000,
        max_points in 2usize..200,
        steps in prop::collection::vec((0i64..200_000, -1000i32..1000), 1..60),
    ) {
        let to = from + span;
        let width = history::bucket_width(from, to, max_points);
        let mut h = History {
            device: "d".into(),
            metric: "m".into(),
            from,
            to,
            bucket_ms: width,
            buckets: Vec::new(),
            last_seq: 0,
            edges: Vec::new(),
            zone: None,
        };
        let mut t = from;
        let mut all = Vec::new();
        for (dt, v) in steps {
            t += dt;
            prop_assert!(h.add_point(t, f64::from(v)), "without edges every reading fits");
            all.push((t, f64::from(v)));
            prop_assert_eq!(h.to - h.from, span, "the window keeps its span");
            prop_assert!(h.to >= t);
            prop_assert!(h.buckets.windows(2).all(|w| w[0].t < w[1].t));
            prop_assert!(
                h.buckets.iter().all(|b| b.t.rem_euclid(width) == 0 && b.t + width > h.from && b.t <= h.to)
            );
        }
        // Time only moves forward here, so every point was inside the window when it came.
        let want = history::downsample(all.iter().copied(), width);
        let trimmed: Vec<_> = want.into_iter().filter(|b| b.t + width > h.from).collect();
        prop_assert_eq!(h.buckets.len(), trimmed.len());
        for (got, want) in h.buckets.iter().zip(&trimmed) {
            prop_assert_eq!(
                (got.t, got.count, got.min, got.max, got.last),
                (want.t, want.count, want.min, want.max, want.last)
            );
            prop_assert!((got.avg - want.avg).abs() <= 1e-9 * want.avg.abs().max(1.0));
        }
        prop_assert!(h.gap_threshold() >= 1);
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// `max_points` of 0 or 1 is taken as 2: two buckets at most.
    #[test]
    fn history_one_point(
        from in 0i64..4_102_444_800_000,
        span in 0i64..=YEAR_SECS * 1000,
        max_points in 0usize..=1,
    ) {
        check_bucketing(from, from + span, max_points)?;
    }
}
