//! Dashboards, a JSON row each, as the redb store keeps them: listed by name, at most
//! [`MAX_DASHBOARDS`], and a save refused if someone saved since the copy was loaded.
//!
//! Between nodes: a save locks its row (`FOR UPDATE`) before it compares the stamp, so of two
//! saves of one loaded copy the second finds the first's newer stamp and is refused; creates
//! take turns under a transaction-level advisory lock, so the count they check stays true
//! until they commit.

use telemetry::dashboard::{Dashboard, MAX_DASHBOARDS, new_id};
use telemetry::{DashboardStore, SaveError, SourceError};

use super::super::error::StoreError;
use super::blocking::PgBlocking;
use super::error::PgError;
use super::store::PgStore;

/// The advisory lock creates take turns under ("dashbrd" in ASCII).
const CREATE_LOCK: i64 = 0x0064_6173_6862_7264;

fn doc(dashboard: &Dashboard) -> serde_json::Value {
    serde_json::to_value(dashboard).expect("dashboards serialise")
}

impl PgStore {
    /// Every dashboard, by name (case-insensitively); an unreadable row is logged and left out.
    pub async fn dashboards(&self) -> Result<Vec<Dashboard>, PgError> {
        let client = self.pool.get().await?;
        // At most MAX_DASHBOARDS rows: creates count them.
        let rows = client.query("SELECT doc FROM dashboards", &[]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            match serde_json::from_value::<Dashboard>(row.get(0)) {
                Ok(d) => out.push(d),
                Err(e) => tracing::error!(error = %e, "postgres: unreadable dashboard skipped"),
            }
        }
        out.sort_by_key(|d| d.name.to_lowercase());
        Ok(out)
    }

    pub async fn dashboard(&self, id: &str) -> Result<Option<Dashboard>, PgError> {
        let client = self.pool.get().await?;
        let row = client.query_opt("SELECT doc FROM dashboards WHERE id = $1", &[&id]).await?;
        Ok(row.and_then(|r| serde_json::from_value(r.get(0)).ok()))
    }

    /// Stores `dashboard` under a new id made from its name, stamped now; refused when the
    /// store holds [`MAX_DASHBOARDS`].
    pub async fn create_dashboard(
        &self,
        mut dashboard: Dashboard,
    ) -> Result<Result<Dashboard, SaveError>, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CREATE_LOCK]).await?;
        let count: i64 = tx.query_one("SELECT count(*) FROM dashboards", &[]).await?.get(0);
        if count >= MAX_DASHBOARDS as i64 {
            return Ok(Err(SaveError::Full));
        }
        dashboard.updated = chrono::Utc::now().timestamp_millis();
        // Random suffixes: a taken one (about one in two billion) just draws again.
        loop {
            dashboard.id = new_id(&dashboard.name, &crate::random::base36(6));
            let stored = tx
                .execute(
                    "INSERT INTO dashboards (id, updated, doc) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&dashboard.id, &dashboard.updated, &doc(&dashboard)],
                )
                .await?;
            if stored == 1 {
                break;
            }
        }
        tx.commit().await?;
        Ok(Ok(dashboard))
    }

    /// Replaces the stored dashboard with `dashboard` if its `updated` is still the stored
    /// one's, stamping a newer one.
    pub async fn save_dashboard(
        &self,
        mut dashboard: Dashboard,
    ) -> Result<Result<Dashboard, SaveError>, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt("SELECT updated, doc FROM dashboards WHERE id = $1 FOR UPDATE", &[&dashboard.id])
            .await?;
        let Some(row) = row else { return Ok(Err(SaveError::NotFound)) };
        // An unreadable stored copy matches no loaded one, as with the redb store.
        let stored =
            serde_json::from_value::<Dashboard>(row.get(1)).map(|_| row.get::<_, i64>(0)).unwrap_or(i64::MIN);
        if stored != dashboard.updated {
            return Ok(Err(SaveError::Stale));
        }
        // Always newer than the copy it replaces, even within one millisecond.
        dashboard.updated = chrono::Utc::now().timestamp_millis().max(stored.saturating_add(1));
        tx.execute(
            "UPDATE dashboards SET updated = $2, doc = $3 WHERE id = $1",
            &[&dashboard.id, &dashboard.updated, &doc(&dashboard)],
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(dashboard))
    }

    /// Whether there was one to delete.
    pub async fn delete_dashboard(&self, id: &str) -> Result<bool, PgError> {
        let client = self.pool.get().await?;
        Ok(client.execute("DELETE FROM dashboards WHERE id = $1", &[&id]).await? == 1)
    }
}

/// The read side's error for a failed call, its cause logged.
fn failed(e: StoreError) -> SourceError {
    tracing::error!(error = %e, "storage request failed");
    SourceError::from(e)
}

impl DashboardStore for PgBlocking {
    fn dashboards(&self) -> Result<Vec<Dashboard>, SourceError> {
        self.call(|pg| async move { pg.dashboards().await }).map_err(failed)
    }

    fn dashboard(&self, id: &str) -> Result<Option<Dashboard>, SourceError> {
        let id = id.to_owned();
        self.call(|pg| async move { pg.dashboard(&id).await }).map_err(failed)
    }

    fn create_dashboard(&self, dashboard: Dashboard) -> Result<Dashboard, SaveError> {
        self.call(|pg| async move { pg.create_dashboard(dashboard).await }).map_err(failed)?
    }

    fn save_dashboard(&self, dashboard: Dashboard) -> Result<Dashboard, SaveError> {
        self.call(|pg| async move { pg.save_dashboard(dashboard).await }).map_err(failed)?
    }

    fn delete_dashboard(&self, id: &str) -> Result<bool, SourceError> {
        let id = id.to_owned();
        self.call(|pg| async move { pg.delete_dashboard(&id).await }).map_err(failed)
    }
}
