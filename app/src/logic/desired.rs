//! A device's desired state as the device page shows and edits it: the sync state in words,
//! and the merge patch one edit makes (one key set or removed), with its bounds checked before
//! the server sees it.

use serde_json::{Map, Value};
use telemetry::desired::{Shadow, Sync};

use super::format;

/// Longest key the page sets.
pub const MAX_KEY_LEN: usize = 64;
/// Largest value the page sets, as JSON text.
pub const MAX_VALUE_BYTES: usize = 1024;

/// Whether `key` is 1 to 64 of `A-Z a-z 0-9 _ . -`.
pub fn valid_key(key: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Why an edit is refused before it is sent: each says which status it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditRefusal {
    /// A key that is not 1 to 64 of `A-Z a-z 0-9 _ . -`, or no value, or `null` (422).
    Invalid(String),
    /// A value over [`MAX_VALUE_BYTES`] (413).
    TooLarge(String),
    /// A value that is not JSON (400).
    NotJson(String),
}

/// The merge patch setting `key` to the JSON `value`, or removing it (`{"key": null}`).
pub fn patch(key: &str, value: &str, remove: bool) -> Result<Value, EditRefusal> {
    if !valid_key(key) {
        return Err(EditRefusal::Invalid(format!(
            "a key is 1 to {MAX_KEY_LEN} letters, digits, '_', '.' or '-'"
        )));
    }
    let value = match remove {
        true => Value::Null,
        false => {
            if value.len() > MAX_VALUE_BYTES {
                return Err(EditRefusal::TooLarge(format!(
                    "a value is at most {MAX_VALUE_BYTES} bytes of JSON"
                )));
            }
            if value.trim().is_empty() {
                return Err(EditRefusal::Invalid("give a value (JSON: 30, true, \"eco\")".into()));
            }
            let parsed: Value = serde_json::from_str(value).map_err(|e| {
                EditRefusal::NotJson(format!("the value is not JSON ({e}); text needs quotes: \"eco\""))
            })?;
            if parsed.is_null() {
                return Err(EditRefusal::Invalid("null removes a key: use Remove key".into()));
            }
            parsed
        }
    };
    Ok(Value::Object(Map::from_iter([(key.to_owned(), value)])))
}

/// Most differing keys a "Rejected" names.
const NAMED: usize = 3;

/// How the device stands against its desired state, in words: "In sync", "Pending since 12:03
/// (the device has not reported version 4)", "Rejected: the device reports interval_s = 10
/// (wanted 30)".
pub fn sync_text(shadow: &Shadow, local: bool) -> String {
    match shadow.sync() {
        Sync::InSync => "In sync".into(),
        Sync::Unknown if shadow.v == 0 => "Nothing desired yet, and the device has not reported".into(),
        Sync::Unknown => {
            format!("Pending: the device has never reported (it should apply version {})", shadow.v)
        }
        Sync::Pending => {
            let since =
                shadow.updated_at.map(|t| format!(" since {}", format::clock(t, local))).unwrap_or_default();
            format!("Pending{since} (the device has not reported version {})", shadow.v)
        }
        Sync::Rejected => rejected(shadow),
    }
}

fn rejected(shadow: &Shadow) -> String {
    let Some(reported) = &shadow.reported else { return "Rejected".into() };
    if reported.v != shadow.v {
        return format!("Rejected: the device reports version {}, not {}", reported.v, shadow.v);
    }
    let differing: Vec<String> = shadow
        .state
        .iter()
        .filter(|(k, want)| reported.state.get(*k) != Some(*want))
        .map(|(k, want)| match reported.state.get(k) {
            Some(has) => format!("{k} = {has} (wanted {want})"),
            None => format!("no {k} (wanted {want})"),
        })
        .collect();
    let more = differing.len().saturating_sub(NAMED);
    let mut text =
        format!("Rejected: the device reports {}", differing[..differing.len().min(NAMED)].join(", "));
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

/// A state's entries as the page lists them: key and compact JSON value, in key order.
pub fn entries(state: &Map<String, Value>) -> Vec<(String, String)> {
    state.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use telemetry::desired::Reported;

    use super::*;

    fn shadow(v: u64, state: Value, reported: Option<(u64, Value)>) -> Shadow {
        let map = |v: Value| v.as_object().cloned().unwrap_or_default();
        Shadow {
            device: "d".into(),
            v,
            state: map(state),
            updated_by: Some("ann".into()),
            updated_at: Some(1_765_000_000_000),
            reported: reported.map(|(v, s)| Reported { v, state: map(s), at: 1_765_000_100_000 }),
        }
    }

    #[test]
    fn an_edit_is_one_key_set_or_removed_within_bounds() {
        assert_eq!(patch("interval_s", "30", false), Ok(json!({"interval_s": 30})));
        assert_eq!(patch("mode", "\"eco\"", false), Ok(json!({"mode": "eco"})));
        assert_eq!(patch("relay.1", "ignored", true), Ok(json!({"relay.1": null})));
        let status = |r: Result<Value, EditRefusal>| match r {
            Ok(_) => 200,
            Err(EditRefusal::NotJson(_)) => 400,
            Err(EditRefusal::TooLarge(_)) => 413,
            Err(EditRefusal::Invalid(_)) => 422,
        };
        assert_eq!(status(patch("", "1", false)), 422);
        assert_eq!(status(patch("a b", "1", false)), 422);
        assert_eq!(status(patch(&"k".repeat(65), "1", false)), 422);
        assert!(patch(&"k".repeat(64), "1", false).is_ok());
        assert_eq!(status(patch("k", "", false)), 422);
        assert_eq!(status(patch("k", "null", false)), 422);
        assert_eq!(status(patch("k", "eco", false)), 400);
        let big = format!("\"{}\"", "x".repeat(MAX_VALUE_BYTES));
        assert_eq!(status(patch("k", &big, false)), 413);
    }

    #[test]
    fn the_sync_state_reads_as_words() {
        assert_eq!(
            sync_text(&shadow(0, json!({}), None), false),
            "Nothing desired yet, and the device has not reported"
        );
        let pending = shadow(4, json!({"interval_s": 30}), Some((3, json!({"interval_s": 10}))));
        assert_eq!(
            sync_text(&pending, false),
            "Pending since 05:46:40 UTC (the device has not reported version 4)"
        );
        let in_sync = shadow(4, json!({"interval_s": 30}), Some((4, json!({"interval_s": 30, "fw": "1.2"}))));
        assert_eq!(sync_text(&in_sync, false), "In sync");
        let rejected =
            shadow(4, json!({"interval_s": 30, "mode": "eco"}), Some((4, json!({"interval_s": 10}))));
        assert_eq!(
            sync_text(&rejected, false),
            "Rejected: the device reports interval_s = 10 (wanted 30), no mode (wanted \"eco\")"
        );
        let ahead = shadow(4, json!({}), Some((6, json!({}))));
        assert_eq!(sync_text(&ahead, false), "Rejected: the device reports version 6, not 4");
    }
}
