//! Backtests: what a rule would have done over stored history. Each device's raw readings of
//! what the rule watches are read page by page and replayed through
//! [`telemetry::alarm::replay`], the live engine's own state machine; only raw readings are
//! replayed (rollups cannot say when a threshold was crossed), so history older than
//! `storage.retention_days` is not. Bounded: at most [`MAX_BACKTEST_DEVICES`] devices and
//! [`MAX_BACKTEST_READINGS`] readings, the answer saying what was left out.

use telemetry::alarm::replay::Replay;
use telemetry::alarm::{Backtest, MAX_BACKTEST_DEVICES, MAX_BACKTEST_READINGS, Rule};
use telemetry::{Millis, SourceError};

use crate::store::Store;

/// Readings read at a time, per metric.
const PAGE: usize = 10_000;

/// Replays `rule` (saved or not; enabled or not) over the stored readings in `[from, to]`.
pub fn run(store: &dyn Store, rule: &Rule, from: Millis, to: Millis) -> Result<Backtest, SourceError> {
    let mut scope: Vec<String> = if rule.devices.is_empty() {
        store.devices()?.value.into_iter().map(|d| d.id).collect()
    } else {
        let mut named = rule.devices.clone();
        named.sort();
        named.dedup();
        named
    };
    crate::scope::in_scope(store, rule, &mut scope, to).map_err(SourceError::from)?;
    let in_scope = scope.len();
    scope.truncate(MAX_BACKTEST_DEVICES);
    let mut replay = Replay::new(rule, from, to);
    for (n, device) in scope.iter().enumerate() {
        let metrics: Vec<String> = match rule.metric() {
            Some(metric) => vec![metric.to_owned()],
            // No-data on any metric, offline: any reading says the device is there.
            None => match store.device(device)?.value {
                Some(d) => {
                    replay.stale_after(d.stale_after());
                    replay.interval(d.interval.expected());
                    d.metrics.into_iter().map(|m| m.name).collect()
                }
                None => continue,
            },
        };
        if !replay_device(store, &mut replay, device, &metrics, from, to)? {
            replay.limited(format!(
                "stopped after {MAX_BACKTEST_READINGS} readings: {} of {in_scope} devices replayed, the last \
                 only up to then",
                n + 1
            ));
            return Ok(replay.finish());
        }
    }
    if in_scope > MAX_BACKTEST_DEVICES {
        replay.limited(format!(
            "only the first {MAX_BACKTEST_DEVICES} of {in_scope} devices (by id) were replayed"
        ));
    }
    Ok(replay.finish())
}

/// Replays one device's readings of `metrics` (merged by time); false when the readings
/// budget ran out.
fn replay_device(
    store: &dyn Store,
    replay: &mut Replay,
    device: &str,
    metrics: &[String],
    from: Millis,
    to: Millis,
) -> Result<bool, SourceError> {
    let mut series: Vec<Series> = metrics.iter().map(|m| Series::new(m)).collect();
    let mut started = false;
    let mut values: Vec<(String, f64)> = Vec::with_capacity(metrics.len());
    loop {
        let budget = MAX_BACKTEST_READINGS.saturating_sub(replay.readings());
        let mut next: Option<Millis> = None;
        for s in &mut series {
            if let Some((t, _)) = s.peek(store, device, from, to)? {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        let Some(t) = next else { return Ok(true) };
        if budget == 0 {
            return Ok(false);
        }
        if !started {
            replay.device(device);
            started = true;
        }
        // The reading of every metric stamped `t` is one message, as it arrived.
        let single = series.len() == 1;
        if single && values.len() == 1 {
            values[0].1 = series[0].take().1;
        } else {
            values.clear();
            for s in &mut series {
                if s.peek(store, device, from, to)?.is_some_and(|(at, _)| at == t) {
                    values.push((s.metric.clone(), s.take().1));
                }
            }
        }
        replay.reading(t, &values);
    }
}

/// One metric's readings, read a page at a time.
struct Series {
    metric: String,
    page: Vec<(Millis, f64)>,
    next: usize,
    /// Time of the last reading read, the next page's start.
    after: Option<Millis>,
    done: bool,
}

impl Series {
    fn new(metric: &str) -> Series {
        Series { metric: metric.to_owned(), page: Vec::new(), next: 0, after: None, done: false }
    }

    fn peek(
        &mut self,
        store: &dyn Store,
        device: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Option<(Millis, f64)>, SourceError> {
        if self.next == self.page.len() && !self.done {
            self.page = store.points(device, &self.metric, from, to, self.after, PAGE)?;
            self.next = 0;
            self.done = self.page.len() < PAGE;
            self.after = self.page.last().map(|p| p.0).or(self.after);
        }
        Ok(self.page.get(self.next).copied())
    }

    /// The reading [`Series::peek`] answered.
    fn take(&mut self) -> (Millis, f64) {
        let p = self.page[self.next];
        self.next += 1;
        p
    }
}
