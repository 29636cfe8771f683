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
}

/// Width of the buckets for a range so that at most `max_points` of them cover it, with
/// bucket starts aligned to multiples of the width (so repeated queries bucket alike).
pub fn bucket_width(from: Millis, to: Millis, max_points: usize) -> Millis {
    let span = (to - from).max(0) + 1;
    let n = max_points.clamp(1, MAX_POINTS) as i64;
    if n == 1 {
        return span.max(1) * 2;
    }
    // An aligned grid can straddle one extra bucket, hence n - 1.
    ((span + n - 2) / (n - 1)).max(1)
}

/// Folds time-ordered points into buckets of `width` aligned to multiples of it.
pub fn downsample(points: impl IntoIterator<Item = (Millis, f64)>, width: Millis) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    let mut sum = 0.0;
    for (t, v) in points {
        let start = t.div_euclid(width) * width;
        match out.last_mut() {
            Some(b) if b.t == start => {
                b.min = b.min.min(v);
                b.max = b.max.max(v);
                b.count += 1;
                b.last = v;
                sum += v;
                b.avg = sum / f64::from(b.count);
            }
            _ => {
                sum = v;
                out.push(Bucket { t: start, min: v, max: v, avg: v, count: 1, last: v });
            }
        }
    }
    out
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
            assert!(buckets.len() <= max, "{from}..{to} max {max}: {} buckets", buckets.len());
            assert!(!buckets.is_empty());
        }
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
    fn width_is_aligned_and_sensible() {
        // One hour into 720 buckets: 5 s each (or just over).
        let w = bucket_width(0, 3_600_000, 721);
        assert_eq!(w, 5_001);
        assert_eq!(bucket_width(0, 9, 100), 1);
        assert!(bucket_width(0, 0, 1) >= 1);
    }
}
