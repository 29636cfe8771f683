//! Tag edits, done by the writer between commits: each changed device's tags become a numbered
//! change, broadcast in order with the readings (a change broadcast out of order would be
//! skipped by clients that already saw a higher number).

use std::collections::HashMap;
use std::sync::Arc;

use telemetry::SourceError;
use telemetry::tags::{TagEdit, TagEditError, TagError, Tagged, Tags};
use tokio::sync::oneshot;
use tracing::error;

use crate::clock::now_ms;
use crate::store::{CommitOutcome, Store};

/// An edit waiting for the writer.
pub(super) struct TagJob {
    pub devices: Vec<String>,
    pub edit: TagEdit,
    pub reply: oneshot::Sender<Result<Tagged, TagEditError>>,
}

/// Below this many devices each is read on its own; above, the whole registry at once.
const READ_ONE_BY_ONE: usize = 64;

/// Applies an edit (blocking: run it off the async runtime): reads the devices' tags, refuses
/// the whole edit if one device would hold too many, stores the changed sets.
pub(super) fn apply(
    store: &Arc<dyn Store>,
    devices: &[String],
    edit: &TagEdit,
) -> Result<(Tagged, CommitOutcome), TagEditError> {
    let storage = |e: SourceError| TagEditError::Storage(e);
    let current: HashMap<String, Tags> = if devices.len() <= READ_ONE_BY_ONE {
        let mut out = HashMap::new();
        for id in devices {
            if let Some(d) = store.device(id).map_err(storage)?.value {
                out.insert(d.id, d.tags);
            }
        }
        out
    } else {
        let wanted: std::collections::HashSet<&str> = devices.iter().map(String::as_str).collect();
        store
            .devices()
            .map_err(storage)?
            .value
            .into_iter()
            .filter(|d| wanted.contains(d.id.as_str()))
            .map(|d| (d.id, d.tags))
            .collect()
    };
    let mut new = Vec::new();
    for id in devices {
        let Some(tags) = current.get(id) else { continue };
        let changed = edit.apply(tags).map_err(|_| TagEditError::Tags(TagError::Full(id.clone())))?;
        if &changed != tags && !new.iter().any(|(d, _)| d == id) {
            new.push((id.clone(), changed));
        }
    }
    let outcome = store.put_tags(&new, now_ms()).map_err(|e| {
        error!(error = %e, "tags not stored");
        TagEditError::Storage(e.into())
    })?;
    Ok((Tagged { matched: current.len(), changed: outcome.events.len() }, outcome))
}
