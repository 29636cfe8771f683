//! How often a device reports, learned from when its readings arrive: the median of its
//! latest gaps, robust to bursts and backfills. Pure, so every store learns alike, and a store
//! that rebuilds its state by replaying its change log learns exactly what it learned live.
//!
//! - A gap is measured between *arrivals* (server receive times), since staleness is about
//!   when the server last heard from the device, not when it took its readings.
//! - **Bursts**: a message less than [`BURST_MS`] after the last arrival belongs to it (a
//!   batch, a queue flushed on reconnect, an HTTP backfill all at once); it is no gap.
//! - **Backfills**: a message read before the last arrival's reading, or whose reading time
//!   moved on more than twice as far as its receive time since the last arrival (plus
//!   [`BURST_MS`]), is old readings replayed faster than they were taken; its gap is not a
//!   sample (the next arrival is measured from it). Comparing the two advances, not the two
//!   clocks, leaves a device whose clock is off alone.
//! - The median of the latest [`GAPS`] samples (the upper one of an even count, so a tie
//!   leans towards patience), clamped to [`MIN_INTERVAL_MS`]…[`MAX_INTERVAL_MS`]: one long
//!   outage or a few quick repeats do not move it.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::Millis;

/// Messages this close after the last arrival are part of it.
pub const BURST_MS: Millis = 1_000;
/// Gaps the median is taken over.
pub const GAPS: usize = 32;
/// The shortest interval learned (a 1 Hz device is expected every 10 s).
pub const MIN_INTERVAL_MS: Millis = 10_000;
/// The longest interval learned.
pub const MAX_INTERVAL_MS: Millis = 86_400_000;

/// What a store keeps per device to learn its interval: about 150 bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rhythm {
    /// Receive and reading time of the last arrival.
    #[serde(default, rename = "l", skip_serializing_if = "Option::is_none")]
    last: Option<(Millis, Millis)>,
    /// The latest gaps in milliseconds, oldest first; at most [`GAPS`].
    #[serde(default, rename = "g", skip_serializing_if = "VecDeque::is_empty")]
    gaps: VecDeque<u32>,
}

impl Rhythm {
    /// Notes a stored message read at `ts`, received at `received` (server time).
    pub fn observe(&mut self, ts: Millis, received: Millis) {
        let Some((rx0, ts0)) = self.last else {
            self.last = Some((received, ts));
            return;
        };
        let gap = received.saturating_sub(rx0);
        if gap < BURST_MS {
            return;
        }
        self.last = Some((received, ts));
        let advanced = ts.saturating_sub(ts0);
        if advanced < 0 || advanced > gap.saturating_mul(2).saturating_add(BURST_MS) {
            return;
        }
        if self.gaps.len() == GAPS {
            self.gaps.pop_front();
        }
        self.gaps.push_back(u32::try_from(gap).unwrap_or(u32::MAX));
    }

    /// The interval learned so far: none before the first gap.
    pub fn learned(&self) -> Option<Millis> {
        if self.gaps.is_empty() {
            return None;
        }
        let mut sorted: Vec<u32> = self.gaps.iter().copied().collect();
        sorted.sort_unstable();
        Some(Millis::from(sorted[sorted.len() / 2]).clamp(MIN_INTERVAL_MS, MAX_INTERVAL_MS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Millis = 1_000;
    const T0: Millis = 1_766_146_880_000;

    /// Readings every `every` seconds from `from`, read and received at once.
    fn steady(r: &mut Rhythm, from: Millis, every: Millis, n: i64) -> Millis {
        let mut t = from;
        for _ in 0..n {
            r.observe(t, t);
            t += every * S;
        }
        t - every * S
    }

    #[test]
    fn the_median_gap_clamped_is_learned() {
        let mut r = Rhythm::default();
        assert_eq!(r.learned(), None);
        r.observe(T0, T0);
        assert_eq!(r.learned(), None, "one reading is no gap");
        steady(&mut r, T0 + 300 * S, 300, 4);
        assert_eq!(r.learned(), Some(300 * S));
        let mut fast = Rhythm::default();
        steady(&mut fast, T0, 2, 20);
        assert_eq!(fast.learned(), Some(MIN_INTERVAL_MS), "clamped up to 10 s");
        let mut rare = Rhythm::default();
        steady(&mut rare, T0, 3 * 86_400, 3);
        assert_eq!(rare.learned(), Some(MAX_INTERVAL_MS), "clamped down to a day");
    }

    #[test]
    fn one_outage_and_jitter_do_not_move_it() {
        let mut r = Rhythm::default();
        let last = steady(&mut r, T0, 10, 20);
        // Two hours without a word, then on as before, a little late now and then.
        let back = last + 7_200 * S;
        r.observe(back, back);
        let mut t = back;
        for jitter in [0, 300, -200, 900, 0] {
            t += 10 * S + jitter;
            r.observe(t, t);
        }
        assert_eq!(r.learned(), Some(10 * S));
        assert!(r.gaps.len() <= GAPS);
    }

    #[test]
    fn bursts_and_backfills_are_no_gaps() {
        let mut r = Rhythm::default();
        let last = steady(&mut r, T0, 300, 5);
        // Back after an hour with its queue: 12 readings 5 min apart, sent within 30 ms ...
        let rx = last + 3_600 * S;
        for i in 0..12 {
            r.observe(last + (i + 1) * 300 * S, rx + i * 3);
        }
        // ... then a queue of 500 paced at 100 a second, arrivals a second apart ...
        let rx2 = rx + 2 * S;
        for i in 0..500 {
            r.observe(last + (i + 13) * 300 * S, rx2 + i * 10);
        }
        // ... and a whole day posted over HTTP at once, read times older than before.
        let rx3 = rx2 + 10 * S;
        for i in 0..288 {
            r.observe(T0 - 86_400 * S + i * 300 * S, rx3);
        }
        assert_eq!(r.learned(), Some(300 * S), "{:?}", r.gaps);
        // A device whose clock is an hour behind learns all the same.
        let mut behind = Rhythm::default();
        for i in 0..5 {
            behind.observe(T0 - 3_600 * S + i * 60 * S, T0 + i * 60 * S);
        }
        assert_eq!(behind.learned(), Some(60 * S));
    }

    #[test]
    fn what_is_kept_round_trips_compactly() {
        let mut r = Rhythm::default();
        steady(&mut r, T0, 60, 3);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, format!(r#"{{"l":[{},{}],"g":[60000,60000]}}"#, T0 + 120 * S, T0 + 120 * S));
        assert_eq!(serde_json::from_str::<Rhythm>(&json).unwrap(), r);
        assert_eq!(serde_json::from_str::<Rhythm>("{}").unwrap(), Rhythm::default());
    }
}
