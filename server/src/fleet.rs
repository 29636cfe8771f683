//! The fleet as the dashboard changes it ([`Fleet`]: tags through the writer, groups checked
//! and bounded here) and as alarm rules read it: which devices a rule's scope holds.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use telemetry::alarm::{Rule, SCOPE_FIELDS};
use telemetry::fleet::{FleetAdmin, GroupError};
use telemetry::query::{Group, MAX_GROUPS, Query, QueryError};
use telemetry::tags::{TagEdit, TagEditError, Tagged};
use telemetry::{Millis, SourceError};
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

/// A query with the stored groups put in: an unknown group is an error (naming it) unless
/// `lenient`, when it holds no device.
pub fn resolve(
    store: &dyn Store,
    text: &str,
    lenient: bool,
) -> Result<Result<Query, QueryError>, StoreError> {
    let query = match Query::parse(text) {
        Ok(q) => q,
        Err(e) => return Ok(Err(e)),
    };
    if query.groups().is_empty() {
        return Ok(Ok(query));
    }
    let groups = store.groups()?;
    let lookup = |id: &str| groups.iter().find(|g| g.id == id).map(|g| g.query.clone());
    Ok(if lenient { query.resolve(lookup, true) } else { Query::parse_with_groups(text, lookup) })
}

/// Checks a rule's scope as it is saved: it parses, its groups exist, and it reads only what
/// does not change with readings or time. The message says what is wrong.
pub fn check_scope(store: &dyn Store, scope: &str) -> Result<Result<(), String>, StoreError> {
    Ok(match resolve(store, scope, false)? {
        Err(e) => Err(format!("scope: {e}")),
        Ok(q) if !q.is_timeless() => Err(SCOPE_FIELDS.to_owned()),
        Ok(_) => Ok(()),
    })
}

/// The devices (registered or not) each rule's scope holds at `now`, by rule id.
pub fn scopes(
    store: &dyn Store,
    rules: &[Rule],
    now: Millis,
) -> Result<Vec<(String, HashSet<String>)>, StoreError> {
    let devices = store.known_devices();
    let mut out = Vec::with_capacity(rules.len());
    for rule in rules {
        let Some(scope) = &rule.scope else { continue };
        // A scope that no longer reads (a group changed since) holds nothing.
        let members = match resolve(store, scope, true)? {
            Ok(query) => devices.iter().filter(|d| query.matches(*d, now)).map(|d| d.id.clone()).collect(),
            Err(_) => HashSet::new(),
        };
        out.push((rule.id.clone(), members));
    }
    Ok(out)
}

/// The ids of the devices (of `ids`) that a rule's scope holds at `now`, for a backtest.
pub fn in_scope(
    store: &dyn Store,
    rule: &Rule,
    ids: &mut Vec<String>,
    now: Millis,
) -> Result<(), StoreError> {
    if rule.scope.is_some() {
        let members =
            scopes(store, std::slice::from_ref(rule), now)?.pop().map(|(_, m)| m).unwrap_or_default();
        ids.retain(|id| members.contains(id));
    }
    Ok(())
}
