//! Desired and reported state (device shadow): what an operator wants a device's settings to
//! be (`{"interval_s": 30, "relay": true}`), versioned, and what the device last said is in
//! force. The server sends `{"v":N,"state":{…}}` on `app/device/<id>/desired`; the device
//! applies what it can and publishes `{"v":N,"state":{…}}` on `app/device/<id>/reported`, `v`
//! being the last desired version it applied. An empty publish on `app/device/<id>/desired/get`
//! asks for the desired state again.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Millis;

/// Largest desired (or reported) state, as compact JSON.
pub const MAX_STATE_BYTES: usize = 4096;
/// Most keys in a desired (or reported) state.
pub const MAX_KEYS: usize = 64;
/// Largest `reported` message read (its state is bounded as above).
pub const MAX_REPORTED_BYTES: usize = MAX_STATE_BYTES + 64;

/// A device's desired state as stored, with the last state it reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shadow {
    pub device: String,
    /// Desired version: 0 before any change, +1 per change.
    pub v: u64,
    pub state: Map<String, Value>,
    /// Who made the latest change, and when (server time); `None` before any.
    pub updated_by: Option<String>,
    pub updated_at: Option<Millis>,
    pub reported: Option<Reported>,
}

/// What a device last reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reported {
    pub v: u64,
    pub state: Map<String, Value>,
    /// Server time it arrived.
    pub at: Millis,
}

/// How the reported state stands against the desired one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sync {
    /// The device applied this version and reports every desired key at its desired value.
    InSync,
    /// The device has not reported this version yet.
    Pending,
    /// The device applied this version, but some desired key differs (or is missing).
    Rejected,
    /// The device never reported.
    Unknown,
}

impl Shadow {
    pub fn new(device: &str) -> Shadow {
        Shadow {
            device: device.to_owned(),
            v: 0,
            state: Map::new(),
            updated_by: None,
            updated_at: None,
            reported: None,
        }
    }

    pub fn sync(&self) -> Sync {
        let Some(reported) = &self.reported else { return Sync::Unknown };
        if reported.v < self.v {
            return Sync::Pending;
        }
        let matches = self.state.iter().all(|(k, want)| reported.state.get(k) == Some(want));
        if reported.v == self.v && matches { Sync::InSync } else { Sync::Rejected }
    }

    /// Since when the device has been behind: the desired change it has not reported yet.
    pub fn pending_since(&self) -> Option<Millis> {
        (self.sync() == Sync::Pending).then_some(self.updated_at).flatten()
    }

    /// What the device is sent: `{"v":N,"state":{…}}`.
    pub fn payload(&self) -> String {
        format!(r#"{{"v":{},"state":{}}}"#, self.v, Value::Object(self.state.clone()))
    }

    /// The API's view: the shadow with its sync state.
    pub fn view(&self) -> Value {
        serde_json::json!({
            "device": self.device,
            "v": self.v,
            "state": self.state,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at,
            "reported": self.reported,
            "sync": self.sync(),
            "pending_since": self.pending_since(),
        })
    }
}

/// Why a desired change or a report is not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesiredError {
    NotJson,
    /// The patch (or the state) is not a JSON object.
    NotObject,
    /// A key that is empty, over 64 bytes or holds control characters.
    BadKey,
    /// More than [`MAX_KEYS`] keys.
    TooManyKeys(usize),
    /// Over [`MAX_STATE_BYTES`] as JSON.
    TooLarge(usize),
    /// A report without a whole-number `v`.
    BadVersion,
}

impl std::fmt::Display for DesiredError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DesiredError::NotJson => f.write_str("not JSON"),
            DesiredError::NotObject => f.write_str("the state must be a JSON object"),
            DesiredError::BadKey => f.write_str("a key must be 1 to 64 bytes without control characters"),
            DesiredError::TooManyKeys(n) => write!(f, "more than {n} keys"),
            DesiredError::TooLarge(n) => write!(f, "the state is over {n} bytes as JSON"),
            DesiredError::BadVersion => f.write_str("`v` must be a whole number"),
        }
    }
}

impl DesiredError {
    /// Whether it is over a size bound (413) rather than malformed (422).
    pub fn is_size(&self) -> bool {
        matches!(self, DesiredError::TooLarge(_))
    }
}

/// Checks a whole state against the bounds.
pub fn check_state(state: &Map<String, Value>) -> Result<(), DesiredError> {
    if state.len() > MAX_KEYS {
        return Err(DesiredError::TooManyKeys(MAX_KEYS));
    }
    if state.keys().any(|k| k.is_empty() || k.len() > 64 || k.chars().any(char::is_control)) {
        return Err(DesiredError::BadKey);
    }
    let size = serde_json::to_string(state).map_or(usize::MAX, |s| s.len());
    if size > MAX_STATE_BYTES {
        return Err(DesiredError::TooLarge(MAX_STATE_BYTES));
    }
    Ok(())
}

/// Applies a JSON merge patch (RFC 7396) to a state: a key set to `null` is deleted, an object
/// merged into an object key by key, anything else replaces. The patch must be an object.
/// Answers the new state, checked against the bounds.
pub fn merge_patch(state: &Map<String, Value>, patch: &Value) -> Result<Map<String, Value>, DesiredError> {
    let Value::Object(patch) = patch else { return Err(DesiredError::NotObject) };
    let mut out = state.clone();
    merge_into(&mut out, patch);
    check_state(&out)?;
    Ok(out)
}

fn merge_into(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(inner) => {
                let mut base = match target.remove(key) {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                merge_into(&mut base, inner);
                target.insert(key.clone(), Value::Object(base));
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

/// A desired-state topic under a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DesiredTopic {
    /// `app/device/<id>/desired`: server to device.
    Desired,
    /// `app/device/<id>/desired/get`: the device asks for it again.
    Get,
    /// `app/device/<id>/reported`: what the device applied.
    Reported,
}

/// A desired-state topic's device id (not checked) and kind, if `topic` is one.
pub fn desired_parts(topic: &str) -> Option<(&str, DesiredTopic)> {
    let rest = topic.strip_prefix(crate::topic::DEVICE_PREFIX)?;
    if let Some(device) = rest.strip_suffix("/desired/get") {
        return (!device.contains('/')).then_some((device, DesiredTopic::Get));
    }
    let (device, kind) = rest.split_once('/')?;
    match kind {
        "desired" => Some((device, DesiredTopic::Desired)),
        "reported" => Some((device, DesiredTopic::Reported)),
        _ => None,
    }
}

pub fn desired_topic(device: &str) -> String {
    format!("{}{device}/desired", crate::topic::DEVICE_PREFIX)
}

/// The device whose desired state `filter` subscribes to: `app/device/<id>/desired` or
/// `app/device/<id>/#`. A filter over many devices names none.
pub fn desired_subscriber(filter: &str) -> Option<&str> {
    let rest = filter.strip_prefix(crate::topic::DEVICE_PREFIX)?;
    let (device, tail) = rest.split_once('/')?;
    (matches!(tail, "desired" | "#") && crate::valid_name(device).is_ok()).then_some(device)
}

/// Reads a device's `reported` message: `{"v": N, "state": {…}}`, the state bounded.
pub fn parse_reported(payload: &[u8]) -> Result<(u64, Map<String, Value>), DesiredError> {
    if payload.len() > MAX_REPORTED_BYTES {
        return Err(DesiredError::TooLarge(MAX_STATE_BYTES));
    }
    let value: Value = serde_json::from_slice(payload).map_err(|_| DesiredError::NotJson)?;
    let Value::Object(mut top) = value else { return Err(DesiredError::NotObject) };
    let v = top.get("v").and_then(Value::as_u64).ok_or(DesiredError::BadVersion)?;
    let Some(Value::Object(state)) = top.remove("state") else { return Err(DesiredError::NotObject) };
    check_state(&state)?;
    Ok((v, state))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_merge_patch_sets_merges_and_deletes_with_null() {
        let state = map(json!({"interval_s": 10, "led": {"r": 1, "g": 2}, "relay": false}));
        let patched =
            merge_patch(&state, &json!({"interval_s": 30, "led": {"g": null, "b": 3}, "relay": null}))
                .unwrap();
        assert_eq!(Value::Object(patched), json!({"interval_s": 30, "led": {"r": 1, "b": 3}}));
        assert_eq!(merge_patch(&state, &json!([1])), Err(DesiredError::NotObject));
    }

    #[test]
    fn states_are_bounded() {
        let many: Map<String, Value> = (0..=MAX_KEYS).map(|i| (format!("k{i}"), json!(1))).collect();
        assert_eq!(merge_patch(&Map::new(), &Value::Object(many)), Err(DesiredError::TooManyKeys(MAX_KEYS)));
        let big = json!({"s": "x".repeat(MAX_STATE_BYTES)});
        assert_eq!(merge_patch(&Map::new(), &big), Err(DesiredError::TooLarge(MAX_STATE_BYTES)));
        assert_eq!(merge_patch(&Map::new(), &json!({"": 1})), Err(DesiredError::BadKey));
        assert_eq!(parse_reported(br#"{"state":{}}"#), Err(DesiredError::BadVersion));
        assert_eq!(parse_reported(b"nope"), Err(DesiredError::NotJson));
        assert_eq!(parse_reported(br#"{"v":3,"state":{"a":1}}"#), Ok((3, map(json!({"a": 1})))));
    }

    #[test]
    fn topics_name_the_device_and_kind() {
        assert_eq!(desired_parts("app/device/d1/desired"), Some(("d1", DesiredTopic::Desired)));
        assert_eq!(desired_parts("app/device/d1/desired/get"), Some(("d1", DesiredTopic::Get)));
        assert_eq!(desired_parts("app/device/d1/reported"), Some(("d1", DesiredTopic::Reported)));
        assert_eq!(desired_parts("app/device/d1/telemetry"), None);
        assert_eq!(desired_parts("app/device/a/b/desired/get"), None);
        assert_eq!(desired_subscriber("app/device/d1/desired"), Some("d1"));
        assert_eq!(desired_subscriber("app/device/d1/#"), Some("d1"));
        assert_eq!(desired_subscriber("app/device/+/desired"), None);
        assert_eq!(desired_topic("d1"), "app/device/d1/desired");
    }

    #[test]
    fn sync_compares_versions_then_values() {
        let mut shadow = Shadow::new("d1");
        assert_eq!(shadow.sync(), Sync::Unknown);
        shadow.v = 2;
        shadow.updated_at = Some(500);
        shadow.state = map(json!({"interval_s": 30}));
        shadow.reported = Some(Reported { v: 1, state: map(json!({"interval_s": 10})), at: 9 });
        assert_eq!((shadow.sync(), shadow.pending_since()), (Sync::Pending, Some(500)));
        shadow.reported = Some(Reported { v: 2, state: map(json!({"interval_s": 30, "x": 1})), at: 9 });
        assert_eq!((shadow.sync(), shadow.pending_since()), (Sync::InSync, None));
        shadow.reported = Some(Reported { v: 2, state: map(json!({"interval_s": 10})), at: 9 });
        assert_eq!(shadow.sync(), Sync::Rejected);
        assert_eq!(shadow.payload(), r#"{"v":2,"state":{"interval_s":30}}"#);
    }
}
