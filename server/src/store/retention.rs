//! How long each level of storage is kept: raw readings (with the change log), minute rollups
//! and hour rollups, each for its own number of days. A chart over a long range reads only
//! rollups, so they may outlive the readings they summarise: a year's chart needs the hour
//! rollups of a year, not its readings.

use telemetry::Millis;
use telemetry::history::HOUR_MS;

pub const DAY_MS: Millis = 24 * HOUR_MS;

/// Days each level is kept; 0 keeps it forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub readings_days: u64,
    pub minute_rollup_days: u64,
    pub hour_rollup_days: u64,
}

/// For each level, the time before which its data goes; `None` keeps it all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Horizons {
    /// Raw readings, and change-log entries received before it.
    pub readings: Option<Millis>,
    pub minute_rollups: Option<Millis>,
    pub hour_rollups: Option<Millis>,
}

impl Horizons {
    /// Every level cut at the same time.
    pub fn all(before: Millis) -> Horizons {
        Horizons { readings: Some(before), minute_rollups: Some(before), hour_rollups: Some(before) }
    }
}

impl Retention {
    /// Each level's horizon at `now`. A level is kept at least as long as every finer one: a
    /// chart reads whole periods from the coarsest level whose period divides its bucket
    /// width, so a coarser level pruned sooner would lose ranges the finer one still answers.
    pub fn horizons(&self, now: Millis) -> Horizons {
        let days = |d: u64| (d > 0).then_some(d);
        // `None` (forever) when either is.
        let at_least = |own: Option<u64>, finer: Option<u64>| Some(own?.max(finer?));
        let readings = days(self.readings_days);
        let minutes = at_least(days(self.minute_rollup_days), readings);
        let hours = at_least(days(self.hour_rollup_days), minutes);
        let horizon = |days: Option<u64>| {
            days.map(|d| now.saturating_sub(i64::try_from(d).unwrap_or(i64::MAX).saturating_mul(DAY_MS)))
        };
        Horizons {
            readings: horizon(readings),
            minute_rollups: horizon(minutes),
            hour_rollups: horizon(hours),
        }
    }

    /// Whether anything is ever deleted.
    pub fn prunes(&self) -> bool {
        self.horizons(0) != Horizons::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retention(readings_days: u64, minute_rollup_days: u64, hour_rollup_days: u64) -> Retention {
        Retention { readings_days, minute_rollup_days, hour_rollup_days }
    }

    #[test]
    fn each_level_has_its_own_horizon() {
        let now = 1_000 * DAY_MS;
        let h = retention(30, 365, 0).horizons(now);
        assert_eq!(
            h,
            Horizons { readings: Some(970 * DAY_MS), minute_rollups: Some(635 * DAY_MS), hour_rollups: None }
        );
        assert_eq!(retention(30, 365, 400).horizons(now).hour_rollups, Some(600 * DAY_MS));
    }

    #[test]
    fn a_coarser_level_is_kept_at_least_as_long_as_a_finer_one() {
        let now = 1_000 * DAY_MS;
        let h = retention(400, 365, 100).horizons(now);
        assert_eq!((h.minute_rollups, h.hour_rollups), (Some(600 * DAY_MS), Some(600 * DAY_MS)));
        // Readings kept forever keep everything.
        assert_eq!(retention(0, 365, 30).horizons(now), Horizons::default());
        assert!(!retention(0, 365, 30).prunes());
        assert!(retention(30, 0, 0).prunes());
        assert!(retention(u64::MAX, 0, 0).horizons(now).readings.is_some_and(|t| t < 0), "no overflow");
    }
}
