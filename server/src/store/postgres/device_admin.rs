//! Device administration: a name, a note and an expected interval per registered device, and
//! deleting a device with all its history. Each is one transaction; an edit changes only its
//! own columns in one statement, so a commit rewriting the same record at once loses nothing.

use telemetry::{DeviceAdmin, Millis, SourceError};

use super::blocking::PgBlocking;
use super::error::PgError;
use super::rollups;
use super::store::PgStore;

/// Registered: a device that stored a reading (a status alone does not register).
const REGISTERED: &str = "EXISTS (SELECT 1 FROM devices WHERE id = $1 AND message_count > 0)";

impl PgStore {
    /// Sets (or clears) a registered device's display name and note; false if unknown.
    pub async fn set_device_meta(
        &self,
        id: &str,
        name: Option<&str>,
        note: Option<&str>,
    ) -> Result<bool, PgError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                &format!(
                    "INSERT INTO device_records (id, name, note) SELECT $1, $2, $3 WHERE {REGISTERED} \
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, note = excluded.note"
                ),
                &[&id, &name, &note],
            )
            .await?;
        Ok(n == 1)
    }

    /// Sets how often a registered device is expected to report (`None`: learn it); false if
    /// unknown.
    pub async fn set_expected_interval(&self, id: &str, interval: Option<Millis>) -> Result<bool, PgError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                &format!(
                    "INSERT INTO device_records (id, interval_set) SELECT $1, $2 WHERE {REGISTERED} \
                     ON CONFLICT (id) DO UPDATE SET interval_set = excluded.interval_set"
                ),
                &[&id, &interval],
            )
            .await?;
        Ok(n == 1)
    }

    /// Deletes a device and all its history (readings and their rollups, latest values,
    /// status, attributes, tags, events, connection log); false if the registry did not hold it. Its series keep their
    /// numbers: every node may have them in memory, and a device of that id that comes back
    /// stores under them again. The change log keeps what it sent (as the redb store's does).
    pub async fn delete_device(&self, id: &str) -> Result<bool, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // `devices` first, then its record: the order a commit locks them in.
        let registered = tx.execute("SELECT 1 FROM devices WHERE id = $1 FOR UPDATE", &[&id]).await? > 0;
        let recorded = tx.execute("SELECT 1 FROM device_records WHERE id = $1 FOR UPDATE", &[&id]).await? > 0;
        // The queue of readings not yet rolled up before the rollups: a roll-up pass moving
        // some of them at this moment holds them locked until it commits, so the rollups are
        // deleted after what it added.
        let tables = ["readings", "rollup_pending"].into_iter().chain(rollups::TABLES);
        for table in tables {
            let sql =
                format!("DELETE FROM {table} WHERE series IN (SELECT id FROM series WHERE device = $1)");
            tx.execute(&sql, &[&id]).await?;
        }
        for table in [
            "device_events WHERE device",
            "connections WHERE device",
            "device_records WHERE id",
            "devices WHERE id",
        ] {
            tx.execute(&format!("DELETE FROM {table} = $1"), &[&id]).await?;
        }
        tx.commit().await?;
        Ok(registered || recorded)
    }
}

/// A failure's cause logged here; the caller is told only its kind.
fn answer<T>(result: Result<T, super::super::error::StoreError>) -> Result<T, SourceError> {
    result.map_err(|e| {
        tracing::error!(error = %e, "storage request failed");
        SourceError::from(e)
    })
}

impl DeviceAdmin for PgBlocking {
    fn set_device_meta(
        &self,
        id: &str,
        name: Option<String>,
        note: Option<String>,
    ) -> Result<bool, SourceError> {
        let id = id.to_owned();
        answer(self.call(|pg| async move { pg.set_device_meta(&id, name.as_deref(), note.as_deref()).await }))
    }

    fn delete_device(&self, id: &str) -> Result<bool, SourceError> {
        let id = id.to_owned();
        answer(self.call(|pg| async move { pg.delete_device(&id).await }))
    }

    fn set_expected_interval(&self, id: &str, interval: Option<Millis>) -> Result<bool, SourceError> {
        let id = id.to_owned();
        answer(self.call(|pg| async move { pg.set_expected_interval(&id, interval).await }))
    }
}
