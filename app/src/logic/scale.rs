//! Chart maths: linear scales, round-number value ticks and round-interval time ticks.

use telemetry::Millis;

/// Maps a domain onto a pixel range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub domain: (f64, f64),
    pub range: (f64, f64),
}

impl Scale {
    pub fn map(&self, v: f64) -> f64 {
        let (d0, d1) = self.domain;
        let (r0, r1) = self.range;
        if d1 == d0 {
            return (r0 + r1) / 2.0;
        }
        r0 + (v - d0) / (d1 - d0) * (r1 - r0)
    }
}

/// A step of 1, 2, 2.5 or 5 × 10^k giving about `count` ticks over `[min, max]`.
pub fn nice_step(min: f64, max: f64, count: usize) -> f64 {
    let span = (max - min).abs().max(f64::EPSILON);
    let raw = span / count.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// The value domain and ticks for data spanning `[min, max]`: the domain is widened to whole
/// steps so the lines do not touch the frame; a flat series gets a band around its value.
pub fn value_axis(min: f64, max: f64, count: usize) -> ((f64, f64), Vec<f64>) {
    let (min, max) = if (max - min).abs() < 1e-9 {
        let pad = (min.abs() * 0.05).max(1.0);
        (min - pad, max + pad)
    } else {
        (min, max)
    };
    let step = nice_step(min, max, count);
    let lo = (min / step).floor() * step;
    let hi = (max / step).ceil() * step;
    let n = ((hi - lo) / step).round() as usize;
    let ticks = (0..=n).map(|i| lo + step * i as f64).collect();
    ((lo, hi), ticks)
}

const TIME_STEPS: [Millis; 12] = [
    60_000,
    5 * 60_000,
    10 * 60_000,
    15 * 60_000,
    30 * 60_000,
    3_600_000,
    2 * 3_600_000,
    3 * 3_600_000,
    6 * 3_600_000,
    12 * 3_600_000,
    86_400_000,
    2 * 86_400_000,
];

/// Round-interval time ticks (every 10 min, hour, 6 h, day...) inside `[from, to]`, about
/// `count` of them. Aligned to UTC multiples of the interval.
pub fn time_ticks(from: Millis, to: Millis, count: usize) -> Vec<Millis> {
    let span = (to - from).max(1);
    let want = span / count.max(1) as Millis;
    let step = TIME_STEPS.iter().copied().find(|s| *s >= want).unwrap_or(7 * 86_400_000);
    let first = from.div_euclid(step) * step + if from.rem_euclid(step) == 0 { 0 } else { step };
    (0..).map(|i| first + i * step).take_while(|t| *t <= to).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_maps_linearly_and_flips() {
        let s = Scale { domain: (0.0, 10.0), range: (200.0, 0.0) };
        assert_eq!(s.map(0.0), 200.0);
        assert_eq!(s.map(10.0), 0.0);
        assert_eq!(s.map(2.5), 150.0);
    }

    #[test]
    fn value_ticks_are_round() {
        let ((lo, hi), ticks) = value_axis(18.3, 26.9, 5);
        assert_eq!((lo, hi), (18.0, 28.0));
        assert_eq!(ticks, [18.0, 20.0, 22.0, 24.0, 26.0, 28.0]);
        let ((lo, hi), _) = value_axis(3.3, 4.2, 4);
        assert!(lo <= 3.3 && hi >= 4.2 && hi - lo < 1.5);
        let ((lo, hi), ticks) = value_axis(25.0, 25.0, 4);
        assert!(lo < 25.0 && hi > 25.0 && ticks.len() >= 2);
    }

    #[test]
    fn time_ticks_fall_on_round_times() {
        let hour = 3_600_000;
        let from = 1_766_146_880_000; // 12:21:20 UTC
        let ticks = time_ticks(from, from + hour, 6);
        assert!(ticks.len() >= 4 && ticks.len() <= 7, "{ticks:?}");
        assert!(ticks.iter().all(|t| t % (10 * 60_000) == 0));
        assert!(ticks.iter().all(|t| (from..=from + hour).contains(t)));
        let day = time_ticks(from, from + 24 * hour, 6);
        assert!(day.iter().all(|t| t % (6 * hour) == 0), "{day:?}");
    }
}
