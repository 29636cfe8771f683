//! When to try a notification again, and whether to: the retry schedule, what an answer means,
//! and `Retry-After`.
//!
//! A delivery is tried at once, then after each of `notify.retry_secs` (5 s, 30 s, 2 min,
//! 10 min, 30 min, 1 h by default), then every last one until it is a day old, when it is
//! given up. A receiver's `Retry-After` is honoured
//! (within that day). Time-outs, connection errors, 408, 429 and 5xx are tried again; other
//! 4xx are final (the request itself is wrong: retrying would not help).

use std::time::Duration;

use crate::clock::now_ms;

/// A delivery older than this is given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered (2xx, or the mail server took it).
    Sent { status: Option<u16> },
    /// Try again, no sooner than `retry_after` if the receiver said so.
    Retry { status: Option<u16>, error: String, retry_after: Option<Duration> },
    /// Final: the receiver refused the request as such.
    Failed { status: Option<u16>, error: String },
}

/// What an HTTP answer with `status` (and its `Retry-After`) means.
pub fn http(status: u16, retry_after: Option<&str>) -> Outcome {
    match status {
        200..=299 => Outcome::Sent { status: Some(status) },
        408 | 429 | 500..=599 => Outcome::Retry {
            status: Some(status),
            error: format!("answered {status}"),
            retry_after: retry_after.and_then(parse_retry_after),
        },
        _ => Outcome::Failed { status: Some(status), error: format!("answered {status}") },
    }
}

/// `Retry-After`: seconds, or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?.timestamp_millis();
    Some(Duration::from_millis(at.saturating_sub(now_ms()).max(0) as u64))
}

/// When to try again after `attempts` attempts of a delivery made at `created` (ms), waiting
/// `backoff[attempts - 1]` seconds (the last one once they run out), or `None` to give up. A
/// `Retry-After` longer than the schedule's wait is honoured.
pub fn next_attempt(
    backoff: &[u64],
    created: i64,
    attempts: u32,
    retry_after: Option<Duration>,
    now: i64,
) -> Option<i64> {
    let index = (attempts.saturating_sub(1) as usize).min(backoff.len().saturating_sub(1));
    let wait = Duration::from_secs(backoff.get(index).copied().unwrap_or(3600));
    let wait = retry_after.map_or(wait, |r| r.max(wait));
    let at = now.saturating_add(wait.as_millis() as i64);
    (at <= created.saturating_add(GIVE_UP_AFTER.as_millis() as i64)).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_mean_sent_retry_or_failed() {
        assert_eq!(http(204, None), Outcome::Sent { status: Some(204) });
        for status in [408, 429, 500, 503] {
            assert!(matches!(http(status, None), Outcome::Retry { .. }), "{status}");
        }
        for status in [400, 401, 404, 410, 301] {
            assert!(matches!(http(status, None), Outcome::Failed { .. }), "{status}");
        }
        assert!(
            matches!(http(429, Some("120")), Outcome::Retry { retry_after: Some(d), .. } if d.as_secs() == 120)
        );
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let Outcome::Retry { retry_after: Some(d), .. } = http(503, Some(&soon)) else { panic!() };
        assert!((85..=90).contains(&d.as_secs()), "{d:?}");
        assert!(matches!(http(503, Some("soon")), Outcome::Retry { retry_after: None, .. }));
    }

    #[test]
    fn the_schedule_backs_off_then_keeps_its_last_wait_and_gives_up_after_a_day() {
        let t0 = 1_000_000_000_000;
        let backoff = [5, 30, 120, 600, 1800, 3600];
        let waits: Vec<i64> =
            (1..=8).map(|n| next_attempt(&backoff, t0, n, None, t0).unwrap() - t0).collect();
        assert_eq!(waits, [5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 3_600_000, 3_600_000]);
        let late = t0 + 23 * 3_600_000 + 1;
        assert_eq!(next_attempt(&backoff, t0, 20, None, late), None, "a day old: given up");
        let minute = Some(Duration::from_secs(60));
        assert_eq!(next_attempt(&backoff, t0, 1, minute, t0), Some(t0 + 60_000), "Retry-After honoured");
        let second = Some(Duration::from_secs(1));
        assert_eq!(
            next_attempt(&backoff, t0, 4, second, t0),
            Some(t0 + 600_000),
            "never sooner than the schedule"
        );
    }
}
