//! A series' rules: which history is a series', which of two copies is newer, and how live
//! readings fold into it, exactly as the server would bucket them (see `widgets::use_series`,
//! which keeps a series current with them).

use telemetry::dashboard::TimeRange;
use telemetry::{History, LiveEvent};

/// Whether `h` is the history of this device's metric over `range`.
pub fn is_of(h: &History, device: &str, metric: &str, range: TimeRange) -> bool {
    h.device == device && h.metric == metric && range.bounds(h.to) == (h.from, h.to)
}

/// Whether a kept copy is more current than a fetched one (which, offline, is itself an old copy
/// from the page or service-worker cache).
pub fn newer(kept: &History, fetched: &History) -> bool {
    kept.device == fetched.device
        && kept.metric == fetched.metric
        && kept.to - kept.from == fetched.to - fetched.from
        && kept.last_seq > fetched.last_seq
}

/// What folding changes into a history did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folded {
    /// No point of this series among them.
    Unchanged,
    /// Points were added.
    Changed,
    /// A reading fell past the local days the history knows: it needs fetching again (it
    /// holds what came before that reading).
    Beyond,
}

/// Folds the changes after `history.last_seq` into it: readings of this device's metric
/// become points (a range that does not follow now takes none after its end).
pub fn fold(
    history: &mut History,
    events: &[LiveEvent],
    device: &str,
    metric: &str,
    range: TimeRange,
) -> Folded {
    let mut folded = Folded::Unchanged;
    for e in events {
        let Some(seq) = e.seq().filter(|s| *s > history.last_seq) else { continue };
        if let LiveEvent::Reading { device: d, ts, values, .. } = e
            && d == device
            && let Some(v) = values.get(metric)
            && (range.follows_now() || *ts <= history.to)
        {
            if !history.add_point(*ts, *v) {
                return Folded::Beyond;
            }
            folded = Folded::Changed;
        }
        // Every change up to here is accounted for, whichever device it was.
        history.last_seq = seq;
    }
    folded
}

/// Whether a query for `range` in at most `points` buckets should name the browser's time
/// zone: only buckets of a day or more follow it (see `telemetry::history::in_days`).
pub fn wants_zone(range: TimeRange, points: u32) -> bool {
    let span = match range {
        TimeRange::Last { secs } => secs.saturating_mul(1000),
        TimeRange::Between { from, to } => to.saturating_sub(from).saturating_abs(),
    };
    telemetry::history::in_days(span, points as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn history(last_seq: u64) -> History {
        History {
            device: "a".into(),
            metric: "t".into(),
            from: 0,
            to: 60 * MIN,
            bucket_ms: MIN,
            buckets: Vec::new(),
            last_seq,
            edges: Vec::new(),
            zone: None,
        }
    }

    fn reading(seq: u64, device: &str, metric: &str, ts: i64) -> LiveEvent {
        LiveEvent::Reading {
            seq,
            device: device.into(),
            ts,
            received: ts,
            values: [(metric.into(), 1.5)].into_iter().collect(),
        }
    }

    #[test]
    fn only_new_readings_of_the_series_become_points() {
        let mut h = history(5);
        let last_hour = TimeRange::Last { secs: 3600 };
        let others =
            [reading(5, "a", "t", 10 * MIN), reading(6, "b", "t", 11 * MIN), reading(7, "a", "h", 12 * MIN)];
        assert_eq!(
            fold(&mut h, &others, "a", "t", last_hour),
            Folded::Unchanged,
            "seen, another device, another metric"
        );
        assert_eq!((h.readings(), h.last_seq), (0, 7));
        assert_eq!(fold(&mut h, &[reading(8, "a", "t", 13 * MIN)], "a", "t", last_hour), Folded::Changed);
        assert_eq!((h.readings(), h.last_seq), (1, 8));
    }

    #[test]
    fn a_fixed_range_takes_no_reading_after_its_end() {
        let mut h = history(0);
        let fixed = TimeRange::Between { from: 0, to: 60 * MIN };
        assert_eq!(fold(&mut h, &[reading(1, "a", "t", 61 * MIN)], "a", "t", fixed), Folded::Unchanged);
        assert_eq!((h.readings(), h.last_seq, h.to), (0, 1, 60 * MIN));
    }

    #[test]
    fn a_reading_past_the_known_local_days_asks_for_a_fresh_copy() {
        const DAY: i64 = 24 * 60 * MIN;
        let mut h = History {
            to: DAY,
            bucket_ms: DAY,
            edges: vec![0, DAY, 2 * DAY],
            zone: Some("Europe/Berlin".into()),
            ..history(1)
        };
        let last_day = TimeRange::Last { secs: 24 * 3600 };
        let events =
            [reading(2, "a", "t", DAY + 5), reading(3, "a", "t", 2 * DAY), reading(4, "a", "t", 2 * DAY + 1)];
        assert_eq!(fold(&mut h, &events, "a", "t", last_day), Folded::Beyond);
        assert_eq!((h.readings(), h.last_seq), (1, 2), "what came before is in, the rest is not");
    }

    #[test]
    fn only_charts_of_whole_days_name_the_zone() {
        assert!(wants_zone(TimeRange::Last { secs: 365 * 86_400 }, 200));
        assert!(!wants_zone(TimeRange::Last { secs: 30 * 86_400 }, 200));
        assert!(wants_zone(TimeRange::Between { from: 0, to: 196 * 86_400_000 }, 200));
        assert!(!wants_zone(TimeRange::Last { secs: 3600 }, 2));
    }

    #[test]
    fn a_kept_copy_is_newer_only_when_it_is_of_the_same_series_and_further_on() {
        let fetched = history(5);
        assert!(newer(&history(6), &fetched));
        assert!(!newer(&history(5), &fetched));
        assert!(!newer(&History { metric: "h".into(), ..history(9) }, &fetched));
        assert!(is_of(&fetched, "a", "t", TimeRange::Last { secs: 3600 }));
        assert!(!is_of(&fetched, "a", "t", TimeRange::Last { secs: 60 }));
    }
}
