//! Which devices a query holds: a fleet query with its saved groups put in, an alarm rule's
//! scope as it is saved and as the engine and backtests read it. Below ingest and the alarm
//! engine, which ask it; [`crate::fleet`] is where the dashboard changes tags and groups.

use std::collections::HashSet;

use telemetry::Millis;
use telemetry::alarm::{Rule, SCOPE_FIELDS};
use telemetry::query::{Query, QueryError};

use crate::store::{Store, StoreError};

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
