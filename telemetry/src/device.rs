//! What the dashboard shows about a device: when it was first and last heard from, its
//! reported status and the latest value of every metric.

use serde::{Deserialize, Serialize};

use crate::Millis;

/// A device with no reading for this long is shown as stale.
pub const STALE_AFTER_MS: Millis = 60_000;

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
    /// stale when quiet for [`STALE_AFTER_MS`]; online otherwise.
    pub fn health(&self, now: Millis) -> Health {
        if self.refused.as_ref().is_some_and(|r| r.last >= self.last_seen) {
            return Health::Refused;
        }
        match self.status {
            Some(DeviceStatus { online: false, at }) if at >= self.last_seen => Health::Offline,
            _ if now - self.last_seen > STALE_AFTER_MS => Health::Stale,
            _ => Health::Online,
        }
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
            status: status.map(|(online, at)| DeviceStatus { online, at }),
            message_count: 1,
            metrics: vec![],
            name: None,
            note: None,
            tags: Default::default(),
            refused: None,
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
        assert_eq!(dev(now - STALE_AFTER_MS - 1, None).health(now), Health::Stale);
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
}
