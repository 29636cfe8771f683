//! The gate every password check goes through. Argon2id takes 19 MiB and tens of milliseconds
//! of a core, so an unauthenticated flood of sign-ins or Basic credentials must not become a
//! lever on the machine:
//! - at most [`Gate::permits`] checks run at once (one per two cores), on the blocking pool,
//!   and at most [`MAX_WAITING`] wait; beyond that the answer is "busy" (503) at once;
//! - a client address with [`PER_ADDRESS`] failures within a minute is refused (429) for the
//!   rest of it, and so is a user name after [`PER_NAME`] failures from one address. Others
//!   signing in as that user, from elsewhere, are not locked out by it.
//!
//! Device keys are random, so they are checked by a plain hash, not here.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::throttle::Throttle;

/// Failures from one address within a minute before it is refused.
pub const PER_ADDRESS: u32 = 20;
/// Failures for one user name from one address within a minute before that pair is refused.
pub const PER_NAME: u32 = 5;
/// Checks that may wait for a permit; more are answered "busy".
pub const MAX_WAITING: usize = 32;

/// Why a check did not run, or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too many failures lately; try again after this long.
    Throttled(Duration),
    /// Too many checks waiting.
    Busy,
    /// The check ran and failed.
    Failed,
}

pub struct Gate {
    permits: Semaphore,
    waiting: AtomicUsize,
    by_address: Throttle,
    by_name: Throttle,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate::new(Gate::permits())
    }
}

impl Gate {
    pub fn new(permits: usize) -> Gate {
        Gate {
            permits: Semaphore::new(permits.max(1)),
            waiting: AtomicUsize::new(0),
            by_address: Throttle::new(PER_ADDRESS),
            by_name: Throttle::new(PER_NAME),
        }
    }

    /// Password checks that may run at once: half the cores, at least one.
    pub fn permits() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get() / 2).max(1)
    }

    /// Runs `check` (blocking: Argon2) for `name` from `peer` if the throttles and the permits
    /// allow; counts a `false` against both.
    pub async fn run<T: Send + 'static>(
        &self,
        name: &str,
        peer: IpAddr,
        check: impl FnOnce() -> Option<T> + Send + 'static,
    ) -> Result<T, Refused> {
        let now = Instant::now();
        let address = peer.to_string();
        let pair = format!("{}\n{address}", name.to_ascii_lowercase());
        self.by_address.check(&address, now).map_err(Refused::Throttled)?;
        self.by_name.check(&pair, now).map_err(Refused::Throttled)?;
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Busy);
        }
        let permit = self.permits.acquire().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let _permit = permit.map_err(|_| Refused::Busy)?;
        let result = tokio::task::spawn_blocking(check).await.map_err(|_| Refused::Busy)?;
        match result {
            Some(value) => {
                self.by_name.succeeded(&pair);
                Ok(value)
            }
            None => {
                let now = Instant::now();
                self.by_address.failed(&address, now);
                self.by_name.failed(&pair, now);
                Err(Refused::Failed)
            }
        }
    }

    /// Counts a failure that needed no password check (a wrong setup token).
    pub fn failed(&self, peer: IpAddr) {
        self.by_address.failed(&peer.to_string(), Instant::now());
    }

    /// `Err(wait)` while `peer` is refused.
    pub fn check_address(&self, peer: IpAddr) -> Result<(), Duration> {
        self.by_address.check(&peer.to_string(), Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[tokio::test]
    async fn failures_lock_the_name_from_that_address_only() {
        let gate = Gate::new(1);
        for _ in 0..PER_NAME {
            assert_eq!(gate.run("ann", A, || None::<()>).await, Err(Refused::Failed));
        }
        assert!(matches!(gate.run("Ann", A, || Some(())).await, Err(Refused::Throttled(_))));
        assert_eq!(gate.run("ann", B, || Some(7)).await, Ok(7), "the real admin elsewhere gets in");
        assert_eq!(gate.run("bob", A, || Some(1)).await, Ok(1), "other names from A still try");
    }

    #[tokio::test]
    async fn an_address_guessing_many_names_is_refused() {
        let gate = Gate::new(1);
        for i in 0..PER_ADDRESS {
            assert_eq!(gate.run(&format!("u{i}"), A, || None::<()>).await, Err(Refused::Failed));
        }
        assert!(matches!(gate.run("new", A, || Some(())).await, Err(Refused::Throttled(_))));
        assert!(gate.run("new", B, || Some(())).await.is_ok());
    }

    #[tokio::test]
    async fn checks_run_one_at_a_time_and_a_crowd_is_told_busy() {
        let gate = std::sync::Arc::new(Gate::new(1));
        let running = std::sync::Arc::new(AtomicUsize::new(0));
        let most = std::sync::Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..(MAX_WAITING + 20) {
            let (gate, running, most) = (gate.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let peer = IpAddr::V4(std::net::Ipv4Addr::new(10, 1, (i / 256) as u8, (i % 256) as u8));
                gate.run("x", peer, move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                    Some(())
                })
                .await
            }));
        }
        let mut busy = 0;
        for t in tasks {
            if t.await.unwrap() == Err(Refused::Busy) {
                busy += 1;
            }
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "one Argon2 at a time with one permit");
        assert!(busy > 0, "a crowd beyond the queue is told busy");
    }
}
