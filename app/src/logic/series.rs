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

/// Folds the changes after `history.last_seq` into it: readings of this device's metric
/// become points (a range that does not follow now takes none after its end). True when a
/// point was added.
pub fn fold(
    history: &mut History,
    events: &[LiveEvent],
    device: &str,
    metric: &str,
    range: TimeRange,
) -> bool {
    let mut changed = false;
    for e in events {
        let Some(seq) = e.seq().filter(|s| *s > history.last_seq) else { continue };
        // Every change up to here is accounted for, whichever device it was.
        history.last_seq = seq;
        if let LiveEvent::Reading { device: d, ts, values, .. } = e
            && d == device
            && let Some(v) = values.get(metric)
            && (range.follows_now() || *ts <= history.to)
        {
            history.add_point(*ts, *v);
            changed = true;
        }
    }
    changed
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
        assert!(!fold(&mut h, &others, "a", "t", last_hour), "seen, another device, another metric");
        assert_eq!((h.readings(), h.last_seq), (0, 7));
        assert!(fold(&mut h, &[reading(8, "a", "t", 13 * MIN)], "a", "t", last_hour));
        assert_eq!((h.readings(), h.last_seq), (1, 8));
    }

    #[test]
    fn a_fixed_range_takes_no_reading_after_its_end() {
        let mut h = history(0);
        let fixed = TimeRange::Between { from: 0, to: 60 * MIN };
        assert!(!fold(&mut h, &[reading(1, "a", "t", 61 * MIN)], "a", "t", fixed));
        assert_eq!((h.readings(), h.last_seq, h.to), (0, 1, 60 * MIN));
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
