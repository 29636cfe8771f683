//! The data hook of charts and stats, [`use_series`]: one series (a device's metric over a
//! time range) fetched once, downsampled by the server, then kept current by folding in every
//! live or caught-up reading exactly as the server would bucket it (see [`crate::logic::series`]),
//! so reconnecting never refetches the range. Series that follow "now" are kept offline (their
//! last 24 h).
//!
//! Buckets of a day or more are the viewer's local days: once hydrated, such a series is asked
//! for again naming the browser's time zone (the server renders in UTC, as it shows times),
//! and again when live readings run past the days it knows.

use leptos::prelude::*;
use telemetry::History;
use telemetry::dashboard::TimeRange;

use crate::api::{ApiError, device_history, history_between};
use crate::browser::zone::time_zone;
use crate::logic::series::{self, Folded};
use crate::state::live::Live;

/// A series' data: what was fetched and the browser's current copy of it.
#[derive(Clone, Copy)]
pub struct SeriesData {
    fetched: Resource<Result<History, ApiError>>,
    current: RwSignal<Option<History>>,
    device: Signal<String>,
    metric: Signal<String>,
    range: Signal<TimeRange>,
}

/// The offline key of a series that follows now.
#[cfg(feature = "hydrate")]
fn keep_key(device: &str, metric: &str, range: TimeRange) -> Option<String> {
    match range {
        TimeRange::Last { secs } => Some(crate::browser::offline::chart_key(device, metric, secs)),
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
    // Only whole-day buckets follow the zone: other series are not fetched again on hydration.
    let zone = Memo::new(move |_| {
        (live.hydrated() && series::wants_zone(range.get(), points.get())).then(time_zone).flatten()
    });
    let fetched = Resource::new(
        move || (device.get(), metric.get(), range.get(), points.get(), zone.get()),
        move |(device, metric, range, points, tz)| async move {
            let ask = |tz: Option<String>| {
                let (device, metric) = (device.clone(), metric.clone());
                async move {
                    match range {
                        TimeRange::Last { secs } => device_history(device, metric, secs, points, tz).await,
                        TimeRange::Between { from, to } => {
                            history_between(device, metric, from, to, points, tz).await
                        }
                    }
                }
            };
            match ask(tz.clone()).await {
                // A zone this server's database lacks: UTC days rather than no chart.
                Err(ApiError::BadRequest(_)) if tz.is_some() => ask(None).await,
                answer => answer,
            }
        },
    );
    let current: RwSignal<Option<History>> = RwSignal::new(None);
    // Asked again for days past those it knows, and not answered yet.
    let asking_again = StoredValue::new(false);

    // Adopt what was fetched; offline, prefer a newer kept copy.
    Effect::new(move |_| {
        let Some(result) = fetched.get() else { return };
        asking_again.set_value(false);
        let fresh = result.ok();
        current.set(fresh.clone());
        #[cfg(feature = "hydrate")]
        if let Some(key) = keep_key(&device.get_untracked(), &metric.get_untracked(), range.get_untracked()) {
            leptos::task::spawn_local(async move {
                let Some(kept) = crate::browser::offline::load_chart(&key).await else { return };
                if fresh.as_ref().is_none_or(|f| series::newer(&kept, f)) {
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
        let mut folded = Folded::Unchanged;
        live.batch.with(|events| {
            // Notify (redraw) only when a point was added: most batches are other devices'.
            current.maybe_update(|c| {
                if let Some(c) = c.as_mut() {
                    folded = series::fold(c, events, &device, &metric, range);
                }
                folded == Folded::Changed
            });
        });
        if folded == Folded::Beyond && !asking_again.get_value() {
            asking_again.set_value(true);
            fetched.refetch();
        }
        let changed = folded == Folded::Changed;
        #[cfg(feature = "hydrate")]
        if changed
            && let Some(key) = keep_key(&device, &metric, range)
            && let Some(h) = current.get_untracked()
        {
            crate::browser::offline::save_chart_soon(live, key, h);
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
        Some(
            self.current
                .get()
                .filter(|c| series::is_of(c, &device, &metric, range))
                .map(Ok)
                .unwrap_or(fetched),
        )
    }

    /// The history to draw: the browser's current copy when it is of this series, else what
    /// was fetched. Reactive: re-runs as readings arrive.
    pub async fn history(self) -> Result<History, ApiError> {
        let fetched = self.fetched.await;
        let (device, metric, range) =
            (self.device.get_untracked(), self.metric.get_untracked(), self.range.get_untracked());
        self.current.get().filter(|c| series::is_of(c, &device, &metric, range)).map(Ok).unwrap_or(fetched)
    }
}
