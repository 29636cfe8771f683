//! The fleet as the dashboard changes it ([`Fleet`]: tags through the writer, groups checked
//! and bounded here). Which devices a query or a rule's scope holds is [`crate::scope`].

use std::sync::{Arc, Mutex};

use telemetry::SourceError;
use telemetry::alarm::Rule;
use telemetry::fleet::{FleetAdmin, GroupError};
use telemetry::query::{Group, MAX_GROUPS, Query};
use telemetry::tags::{TagEdit, TagEditError, Tagged};
use tracing::error;

use crate::clock::now_ms;
use crate::ingest::Ingest;
use crate::store::{Store, StoreError};

pub struct Fleet {
    store: Arc<dyn Store>,
    ingest: Ingest,
    /// Held while a group is saved or deleted, so two saves cannot both take the last place.
    groups: Mutex<()>,
}

impl Fleet {
    pub fn new(store: Arc<dyn Store>, ingest: Ingest) -> Fleet {
        Fleet { store, ingest, groups: Mutex::new(()) }
    }
}

fn storage(e: StoreError) -> SourceError {
    error!(error = %e, "fleet storage");
    SourceError::from(e)
}

impl FleetAdmin for Fleet {
    fn edit_tags(&self, devices: &[String], edit: &TagEdit) -> Result<Tagged, TagEditError> {
        self.ingest.edit_tags(devices, edit)
    }

    fn groups(&self) -> Result<Vec<Group>, SourceError> {
        self.store.groups().map_err(storage)
    }

    fn save_group(&self, mut group: Group, create: bool) -> Result<Group, GroupError> {
        group.name = group.name.trim().to_owned();
        group.query = group.query.trim().to_owned();
        group.validate().map_err(GroupError::Invalid)?;
        let _one = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let stored = self.store.groups().map_err(|e| GroupError::Storage(storage(e)))?;
        let exists = stored.iter().any(|g| g.id == group.id);
        if create && exists {
            return Err(GroupError::Conflict(format!("there is a group {} already", group.id)));
        }
        if !create && !exists {
            return Err(GroupError::NotFound);
        }
        if create && stored.len() >= MAX_GROUPS {
            return Err(GroupError::Conflict(format!("the server keeps at most {MAX_GROUPS} groups")));
        }
        group.updated = now_ms();
        self.store.put_group(&group).map_err(|e| GroupError::Storage(storage(e)))?;
        self.ingest.rescope();
        Ok(group)
    }

    fn delete_group(&self, id: &str) -> Result<(), GroupError> {
        let _one = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let rules = self.store.rules().map_err(|e| GroupError::Storage(storage(e)))?;
        if let Some(rule) = rules.iter().find(|r| names_group(r, id)) {
            return Err(GroupError::Conflict(format!(
                "the alarm rule {:?} is scoped by this group: change its scope first",
                rule.name
            )));
        }
        if !self.store.delete_group(id).map_err(|e| GroupError::Storage(storage(e)))? {
            return Err(GroupError::NotFound);
        }
        self.ingest.rescope();
        Ok(())
    }
}

/// Whether `rule`'s scope names group `id`.
fn names_group(rule: &Rule, id: &str) -> bool {
    rule.scope.as_deref().and_then(|s| Query::parse(s).ok()).is_some_and(|q| q.groups().contains(&id))
}
