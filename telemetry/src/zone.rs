//! Time zones by IANA name (`Europe/Berlin`), for the server (feature `zones`): the browser
//! sends its zone's name, the server knows its rules. They come from the system's time-zone
//! database (`/usr/share/zoneinfo`, Debian's `tzdata`, which the system keeps current and which
//! is read again when it changes), or, on a machine without one, from the copy built in.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::Millis;
use crate::history::LocalDays;

/// Longest name taken: IANA's longest is 32 characters (`America/Argentina/ComodRivadavia`).
const MAX_NAME: usize = 64;

/// Seconds in a day, for numbering days.
const DAY_SECS: i64 = 86_400;

/// A time zone: its name and rules.
#[derive(Debug, Clone)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

/// Why a zone name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZoneError {
    /// Not a name at all: empty, too long, or with characters no zone name has.
    Malformed,
    /// Well formed, but not in the time-zone database.
    Unknown(String),
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZoneError::Malformed => f.write_str("tz must be an IANA time zone name, such as Europe/Berlin"),
            ZoneError::Unknown(name) => {
                write!(f, "unknown time zone \"{name}\" (tz takes an IANA name, such as Europe/Berlin)")
            }
        }
    }
}

impl std::error::Error for ZoneError {}

/// Whether `name` could be a zone name: `Area/Location` parts of letters, digits and `_+-`
/// (`America/Port-au-Prince`, `Etc/GMT+5`), so nothing else reaches the database.
fn well_formed(name: &str) -> bool {
    name.len() <= MAX_NAME
        && name.split('/').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+-".contains(&b))
        })
}

impl Zone {
    /// The zone of that IANA name (any case); `UTC` is one.
    pub fn named(name: &str) -> Result<Zone, ZoneError> {
        if !well_formed(name) {
            return Err(ZoneError::Malformed);
        }
        let tz = jiff::tz::db().get(name).map_err(|_| ZoneError::Unknown(name.to_owned()))?;
        // The database's spelling.
        let name = tz.iana_name().unwrap_or(name).to_owned();
        Ok(Zone { name, tz })
    }

    pub fn utc() -> Zone {
        Zone { name: "UTC".to_owned(), tz: TimeZone::UTC }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone's offset from UTC at `t`, in seconds east.
    pub fn offset_secs(&self, t: Millis) -> i32 {
        Timestamp::from_millisecond(t).map_or(0, |ts| self.tz.to_offset(ts).seconds())
    }
}

/// Which time-zone database zones come from, for the start-up log.
pub fn database() -> String {
    format!("{:?}", jiff::tz::db())
}

/// 1970-01-01, day 0.
fn epoch() -> Date {
    jiff::civil::date(1970, 1, 1)
}

impl LocalDays for Zone {
    fn name(&self) -> &str {
        &self.name
    }

    fn day_of(&self, t: Millis) -> Option<i64> {
        let date = self.tz.to_datetime(Timestamp::from_millisecond(t).ok()?).date();
        Some(date.duration_since(epoch()).as_secs().div_euclid(DAY_SECS))
    }

    fn day_start(&self, day: i64) -> Option<Millis> {
        let noon = Timestamp::from_second(day.checked_mul(DAY_SECS)?.checked_add(DAY_SECS / 2)?).ok()?;
        let date = TimeZone::UTC.to_datetime(noon).date();
        // Midnight, or where the day starts when a change skips it (the first instant after).
        let start = date.to_zoned_datetime(self.tz.clone()).ok()?.start_of_day().ok()?;
        Some(start.timestamp().as_millisecond())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{DAY_MS, HOUR_MS, day_edges};

    fn at(s: &str) -> Millis {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    /// The lengths, in hours, of the local days from `first` (a UTC instant in the first).
    fn day_hours(zone: &Zone, first: &str, days: i64) -> Vec<f64> {
        let d = zone.day_of(at(first)).unwrap();
        (d..d + days)
            .map(|d| (zone.day_start(d + 1).unwrap() - zone.day_start(d).unwrap()) as f64 / HOUR_MS as f64)
            .collect()
    }

    #[test]
    fn local_days_are_23_or_25_hours_across_a_change() {
        let berlin = Zone::named("Europe/Berlin").unwrap();
        // Spring forward on Sunday 2026-03-29, 02:00 → 03:00.
        let d = berlin.day_of(at("2026-03-29T12:00:00Z")).unwrap();
        assert_eq!(berlin.day_start(d), Some(at("2026-03-28T23:00:00Z")));
        assert_eq!(berlin.day_start(d + 1), Some(at("2026-03-29T22:00:00Z")));
        assert_eq!(day_hours(&berlin, "2026-03-27T12:00:00Z", 4), [24.0, 24.0, 23.0, 24.0]);
        // Fall back on Sunday 2025-11-02, 02:00 → 01:00; a day is its own from its first instant.
        let new_york = Zone::named("America/New_York").unwrap();
        assert_eq!(day_hours(&new_york, "2025-11-01T12:00:00Z", 3), [24.0, 25.0, 24.0]);
        let d = new_york.day_of(at("2025-11-02T04:00:00Z")).unwrap();
        assert_eq!(new_york.day_of(at("2025-11-02T03:59:59.999Z")), Some(d - 1));
        assert_eq!(new_york.day_start(d), Some(at("2025-11-02T04:00:00Z")));
        // Sydney goes back on the first Sunday of April, forward on the first of October.
        let sydney = Zone::named("Australia/Sydney").unwrap();
        assert_eq!(day_hours(&sydney, "2026-04-05T01:00:00Z", 1), [25.0]);
        assert_eq!(day_hours(&sydney, "2026-10-04T01:00:00Z", 1), [23.0]);
        // Lord Howe moves by half an hour; Kolkata's midnights fall on UTC half hours.
        assert_eq!(
            day_hours(&Zone::named("Australia/Lord_Howe").unwrap(), "2026-04-05T01:00:00Z", 1),
            [24.5]
        );
        let kolkata = Zone::named("Asia/Kolkata").unwrap();
        assert_eq!(
            kolkata.day_start(kolkata.day_of(at("2026-01-10T12:00:00Z")).unwrap()),
            Some(at("2026-01-09T18:30:00Z"))
        );
        // Samoa skipped 2011-12-30: its two-day bucket is one day long, and none is empty.
        let apia = Zone::named("Pacific/Apia").unwrap();
        let from = at("2011-12-26T12:00:00Z");
        let (_, edges) = day_edges(from, from + 7 * DAY_MS - 1, 8, &apia).unwrap();
        let lengths: Vec<i64> = edges.windows(2).map(|w| (w[1] - w[0]) / DAY_MS).collect();
        assert_eq!(&lengths[..5], &[2, 2, 1, 2, 2], "{edges:?}");
    }

    #[test]
    fn offsets_change_at_the_right_instant() {
        let berlin = Zone::named("europe/berlin").unwrap();
        assert_eq!(berlin.name(), "Europe/Berlin", "the database's spelling");
        assert_eq!(berlin.offset_secs(at("2026-03-29T00:59:59.999Z")), 3_600);
        assert_eq!(berlin.offset_secs(at("2026-03-29T01:00:00Z")), 7_200);
        let new_york = Zone::named("America/New_York").unwrap();
        assert_eq!(new_york.offset_secs(at("2025-11-02T05:59:59Z")), -4 * 3_600);
        assert_eq!(new_york.offset_secs(at("2025-11-02T06:00:00Z")), -5 * 3_600);
        assert_eq!(Zone::named("UTC").unwrap().offset_secs(0), 0);
        assert_eq!(Zone::named("Etc/GMT+5").unwrap().offset_secs(0), -5 * 3_600);
        assert_eq!(Zone::utc().day_start(1), Some(DAY_MS));
        assert_eq!(Zone::named("Asia/Kathmandu").unwrap().offset_secs(0), 330 * 60);
        assert_eq!(Zone::named("Asia/Kathmandu").unwrap().offset_secs(at("2026-01-01T00:00:00Z")), 345 * 60);
    }

    #[test]
    fn names_that_are_not_zones_are_refused_with_a_reason() {
        for bad in ["", "/", "Europe/", "../etc/passwd", "Europe/Berlin\n", "Europe Berlin", &"A".repeat(65)]
        {
            assert_eq!(Zone::named(bad).unwrap_err(), ZoneError::Malformed, "{bad:?}");
        }
        let e = Zone::named("Mars/Olympus_Mons").unwrap_err();
        assert_eq!(e, ZoneError::Unknown("Mars/Olympus_Mons".into()));
        assert!(e.to_string().contains("unknown time zone \"Mars/Olympus_Mons\""));
        assert!(Zone::named("America/Port-au-Prince").is_ok());
    }

    #[test]
    fn days_far_out_are_none_not_a_panic() {
        let berlin = Zone::named("Europe/Berlin").unwrap();
        assert_eq!(berlin.day_of(i64::MAX), None);
        assert_eq!(berlin.day_start(i64::MAX), None);
        assert_eq!(berlin.day_start(i64::MIN), None);
        assert_eq!(day_edges(i64::MAX - 10 * DAY_MS, i64::MAX, 5, &berlin), None);
    }
}
