//! Reading timestamps. Devices send RFC 3339 (`2025-12-19T12:21:20Z`, `...+01:00`), the seed's
//! naive form (`2025-12-19T12:21:20`, taken as UTC), Unix epoch seconds or milliseconds, or
//! nothing. Anything missing, unparseable, before 2000 or more than an hour in the future is
//! replaced by the server's receive time, so one device's bad clock cannot scramble a chart.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Millis;

/// 2000-01-01T00:00:00Z: anything earlier is an unset device clock.
pub const EARLIEST: Millis = 946_684_800_000;
/// How far ahead of the server's clock a device's clock may run.
pub const MAX_AHEAD_MS: Millis = 60 * 60 * 1000;

/// Where a stored reading's time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampSource {
    /// The device's own timestamp.
    Device,
    /// No timestamp sent: receive time.
    Missing,
    /// A timestamp that could not be read: receive time.
    Unparseable,
    /// Before 2000 or more than an hour ahead: receive time.
    OutOfRange,
}

impl TimestampSource {
    pub fn label(self) -> &'static str {
        match self {
            TimestampSource::Device => "device",
            TimestampSource::Missing => "missing",
            TimestampSource::Unparseable => "unparseable",
            TimestampSource::OutOfRange => "out_of_range",
        }
    }
}

/// Parses a timestamp string: RFC 3339 with offset, or a naive date-time taken as UTC.
pub fn parse_str(s: &str) -> Option<Millis> {
    let s = s.trim();
    if let Some(t) = parse_naive(s) {
        return Some(t);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    None
}

/// The seed's form, `2025-12-19T12:21:20` (or with a space), optionally with a fraction of up
/// to nine digits (`...:20.250`), read without a format string: most devices send it, so it is
/// the ingest hot path. Anything else, or anything this cannot read (a leap second), is left to
/// [`parse_str`]'s general path.
fn parse_naive(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let digits = |d: &[u8]| -> Option<u32> {
        d.iter().try_fold(0u32, |n, d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    let num = |from: usize, to: usize| digits(&b[from..to]);
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            digits(fraction)? * 10u32.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(num(0, 4)?).ok()?, num(5, 7)?, num(8, 10)?)?;
    let time = NaiveTime::from_hms_nano_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?, nanos)?;
    Some(NaiveDateTime::new(date, time).and_utc().timestamp_millis())
}

/// Unix time as a number: seconds (possibly fractional), or milliseconds when it is too
/// large to be seconds of this era.
fn from_epoch_number(n: f64) -> Option<Millis> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let ms = if n >= 1e11 { n } else { n * 1000.0 };
    // Nearest, not truncated: 1089574918.929 s times 1000 is 1089574918928.9999 in binary.
    (ms < 1e15).then_some(ms.round() as Millis)
}

/// Decides a reading's time from the payload's `timestamp` field and the receive time.
pub fn resolve(field: Option<&Value>, received: Millis) -> (Millis, TimestampSource) {
    let parsed = match field {
        None | Some(Value::Null) => return (received, TimestampSource::Missing),
        Some(Value::String(s)) => parse_str(s),
        Some(Value::Number(n)) => n.as_f64().and_then(from_epoch_number),
        Some(_) => None,
    };
    match parsed {
        None => (received, TimestampSource::Unparseable),
        Some(t) if !(EARLIEST..=received + MAX_AHEAD_MS).contains(&t) => {
            (received, TimestampSource::OutOfRange)
        }
        Some(t) => (t, TimestampSource::Device),
    }
}

/// Formats a time as RFC 3339 UTC with milliseconds. chrono's RFC 3339 writer, not its
/// pattern formatter: the pattern parser would go into the dashboard's WASM, which shows these.
pub fn format_utc(t: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(t)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: Millis = 1_766_146_880_000; // 2025-12-19T12:21:20Z

    #[test]
    fn seed_naive_timestamp_is_utc() {
        assert_eq!(parse_str("2025-12-19T12:21:20"), Some(NOW));
        assert_eq!(parse_str("2025-12-19 12:21:20.250"), Some(NOW + 250));
    }

    #[test]
    fn the_seed_form_reads_as_the_general_path_does() {
        for s in [
            "2025-12-19T12:21:20",
            "2025-12-19 12:21:20",
            "2000-02-29T23:59:59",
            "2024-01-01T00:00:00",
            "2025-02-29T12:00:00",
            "2025-13-01T12:00:00",
            "2025-12-19T24:00:00",
            "2025-12-19T12:21:60",
            "2025-12-19T12:21:2x",
            "2025-12-19X12:21:20",
            "+025-12-19T12:21:20",
            "2025-12-19T12:21:20.250",
            "2025-12-19 12:21:20.5",
            "2025-12-19T12:21:20.999999999",
            "2025-12-19T12:21:20.0000000009",
            "2025-12-19T12:21:20.",
            "2025-12-19T12:21:20.25x",
            "2025-12-19T12:21:20,250",
            "2025-12-19T12:21:60.500",
        ] {
            let general = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                .map(|t| t.and_utc().timestamp_millis());
            assert_eq!(parse_str(s), general, "{s}");
        }
        assert_eq!(parse_naive("2025-12-19T12:21:20"), Some(NOW));
        assert_eq!(parse_naive("2025-12-19T12:21:20.250"), Some(NOW + 250), "milliseconds");
        assert_eq!(parse_naive("2025-12-19T12:21:60"), None, "leap seconds take the general path");
    }

    #[test]
    fn rfc3339_offsets_are_honoured() {
        assert_eq!(parse_str("2025-12-19T12:21:20Z"), Some(NOW));
        assert_eq!(parse_str("2025-12-19T13:21:20+01:00"), Some(NOW));
        assert_eq!(parse_str("2025-12-19T12:21:20.5-00:00"), Some(NOW + 500));
    }

    #[test]
    fn epoch_seconds_and_millis() {
        assert_eq!(resolve(Some(&json!(1_766_146_880)), NOW), (NOW, TimestampSource::Device));
        assert_eq!(resolve(Some(&json!(NOW)), NOW), (NOW, TimestampSource::Device));
        assert_eq!(resolve(Some(&json!(1_766_146_880.25)), NOW + 1000), (NOW + 250, TimestampSource::Device));
    }

    #[test]
    fn missing_bad_and_out_of_range_use_receive_time() {
        assert_eq!(resolve(None, NOW), (NOW, TimestampSource::Missing));
        assert_eq!(resolve(Some(&json!(null)), NOW), (NOW, TimestampSource::Missing));
        assert_eq!(resolve(Some(&json!("yesterday")), NOW), (NOW, TimestampSource::Unparseable));
        assert_eq!(resolve(Some(&json!(true)), NOW), (NOW, TimestampSource::Unparseable));
        assert_eq!(resolve(Some(&json!("1999-12-31T23:59:59Z")), NOW), (NOW, TimestampSource::OutOfRange));
        assert_eq!(resolve(Some(&json!("1970-01-01T00:00:00")), NOW), (NOW, TimestampSource::OutOfRange));
        let ahead = format_utc(NOW + MAX_AHEAD_MS + 1);
        assert_eq!(resolve(Some(&json!(ahead)), NOW), (NOW, TimestampSource::OutOfRange));
        let just_ok = format_utc(NOW + MAX_AHEAD_MS);
        assert_eq!(resolve(Some(&json!(just_ok)), NOW), (NOW + MAX_AHEAD_MS, TimestampSource::Device));
    }

    #[test]
    fn format_round_trips() {
        assert_eq!(format_utc(NOW + 7), "2025-12-19T12:21:20.007Z");
        assert_eq!(format_utc(EARLIEST), "2000-01-01T00:00:00.000Z");
        assert_eq!(format_utc(EARLIEST - 1), "1999-12-31T23:59:59.999Z");
        assert_eq!(format_utc(i64::MAX), i64::MAX.to_string());
        assert_eq!(parse_str(&format_utc(NOW + 7)), Some(NOW + 7));
    }
}
