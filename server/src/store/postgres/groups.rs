//! Groups (saved fleet queries), a JSON row each.

use telemetry::query::Group;

use super::super::api::GroupStore;
use super::super::error::StoreError;
use super::blocking::PgBlocking;
use super::error::PgError;
use super::store::PgStore;

impl PgStore {
    /// Every group, by name (case-insensitively, as the redb store lists them).
    pub async fn groups(&self) -> Result<Vec<Group>, PgError> {
        let client = self.pool.get().await?;
        let rows = client.query("SELECT doc FROM groups", &[]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            match serde_json::from_value::<Group>(row.get(0)) {
                Ok(g) => out.push(g),
                Err(e) => tracing::error!(error = %e, "postgres: unreadable group skipped"),
            }
        }
        out.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Creates or replaces the group with this id.
    pub async fn put_group(&self, group: &Group) -> Result<(), PgError> {
        let doc = serde_json::to_value(group).expect("groups serialise");
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO groups (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc",
                &[&group.id, &doc],
            )
            .await?;
        Ok(())
    }

    /// Whether there was one to delete.
    pub async fn delete_group(&self, id: &str) -> Result<bool, PgError> {
        let client = self.pool.get().await?;
        Ok(client.execute("DELETE FROM groups WHERE id = $1", &[&id]).await? == 1)
    }
}

impl GroupStore for PgBlocking {
    fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.call(|pg| async move { pg.groups().await })
    }

    fn put_group(&self, group: &Group) -> Result<(), StoreError> {
        let group = group.clone();
        self.call(|pg| async move { pg.put_group(&group).await })
    }

    fn delete_group(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.call(|pg| async move { pg.delete_group(&id).await })
    }
}
