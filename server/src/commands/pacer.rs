//! The pace bulk commands are made at: turns handed out to every bulk being made, at most
//! `commands.bulk_per_sec` commands a second over all of them, in slices small enough to come
//! ten times a second.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Most commands made in one commit.
pub const SLICE: usize = 100;

/// Hands out turns to make commands, at most `per_sec` a second over everyone asking.
pub struct Pacer {
    per_sec: u32,
    /// When the next turn may start.
    next: Mutex<Instant>,
}

impl Pacer {
    pub fn new(per_sec: u32) -> Pacer {
        Pacer { per_sec: per_sec.max(1), next: Mutex::new(Instant::now()) }
    }

    /// Commands per slice: at most [`SLICE`], and small enough that slices come at least ten
    /// times a second.
    pub fn slice(&self) -> usize {
        (self.per_sec as usize / 10).clamp(1, SLICE)
    }

    /// Waits for the turn to make `n` commands.
    pub async fn turn(&self, n: usize) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + Duration::from_secs_f64(n as f64 / f64::from(self.per_sec));
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_keep_to_the_rate_over_everyone_asking() {
        assert_eq!(Pacer::new(1_000).slice(), 100);
        assert_eq!(Pacer::new(10).slice(), 1);
        assert_eq!(Pacer::new(10_000).slice(), SLICE);
        let pacer = std::sync::Arc::new(Pacer::new(2_000));
        let start = Instant::now();
        // Two bulks at once, 500 commands each: 1,000 at 2,000 a second, the first slice at
        // once and the tenth 0.45 s later.
        let other = tokio::spawn({
            let p = pacer.clone();
            async move {
                for _ in 0..5 {
                    p.turn(100).await;
                }
            }
        });
        for _ in 0..5 {
            pacer.turn(100).await;
        }
        other.await.unwrap();
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(450), "faster than the rate: {took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
}
