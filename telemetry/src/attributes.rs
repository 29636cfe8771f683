//! What a device says about itself on `app/device/<id>/attributes` (firmware, hardware, model,
//! MAC, IP, SSID, reset reason, boot count, …): a small JSON object of strings, numbers and
//! booleans, kept as the latest value of each with when it changed. A change of firmware,
//! reset reason or boot count, and a reboot seen in the `uptime_s` metric going down, become
//! [`DeviceEvent`]s on the device's page. Pure, so every store keeps them alike and replays
//! them alike after a crash.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Millis;
use crate::name::valid_name;

/// Largest attributes message.
pub const MAX_ATTRIBUTES_BYTES: usize = 2048;
/// Attributes one message may hold, and one device may have.
pub const MAX_ATTRIBUTES: usize = 32;
/// Longest text value, in bytes.
pub const MAX_TEXT_BYTES: usize = 128;
/// Attributes whose change is a device event.
pub const EVENT_ATTRIBUTES: [&str; 3] = ["fw", "reset_reason", "boot_count"];
/// The uptime metrics (seconds) whose drop is a reboot.
pub const UPTIME_METRICS: [&str; 2] = ["uptime_s", "uptime"];
/// Device events a store keeps per device (the oldest go first).
pub const MAX_DEVICE_EVENTS: usize = 50;

/// An attribute's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    Bool(bool),
    Number(f64),
    Text(String),
}

impl AttrValue {
    /// As text: the string itself, a number without a needless `.0`, `true` / `false`.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            AttrValue::Text(s) => Cow::Borrowed(s),
            AttrValue::Number(n) => Cow::Owned(n.to_string()),
            AttrValue::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        }
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// One attribute as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    pub name: String,
    pub value: AttrValue,
    /// Server time its value last changed (or was first reported).
    pub changed_at: Millis,
}

/// Why an attributes message was refused (all of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrError {
    TooLarge,
    NotJson,
    NotObject,
    TooMany,
    /// An attribute name that is not `[A-Za-z0-9_.-]{1,64}`.
    BadName,
    /// A value that is not a string of at most [`MAX_TEXT_BYTES`], a finite number or a bool.
    BadValue(String),
}

impl fmt::Display for AttrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrError::TooLarge => write!(f, "attributes over {MAX_ATTRIBUTES_BYTES} bytes"),
            AttrError::NotJson => f.write_str("attributes are not JSON"),
            AttrError::NotObject => f.write_str("attributes must be a JSON object"),
            AttrError::TooMany => write!(f, "more than {MAX_ATTRIBUTES} attributes"),
            AttrError::BadName => f.write_str("an attribute name is not [A-Za-z0-9_.-], 1 to 64 characters"),
            AttrError::BadValue(name) => write!(
                f,
                "attribute {} must be a string of at most {MAX_TEXT_BYTES} bytes, a number or true/false",
                crate::text::untrusted(name)
            ),
        }
    }
}

/// Reads an attributes message: a JSON object of at most [`MAX_ATTRIBUTES`] names, each a
/// string (up to [`MAX_TEXT_BYTES`]), a finite number or a bool; at most
/// [`MAX_ATTRIBUTES_BYTES`] in all. Sorted by name.
pub fn parse_attributes(payload: &[u8]) -> Result<Vec<(String, AttrValue)>, AttrError> {
    if payload.len() > MAX_ATTRIBUTES_BYTES {
        return Err(AttrError::TooLarge);
    }
    let value: Value = serde_json::from_slice(payload).map_err(|_| AttrError::NotJson)?;
    let Value::Object(map) = value else { return Err(AttrError::NotObject) };
    if map.len() > MAX_ATTRIBUTES {
        return Err(AttrError::TooMany);
    }
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        valid_name(&name).map_err(|_| AttrError::BadName)?;
        let value = match value {
            Value::String(s) if s.len() <= MAX_TEXT_BYTES => AttrValue::Text(s),
            Value::Bool(b) => AttrValue::Bool(b),
            Value::Number(n) => match n.as_f64() {
                Some(v) if v.is_finite() => AttrValue::Number(v),
                _ => return Err(AttrError::BadValue(name)),
            },
            _ => return Err(AttrError::BadValue(name)),
        };
        out.push((name, value));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Something that happened to a device, kept on its page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceEvent {
    pub device: String,
    /// Server time it was seen.
    pub at: Millis,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// One of [`EVENT_ATTRIBUTES`] changed.
    Attribute { name: String, from: AttrValue, to: AttrValue },
    /// Its uptime went down: it restarted.
    Reboot { uptime_before: f64, uptime_after: f64 },
}

impl DeviceEvent {
    /// What a person reads: "fw 1.4.1 → 1.4.2", "rebooted (uptime 3600 s → 12 s)".
    pub fn text(&self) -> String {
        match &self.kind {
            EventKind::Attribute { name, from, to } => format!("{name} {from} → {to}"),
            EventKind::Reboot { uptime_before, uptime_after } => {
                format!("rebooted (uptime {uptime_before} s → {uptime_after} s)")
            }
        }
    }
}

/// Folds a message's attributes, received at `at`, into a device's (kept sorted by name):
/// a changed or new value takes `at` as its change time. A new name beyond
/// [`MAX_ATTRIBUTES`] is left out. Answers what changed (to record and send live), and the
/// changes that are events.
pub fn merge(
    current: &mut Vec<Attribute>,
    incoming: &[(String, AttrValue)],
    at: Millis,
) -> (Vec<(String, AttrValue)>, Vec<EventKind>) {
    let (mut changed, mut events) = (Vec::new(), Vec::new());
    for (name, value) in incoming {
        match current.binary_search_by(|a| a.name.as_str().cmp(name)) {
            Ok(i) if current[i].value == *value => {}
            Ok(i) => {
                let from = std::mem::replace(&mut current[i].value, value.clone());
                current[i].changed_at = at;
                if EVENT_ATTRIBUTES.contains(&name.as_str()) {
                    events.push(EventKind::Attribute { name: name.clone(), from, to: value.clone() });
                }
                changed.push((name.clone(), value.clone()));
            }
            Err(_) if current.len() >= MAX_ATTRIBUTES => {}
            Err(i) => {
                current.insert(i, Attribute { name: name.clone(), value: value.clone(), changed_at: at });
                changed.push((name.clone(), value.clone()));
            }
        }
    }
    (changed, events)
}

/// A reboot, if a reading's uptime (at reading time `ts`) is below the latest one before it.
pub fn reboot(latest: Option<(f64, Millis)>, uptime: f64, ts: Millis) -> Option<EventKind> {
    let (before, before_ts) = latest?;
    (ts > before_ts && uptime < before)
        .then_some(EventKind::Reboot { uptime_before: before, uptime_after: uptime })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> AttrValue {
        AttrValue::Text(s.into())
    }

    #[test]
    fn an_object_of_strings_numbers_and_bools_is_read_sorted() {
        let got = parse_attributes(br#"{"fw": "1.4.2", "boot_count": 17, "ota": true, "rssi_min": -91.5}"#);
        assert_eq!(
            got,
            Ok(vec![
                ("boot_count".into(), AttrValue::Number(17.0)),
                ("fw".into(), text("1.4.2")),
                ("ota".into(), AttrValue::Bool(true)),
                ("rssi_min".into(), AttrValue::Number(-91.5)),
            ])
        );
        assert_eq!(parse_attributes(b"{}"), Ok(vec![]));
    }

    #[test]
    fn everything_else_is_refused_whole() {
        let long = format!(r#"{{"fw": "{}"}}"#, "x".repeat(MAX_TEXT_BYTES + 1));
        let many = format!(
            "{{{}}}",
            (0..=MAX_ATTRIBUTES).map(|i| format!(r#""a{i}": 1"#)).collect::<Vec<_>>().join(",")
        );
        let huge = format!(r#"{{"a": "{}"}}"#, "x".repeat(MAX_ATTRIBUTES_BYTES));
        for (payload, why) in [
            (&b"[1]"[..], AttrError::NotObject),
            (b"fw=1.4", AttrError::NotJson),
            (br#"{"f w": 1}"#, AttrError::BadName),
            (br#"{"": 1}"#, AttrError::BadName),
            (br#"{"fw": null}"#, AttrError::BadValue("fw".into())),
            (br#"{"fw": {"v": 1}}"#, AttrError::BadValue("fw".into())),
            (br#"{"fw": [1]}"#, AttrError::BadValue("fw".into())),
            (long.as_bytes(), AttrError::BadValue("fw".into())),
            (many.as_bytes(), AttrError::TooMany),
            (huge.as_bytes(), AttrError::TooLarge),
        ] {
            assert_eq!(parse_attributes(payload), Err(why), "{}", String::from_utf8_lossy(payload));
        }
    }

    #[test]
    fn merging_keeps_change_times_and_makes_events_of_firmware_and_resets() {
        let mut attrs = Vec::new();
        let first = [("fw".into(), text("1.4.1")), ("ip".into(), text("10.0.0.7"))];
        let (changed, events) = merge(&mut attrs, &first, 100);
        assert_eq!(changed.len(), 2);
        assert!(events.is_empty(), "the first report is no change");
        // Same again: nothing. Then a new firmware and a new address, and a boot count.
        assert_eq!(merge(&mut attrs, &first, 200), (vec![], vec![]));
        let next = [
            ("boot_count".into(), AttrValue::Number(3.0)),
            ("fw".into(), text("1.4.2")),
            ("ip".into(), text("10.0.0.9")),
        ];
        let (changed, events) = merge(&mut attrs, &next, 300);
        assert_eq!(changed.len(), 3);
        assert_eq!(
            events,
            [EventKind::Attribute { name: "fw".into(), from: text("1.4.1"), to: text("1.4.2") }]
        );
        let times: Vec<_> = attrs.iter().map(|a| (a.name.as_str(), a.changed_at)).collect();
        assert_eq!(times, [("boot_count", 300), ("fw", 300), ("ip", 300)]);
        let (_, events) = merge(&mut attrs, &[("boot_count".into(), AttrValue::Number(4.0))], 400);
        assert_eq!(
            events,
            [EventKind::Attribute {
                name: "boot_count".into(),
                from: AttrValue::Number(3.0),
                to: AttrValue::Number(4.0)
            }]
        );
        let event = DeviceEvent { device: "d".into(), at: 400, kind: events[0].clone() };
        assert_eq!(event.text(), "boot_count 3 → 4");
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"device":"d","at":400,"kind":"attribute","name":"boot_count","from":3.0,"to":4.0}"#
        );
        assert_eq!(serde_json::from_str::<DeviceEvent>(&json).unwrap(), event);
    }

    #[test]
    fn a_device_keeps_at_most_its_share_of_names() {
        let mut attrs = Vec::new();
        let many: Vec<(String, AttrValue)> =
            (0..MAX_ATTRIBUTES + 5).map(|i| (format!("a{i:02}"), AttrValue::Bool(true))).collect();
        merge(&mut attrs, &many, 1);
        assert_eq!(attrs.len(), MAX_ATTRIBUTES);
        let (changed, _) = merge(&mut attrs, &[("a00".into(), AttrValue::Bool(false))], 2);
        assert_eq!(changed.len(), 1, "known names still change");
    }

    #[test]
    fn an_uptime_that_goes_down_is_a_reboot() {
        assert_eq!(reboot(None, 5.0, 10), None);
        assert_eq!(reboot(Some((3_600.0, 10)), 3_660.0, 70), None);
        assert_eq!(
            reboot(Some((3_600.0, 10)), 12.0, 70),
            Some(EventKind::Reboot { uptime_before: 3_600.0, uptime_after: 12.0 })
        );
        assert_eq!(reboot(Some((3_600.0, 10)), 12.0, 5), None, "an older reading is no reboot");
    }

    #[test]
    fn the_fleet_reads_firmware_from_the_attributes() {
        let d = crate::DeviceSummary {
            attributes: vec![Attribute { name: "fw".into(), value: text("1.4.2"), changed_at: 1 }],
            ..Default::default()
        };
        assert_eq!(crate::fleet::firmware(&d).as_deref(), Some("1.4.2"));
        assert_eq!(crate::fleet::Facts::attribute(&d, "model"), None);
    }
}
