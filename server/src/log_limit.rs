//! Warnings that outsiders can repeat at will (a refused device, a forged origin, a wrong
//! password) are bounded twice over, so nobody fills the log:
//! - per key (the sender and what it did): one line, then at most one a [`WINDOW`] carrying a
//!   count of what was left out;
//! - per reason, whatever the keys: at most [`PER_REASON`] lines a [`WINDOW`]. Varying the key
//!   (another host name, origin, client id or user name each time) gets no more than that;
//!   the first line left out says so, and the next check once the window has passed writes how
//!   many were left out.
//!
//! So each reason writes at most `PER_REASON + 2` lines a minute, and a server has a fixed set of
//! reasons.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::warn;

/// At most one line per key this often, and [`PER_REASON`] per reason.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Lines one reason may write a [`WINDOW`], over all its keys.
pub const PER_REASON: u32 = 10;

/// Keys remembered; past this the quiet ones are forgotten (and may log once more, within
/// their reason's budget).
const MAX_KEYS: usize = 4096;
/// Characters of a key that count.
const MAX_KEY_CHARS: usize = 200;

/// One reason's lines in its current window.
struct Budget {
    since: Instant,
    written: u32,
    left_out: u64,
}

#[derive(Default)]
pub struct LogLimit {
    /// Reason and key → when its last line was written, and occurrences left out since.
    keys: Mutex<HashMap<String, (Instant, u64)>>,
    budgets: Mutex<HashMap<&'static str, Budget>>,
}

impl LogLimit {
    /// Whether to write a line for this occurrence of `key` (a `reason`'s): `Some(n)` with the
    /// `n` of this key left out since its last line, `None` to stay quiet.
    pub fn check(&self, reason: &'static str, key: &str, now: Instant) -> Option<u64> {
        // Keys built from outside text are cut, so they cost a bounded length.
        let key = match key.char_indices().nth(MAX_KEY_CHARS) {
            Some((end, _)) => &key[..end],
            None => key,
        };
        let key = format!("{reason}\n{key}");
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let earlier = match keys.get_mut(&key) {
            Some((last, skipped)) if now.duration_since(*last) < WINDOW => {
                *skipped += 1;
                return None;
            }
            Some((_, skipped)) => *skipped,
            None => 0,
        };
        if !self.within_budget(reason, now) {
            return None;
        }
        if keys.len() >= MAX_KEYS && !keys.contains_key(&key) {
            keys.retain(|_, (last, _)| now.duration_since(*last) < WINDOW);
            if keys.len() >= MAX_KEYS {
                keys.clear();
            }
        }
        keys.insert(key, (now, 0));
        Some(earlier)
    }

    /// Counts a line against `reason`'s budget; `false` when it is spent for this window. Also
    /// writes what was left out of every reason whose window has passed.
    fn within_budget(&self, reason: &'static str, now: Instant) -> bool {
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        for (kind, budget) in budgets.iter_mut() {
            if now.duration_since(budget.since) < WINDOW {
                continue;
            }
            if budget.left_out > 0 {
                let n = budget.left_out;
                warn!(reason = kind, left_out = n, "{n} more lines like \"{kind}\" were left out");
            }
            *budget = Budget { since: now, written: 0, left_out: 0 };
        }
        let budget = budgets.entry(reason).or_insert(Budget { since: now, written: 0, left_out: 0 });
        if budget.written < PER_REASON {
            budget.written += 1;
            return true;
        }
        budget.left_out += 1;
        if budget.left_out == 1 {
            warn!(
                reason,
                "more than {PER_REASON} lines like \"{reason}\" this minute: the rest are counted, not written"
            );
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_then_once_a_window_with_the_count() {
        let limit = LogLimit::default();
        let t0 = Instant::now();
        assert_eq!(limit.check("refused", "d1", t0), Some(0));
        for s in 1..30 {
            assert_eq!(limit.check("refused", "d1", t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(limit.check("refused", "d2", t0), Some(0), "keys are independent");
        assert_eq!(limit.check("other", "d1", t0), Some(0), "so are reasons");
        assert_eq!(limit.check("refused", "d1", t0 + WINDOW), Some(29));
        assert_eq!(limit.check("refused", "d1", t0 + WINDOW + Duration::from_secs(1)), None);
    }

    #[test]
    fn varied_keys_get_a_few_lines_a_window_per_reason() {
        let limit = LogLimit::default();
        let t0 = Instant::now();
        let written = (0..1000).filter(|i| limit.check("host", &format!("h{i}"), t0).is_some()).count();
        assert_eq!(written, PER_REASON as usize);
        assert_eq!(limit.check("origin", "o", t0), Some(0), "another reason has its own budget");
        let later = t0 + WINDOW;
        let written = (0..1000).filter(|i| limit.check("host", &format!("x{i}"), later).is_some()).count();
        assert_eq!(written, PER_REASON as usize, "a new window, a new budget");
        assert!(limit.budgets.lock().unwrap().len() == 2);
    }

    #[test]
    fn memory_stays_bounded() {
        let limit = LogLimit::default();
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS * 3) {
            limit.check("k", &format!("k{i}"), t0 + WINDOW * i as u32);
        }
        assert!(limit.keys.lock().unwrap().len() <= MAX_KEYS);
        let long = "x".repeat(100_000);
        let later = t0 + WINDOW * (MAX_KEYS * 3 + 1) as u32;
        assert_eq!(limit.check("k", &long, later), Some(0));
        assert_eq!(limit.check("k", &long, later), None, "a long key is still one key");
    }
}
