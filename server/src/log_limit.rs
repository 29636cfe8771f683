//! Warnings that outsiders can repeat at will (a refused device, a forged origin, a wrong
//! password) are logged once, then at most once a [`WINDOW`] per key with a count of what was
//! left out, so nobody fills the log by repeating themselves.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one line per key this often.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Keys remembered; past this the quiet ones are forgotten (and may log once more).
const MAX_KEYS: usize = 4096;
/// Characters of a key that count.
const MAX_KEY_CHARS: usize = 200;

#[derive(Default)]
pub struct LogLimit {
    /// Key → when its last line was written, and occurrences left out since.
    keys: Mutex<HashMap<String, (Instant, u64)>>,
}

impl LogLimit {
    /// Whether to write a line for this occurrence of `key`: `Some(n)` with the `n` left out
    /// since the key's last line, `None` to stay quiet.
    pub fn check(&self, key: &str, now: Instant) -> Option<u64> {
        // Keys built from outside text are cut, so they cost a bounded length.
        let key = match key.char_indices().nth(MAX_KEY_CHARS) {
            Some((end, _)) => &key[..end],
            None => key,
        };
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((last, skipped)) = keys.get_mut(key) {
            if now.duration_since(*last) < WINDOW {
                *skipped += 1;
                return None;
            }
            let n = *skipped;
            *last = now;
            *skipped = 0;
            return Some(n);
        }
        if keys.len() >= MAX_KEYS {
            keys.retain(|_, (last, _)| now.duration_since(*last) < WINDOW);
            if keys.len() >= MAX_KEYS {
                keys.clear();
            }
        }
        keys.insert(key.to_owned(), (now, 0));
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_then_once_a_window_with_the_count() {
        let limit = LogLimit::default();
        let t0 = Instant::now();
        assert_eq!(limit.check("d1", t0), Some(0));
        for s in 1..30 {
            assert_eq!(limit.check("d1", t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(limit.check("d2", t0), Some(0), "keys are independent");
        assert_eq!(limit.check("d1", t0 + WINDOW), Some(29));
        assert_eq!(limit.check("d1", t0 + WINDOW + Duration::from_secs(1)), None);
    }

    #[test]
    fn memory_stays_bounded() {
        let limit = LogLimit::default();
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS * 3) {
            limit.check(&format!("k{i}"), t0);
        }
        assert!(limit.keys.lock().unwrap().len() <= MAX_KEYS);
        let long = "x".repeat(100_000);
        assert_eq!(limit.check(&long, t0), Some(0));
        assert_eq!(limit.check(&long, t0), None, "a long key is still one key");
    }
}
