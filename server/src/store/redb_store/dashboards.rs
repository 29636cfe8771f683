//! Dashboards, a JSON row each. A refused save (gone, changed since, too many) ends its write
//! with an abort, not a failure: nothing went wrong with the file.

use redb::{ReadableTable, ReadableTableMetadata, Table, TableDefinition, WriteTransaction};
use telemetry::dashboard::{Dashboard, MAX_DASHBOARDS, new_id};
use telemetry::{DashboardStore, SaveError, SourceError};

use super::super::error::StoreError;
use super::super::registry::META;
use super::{RedbStore, answer};

/// dashboard id → JSON [`Dashboard`].
const DASHBOARDS: TableDefinition<&str, &[u8]> = TableDefinition::new("dashboards");
/// In META: the starter dashboard was made (once; deleting it is the user's choice).
const SEEDED: &str = "dashboards_seeded";

/// Creates the table, with the starter dashboard in a new file.
pub(super) fn init(tx: &WriteTransaction) -> Result<(), StoreError> {
    let mut dashboards = tx.open_table(DASHBOARDS)?;
    let mut meta = tx.open_table(META)?;
    if dashboards.is_empty()? && meta.get(SEEDED)?.is_none() {
        put(&mut dashboards, &Dashboard::starter())?;
    }
    meta.insert(SEEDED, 1)?;
    Ok(())
}

fn put(table: &mut Table<&str, &[u8]>, dashboard: &Dashboard) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(dashboard).expect("dashboards serialise");
    table.insert(dashboard.id.as_str(), bytes.as_slice())?;
    Ok(())
}

impl RedbStore {
    /// Runs `change` on the dashboards table in one write, committed if it returns `Ok`,
    /// aborted if it refuses.
    fn change_dashboards<T>(
        &self,
        change: impl FnOnce(
            &mut Table<'_, &'static str, &'static [u8]>,
        ) -> Result<Result<T, SaveError>, StoreError>,
    ) -> Result<T, SaveError> {
        let _writer = self.writer();
        answer(|| {
            let tx = self.begin_write()?;
            let outcome = change(&mut tx.open_table(DASHBOARDS)?)?;
            match outcome {
                Ok(_) => tx.commit()?,
                Err(_) => tx.abort()?,
            }
            Ok(outcome)
        })?
    }
}

impl DashboardStore for RedbStore {
    fn dashboards(&self) -> Result<Vec<Dashboard>, SourceError> {
        answer(|| {
            let rx = self.db.read()?;
            let mut out = Vec::new();
            for entry in rx.open_table(DASHBOARDS)?.iter()? {
                let (_, v) = entry?;
                match serde_json::from_slice::<Dashboard>(v.value()) {
                    Ok(d) => out.push(d),
                    Err(e) => tracing::error!(error = %e, "unreadable dashboard skipped"),
                }
            }
            out.sort_by_key(|d| d.name.to_lowercase());
            Ok(out)
        })
    }

    fn dashboard(&self, id: &str) -> Result<Option<Dashboard>, SourceError> {
        answer(|| {
            let rx = self.db.read()?;
            let stored = rx.open_table(DASHBOARDS)?.get(id)?;
            Ok(stored.and_then(|v| serde_json::from_slice(v.value()).ok()))
        })
    }

    fn create_dashboard(&self, mut dashboard: Dashboard) -> Result<Dashboard, SaveError> {
        self.change_dashboards(|table| {
            if table.len()? >= MAX_DASHBOARDS as u64 {
                return Ok(Err(SaveError::Full));
            }
            // Random suffixes: a taken one (about one in two billion) just draws again.
            dashboard.id = loop {
                let id = new_id(&dashboard.name, &crate::random::base36(6));
                if table.get(id.as_str())?.is_none() {
                    break id;
                }
            };
            dashboard.updated = chrono::Utc::now().timestamp_millis();
            put(table, &dashboard)?;
            Ok(Ok(dashboard))
        })
    }

    fn save_dashboard(&self, mut dashboard: Dashboard) -> Result<Dashboard, SaveError> {
        self.change_dashboards(|table| {
            let stored = match table.get(dashboard.id.as_str())? {
                Some(v) => {
                    serde_json::from_slice::<Dashboard>(v.value()).map(|d| d.updated).unwrap_or(i64::MIN)
                }
                None => return Ok(Err(SaveError::NotFound)),
            };
            if stored != dashboard.updated {
                return Ok(Err(SaveError::Stale));
            }
            // Always newer than the copy it replaces, even within one millisecond.
            dashboard.updated = chrono::Utc::now().timestamp_millis().max(stored.saturating_add(1));
            put(table, &dashboard)?;
            Ok(Ok(dashboard))
        })
    }

    fn delete_dashboard(&self, id: &str) -> Result<bool, SourceError> {
        let _writer = self.writer();
        answer(|| {
            let tx = self.begin_write()?;
            let existed = tx.open_table(DASHBOARDS)?.remove(id)?.is_some();
            tx.commit()?;
            Ok(existed)
        })
    }
}
