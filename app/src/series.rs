//! One series (a device's metric over a time range) as charts and stats need it: fetched once,
//! downsampled by the server, then kept current by folding in every live or caught-up reading
//! exactly as the server would bucket it, so reconnecting never refetches the range. Series
//! that follow "now" are kept offline (their last 24 h).

use leptos::prelude::*;
use telemetry::dashboard::TimeRange;
use telemetry::{History, LiveEvent};

use crate::api::{ApiError, device_history, history_between};
use crate::live::Live;

/// A series' data: what was fetched and the browser's current copy of it.
#[derive(Clone, Copy)]
pub struct SeriesData {
    fetched: Resource<Result<History, ApiError>>,
    current: RwSignal<Option<History>>,
    device: Signal<String>,
    metric: Signal<String>,
    range: Signal<TimeRange>,
}

fn matches(h: &History, device: &str, metric: &str, range: TimeRange) -> bool {
    h.device == device && h.metric == metric && range.bounds(h.to) == (h.from, h.to)
}

/// Whether a kept copy is more current than a fetched one (which, offline, is itself an old copy
/// from the page or service-worker cache).
#[cfg(feature = "hydrate")]
fn newer(kept: &History, fetched: &History) -> bool {
    kept.device == fetched.device
        && kept.metric == fetched.metric
        && kept.to - kept.from == fetched.to - fetched.from
        && kept.last_seq > fetched.last_seq
}

/// The offline key of a series that follows now.
#[cfg(feature = "hydrate")]
fn keep_key(device: &str, metric: &str, range: TimeRange) -> Option<String> {
    match range {
        TimeRange::Last { secs } => Some(crate::offline::chart_key(device, metric, secs)),
        TimeRange::Between { .. } => None,
    }
}

pub fn use_series(
    device: Signal<String>,
    metric: Signal<String>,
    range: Signal<TimeRange>,
    points: Signal<u32>,
) -> SeriesData {
    let live = expect_context::<Live>();
    let fetched = Resource::new(
        move || (device.get(), metric.get(), range.get(), points.get()),
        move |(device, metric, range, points)| async move {
            match range {
                TimeRange::Last { secs } => device_history(device, metric, secs, points).await,
                TimeRange::Between { from, to } => history_between(device, metric, from, to, points).await,
            }
        },
    );
    let current: RwSignal<Option<History>> = RwSignal::new(None);

    // Adopt what was fetched; offline, prefer a newer kept copy.
    Effect::new(move |_| {
        let Some(result) = fetched.get() else { return };
        let fresh = result.ok();
        current.set(fresh.clone());
        #[cfg(feature = "hydrate")]
        if let Some(key) = keep_key(&device.get_untracked(), &metric.get_untracked(), range.get_untracked()) {
            leptos::task::spawn_local(async move {
                let Some(kept) = crate::offline::load_chart(&key).await else { return };
                if fresh.as_ref().is_none_or(|f| newer(&kept, f)) {
                    current.set(Some(kept));
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = fresh;
    });

    // Fold in live and caught-up readings.
    Effect::new(move |_| {
        let (device, metric, range) = (device.get_untracked(), metric.get_untracked(), range.get_untracked());
        let mut changed = false;
        live.batch.with(|events| {
            // Notify (redraw) only when a point was added: most batches are other devices'.
            current.maybe_update(|c| {
                let Some(c) = c else { return false };
                for e in events {
                    let Some(seq) = e.seq().filter(|s| *s > c.last_seq) else { continue };
                    // Every change up to here is accounted for, whichever device it was.
                    c.last_seq = seq;
                    if let LiveEvent::Reading { device: d, ts, values, .. } = e
                        && *d == device
                        && let Some(v) = values.get(&metric)
                        && (range.follows_now() || *ts <= c.to)
                    {
                        c.add_point(*ts, *v);
                        changed = true;
                    }
                }
                changed
            });
        });
        #[cfg(feature = "hydrate")]
        if changed
            && let Some(key) = keep_key(&device, &metric, range)
            && let Some(h) = current.get_untracked()
        {
            crate::offline::save_chart_soon(live, key, h);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = changed;
    });

    SeriesData { fetched, current, device, metric, range }
}

impl SeriesData {
    /// Waits until the series is fetched (or failed), without following later readings.
    pub async fn loaded(self) -> Result<(), ApiError> {
        self.fetched.await.map(|_| ())
    }

    /// What was fetched, without later readings: what the server rendered, so hydration sees the
    /// same thing.
    pub fn fetched(&self) -> Option<History> {
        self.fetched.get().and_then(Result::ok)
    }

    /// The history to draw now, if fetched: the browser's current copy when it is of this
    /// series, else what was fetched. Reactive.
    pub fn get(&self) -> Option<Result<History, ApiError>> {
        let (device, metric, range) =
            (self.device.get_untracked(), self.metric.get_untracked(), self.range.get_untracked());
        let fetched = self.fetched.get()?;
        Some(self.current.get().filter(|c| matches(c, &device, &metric, range)).map(Ok).unwrap_or(fetched))
    }

    /// The history to draw: the browser's current copy when it is of this series, else what
    /// was fetched. Reactive: re-runs as readings arrive.
    pub async fn history(self) -> Result<History, ApiError> {
        let fetched = self.fetched.await;
        let (device, metric, range) =
            (self.device.get_untracked(), self.metric.get_untracked(), self.range.get_untracked());
        self.current.get().filter(|c| matches(c, &device, &metric, range)).map(Ok).unwrap_or(fetched)
    }
}
