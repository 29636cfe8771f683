//! Sign-in throttling: after [`MAX_FAILURES`] wrong passwords for one user name within
//! [`WINDOW`], further attempts for that name are refused (429) until the window has passed.
//! Memory stays bounded: at most [`MAX_TRACKED`] names are tracked; the oldest go first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(60);
const MAX_TRACKED: usize = 10_000;

#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    /// `Err(wait)` while `name` is locked out.
    pub fn check(&self, name: &str, now: Instant) -> Result<(), Duration> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match failures.get(&name.to_ascii_lowercase()) {
            Some(&(n, since)) if n >= MAX_FAILURES && now.duration_since(since) < WINDOW => {
                Err(WINDOW - now.duration_since(since))
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, name: &str, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
            if failures.len() >= MAX_TRACKED
                && let Some(oldest) = failures.iter().min_by_key(|(_, (_, s))| *s).map(|(k, _)| k.clone())
            {
                failures.remove(&oldest);
            }
        }
        let entry = failures.entry(name.to_ascii_lowercase()).or_insert((0, now));
        if now.duration_since(entry.1) >= WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    pub fn succeeded(&self, name: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&name.to_ascii_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_repeated_failures_until_the_window_passes() {
        let t = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(t.check("Ann", t0).is_ok());
            t.failed("Ann", t0);
        }
        assert!(t.check("ann", t0).is_err(), "names compare without case");
        assert!(t.check("bob", t0).is_ok(), "others are not affected");
        assert!(t.check("ann", t0 + WINDOW).is_ok());
        t.succeeded("ann");
        assert!(t.check("ann", t0).is_ok());
    }
}
