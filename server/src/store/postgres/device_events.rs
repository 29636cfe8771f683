//! Each device's events (a firmware change, a reset reason, a boot count, a reboot seen in its
//! uptime), written with the commit that saw them under its change number, the latest
//! [`MAX_DEVICE_EVENTS`] kept per device: what its page lists, newest first.

use deadpool_postgres::Transaction;
use telemetry::attributes::{DeviceEvent, MAX_DEVICE_EVENTS};

use super::error::PgError;

/// Adds `events` (numbered, each with its change number) and drops each of their devices'
/// oldest beyond [`MAX_DEVICE_EVENTS`].
pub(super) async fn append(tx: &Transaction<'_>, events: &[(u64, &DeviceEvent)]) -> Result<(), PgError> {
    if events.is_empty() {
        return Ok(());
    }
    let devices: Vec<&str> = events.iter().map(|(_, e)| e.device.as_str()).collect();
    let seqs: Vec<i64> = events.iter().map(|(seq, _)| i64::try_from(*seq).unwrap_or(i64::MAX)).collect();
    let docs: Vec<serde_json::Value> =
        events.iter().map(|(_, e)| serde_json::to_value(e).expect("device events serialise")).collect();
    let insert = tx
        .prepare_cached(
            "INSERT INTO device_events (device, seq, event) \
             SELECT * FROM unnest($1::text[], $2::int8[], $3::jsonb[])",
        )
        .await?;
    tx.execute(&insert, &[&devices, &seqs, &docs]).await?;
    let trim = tx
        .prepare_cached(
            "DELETE FROM device_events e USING ( \
                 SELECT device, seq, row_number() OVER (PARTITION BY device ORDER BY seq DESC) AS n \
                 FROM device_events WHERE device = ANY($1)) old \
             WHERE e.device = old.device AND e.seq = old.seq AND old.n > $2",
        )
        .await?;
    let keep = MAX_DEVICE_EVENTS as i64;
    tx.execute(&trim, &[&devices, &keep]).await?;
    Ok(())
}

/// `device`'s events, newest first.
pub(super) async fn of(tx: &Transaction<'_>, device: &str) -> Result<Vec<DeviceEvent>, PgError> {
    let keep = MAX_DEVICE_EVENTS as i64;
    let rows = tx
        .query(
            "SELECT event FROM device_events WHERE device = $1 ORDER BY seq DESC LIMIT $2",
            &[&device, &keep],
        )
        .await?;
    rows.into_iter()
        .map(|row| {
            serde_json::from_value(row.try_get(0)?)
                .map_err(|e| PgError::Corrupt(format!("device event of {device}: {e}")))
        })
        .collect()
}
