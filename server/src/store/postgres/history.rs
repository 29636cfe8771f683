//! One metric's downsampled history ([`telemetry::TelemetrySource::history_in`]'s answer):
//! from the rollups where whole periods fit ([`super::rollups`]), read in one snapshot with
//! the change number it is current to.
//!
//! Buckets of a minute or more are read from rollups, so they outlive the raw readings.
//! Buckets finer than the finest level left at the range's start are widened to its period
//! (a minute where readings were pruned, an hour where minute rollups were too), and local
//! days are cut at the whole minute or hour before a midnight where only those are left
//! ([`Horizons::width_at`], [`Horizons::snap`]), exactly as the redb store answers.

use telemetry::history::{Downsampler, LocalDays, ROLLUP_PERIODS, bucket_width, day_edges};
use telemetry::{History, Millis};

use super::super::retention::Horizons;
use super::error::PgError;
use super::retention;
use super::rollups::{Buckets, LEVELS, Plan};
use super::store::PgStore;

/// A viewer's local days over a range ([`day_edges`]), worked out before the query (so the
/// query owns what it needs and can run on the store's runtime): build it with
/// [`LocalEdges::of`] from `TelemetrySource::history_in`'s `days`.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalEdges {
    /// The zone's name, reported with the history.
    pub zone: String,
    /// `n` days as a width.
    pub width: Millis,
    /// Bucket starts, then the end of the last.
    pub edges: Vec<Millis>,
}

impl LocalEdges {
    /// `days`' local days over `[from, to]` in at most `max_points` buckets, when buckets are a
    /// day or more; `None` otherwise (and without `days`).
    pub fn of(
        from: Millis,
        to: Millis,
        max_points: usize,
        days: Option<&dyn LocalDays>,
    ) -> Option<LocalEdges> {
        let days = days?;
        let (from, to) = (from.min(to), from.max(to));
        let (width, edges) = day_edges(from, to, max_points, days)?;
        Some(LocalEdges { zone: days.name().to_owned(), width, edges })
    }
}

impl PgStore {
    /// [`telemetry::TelemetrySource::history`]: `device`'s `metric` over `[from, to]` in at
    /// most `max_points` buckets, UTC days for a day or more.
    pub async fn history(
        &self,
        device: &str,
        metric: &str,
        from: Millis,
        to: Millis,
        max_points: usize,
    ) -> Result<History, PgError> {
        self.history_in(device, metric, from, to, max_points, None).await
    }

    /// [`telemetry::TelemetrySource::history_in`], with the viewer's local days already worked
    /// out ([`LocalEdges::of`]; `None`: UTC).
    pub async fn history_in(
        &self,
        device: &str,
        metric: &str,
        from: Millis,
        to: Millis,
        max_points: usize,
        local: Option<LocalEdges>,
    ) -> Result<History, PgError> {
        let (from, to) = (from.min(to), from.max(to));
        let mut history = History {
            device: device.to_owned(),
            metric: metric.to_owned(),
            from,
            to,
            bucket_ms: bucket_width(from, to, max_points),
            buckets: Vec::new(),
            last_seq: 0,
            edges: Vec::new(),
            zone: None,
        };
        let mut client = self.pool.get().await?;
        // One snapshot: the change number, the horizons and every level read as of one moment.
        let tx = super::records::snapshot(&mut client).await?;
        let statement = tx
            .prepare_cached(
                "SELECT (SELECT value FROM counters WHERE name = 'change_seq'), \
                 (SELECT id FROM series WHERE device = $1 AND metric = $2)",
            )
            .await?;
        let row = tx.query_one(&statement, &[&device, &metric]).await?;
        let last_seq: i64 = row.get(0);
        history.last_seq =
            u64::try_from(last_seq).map_err(|_| PgError::Corrupt(format!("change_seq is {last_seq}")))?;
        let series: Option<i32> = row.get(1);
        let pruned: Horizons = retention::recorded(&tx, false).await?;
        let mut plan = Plan::default();
        let mut fold = match local {
            Some(local) => {
                history.bucket_ms = local.width;
                history.edges = pruned.snap(&local.edges);
                history.zone = Some(local.zone);
                // Each bucket on its own: its whole hours, its ends from what is finer.
                for bucket in history.edges.windows(2).take_while(|w| w[0] <= to) {
                    let (start, end) = (bucket[0].max(from), bucket[1].saturating_sub(1).min(to));
                    plan.add(start, end, Some(LEVELS - 1));
                }
                Downsampler::between(history.edges.clone())
            }
            None => {
                history.bucket_ms = pruned.width_at(from, history.bucket_ms);
                let level = ROLLUP_PERIODS.iter().rposition(|p| history.bucket_ms % p == 0);
                plan.add(from, to, level);
                Downsampler::new(history.bucket_ms)
            }
        };
        if let Some(series) = series {
            let buckets = if history.zone.is_some() {
                Buckets::Edges(&history.edges)
            } else {
                Buckets::Width(history.bucket_ms)
            };
            plan.read(&tx, series, retention::kept(&pruned), buckets, &mut fold).await?;
            history.buckets = fold.finish();
        }
        tx.commit().await?;
        Ok(history)
    }
}
