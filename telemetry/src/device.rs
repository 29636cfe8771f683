//! What the dashboard shows about a device: when it was first and last heard from, its
//! reported status, the latest value of every metric, and how often it is expected to report
//! (which says when it is stale).

use serde::{Deserialize, Serialize};

use crate::Millis;

/// A device whose interval is not known yet (one reading so far) is stale after this long.
pub const DEFAULT_STALE_MS: Millis = 60_000;
/// A device is stale once quiet for this many expected intervals ...
pub const STALE_INTERVALS: i64 = 3;
/// ... and never sooner than this after its last reading.
pub const STALE_FLOOR_MS: Millis = 30_000;
/// An interval set by hand: 10 s to a week.
pub const MIN_SET_INTERVAL_MS: Millis = 10_000;
pub const MAX_SET_INTERVAL_MS: Millis = 7 * 86_400_000;

/// How often a device is expected to report: set by hand on its page, else learned from when
/// its readings arrive ([`crate::rhythm`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<Millis>,
}

impl Interval {
    /// The interval that counts: the one set, else the one learned.
    pub fn expected(self) -> Option<Millis> {
        self.set.or(self.learned)
    }

    /// How long after its last reading the device is stale: [`STALE_INTERVALS`] expected
    /// intervals, at least [`STALE_FLOOR_MS`]; [`DEFAULT_STALE_MS`] while none is known.
    pub fn stale_after(self) -> Millis {
        self.expected().map_or(DEFAULT_STALE_MS, |i| i.saturating_mul(STALE_INTERVALS).max(STALE_FLOOR_MS))
    }
}

/// Reads an interval as a person writes it: seconds (`90`), or a number with `s`, `m`, `h` or
/// `d` (`90s`, `5m`, `1.5h`, `2d`); empty means none (learn it). Within
/// [`MIN_SET_INTERVAL_MS`]…[`MAX_SET_INTERVAL_MS`].
pub fn parse_interval(text: &str) -> Result<Option<Millis>, String> {
    let t = text.trim().to_ascii_lowercase();
    if t.is_empty() {
        return Ok(None);
    }
    let (number, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => t.split_at(i),
        None => (t.as_str(), "s"),
    };
    let scale = match unit.trim() {
        "s" | "sec" | "secs" => 1_000.0,
        "m" | "min" | "mins" => 60_000.0,
        "h" | "hr" | "hrs" => 3_600_000.0,
        "d" | "day" | "days" => 86_400_000.0,
        _ => return Err("write it as seconds, or with s, m, h or d (5m, 1h)".into()),
    };
    let value: f64 = number.trim().parse().map_err(|_| "not a number".to_owned())?;
    let ms = value * scale;
    if !ms.is_finite() || !(MIN_SET_INTERVAL_MS as f64..=MAX_SET_INTERVAL_MS as f64).contains(&ms) {
        return Err("between 10 s and 7 days".into());
    }
    Ok(Some(ms.round() as Millis))
}

/// Formats an interval as [`parse_interval`] reads it back: `90s`, `5m`, `1.5h`, `2d`.
pub fn format_interval(ms: Millis) -> String {
    let secs = (ms as f64 / 1000.0).round() as i64;
    match secs {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceSummary {
    pub id: String,
    /// Server time of the first accepted reading.
    pub first_seen: Millis,
    /// Server time of the latest accepted reading.
    pub last_seen: Millis,
    /// The latest `online`/`offline` from the device's status topic, if any.
    pub status: Option<DeviceStatus>,
    /// Messages stored (a redelivered message counts once).
    pub message_count: u64,
    /// Latest value of every metric, by name.
    pub metrics: Vec<MetricLatest>,
    /// A name the user gave it (shown instead of the id).
    #[serde(default)]
    pub name: Option<String>,
    /// The user's note about it.
    #[serde(default)]
    pub note: Option<String>,
    /// Its tags (`site=greenhouse`), as people set them.
    #[serde(default, skip_serializing_if = "crate::tags::Tags::is_empty")]
    pub tags: crate::tags::Tags,
    /// Set while the server refuses what the device sends (kept in memory, not stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<crate::Refused>,
    /// How often it is expected to report.
    #[serde(default)]
    pub interval: Interval,
    /// What it says about itself (firmware, model, …), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<crate::attributes::Attribute>,
}

/// Longest display name and note.
pub const MAX_DEVICE_NAME: usize = 64;
pub const MAX_DEVICE_NOTE: usize = 1000;

/// Trims a user's text; empty means none. Refuses text longer than `max` characters.
pub fn user_text(text: &str, max: usize) -> Result<Option<String>, String> {
    let t = text.trim();
    if t.chars().count() > max {
        return Err(format!("at most {max} characters"));
    }
    Ok((!t.is_empty()).then(|| t.to_owned()))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricLatest {
    pub name: String,
    pub value: f64,
    /// Reading time of `value`.
    pub ts: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub online: bool,
    /// Server time the status was received.
    pub at: Millis,
    /// The latest session (connection) counter the device numbered a status with: a last will
    /// from an older session is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u64>,
}

/// The dot on a device card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Online,
    Stale,
    Offline,
    /// Everything it sent since its last stored reading was refused.
    Refused,
}

impl Health {
    pub fn label(self) -> &'static str {
        match self {
            Health::Online => "online",
            Health::Stale => "stale",
            Health::Offline => "offline",
            Health::Refused => "refused",
        }
    }
}

impl DeviceSummary {
    /// Refused while what it sent since its last stored reading is being refused; offline when
    /// the device last said so (by its status topic or last will) and has sent nothing since;
    /// stale when quiet for [`DeviceSummary::stale_after`]; online otherwise.
    pub fn health(&self, now: Millis) -> Health {
        if self.refused.as_ref().is_some_and(|r| r.last >= self.last_seen) {
            return Health::Refused;
        }
        match self.status {
            Some(DeviceStatus { online: false, at, .. }) if at >= self.last_seen => Health::Offline,
            _ if now.saturating_sub(self.last_seen) >= self.stale_after() => Health::Stale,
            _ => Health::Online,
        }
    }

    /// How long after its last reading it is stale ([`Interval::stale_after`]).
    pub fn stale_after(&self) -> Millis {
        self.interval.stale_after()
    }

    pub fn attribute(&self, name: &str) -> Option<&crate::attributes::Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    pub fn metric(&self, name: &str) -> Option<&MetricLatest> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// What to call it on screen.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(last_seen: Millis, status: Option<(bool, Millis)>) -> DeviceSummary {
        DeviceSummary {
            id: "d".into(),
            first_seen: 0,
            last_seen,
            status: status.map(|(online, at)| DeviceStatus { online, at, session: None }),
            message_count: 1,
            metrics: vec![],
            name: None,
            note: None,
            tags: Default::default(),
            refused: None,
            interval: Interval::default(),
            attributes: Vec::new(),
        }
    }

    #[test]
    fn user_text_is_trimmed_and_bounded() {
        assert_eq!(user_text("  Greenhouse  ", 64), Ok(Some("Greenhouse".into())));
        assert_eq!(user_text("   ", 64), Ok(None));
        assert!(user_text(&"x".repeat(65), 64).is_err());
    }

    #[test]
    fn health_follows_status_and_age() {
        let now = 1_000_000;
        assert_eq!(dev(now - 1_000, None).health(now), Health::Online);
        assert_eq!(dev(now - DEFAULT_STALE_MS + 1, None).health(now), Health::Online);
        assert_eq!(dev(now - DEFAULT_STALE_MS, None).health(now), Health::Stale, "no interval known yet");
        assert_eq!(dev(now - 1_000, Some((false, now - 500))).health(now), Health::Offline);
        // A reading after the last will means the device is back.
        assert_eq!(dev(now - 100, Some((false, now - 500))).health(now), Health::Online);
        assert_eq!(dev(now - 100_000, Some((true, now - 100_000))).health(now), Health::Stale);
        let refused = |last| crate::Refused {
            reason: "not_signed_in".into(),
            text: "not signed in (issue a key)".into(),
            since: now - 5_000,
            last,
            count: 3,
        };
        let mut d = dev(now - 10_000, Some((true, now - 10_000)));
        d.refused = Some(refused(now - 1_000));
        assert_eq!(d.health(now), Health::Refused, "never shown healthy while refused");
        d.refused = Some(refused(now - 20_000));
        assert_eq!(d.health(now), Health::Online, "a reading stored since ends it");
    }

    #[test]
    fn stale_after_three_expected_intervals_never_under_the_floor() {
        const MIN: Millis = 60_000;
        let now = 10_000_000;
        let quiet_for = |interval: Interval, quiet: Millis| {
            let mut d = dev(now - quiet, Some((true, now - quiet)));
            d.interval = interval;
            d.health(now)
        };
        let learned = |ms| Interval { learned: Some(ms), set: None };
        // A 10 s device: stale after 30 s.
        assert_eq!(quiet_for(learned(10_000), 29_999), Health::Online);
        assert_eq!(quiet_for(learned(10_000), 30_001), Health::Stale);
        // A 5 min device: not stale at 6 min, stale at 15.
        assert_eq!(quiet_for(learned(5 * MIN), 6 * MIN), Health::Online);
        assert_eq!(quiet_for(learned(5 * MIN), 15 * MIN), Health::Stale);
        // A 1 Hz meter still gets 30 s; a set interval wins over the learned one.
        assert_eq!(learned(1_000).stale_after(), STALE_FLOOR_MS);
        let both = Interval { learned: Some(10_000), set: Some(60 * MIN) };
        assert_eq!(both.stale_after(), 180 * MIN);
        assert_eq!(quiet_for(both, 60 * MIN), Health::Online);
        assert_eq!(Interval::default().stale_after(), DEFAULT_STALE_MS);
        // Offline on its will at once, whatever the interval.
        let mut gone = dev(now - 1_000, Some((false, now - 500)));
        gone.interval = learned(60 * MIN);
        assert_eq!(gone.health(now), Health::Offline);
    }

    #[test]
    fn intervals_are_read_as_people_write_them() {
        assert_eq!(parse_interval(""), Ok(None));
        assert_eq!(parse_interval(" 90 "), Ok(Some(90_000)));
        assert_eq!(parse_interval("5m"), Ok(Some(300_000)));
        assert_eq!(parse_interval("1.5 h"), Ok(Some(5_400_000)));
        assert_eq!(parse_interval("2d"), Ok(Some(172_800_000)));
        assert_eq!(parse_interval("10s"), Ok(Some(10_000)));
        for ms in [10_000, 90_000, 300_000, 5_400_000, 172_800_000] {
            assert_eq!(parse_interval(&format_interval(ms)), Ok(Some(ms)));
        }
        assert_eq!(format_interval(300_000), "5m");
        assert_eq!(format_interval(299_600), "5m");
        assert_eq!(format_interval(12_345), "12s");
        for bad in ["9s", "8d", "abc", "5 fortnights", "-5m", "NaN", "1e400"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }
}
