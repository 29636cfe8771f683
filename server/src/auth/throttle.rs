//! Sign-in throttling: after `max_failures` failures for one key (a client address, or a user
//! name from one address) within [`WINDOW`], further attempts for that key are refused (429)
//! until the window has passed. Memory stays bounded: at most [`MAX_TRACKED`] keys are
//! tracked; the oldest go first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const WINDOW: Duration = Duration::from_secs(60);
const MAX_TRACKED: usize = 10_000;

pub struct Throttle {
    max_failures: u32,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    pub fn new(max_failures: u32) -> Throttle {
        Throttle { max_failures, failures: Mutex::default() }
    }

    /// `Err(wait)` while `key` is locked out.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match failures.get(key) {
            Some(&(n, since)) if n >= self.max_failures && now.duration_since(since) < WINDOW => {
                Err(WINDOW - now.duration_since(since))
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, key: &str, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_TRACKED && !failures.contains_key(key) {
            failures.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
            if failures.len() >= MAX_TRACKED
                && let Some(oldest) = failures.iter().min_by_key(|(_, (_, s))| *s).map(|(k, _)| k.clone())
            {
                failures.remove(&oldest);
            }
        }
        let entry = failures.entry(key.to_owned()).or_insert((0, now));
        if now.duration_since(entry.1) >= WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    pub fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_repeated_failures_until_the_window_passes() {
        let t = Throttle::new(5);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(t.check("ann", t0).is_ok());
            t.failed("ann", t0);
        }
        assert!(t.check("ann", t0).is_err());
        assert!(t.check("bob", t0).is_ok(), "others are not affected");
        assert!(t.check("ann", t0 + WINDOW).is_ok());
        t.succeeded("ann");
        assert!(t.check("ann", t0).is_ok());
    }

    #[test]
    fn memory_stays_bounded() {
        let t = Throttle::new(5);
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED + 100) {
            t.failed(&format!("k{i}"), t0);
        }
        assert!(t.failures.lock().unwrap().len() <= MAX_TRACKED);
    }
}
