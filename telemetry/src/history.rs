//! Downsampled history for charts: a time range is cut into at most `max_points` equal
//! buckets, each summarised as (start, min, max, avg, count, last), so a chart never receives
//! more than it can draw. Buckets without readings are left out; a chart draws them as gaps.
//!
//! Buckets under a day start at multiples of their width (UTC). Buckets of a day or more are
//! whole days: the viewer's local days when their time zone is known ([`LocalDays`],
//! [`day_edges`]), so they start at local midnights and last 23 or 25 hours across a DST
//! change; else UTC days.

use serde::{Deserialize, Serialize};

use crate::Millis;

/// Most buckets a client may ask for.
pub const MAX_POINTS: usize = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Start of the bucket.
    pub t: Millis,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    pub count: u32,
    /// The latest reading in the bucket.
    pub last: f64,
}

impl Bucket {
    /// A bucket starting at `start` holding one reading.
    fn first(start: Millis, v: f64) -> Bucket {
        Bucket { t: start, min: v, max: v, avg: v, count: 1, last: v }
    }

    /// Folds in a later reading.
    fn add(&mut self, v: f64) {
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.count += 1;
        self.avg += (v - self.avg) / f64::from(self.count);
        self.last = v;
    }

    /// Folds in a later summary.
    fn merge(&mut self, s: &Summary) {
        let (n, m) = (f64::from(self.count), s.count as f64);
        self.min = self.min.min(s.min);
        self.max = self.max.max(s.max);
        self.avg = (self.avg * n + s.sum) / (n + m);
        self.count = self.count.saturating_add(u32::try_from(s.count).unwrap_or(u32::MAX));
        self.last = s.last;
    }
}

/// Readings summarised: what a rollup keeps per series and period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: u64,
    /// The value of the latest reading, and its time.
    pub last: f64,
    pub last_t: Millis,
}

impl Summary {
    pub fn of(t: Millis, v: f64) -> Summary {
        Summary { min: v, max: v, sum: v, count: 1, last: v, last_t: t }
    }

    /// Folds in another summary of the same period (in any order).
    pub fn merge(&mut self, o: &Summary) {
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
        self.count += o.count;
        if o.last_t >= self.last_t {
            self.last = o.last;
            self.last_t = o.last_t;
        }
    }
}

pub const MINUTE_MS: Millis = 60_000;
pub const HOUR_MS: Millis = 60 * MINUTE_MS;
pub const DAY_MS: Millis = 24 * HOUR_MS;

/// Periods that storage keeps rollups for, finest first. A bucket width that is a multiple of
/// one of them can be answered from that period's rollups.
pub const ROLLUP_PERIODS: [Millis; 2] = [MINUTE_MS, HOUR_MS];

/// Where the bucket holding `t` starts: at the multiple of `width` at or before it, or, when
/// there are `edges` (bucket starts, then the end of the last), at the edge at or before it;
/// `None` outside the edges.
fn bucket_start(t: Millis, width: Millis, edges: &[Millis]) -> Option<Millis> {
    if edges.is_empty() {
        return Some(t.div_euclid(width.max(1)) * width.max(1));
    }
    let i = edges.partition_point(|e| *e <= t);
    (i > 0 && i < edges.len()).then(|| edges[i - 1])
}

/// Folds readings and summaries into buckets: of `width` aligned to multiples of it, or
/// between given edges (local days). In time order is cheapest; anything older lands in its
/// own bucket all the same, and each bucket's `last` is the value of its latest reading
/// whatever the order.
#[derive(Debug)]
pub struct Downsampler {
    width: Millis,
    /// Bucket starts, then the end of the last; empty: multiples of `width`.
    edges: Vec<Millis>,
    /// Each bucket with the time of its `last`.
    out: Vec<(Bucket, Millis)>,
}

impl Downsampler {
    pub fn new(width: Millis) -> Downsampler {
        Downsampler { width: width.max(1), edges: Vec::new(), out: Vec::new() }
    }

    /// Buckets between `edges` (increasing: bucket starts, then the end of the last); what
    /// falls outside them is left out.
    pub fn between(edges: Vec<Millis>) -> Downsampler {
        Downsampler { width: 1, edges, out: Vec::new() }
    }

    fn start(&self, t: Millis) -> Option<Millis> {
        bucket_start(t, self.width, &self.edges)
    }

    /// The bucket starting at `start`, if there is one yet.
    fn slot(&mut self, start: Millis) -> Result<usize, usize> {
        match self.out.last() {
            Some((b, _)) if b.t == start => Ok(self.out.len() - 1),
            Some((b, _)) if b.t < start => Err(self.out.len()),
            None => Err(0),
            Some(_) => self.out.binary_search_by_key(&start, |(b, _)| b.t),
        }
    }

    pub fn point(&mut self, t: Millis, v: f64) {
        let Some(start) = self.start(t) else { return };
        let bucket = Bucket::first(start, v);
        match self.slot(bucket.t) {
            Ok(i) => {
                let (b, last_t) = &mut self.out[i];
                let last = b.last;
                b.add(v);
                if t < *last_t {
                    b.last = last;
                } else {
                    *last_t = t;
                }
            }
            Err(i) => self.out.insert(i, (bucket, t)),
        }
    }

    /// Adds the summary of a period starting at `t` that lies within one bucket.
    pub fn summary(&mut self, t: Millis, s: &Summary) {
        let Some(start) = self.start(t).filter(|_| s.count > 0) else { return };
        let i = match self.slot(start) {
            Ok(i) => i,
            Err(i) => {
                let empty = Bucket { t: start, min: s.min, max: s.max, avg: 0.0, count: 0, last: s.last };
                self.out.insert(i, (empty, s.last_t));
                i
            }
        };
        let (b, last_t) = &mut self.out[i];
        let last = b.last;
        b.merge(s);
        if s.last_t < *last_t {
            b.last = last;
        } else {
            *last_t = s.last_t;
        }
    }

    pub fn finish(self) -> Vec<Bucket> {
        self.out.into_iter().map(|(b, _)| b).collect()
    }
}

/// One metric's downsampled history over `[from, to]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub device: String,
    pub metric: String,
    pub from: Millis,
    pub to: Millis,
    /// Width of each bucket (of local days: the number of days × 24 h; a bucket's own length
    /// is up to the next of `edges`).
    pub bucket_ms: Millis,
    pub buckets: Vec<Bucket>,
    /// The change sequence number this history is current to: readings with a higher one are
    /// not in it yet.
    #[serde(default)]
    pub last_seq: u64,
    /// When buckets are the viewer's local days: where each starts, in order, then the end of
    /// the last, on for a week past `to` so live readings land in the right one. Empty when
    /// buckets start at multiples of `bucket_ms`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<Millis>,
    /// The time zone (IANA name) whose local days `edges` are; `None` without edges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

impl History {
    /// Adds a reading that arrived after the history was fetched, bucketed exactly as the server
    /// buckets it. A reading newer than `to` slides the window forward (keeping its span) and
    /// drops buckets that fall out of it; one older than `from` is ignored. False, and nothing
    /// changed, when the reading falls past the local days this history knows (`edges`): only
    /// the server knows where the next ones start, so fetch it again.
    #[must_use]
    pub fn add_point(&mut self, t: Millis, v: f64) -> bool {
        let width = self.bucket_ms;
        if width <= 0 {
            return true;
        }
        if self.edges.last().is_some_and(|end| t >= *end) {
            return false;
        }
        if t > self.to {
            let span = self.to - self.from;
            self.to = t;
            self.from = t - span;
            // The bucket holding the new `from` is the first kept.
            if let Some(first) = bucket_start(self.from, width, &self.edges) {
                self.buckets.retain(|b| b.t >= first);
                let before = self.edges.partition_point(|e| *e < first);
                self.edges.drain(..before);
            }
        }
        if t < self.from {
            return true;
        }
        let Some(start) = bucket_start(t, width, &self.edges) else { return true };
        match self.buckets.binary_search_by_key(&start, |b| b.t) {
            Ok(i) => self.buckets[i].add(v),
            Err(i) => self.buckets.insert(i, Bucket::first(start, v)),
        }
        true
    }

    /// The silence that counts as a gap in the data (drawn as a break in the line): more than
    /// two buckets, and more than three times the usual spacing of the data, so sparse but
    /// regular readings still join up.
    pub fn gap_threshold(&self) -> Millis {
        let mut steps: Vec<Millis> = self.buckets.windows(2).map(|w| w[1].t - w[0].t).collect();
        let usual = if steps.is_empty() {
            0
        } else {
            let mid = steps.len() / 2;
            *steps.select_nth_unstable(mid).1
        };
        (2 * self.bucket_ms).max(3 * usual).max(1)
    }

    /// Readings summarised in the buckets.
    pub fn readings(&self) -> u64 {
        self.buckets.iter().map(|b| u64::from(b.count)).sum()
    }
}

/// Width of the buckets for a range so that at most `max_points` (at least 2) of them cover it, with
/// bucket starts aligned to multiples of the width (so repeated queries bucket alike). Over half
/// a day is whole days.
pub fn bucket_width(from: Millis, to: Millis, max_points: usize) -> Millis {
    // Saturating: times may come from outside, and `to - from` of extreme ones overflows.
    let span = to.saturating_sub(from).max(0).saturating_add(1);
    // One aligned bucket cannot be promised for every range (a grid line may cross it), and a
    // chart of one point shows nothing: fewer than two is taken as two.
    let n = max_points.clamp(2, MAX_POINTS) as i64;
    // An aligned grid can straddle one extra bucket, hence n - 1.
    let width = (span.saturating_add(n - 2) / (n - 1)).max(1);
    // Widths of a rollup period or more are rounded up to a whole number of the longest such
    // period, so long ranges are answered from rollups (fewer, never more, buckets). Over half
    // a day, to whole days, which can be the viewer's local days: a 13- or 22-hour bucket means
    // nothing to anyone, and a week never fits whole days otherwise (its 7 days and a
    // millisecond touch 8 of them; 8 buckets would need 21 hours).
    if width > DAY_MS / 2 {
        return width.saturating_add(DAY_MS - 1) / DAY_MS * DAY_MS;
    }
    match ROLLUP_PERIODS.iter().rev().find(|p| width >= **p) {
        Some(p) => width.saturating_add(p - 1) / p * p,
        None => width,
    }
}

/// Whether a range of `span` in at most `max_points` buckets is bucketed in whole days, which
/// follow the viewer's local days when the query names their time zone.
pub fn in_days(span: Millis, max_points: usize) -> bool {
    bucket_width(0, span, max_points) >= DAY_MS
}

/// Where a viewer's local days begin: what buckets of a day or more follow. The server reads
/// them from the time-zone database (`zone::Zone`, feature `zones`); tests may use any
/// calendar. Days are numbered from 1970-01-01 in the viewer's own calendar.
pub trait LocalDays: Send + Sync {
    /// The zone's name, reported with the history.
    fn name(&self) -> &str;
    /// The number of the local day holding `t`; `None` outside the calendar's range.
    fn day_of(&self, t: Millis) -> Option<i64>;
    /// The first instant of local day `day` (a day a zone skipped starts where the next does).
    fn day_start(&self, day: i64) -> Option<Millis>;
}

/// Days past `to` that local-day edges reach, so readings still to come land in a known day.
const EDGES_AHEAD_DAYS: i64 = 7;

/// The buckets of `[from, to]` as the viewer's local days, when [`bucket_width`] makes them a
/// day or more: `n` days each, starting at the local midnights of days whose number is a
/// multiple of `n` (so repeated queries bucket alike), `n` the fewest days that keep them to
/// at most `max_points` (a 25-hour day can make a range touch one day more than 24-hour days
/// would). Returns `n` days as a width ([`History::bucket_ms`]) and [`History::edges`]: each
/// bucket's start from the one holding `from`, then the end of the last, on for a week past
/// `to`. `None` for buckets under a day, or times out of the calendar's range.
pub fn day_edges(
    from: Millis,
    to: Millis,
    max_points: usize,
    days: &dyn LocalDays,
) -> Option<(Millis, Vec<Millis>)> {
    let (from, to) = (from.min(to), from.max(to));
    let width = bucket_width(from, to, max_points);
    if width < DAY_MS {
        return None;
    }
    let (first, last) = (days.day_of(from)?, days.day_of(to)?);
    let max = max_points.clamp(2, MAX_POINTS) as i64;
    let mut n = width / DAY_MS;
    // Ends when one bucket holds every day but the first: two buckets.
    while last.div_euclid(n) - first.div_euclid(n) + 1 > max {
        n += 1;
    }
    let ahead = days.day_of(to.saturating_add(EDGES_AHEAD_DAYS * DAY_MS)).unwrap_or(last);
    let (start, end) = (first.div_euclid(n) * n, (ahead.div_euclid(n) + 1) * n);
    let mut edges = Vec::with_capacity(((end - start) / n + 1) as usize);
    for day in (start..=end).step_by(n as usize) {
        let edge = days.day_start(day)?;
        // A skipped day starts where the next does: no empty bucket.
        if edges.last().is_none_or(|e| *e < edge) {
            edges.push(edge);
        }
    }
    Some((n * DAY_MS, edges))
}

/// Folds time-ordered points into buckets of `width` aligned to multiples of it.
pub fn downsample(points: impl IntoIterator<Item = (Millis, f64)>, width: Millis) -> Vec<Bucket> {
    let mut fold = Downsampler::new(width);
    for (t, v) in points {
        fold.point(t, v);
    }
    fold.finish()
}

/// Folds time-ordered points into the buckets between `edges` (see [`Downsampler::between`]).
pub fn downsample_between(points: impl IntoIterator<Item = (Millis, f64)>, edges: &[Millis]) -> Vec<Bucket> {
    let mut fold = Downsampler::between(edges.to_vec());
    for (t, v) in points {
        fold.point(t, v);
    }
    fold.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_buckets_than_asked() {
        for (from, to, max) in [
            (0, 3_600_000, 800),
            (1_766_146_880_123, 1_766_146_880_123 + 86_400_000, 1000),
            (7, 7 + 604_800_000, 3),
            (5, 5, 10),
            (0, 10, 1),
            (13, 1_000_013, 2),
        ] {
            let w = bucket_width(from, to, max);
            let points = (from..=to).step_by(((to - from) as usize / 5000).max(1)).map(|t| (t, 1.0));
            let buckets = downsample(points, w);
            assert!(buckets.len() <= max.max(2), "{from}..{to} max {max}: {} buckets", buckets.len());
            assert!(!buckets.is_empty());
        }
    }

    #[test]
    fn extreme_ranges_give_wide_buckets_not_an_overflow() {
        // Wrapping, `i64::MAX - i64::MIN` would be -1: one-millisecond buckets over everything.
        let w = bucket_width(i64::MIN, i64::MAX, 1000);
        assert!(w > 1_000_000_000_000_000, "{w}");
        assert_eq!(bucket_width(i64::MAX, i64::MIN, 10), 1, "a reversed range is one point wide");
    }

    #[test]
    fn buckets_summarise_min_max_avg_count_last() {
        let points = [(0, 3.0), (4, 1.0), (9, 2.0), (10, 10.0), (19, 20.0), (35, 7.0)];
        let b = downsample(points, 10);
        assert_eq!(
            b,
            vec![
                Bucket { t: 0, min: 1.0, max: 3.0, avg: 2.0, count: 3, last: 2.0 },
                Bucket { t: 10, min: 10.0, max: 20.0, avg: 15.0, count: 2, last: 20.0 },
                Bucket { t: 30, min: 7.0, max: 7.0, avg: 7.0, count: 1, last: 7.0 },
            ]
        );
    }

    #[test]
    fn empty_buckets_are_gaps_and_empty_input_is_empty() {
        assert!(downsample([], 10).is_empty());
        let b = downsample([(0, 1.0), (100, 2.0)], 10);
        assert_eq!(b.iter().map(|b| b.t).collect::<Vec<_>>(), vec![0, 100]);
    }

    #[test]
    fn live_points_bucket_like_the_server_and_slide_the_window() {
        let points: Vec<(Millis, f64)> = (0..50).map(|i| (i * 100, i as f64)).collect();
        let width = bucket_width(0, 10_000, 20);
        let mut h = History {
            device: "d".into(),
            metric: "m".into(),
            from: 0,
            to: 10_000,
            bucket_ms: width,
            buckets: downsample(points[..30].iter().copied(), width),
            last_seq: 0,
            edges: Vec::new(),
            zone: None,
        };
        for (t, v) in &points[30..] {
            assert!(h.add_point(*t, *v));
        }
        assert_eq!(h.buckets, downsample(points.iter().copied(), width));
        assert_eq!(h.readings(), 50);

        // A reading past the end slides the window: same span, old buckets dropped.
        assert!(h.add_point(14_000, 99.0));
        assert_eq!((h.from, h.to), (4_000, 14_000));
        assert!(h.buckets.iter().all(|b| b.t + width > 4_000));
        assert_eq!(h.buckets.last().map(|b| (b.count, b.last)), Some((1, 99.0)));
        // One before the window is ignored.
        assert!(h.add_point(100, 1.0));
        assert!(h.buckets.first().unwrap().t + width > 4_000);
    }

    #[test]
    fn gaps_are_judged_against_the_data_spacing() {
        let bucket = |t| Bucket { t, min: 0.0, max: 0.0, avg: 0.0, count: 1, last: 0.0 };
        let mut h = History {
            device: "d".into(),
            metric: "m".into(),
            from: 0,
            to: 10_000,
            bucket_ms: 10,
            buckets: (0..10).map(|i| bucket(i * 60)).collect(),
            last_seq: 0,
            edges: Vec::new(),
            zone: None,
        };
        // Readings every 60 ms in 10 ms buckets: not gaps.
        assert_eq!(h.gap_threshold(), 180);
        h.buckets.push(bucket(2_000));
        assert!(2_000 - 540 > h.gap_threshold(), "a real silence is still a gap");
        h.buckets = (0..10).map(|i| bucket(i * 10)).collect();
        assert_eq!(h.gap_threshold(), 30);
    }

    #[test]
    fn width_is_aligned_and_sensible() {
        // One hour into 720 buckets: 5 s each (or just over).
        let w = bucket_width(0, 3_600_000, 721);
        assert_eq!(w, 5_001);
        assert_eq!(bucket_width(0, 9, 100), 1);
        assert!(bucket_width(0, 0, 1) >= 1);
        // A day into 1,000 buckets: whole minutes; a year: whole hours.
        assert_eq!(bucket_width(0, 86_400_000, 1_000), 120_000);
        assert_eq!(bucket_width(0, 365 * 86_400_000, 1_000) % 3_600_000, 0);
    }

    /// A toy zone for the pure logic (the real ones are tested in `zone`): one hour east of UTC,
    /// two from `change` on, as a spring forward; the other way round, a fall back.
    struct Toy {
        offsets: (Millis, Millis),
        change: Millis,
    }

    impl Toy {
        fn offset(&self, t: Millis) -> Millis {
            if t < self.change { self.offsets.0 } else { self.offsets.1 }
        }
    }

    impl LocalDays for Toy {
        fn name(&self) -> &str {
            "Toy/Zone"
        }
        fn day_of(&self, t: Millis) -> Option<i64> {
            Some((t + self.offset(t)).div_euclid(DAY_MS))
        }
        fn day_start(&self, day: i64) -> Option<Millis> {
            let early = day * DAY_MS - self.offsets.0;
            Some(if early < self.change { early } else { day * DAY_MS - self.offsets.1 })
        }
    }

    /// 2026-03-29 01:00 UTC, Europe's spring forward.
    const CHANGE: Millis = 1_774_746_000_000;
    const SPRING: Toy = Toy { offsets: (HOUR_MS, 2 * HOUR_MS), change: CHANGE };
    const FALL: Toy = Toy { offsets: (2 * HOUR_MS, HOUR_MS), change: CHANGE };

    #[test]
    fn a_day_or_more_is_whole_days() {
        // 30 days, ends included: 30 buckets of a day, or two days each in 28 (25.7 hours).
        assert_eq!(bucket_width(0, 30 * DAY_MS - 1, 31), DAY_MS);
        assert_eq!(bucket_width(0, 30 * DAY_MS - 1, 29), 2 * DAY_MS);
        // Over half a day is a day: the last 7 days in 9 (21 hours each).
        assert_eq!(bucket_width(0, 7 * DAY_MS, 9), DAY_MS);
        assert_eq!(bucket_width(0, 7 * DAY_MS, 16), 12 * HOUR_MS);
        assert_eq!(bucket_width(0, 365 * DAY_MS, 200), 2 * DAY_MS);
        assert!(in_days(30 * DAY_MS, 31) && !in_days(30 * DAY_MS, 200) && !in_days(DAY_MS, 4));
        assert_eq!(day_edges(0, 30 * DAY_MS, 200, &SPRING), None, "hours stay UTC hours");
    }

    #[test]
    fn day_buckets_start_at_local_midnights_across_a_change() {
        let (from, to) = (CHANGE - 3 * DAY_MS, CHANGE + 3 * DAY_MS - 1);
        for (zone, short) in [(&SPRING, 23), (&FALL, 25)] {
            let (width, edges) = day_edges(from, to, 7, zone).unwrap();
            assert_eq!(width, DAY_MS);
            let first = from.div_euclid(DAY_MS) * DAY_MS - zone.offsets.0;
            assert_eq!(edges[0], first, "the local midnight before `from`");
            assert!(edges[0] <= from && *edges.last().unwrap() > to + 7 * DAY_MS);
            let hours: Vec<i64> = edges.windows(2).map(|w| (w[1] - w[0]) / HOUR_MS).collect();
            assert_eq!(&hours[..5], &[24, 24, 24, short, 24]);
            assert!(edges.iter().all(|e| (e + zone.offset(*e)) % DAY_MS == 0), "each a midnight");
            // Readings every 10 minutes: each bucket holds its local day's.
            let points: Vec<(Millis, f64)> = (from..=to).step_by(600_000).map(|t| (t, 1.0)).collect();
            let buckets = downsample_between(points.iter().copied(), &edges);
            assert_eq!(buckets.len(), 7);
            for b in &buckets {
                let day = zone.day_of(b.t).unwrap();
                let want = points.iter().filter(|p| zone.day_of(p.0) == Some(day)).count();
                assert_eq!(b.count as usize, want);
            }
        }
    }

    #[test]
    fn day_buckets_keep_to_max_points() {
        // Seven whole local days and a bit either side touch nine days; eight 24-hour buckets
        // of the UTC width would cover them in ten.
        for zone in [&SPRING, &FALL] {
            for (from, to, max) in [
                (CHANGE - 4 * DAY_MS + 1, CHANGE + 4 * DAY_MS - 1, 9),
                (CHANGE - 4 * DAY_MS - 3 * HOUR_MS, CHANGE + 5 * DAY_MS, 9),
                (CHANGE - 100 * DAY_MS, CHANGE + 100 * DAY_MS, 30),
                (CHANGE - 100 * DAY_MS, CHANGE + 100 * DAY_MS, 2),
                (CHANGE - 10 * DAY_MS, CHANGE + 9 * DAY_MS, 3),
            ] {
                let (width, edges) = day_edges(from, to, max, zone).unwrap();
                let touched = edges.windows(2).filter(|w| w[1] > from && w[0] <= to).count();
                assert!(touched <= max, "{from}..{to} in {max}: {touched} buckets");
                assert!(width >= bucket_width(from, to, max), "never fewer days a bucket than in UTC");
                let days = edges.windows(2).map(|w| ((w[1] - w[0]) as f64 / DAY_MS as f64).round() as i64);
                assert_eq!(days.max(), Some(width / DAY_MS));
            }
        }
    }

    #[test]
    fn live_points_follow_the_local_days_until_they_run_out() {
        let (from, to) = (CHANGE - 5 * DAY_MS, CHANGE);
        let (_, edges) = day_edges(from, to, 6, &SPRING).unwrap();
        let points: Vec<(Millis, f64)> =
            (from..=to + 2 * DAY_MS).step_by(3_600_000).map(|t| (t, t as f64)).collect();
        let fetched = points.iter().copied().filter(|p| p.0 <= to);
        let mut h = History {
            device: "d".into(),
            metric: "m".into(),
            from,
            to,
            bucket_ms: DAY_MS,
            buckets: downsample_between(fetched, &edges),
            last_seq: 0,
            edges: edges.clone(),
            zone: Some("Toy/Zone".into()),
        };
        for (t, v) in points.iter().filter(|p| p.0 > to) {
            assert!(h.add_point(*t, *v));
        }
        let (from, to) = (h.from, h.to);
        // The window's first bucket is whole, as when the server's first bucket was partial.
        let want = downsample_between(points.iter().copied().filter(|p| p.0 >= h.edges[0]), &edges);
        assert_eq!(h.buckets, want);
        assert_eq!((to - from, to), (5 * DAY_MS, CHANGE + 2 * DAY_MS));
        assert!(h.edges[0] <= from && h.edges[1] > from, "edges before the window went");
        // Past the last known day: refused, unchanged.
        let before = h.clone();
        assert!(!h.add_point(*edges.last().unwrap(), 1.0));
        assert_eq!(h, before);
    }

    #[test]
    fn summaries_fold_like_their_readings() {
        let points: Vec<(Millis, f64)> = (0..600).map(|i| (i * 1_000, ((i * 37) % 101) as f64)).collect();
        let width = 120_000;
        let mut fold = Downsampler::new(width);
        for minute in points.chunks(60) {
            let mut s = Summary::of(minute[0].0, minute[0].1);
            for (t, v) in &minute[1..] {
                s.merge(&Summary::of(*t, *v));
            }
            fold.summary(minute[0].0, &s);
        }
        let from_rollups = fold.finish();
        let from_points = downsample(points.iter().copied(), width);
        assert_eq!(from_rollups.len(), from_points.len());
        for (a, b) in from_rollups.iter().zip(&from_points) {
            assert_eq!((a.t, a.min, a.max, a.count, a.last), (b.t, b.min, b.max, b.count, b.last));
            assert!((a.avg - b.avg).abs() < 1e-9);
        }
    }
}
