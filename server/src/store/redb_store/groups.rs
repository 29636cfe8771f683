//! Groups (saved fleet queries), a JSON row each. The table is made by the first save: a file
//! without it simply has no groups.

use redb::{ReadableTable, TableDefinition, TableError};
use telemetry::query::Group;

use super::super::api::GroupStore;
use super::super::error::StoreError;
use super::RedbStore;

/// group id → JSON [`Group`].
const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");

impl GroupStore for RedbStore {
    fn groups(&self) -> Result<Vec<Group>, StoreError> {
        let rx = self.db.read()?;
        let table = match rx.open_table(GROUPS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (_, v) = entry?;
            match serde_json::from_slice::<Group>(v.value()) {
                Ok(g) => out.push(g),
                Err(e) => tracing::error!(error = %e, "unreadable group skipped"),
            }
        }
        out.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    fn put_group(&self, group: &Group) -> Result<(), StoreError> {
        let _writer = self.writer();
        let tx = self.begin_write()?;
        let bytes = serde_json::to_vec(group).expect("groups serialise");
        tx.open_table(GROUPS)?.insert(group.id.as_str(), bytes.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    fn delete_group(&self, id: &str) -> Result<bool, StoreError> {
        let _writer = self.writer();
        let tx = self.begin_write()?;
        let gone = tx.open_table(GROUPS)?.remove(id)?.is_some();
        tx.commit()?;
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_kept_by_id_and_listed_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.redb");
        let group = |id: &str, name: &str| Group {
            id: id.into(),
            name: name.into(),
            query: "tag:a=b".into(),
            updated: 1,
        };
        {
            let store = RedbStore::open(&path).unwrap();
            assert!(store.groups().unwrap().is_empty(), "no table yet");
            assert!(!store.delete_group("x").unwrap());
            store.put_group(&group("x", "Zebra")).unwrap();
            store.put_group(&group("y", "apple")).unwrap();
            store.put_group(&group("x", "zebra 2")).unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        let names: Vec<String> = store.groups().unwrap().into_iter().map(|g| g.name).collect();
        assert_eq!(names, ["apple", "zebra 2"]);
        assert!(store.delete_group("y").unwrap());
        assert_eq!(store.groups().unwrap().len(), 1);
    }
}
