//! The device registry's rows: `devices` (ingest's counts) with `device_records` (status,
//! name, note, attributes, latest values, rhythm) read as the redb store's
//! [`DeviceRecord`], so summaries, the status rule and the latest-value rule are the same
//! code on both stores; and the read side of it (`devices`, `device`, `known_devices`).
//!
//! No node keeps any of it in memory: every read is a query, so a change made on one node is
//! what the next read on any node answers.

use std::collections::BTreeMap;

use deadpool_postgres::Transaction;
use tokio_postgres::Row;
use tokio_postgres::types::Json;

use telemetry::{Current, DeviceStatus, DeviceSummary};

use super::super::registry::DeviceRecord;
use super::error::PgError;
use super::store::PgStore;
use super::time;

/// `device_records`' columns as [`read`] takes them, aliased `r`.
pub(super) const COLUMNS: &str = "r.status_online, r.status_at, r.status_session, r.name, r.note, \
     r.interval_set, r.attributes, r.metrics, r.rhythm";

/// A device's summary query: `devices` (alias `d`) joined with its record.
const SUMMARY: &str = "SELECT coalesce(d.id, r.id), d.first_seen, d.last_seen, d.message_count, \
     r.status_online, r.status_at, r.status_session, r.name, r.note, \
     r.interval_set, r.attributes, r.metrics, r.rhythm, d.tags \
     FROM devices d FULL JOIN device_records r ON r.id = d.id";

/// A session counter as stored: the u64 bit for bit (compared only once read back).
pub(super) fn session_in(session: Option<u64>) -> Option<i64> {
    session.map(|s| s as i64)
}

fn json<T: serde::de::DeserializeOwned + Default>(row: &Row, i: usize, device: &str) -> Result<T, PgError> {
    let Some(value) = row.try_get::<_, Option<serde_json::Value>>(i)? else { return Ok(T::default()) };
    serde_json::from_value(value).map_err(|e| PgError::Corrupt(format!("device {device}: column {i}: {e}")))
}

/// A record from `device_records`' columns starting at `at` (in [`COLUMNS`] order; all null
/// when the device has no row there yet).
pub(super) fn read(row: &Row, at: usize, device: &str) -> Result<DeviceRecord, PgError> {
    let online: Option<bool> = row.try_get(at)?;
    let status_at: Option<i64> = row.try_get(at + 1)?;
    let session: Option<i64> = row.try_get(at + 2)?;
    Ok(DeviceRecord {
        status: online.zip(status_at).map(|(online, at)| DeviceStatus {
            online,
            at,
            session: session.map(|s| s as u64),
        }),
        name: row.try_get(at + 3)?,
        note: row.try_get(at + 4)?,
        interval_set: row.try_get(at + 5)?,
        attributes: json(row, at + 6, device)?,
        metrics: json(row, at + 7, device)?,
        rhythm: json(row, at + 8, device)?,
        ..DeviceRecord::default()
    })
}

/// A summary row ([`SUMMARY`]): the record with ingest's counts.
fn summary(row: &Row) -> Result<DeviceSummary, PgError> {
    let id: String = row.try_get(0)?;
    let mut rec = read(row, 4, &id)?;
    if let Some(first) = row.try_get(1)? {
        rec.first_seen = time::from_time(first)?;
    }
    if let Some(last) = row.try_get(2)? {
        rec.last_seen = time::from_time(last)?;
    }
    let count: Option<i64> = row.try_get(3)?;
    rec.message_count = u64::try_from(count.unwrap_or(0))
        .map_err(|_| PgError::Corrupt(format!("device {id}: a message count of {count:?}")))?;
    // Its tags, on ingest's row ([`super::tags`]).
    rec.tags = json(row, 13, &id)?;
    Ok(rec.summary(&id))
}

/// Makes a record row for each of `ids` that has none and locks them all (`FOR UPDATE`, in id
/// order) until the transaction ends; answers them by id.
pub(super) async fn lock(
    tx: &Transaction<'_>,
    ids: &[&str],
) -> Result<BTreeMap<String, DeviceRecord>, PgError> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let make = tx
        .prepare_cached("INSERT INTO device_records (id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING")
        .await?;
    tx.execute(&make, &[&ids]).await?;
    let select = tx
        .prepare_cached(&format!(
            "SELECT r.id, {COLUMNS} FROM device_records r WHERE r.id = ANY($1) ORDER BY r.id FOR UPDATE"
        ))
        .await?;
    let mut out = BTreeMap::new();
    for row in tx.query(&select, &[&ids]).await? {
        let id: String = row.try_get(0)?;
        let rec = read(&row, 1, &id)?;
        out.insert(id, rec);
    }
    Ok(out)
}

/// Writes records' statuses and attributes back (rows locked by [`lock`]).
pub(super) async fn write_reported(
    tx: &Transaction<'_>,
    records: &BTreeMap<String, DeviceRecord>,
) -> Result<(), PgError> {
    let ids: Vec<&str> = records.keys().map(String::as_str).collect();
    let online: Vec<Option<bool>> = records.values().map(|r| r.status.map(|s| s.online)).collect();
    let at: Vec<Option<i64>> = records.values().map(|r| r.status.map(|s| s.at)).collect();
    let session: Vec<Option<i64>> =
        records.values().map(|r| session_in(r.status.and_then(|s| s.session))).collect();
    let attributes: Vec<serde_json::Value> = records
        .values()
        .map(|r| serde_json::to_value(&r.attributes).expect("attributes serialise"))
        .collect();
    let statement = tx
        .prepare_cached(
            "UPDATE device_records r SET status_online = u.online, status_at = u.at, \
             status_session = u.session, attributes = u.attributes \
             FROM unnest($1::text[], $2::bool[], $3::int8[], $4::int8[], $5::jsonb[]) \
             AS u(id, online, at, session, attributes) WHERE r.id = u.id",
        )
        .await?;
    tx.execute(&statement, &[&ids, &online, &at, &session, &attributes]).await?;
    Ok(())
}

/// Writes records' latest values and rhythm back (rows locked by [`lock`]).
pub(super) async fn write_seen(
    tx: &Transaction<'_>,
    records: &BTreeMap<String, DeviceRecord>,
) -> Result<(), PgError> {
    let ids: Vec<&str> = records.keys().map(String::as_str).collect();
    let metrics: Vec<Json<_>> = records.values().map(|r| Json(&r.metrics)).collect();
    let rhythm: Vec<Json<_>> = records.values().map(|r| Json(&r.rhythm)).collect();
    let statement = tx
        .prepare_cached(
            "UPDATE device_records r SET metrics = u.metrics, rhythm = u.rhythm \
             FROM unnest($1::text[], $2::jsonb[], $3::jsonb[]) AS u(id, metrics, rhythm) WHERE r.id = u.id",
        )
        .await?;
    tx.execute(&statement, &[&ids, &metrics, &rhythm]).await?;
    Ok(())
}

impl PgStore {
    /// Every registered device (one that stored a reading), by id, with the change number
    /// they are current to (read in one snapshot, so later changes are exactly those after it).
    pub async fn devices(&self) -> Result<Current<Vec<DeviceSummary>>, PgError> {
        let mut client = self.pool.get().await?;
        let tx = snapshot(&mut client).await?;
        let rows = tx.query(&format!("{SUMMARY} WHERE d.message_count > 0"), &[]).await?;
        let mut value = rows.iter().map(summary).collect::<Result<Vec<_>, _>>()?;
        value.sort_by(|a, b| a.id.cmp(&b.id));
        let last_seq = last_seq(&tx).await?;
        tx.commit().await?;
        Ok(Current { value, last_seq })
    }

    /// One registered device, if it is.
    pub async fn device(&self, id: &str) -> Result<Current<Option<DeviceSummary>>, PgError> {
        let mut client = self.pool.get().await?;
        let tx = snapshot(&mut client).await?;
        let row = tx.query_opt(&format!("{SUMMARY} WHERE d.id = $1 AND d.message_count > 0"), &[&id]).await?;
        let value = row.as_ref().map(summary).transpose()?;
        let last_seq = last_seq(&tx).await?;
        tx.commit().await?;
        Ok(Current { value, last_seq })
    }

    /// Every device the registry holds, registered or not (a status alone makes a record):
    /// what the device cap counts, counted from the database, so every node counts alike.
    pub async fn known_devices(&self) -> Result<Vec<DeviceSummary>, PgError> {
        let client = self.pool.get().await?;
        let rows = client.query(SUMMARY, &[]).await?;
        rows.iter().map(summary).collect()
    }

    /// How many devices the registry holds (what [`PgStore::known_devices`] would list).
    pub async fn known_device_count(&self) -> Result<u64, PgError> {
        let client = self.pool.get().await?;
        let n: i64 = client
            .query_one("SELECT count(*) FROM devices d FULL JOIN device_records r ON r.id = d.id", &[])
            .await?
            .get(0);
        Ok(n.unsigned_abs())
    }
}

/// A read-only transaction whose reads all see one snapshot.
pub(super) async fn snapshot(client: &mut deadpool_postgres::Object) -> Result<Transaction<'_>, PgError> {
    Ok(client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

/// The latest change number, as of `tx`'s snapshot.
pub(super) async fn last_seq(tx: &Transaction<'_>) -> Result<u64, PgError> {
    let last: i64 = tx.query_one("SELECT value FROM counters WHERE name = 'change_seq'", &[]).await?.get(0);
    u64::try_from(last).map_err(|_| PgError::Corrupt(format!("change_seq is {last}")))
}
