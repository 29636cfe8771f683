//! Downsampled history for charts: a time range is cut into at most `max_points` equal
//! buckets, each summarised as (start, min, max, avg, count, last), so a chart never receives
//! more than it can draw. Buckets without readings are left out; a chart draws them as gaps.

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
    /// A bucket of `width` holding one reading at `t`.
    fn first(t: Millis, width: Millis, v: f64) -> Bucket {
        Bucket { t: t.div_euclid(width) * width, min: v, max: v, avg: v, count: 1, last: v }
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

/// Periods that storage keeps rollups for, finest first. A bucket width that is a multiple of
/// one of them can be answered from that period's rollups.
pub const ROLLUP_PERIODS: [Millis; 2] = [MINUTE_MS, HOUR_MS];

/// Folds readings and summaries into buckets of `width` aligned to multiples of it. In time
/// order is cheapest; anything older lands in its own bucket all the same, and each bucket's
/// `last` is the value of its latest reading whatever the order.
#[derive(Debug)]
pub struct Downsampler {
    width: Millis,
    /// Each bucket with the time of its `last`.
    out: Vec<(Bucket, Millis)>,
}

impl Downsampler {
    pub fn new(width: Millis) -> Downsampler {
        Downsampler { width: width.max(1), out: Vec::new() }
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
        let bucket = Bucket::first(t, self.width, v);
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
        if s.count == 0 {
            return;
        }
        let start = t.div_euclid(self.width) * self.width;
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
    /// Width of each bucket.
    pub bucket_ms: Millis,
    pub buckets: Vec<Bucket>,
    /// The change sequence number this history is current to: readings with a higher one are
    /// not in it yet.
    #[serde(default)]
    pub last_seq: u64,
}

impl History {
    /// Adds a reading that arrived after the history was fetched, bucketed exactly as the server
    /// buckets it. A reading newer than `to` slides the window forward (keeping its span) and
    /// drops buckets that fall out of it; one older than `from` is ignored.
    pub fn add_point(&mut self, t: Millis, v: f64) {
        let width = self.bucket_ms;
        if t > self.to {
            let span = self.to - self.from;
            self.to = t;
            self.from = t - span;
            let from = self.from;
            self.buckets.retain(|b| b.t + width > from);
        }
        if t < self.from || width <= 0 {
            return;
        }
        let bucket = Bucket::first(t, width, v);
        match self.buckets.binary_search_by_key(&bucket.t, |b| b.t) {
            Ok(i) => self.buckets[i].add(v),
            Err(i) => self.buckets.insert(i, bucket),
        }
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
/// bucket starts aligned to multiples of the width (so repeated queries bucket alike).
pub fn bucket_width(from: Millis, to: Millis, max_points: usize) -> Millis {
    // Saturating: times may come from outside, and `to - from` of extreme ones overflows.
    let span = to.saturating_sub(from).max(0).saturating_add(1);
    // One aligned bucket cannot be promised for every range (a grid line may cross it), and a
    // chart of one point shows nothing: fewer than two is taken as two.
    let n = max_points.clamp(2, MAX_POINTS) as i64;
    // An aligned grid can straddle one extra bucket, hence n - 1.
    let width = (span.saturating_add(n - 2) / (n - 1)).max(1);
    // Widths of a rollup period or more are rounded up to a whole number of the longest such
    // period, so long ranges are answered from rollups (fewer, never more, buckets).
    match ROLLUP_PERIODS.iter().rev().find(|p| width >= **p) {
        Some(p) => width.saturating_add(p - 1) / p * p,
        None => width,
    }
}

/// Folds time-ordered points into buckets of `width` aligned to multiples of it.
pub fn downsample(points: impl IntoIterator<Item = (Millis, f64)>, width: Millis) -> Vec<Bucket> {
    let mut fold = Downsampler::new(width);
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
        };
        for (t, v) in &points[30..] {
            h.add_point(*t, *v);
        }
        assert_eq!(h.buckets, downsample(points.iter().copied(), width));
        assert_eq!(h.readings(), 50);

        // A reading past the end slides the window: same span, old buckets dropped.
        h.add_point(14_000, 99.0);
        assert_eq!((h.from, h.to), (4_000, 14_000));
        assert!(h.buckets.iter().all(|b| b.t + width > 4_000));
        assert_eq!(h.buckets.last().map(|b| (b.count, b.last)), Some((1, 99.0)));
        // One before the window is ignored.
        h.add_point(100, 1.0);
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
