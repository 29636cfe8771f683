//! How numbers, units, times and ages read on screen. Pure functions, tested natively.
//!
//! Times render in UTC on the server and in the browser's zone once hydrated; pages switch
//! after hydration so the server's HTML and the first client render agree.

use chrono::{DateTime, Datelike, Local, NaiveDateTime, Timelike, Utc};
use telemetry::Millis;

/// A unit guessed from a metric's name (the seed's three plus common others).
pub fn unit_for(metric: &str) -> &'static str {
    let m = metric.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if has(&["temp"]) {
        "°C"
    } else if has(&["humid", "soil", "moisture", "percent"]) {
        "%"
    } else if has(&["batt", "volt", "vcc"]) {
        "V"
    } else if has(&["pressure"]) {
        "hPa"
    } else if has(&["co2", "ppm"]) {
        "ppm"
    } else if has(&["rssi", "dbm"]) {
        "dBm"
    } else if has(&["lux", "light"]) {
        "lx"
    } else {
        ""
    }
}

/// A reading, with as many decimals as its size deserves.
pub fn value(v: f64) -> String {
    let a = v.abs();
    // By magnitude only, so a value does not change width as it moves (21.0 → 21.5).
    let decimals = if a >= 1000.0 {
        0
    } else if a >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.decimals$}")
}

/// A bound or tick label: whole numbers without decimals.
pub fn compact(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 { format!("{v:.0}") } else { value(v) }
}

/// A reading with a fixed number of decimals when one is configured.
pub fn value_with(v: f64, decimals: Option<u8>) -> String {
    match decimals {
        Some(d) => format!("{v:.prec$}", prec = usize::from(d.min(6))),
        None => value(v),
    }
}

/// "just now", "12 s ago", "5 min ago", "3 h ago", "2 d ago".
pub fn age(now: Millis, then: Millis) -> String {
    let secs = (now - then).max(0) / 1000;
    match secs {
        0..=2 => "just now".to_owned(),
        3..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

/// How much of a moment to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// `14:03`
    Minute,
    /// `14:03:07`
    Second,
    /// `Fri 14:03`
    WeekdayMinute,
    /// `2025-12-19 14:03`
    DateMinute,
}

/// Wall-clock time of `t`: `14:03:07` in the browser's zone, or `14:03:07 UTC`.
pub fn clock(t: Millis, local: bool) -> String {
    datetime(t, local, Shown::Second)
}

/// Date and time of `t`: `2025-12-19 14:03`.
pub fn date_time(t: Millis, local: bool) -> String {
    datetime(t, local, Shown::DateMinute)
}

/// `t` in the browser's zone, or in UTC (then suffixed). Written out field by field: chrono's
/// pattern formatter would put its whole pattern parser into the WASM.
pub fn datetime(t: Millis, local: bool, shown: Shown) -> String {
    let Some(utc) = DateTime::<Utc>::from_timestamp_millis(t) else {
        return String::new();
    };
    if local {
        written(utc.with_timezone(&Local).naive_local(), shown)
    } else {
        format!("{} UTC", written(utc.naive_utc(), shown))
    }
}

fn written(d: NaiveDateTime, shown: Shown) -> String {
    const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let (h, m) = (d.hour(), d.minute());
    match shown {
        Shown::Minute => format!("{h:02}:{m:02}"),
        Shown::Second => format!("{h:02}:{m:02}:{:02}", d.second()),
        Shown::WeekdayMinute => {
            format!("{} {h:02}:{m:02}", WEEKDAYS[d.weekday().num_days_from_monday() as usize])
        }
        Shown::DateMinute => format!("{:04}-{:02}-{:02} {h:02}:{m:02}", d.year(), d.month(), d.day()),
    }
}

/// How often a device is expected to report, and when it is stale: "5m (learned), stale
/// after 15m", "1h (set), stale after 3h", "not known yet, stale after 1m".
pub fn interval(i: telemetry::device::Interval) -> String {
    use telemetry::device::format_interval;
    let expected = match (i.set, i.learned) {
        (Some(set), _) => format!("{} (set)", format_interval(set)),
        (None, Some(learned)) => format!("{} (learned)", format_interval(learned)),
        (None, None) => "not known yet".into(),
    };
    format!("{expected}, stale after {}", format_interval(i.stale_after()))
}

/// A device's uptime: "45 s", "12 min", "5 h 12 min", "3 d 4 h".
pub fn uptime(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return String::new();
    }
    let s = secs as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3_600 => format!("{} min", s / 60),
        3_600..86_400 => format!("{} h {} min", s / 3_600, s % 3_600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3_600),
    }
}

/// Bytes as people read them: "812 B", "123 kB", "1.5 MB".
pub fn bytes(n: f64) -> String {
    match n {
        n if !n.is_finite() || n < 0.0 => String::new(),
        n if n < 1_000.0 => format!("{n:.0} B"),
        n if n < 1_000_000.0 => format!("{:.0} kB", n / 1_000.0),
        n => format!("{:.1} MB", n / 1_000_000.0),
    }
}

/// A share as a percentage, rounded down (99.96 % is not 100 %): "97.2 %", "100 %".
pub fn percent(share: f64) -> String {
    match share {
        s if s >= 1.0 => "100 %".to_owned(),
        s => format!("{:.1} %", (s.max(0.0) * 1000.0).floor() / 10.0),
    }
}

/// RFC 3339, for `<time datetime=...>`.
pub fn iso(t: Millis) -> String {
    telemetry::timestamp::format_utc(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_read_as_percentages_rounded_down() {
        assert_eq!(percent(1.0), "100 %");
        assert_eq!(percent(0.9996), "99.9 %");
        assert_eq!(percent(22.0 / 24.0), "91.6 %");
        assert_eq!(percent(0.0), "0.0 %");
    }

    #[test]
    fn seed_metrics_get_their_units() {
        assert_eq!(unit_for("temperature"), "°C");
        assert_eq!(unit_for("temp"), "°C");
        assert_eq!(unit_for("humidity"), "%");
        assert_eq!(unit_for("battery"), "V");
        assert_eq!(unit_for("rpm"), "");
    }

    #[test]
    fn values_read_naturally() {
        assert_eq!(value(25.53), "25.5");
        assert_eq!(value(60.2), "60.2");
        assert_eq!(value(3.8), "3.80");
        assert_eq!(value(25.0), "25.0");
        assert_eq!(value(56.0), "56.0");
        assert_eq!(value(-0.125), "-0.12");
        assert_eq!(value(1013.25), "1013");
    }

    #[test]
    fn compact_labels_drop_useless_decimals() {
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(50.0), "50");
        assert_eq!(compact(3.3), "3.30");
    }

    #[test]
    fn configured_decimals_win() {
        assert_eq!(value_with(21.456, Some(0)), "21");
        assert_eq!(value_with(21.456, Some(2)), "21.46");
        assert_eq!(value_with(21.456, None), "21.5");
    }

    #[test]
    fn ages() {
        assert_eq!(age(10_000, 9_000), "just now");
        assert_eq!(age(20_000, 8_000), "12 s ago");
        assert_eq!(age(400_000, 100_000), "5 min ago");
        assert_eq!(age(4 * 3_600_000, 0), "4 h ago");
        assert_eq!(age(3 * 86_400_000, 0), "3 d ago");
        assert_eq!(age(0, 5_000), "just now");
    }

    #[test]
    fn uptimes_and_sizes_read_naturally() {
        assert_eq!(uptime(45.2), "45 s");
        assert_eq!(uptime(720.0), "12 min");
        assert_eq!(uptime(5.0 * 3_600.0 + 720.0), "5 h 12 min");
        assert_eq!(uptime(3.0 * 86_400.0 + 4.0 * 3_600.0), "3 d 4 h");
        assert_eq!(uptime(-1.0), "");
        assert_eq!(bytes(812.0), "812 B");
        assert_eq!(bytes(123_456.0), "123 kB");
        assert_eq!(bytes(1_500_000.0), "1.5 MB");
    }

    #[test]
    fn intervals_say_where_they_come_from() {
        use telemetry::device::Interval;
        let learned = Interval { learned: Some(300_000), set: None };
        assert_eq!(interval(learned), "5m (learned), stale after 15m");
        assert_eq!(interval(Interval { set: Some(3_600_000), ..learned }), "1h (set), stale after 3h");
        assert_eq!(interval(Interval { learned: Some(2_000), set: None }), "2s (learned), stale after 30s");
        assert_eq!(interval(Interval::default()), "not known yet, stale after 1m");
    }

    #[test]
    fn utc_clock_is_labelled() {
        assert_eq!(clock(1_766_146_880_000, false), "12:21:20 UTC");
        assert_eq!(date_time(1_766_146_880_000, false), "2025-12-19 12:21 UTC");
    }

    #[test]
    fn every_shape_matches_the_calendar() {
        // 2025-12-19 was a Friday; 2024-02-29 09:05:03.999 a Thursday.
        let fri = 1_766_146_880_000;
        assert_eq!(datetime(fri, false, Shown::Minute), "12:21 UTC");
        assert_eq!(datetime(fri, false, Shown::WeekdayMinute), "Fri 12:21 UTC");
        let leap = 1_709_197_503_999;
        assert_eq!(datetime(leap, false, Shown::Second), "09:05:03 UTC");
        assert_eq!(datetime(leap, false, Shown::DateMinute), "2024-02-29 09:05 UTC");
        assert_eq!(datetime(leap, false, Shown::WeekdayMinute), "Thu 09:05 UTC");
        // Every weekday name, a week from Monday 2025-12-15.
        let monday = fri - 4 * 86_400_000;
        let names: Vec<String> = (0..7)
            .map(|d| datetime(monday + d * 86_400_000, false, Shown::WeekdayMinute)[..3].to_owned())
            .collect();
        assert_eq!(names, ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]);
        assert_eq!(datetime(i64::MAX, false, Shown::Minute), "");
    }
}
