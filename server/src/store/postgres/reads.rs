//! What the read side reads back: one series' raw points (for exports, page by page), the
//! change log as live events, a device's counts. History is in `history`.

use std::time::SystemTime;

use telemetry::{LiveEvent, Millis};

use super::change_log::MAX_TAIL;
use super::error::PgError;
use super::store::PgStore;
use super::time;

/// Points one read answers at most.
pub const MAX_POINTS: u32 = 1_000_000;

/// A device's row in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceCounts {
    /// Server time of its first and latest message.
    pub first_seen: Millis,
    pub last_seen: Millis,
    /// Messages that stored something.
    pub message_count: u64,
    /// The number of its latest change.
    pub last_change: u64,
}

impl PgStore {
    /// [`telemetry::TelemetrySource::points`]: `device`'s `metric` in `[from, to]`, oldest
    /// first, after time `after` if given, at most `limit` (and [`MAX_POINTS`]) points; none
    /// from before the readings' retention horizon ([`super::retention`]).
    pub async fn points(
        &self,
        device: &str,
        metric: &str,
        from: Millis,
        to: Millis,
        after: Option<Millis>,
        limit: usize,
    ) -> Result<Vec<(Millis, f64)>, PgError> {
        let start = after.map_or(from, |a| a.saturating_add(1).max(from)).max(time::EARLIEST);
        let to = to.min(time::LATEST - 1);
        if start > to || limit == 0 {
            return Ok(Vec::new());
        }
        let (start, to) = (time::to_time(start)?, time::to_time(to)?);
        let limit = i64::from(u32::try_from(limit).unwrap_or(u32::MAX).min(MAX_POINTS));
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT r.ts, r.value FROM readings r \
                 WHERE r.series = (SELECT id FROM series WHERE device = $1 AND metric = $2) \
                 AND r.ts >= $3 AND r.ts <= $4 AND r.ts >= coalesce( \
                 (SELECT before FROM retention_horizons WHERE level = 'readings'), '-infinity') \
                 ORDER BY r.ts LIMIT $5",
            )
            .await?;
        let rows = client.query(&statement, &[&device, &metric, &start, &to, &limit]).await?;
        rows.iter().map(|r| Ok((time::from_time(r.get::<_, SystemTime>(0))?, r.get(1)))).collect()
    }

    /// [`telemetry::TelemetrySource::changes_since`]: the stored changes numbered after
    /// `after`, oldest first, at most `limit` (and [`MAX_TAIL`]).
    pub async fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<LiveEvent>, PgError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = u32::try_from(limit).unwrap_or(u32::MAX).min(MAX_TAIL);
        self.changes_after(after, limit)
            .await?
            .into_iter()
            .map(|(seq, json)| {
                serde_json::from_str(&json).map_err(|e| PgError::Corrupt(format!("change {seq}: {e}")))
            })
            .collect()
    }

    /// `device`'s counts, if it ever stored a reading.
    pub async fn device_counts(&self, device: &str) -> Result<Option<DeviceCounts>, PgError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT first_seen, last_seen, message_count, last_change FROM devices WHERE id = $1",
                &[&device],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let count = |i: usize| {
            let n: i64 = row.get(i);
            u64::try_from(n).map_err(|_| PgError::Corrupt(format!("device {device}: a count of {n}")))
        };
        Ok(Some(DeviceCounts {
            first_seen: time::from_time(row.get(0))?,
            last_seen: time::from_time(row.get(1))?,
            message_count: count(2)?,
            last_change: count(3)?,
        }))
    }
}
