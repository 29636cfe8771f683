//! Each device's connection log, the latest [`MAX_LOGGED`] connections per device (when each
//! began and ended and why, address, protocol), written with the commit of the reports the
//! embedded broker makes of them; the same rules as the redb store's
//! (`store::connection_log`). Rows are changed under their lock (`FOR UPDATE`, or an insert
//! that waits for the one it conflicts with), and a commit's reports are written with the
//! change counter's lock held ([`super::reports`]), so two nodes reporting on one device take
//! turns and the bound is counted in the database.

use std::collections::BTreeMap;

use deadpool_postgres::Transaction;
use telemetry::Millis;
use telemetry::connections::{self, Connection, Ended, MAX_LOGGED};

use super::super::api::{ConnectionChange, ConnectionReport};
use super::super::connection_log;
use super::error::PgError;
use super::records;
use super::store::PgStore;

fn entry(device: &str, json: serde_json::Value) -> Result<Connection, PgError> {
    serde_json::from_value(json).map_err(|e| PgError::Corrupt(format!("connection of {device}: {e}")))
}

fn doc(c: &Connection) -> serde_json::Value {
    serde_json::to_value(c).expect("connections serialise")
}

/// Records one report; answers the connection as the log now holds it (`None`: no change, a
/// report of a connection already ended, or of a beginning already logged).
async fn record(tx: &Transaction<'_>, report: &ConnectionReport) -> Result<Option<Connection>, PgError> {
    let (device, id, at) = (report.device.as_str(), report.id, report.at);
    let begun = |address: &Option<String>, protocol: u8| connection_log::begun(id, address, protocol);
    let insert = tx
        .prepare_cached(
            "INSERT INTO connections (device, id, entry, open) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .await?;
    let c = match &report.change {
        // Logged already (its end came first, or it is told twice): no change.
        ConnectionChange::Connected { address, protocol } => {
            let c = begun(address, *protocol);
            if tx.execute(&insert, &[&device, &id, &doc(&c), &true]).await? == 0 {
                return Ok(None);
            }
            c
        }
        ConnectionChange::Refused { address, protocol } => {
            let mut c = begun(address, *protocol);
            (c.ended_at, c.reason) = (Some(id), Some(Ended::AuthFailure));
            if tx.execute(&insert, &[&device, &id, &doc(&c), &false]).await? == 0 {
                return Ok(None);
            }
            c
        }
        ConnectionChange::Ended { address, protocol, reason } => {
            let held = tx
                .query_opt(
                    "SELECT entry FROM connections WHERE device = $1 AND id = $2 FOR UPDATE",
                    &[&device, &id],
                )
                .await?;
            let logged = held.map(|row| entry(device, row.get(0))).transpose()?;
            let new = logged.is_none();
            // Not logged when it began (the device was not known yet, say): logged whole now.
            let mut c = logged.unwrap_or_else(|| begun(address, *protocol));
            if c.ended_at.is_some() {
                return Ok(None);
            }
            c.ended_at = Some(at.max(id));
            c.reason = Some(*reason);
            if new {
                tx.execute(&insert, &[&device, &id, &doc(&c), &false]).await?;
            } else {
                tx.execute(
                    "UPDATE connections SET entry = $3, open = false WHERE device = $1 AND id = $2",
                    &[&device, &id, &doc(&c)],
                )
                .await?;
                return Ok(Some(c));
            }
            c
        }
    };
    // A new entry: the oldest beyond the bound go (the new one itself, if it is older than
    // the latest MAX_LOGGED).
    let bound = tx
        .prepare_cached(
            "DELETE FROM connections c USING ( \
                 SELECT id FROM connections WHERE device = $1 ORDER BY id DESC OFFSET $2) old \
             WHERE c.device = $1 AND c.id = old.id",
        )
        .await?;
    tx.execute(&bound, &[&device, &(MAX_LOGGED as i64)]).await?;
    Ok(Some(c))
}

/// Records a commit's connection reports, in order (those [`connection_log::to_write`] keeps:
/// a connection made and ended within the commit is written once, as ended); answers the
/// entries they changed.
pub(super) async fn record_all(
    tx: &Transaction<'_>,
    reports: &[&ConnectionReport],
) -> Result<Vec<(String, Connection)>, PgError> {
    let mut changed = Vec::new();
    for report in connection_log::to_write(reports) {
        if let Some(c) = record(tx, report).await? {
            changed.push((report.device.as_str().to_owned(), c));
        }
    }
    Ok(changed)
}

/// `device`'s connections, newest first.
pub(super) async fn of(tx: &Transaction<'_>, device: &str) -> Result<Vec<Connection>, PgError> {
    let rows = tx
        .query(
            "SELECT entry FROM connections WHERE device = $1 ORDER BY id DESC LIMIT $2",
            &[&device, &(MAX_LOGGED as i64)],
        )
        .await?;
    rows.into_iter().map(|row| entry(device, row.get(0))).collect()
}

impl PgStore {
    /// Ends the connections the log still holds open, as server_stopped: at `at` (a stop), or
    /// at each device's last message (a start after a crash: when it died is not known), never
    /// before the connection began. Answers how many.
    ///
    /// Every node's connections are in the one log: this is for a cluster's first node to
    /// start or its last to stop (the log does not say which node holds a connection).
    pub async fn end_connections(&self, at: Option<Millis>) -> Result<u64, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "SELECT c.device, c.id, c.entry, \
                 (floor(extract(epoch FROM d.last_seen) * 1000))::int8 \
                 FROM connections c LEFT JOIN devices d ON d.id = c.device \
                 WHERE c.open FOR UPDATE OF c",
                &[],
            )
            .await?;
        let (mut devices, mut ids, mut docs) = (Vec::new(), Vec::new(), Vec::new());
        for row in &rows {
            let (device, id): (String, i64) = (row.get(0), row.get(1));
            let mut c = entry(&device, row.get(2))?;
            if c.ended_at.is_none() {
                let last: Option<i64> = row.get(3);
                c.ended_at = Some(at.unwrap_or(last.unwrap_or(0)).max(id));
                c.reason = Some(Ended::ServerStopped);
            }
            docs.push(doc(&c));
            devices.push(device);
            ids.push(id);
        }
        tx.execute(
            "UPDATE connections c SET entry = u.entry, open = false \
             FROM unnest($1::text[], $2::int8[], $3::jsonb[]) AS u(device, id, entry) \
             WHERE c.device = u.device AND c.id = u.id",
            &[&devices, &ids, &docs],
        )
        .await?;
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// Each of `ids`' share of `[from, to]` connected, from its connection log (`None`: no log
    /// covers it); for a page of rows, never the whole fleet.
    pub async fn availability(
        &self,
        ids: &[String],
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Option<f64>>, PgError> {
        let mut client = self.pool.get().await?;
        let tx = records::snapshot(&mut client).await?;
        let rows = tx
            .query(
                "SELECT device, entry FROM connections WHERE device = ANY($1) ORDER BY device, id DESC",
                &[&ids],
            )
            .await?;
        tx.commit().await?;
        let mut logs: BTreeMap<String, Vec<Connection>> = BTreeMap::new();
        for row in rows {
            let device: String = row.get(0);
            let c = entry(&device, row.get(1))?;
            logs.entry(device).or_default().push(c);
        }
        Ok(ids
            .iter()
            .map(|id| connections::availability(logs.get(id).map_or(&[][..], Vec::as_slice), from, to))
            .collect())
    }
}
