//! What is read back so far: one series' points and a device's counts (the read side of
//! `TelemetrySource` is still to come).

use std::time::SystemTime;

use telemetry::Millis;

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
    /// `device`'s `metric` from `from` (inclusive) to `to` (exclusive), oldest first, at most
    /// `limit` (1..=[`MAX_POINTS`]) points.
    pub async fn points(
        &self,
        device: &str,
        metric: &str,
        from: Millis,
        to: Millis,
        limit: u32,
    ) -> Result<Vec<(Millis, f64)>, PgError> {
        let (from, to) = (time::to_time(from.max(time::EARLIEST))?, time::to_time(to.min(time::LATEST - 1))?);
        let limit = i64::from(limit.clamp(1, MAX_POINTS));
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT r.ts, r.value FROM readings r \
                 WHERE r.series = (SELECT id FROM series WHERE device = $1 AND metric = $2) \
                 AND r.ts >= $3 AND r.ts < $4 ORDER BY r.ts LIMIT $5",
            )
            .await?;
        let rows = client.query(&statement, &[&device, &metric, &from, &to, &limit]).await?;
        rows.iter().map(|r| Ok((time::from_time(r.get::<_, SystemTime>(0))?, r.get(1)))).collect()
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
