//! How long each level of storage is kept: raw readings (with the change log), minute rollups
//! and hour rollups, each for its own number of days. A chart over a long range reads only
//! rollups, so they may outlive the readings they summarise: a year's chart needs the hour
//! rollups of a year, not its readings. The file remembers how far each level was pruned, so
//! a chart whose buckets are finer than what is left at its start is answered in wider ones.

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use telemetry::Millis;
use telemetry::history::ROLLUP_PERIODS;

use super::error::StoreError;

pub use telemetry::history::DAY_MS;

/// Level → the latest horizon it was pruned to: what it held from before then is gone.
const PRUNED: TableDefinition<&str, i64> = TableDefinition::new("pruned_before");
/// PRUNED's keys, finest level first.
const LEVELS: [&str; 3] = ["readings", "minute_rollups", "hour_rollups"];

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

    fn levels(&self) -> [Option<Millis>; 3] {
        [self.readings, self.minute_rollups, self.hour_rollups]
    }

    /// The bucket width to answer a range starting at `from` in, when these are the horizons
    /// each level was pruned to: `width`, or, when a level finer than it holds nothing at
    /// `from` any more, the period of the next level up (a minute where the readings are gone,
    /// an hour where the minute rollups are too). Never narrower, so never more buckets; a
    /// width of a period or more is a whole number of its periods already.
    pub fn width_at(&self, from: Millis, width: Millis) -> Millis {
        let gone = |horizon: Option<Millis>| horizon.is_some_and(|before| from < before);
        let finer = [self.readings, self.minute_rollups];
        finer
            .into_iter()
            .zip(ROLLUP_PERIODS)
            .fold(width, |w, (h, period)| if gone(h) { w.max(period) } else { w })
    }

    /// Local-day `edges` as these horizons leave them readable: an edge where the readings
    /// are gone moves back to its whole minute, one where the minute rollups are gone too to
    /// its whole hour, so each bucket is still read whole from what is left (a zone whose
    /// midnights are not whole hours, like Kolkata's, gets days from 23:30 there). Edges that
    /// meet become one.
    pub fn snap(&self, edges: &[Millis]) -> Vec<Millis> {
        let gone = |horizon: Option<Millis>, t: Millis| horizon.is_some_and(|before| t < before);
        let mut out: Vec<Millis> = Vec::with_capacity(edges.len());
        for &edge in edges {
            let period = [(self.minute_rollups, ROLLUP_PERIODS[1]), (self.readings, ROLLUP_PERIODS[0])]
                .into_iter()
                .find(|(horizon, _)| gone(*horizon, edge))
                .map_or(1, |(_, period)| period);
            let edge = edge.div_euclid(period) * period;
            if out.last().is_none_or(|e| *e < edge) {
                out.push(edge);
            }
        }
        out
    }
}

/// Creates the table of horizons pruned to.
pub(super) fn init(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(PRUNED)?;
    Ok(())
}

/// Notes that each level was pruned to its horizon (a level's record only moves forward: what
/// went stays gone even if its retention grows).
pub(super) fn record(tx: &WriteTransaction, horizons: Horizons) -> Result<(), StoreError> {
    let mut table = tx.open_table(PRUNED)?;
    for (key, horizon) in LEVELS.into_iter().zip(horizons.levels()) {
        let Some(before) = horizon else { continue };
        let stored = table.get(key)?.map(|v| v.value());
        if stored.is_none_or(|t| t < before) {
            table.insert(key, before)?;
        }
    }
    Ok(())
}

/// The horizons each level has been pruned to, as of `rx`.
pub(super) fn pruned(rx: &ReadTransaction) -> Result<Horizons, StoreError> {
    let table = rx.open_table(PRUNED)?;
    let [readings, minute_rollups, hour_rollups] =
        LEVELS.map(|key| table.get(key).map(|v| v.map(|v| v.value())));
    Ok(Horizons { readings: readings?, minute_rollups: minute_rollups?, hour_rollups: hour_rollups? })
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
    use telemetry::history::{HOUR_MS, MINUTE_MS};

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
    fn buckets_finer_than_what_is_left_at_the_start_are_widened() {
        let (now, minute) = (1_000 * DAY_MS, ROLLUP_PERIODS[0]);
        let pruned = retention(30, 365, 0).horizons(now);
        let days_ago = |d: i64| now - d * DAY_MS;
        // Readings are kept: any width stands.
        assert_eq!(pruned.width_at(days_ago(29), 30_000), 30_000);
        // Readings gone, minute rollups kept: a minute at least.
        assert_eq!(pruned.width_at(days_ago(40), 30_000), minute);
        assert_eq!(pruned.width_at(days_ago(40), 5 * minute), 5 * minute);
        // Minute rollups gone too: an hour at least.
        assert_eq!(pruned.width_at(days_ago(380), 30_000), HOUR_MS);
        assert_eq!(pruned.width_at(days_ago(380), 5 * minute), HOUR_MS);
        assert_eq!(pruned.width_at(days_ago(380), 3 * HOUR_MS), 3 * HOUR_MS);
        // Nothing pruned yet, or kept forever: as asked.
        assert_eq!(Horizons::default().width_at(i64::MIN, 1), 1);
    }

    #[test]
    fn local_days_are_cut_where_what_is_left_can_cut_them() {
        let now = 1_000 * DAY_MS;
        let pruned = retention(30, 365, 0).horizons(now);
        // Kolkata's midnights, 18:30 UTC, and one of a zone 53 minutes and 28 seconds east.
        let odd = |days: i64, past: Millis| now - days * DAY_MS + past;
        let edges = [
            odd(400, -5 * HOUR_MS - 30 * MINUTE_MS),
            odd(399, -5 * HOUR_MS - 30 * MINUTE_MS),
            odd(200, -53 * MINUTE_MS - 28_000),
            odd(10, -5 * HOUR_MS - 30 * MINUTE_MS),
        ];
        assert_eq!(
            pruned.snap(&edges),
            [odd(400, -6 * HOUR_MS), odd(399, -6 * HOUR_MS), odd(200, -54 * MINUTE_MS), edges[3]],
            "hours where only hours are left, minutes where minutes are, else as they are"
        );
        assert_eq!(Horizons::default().snap(&edges), edges);
        // Two that meet become one.
        assert_eq!(pruned.snap(&[odd(400, 10), odd(400, 20), odd(399, 0)]), [odd(400, 0), odd(399, 0)]);
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
