//! Tag edits, done by the writer between commits: each changed device's tags become a numbered
//! change, broadcast in order with the readings (a change broadcast out of order would be
//! skipped by clients that already saw a higher number).

use std::collections::HashMap;
use std::sync::Arc;

use telemetry::SourceError;
use telemetry::tags::{MAX_EDIT_DEVICES, TagEdit, TagEditError, TagError, Tagged, Tags};
use tokio::sync::oneshot;
use tracing::error;

use super::{Ingest, Job, now_ms};
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

impl Ingest {
    /// Applies a tag edit: checked here, done by the writer; blocking (call it off the async
    /// runtime).
    pub fn edit_tags(&self, devices: &[String], edit: &TagEdit) -> Result<Tagged, TagEditError> {
        edit.validate().map_err(TagEditError::Tags)?;
        if devices.len() > MAX_EDIT_DEVICES {
            return Err(TagEditError::Tags(TagError::TooManyDevices));
        }
        let (reply, answer) = oneshot::channel();
        let job = TagJob { devices: devices.to_vec(), edit: edit.clone(), reply };
        if self.tx.blocking_send(Job::Tags(job)).is_err() {
            return Err(TagEditError::Storage(SourceError::Unavailable));
        }
        answer.blocking_recv().unwrap_or(Err(TagEditError::Storage(SourceError::Unavailable)))
    }

    /// Asks the writer to work out again which devices alarm rules' scopes hold (a group
    /// changed). A full queue skips it: the writer does it every few seconds anyway.
    pub fn rescope(&self) {
        let _ = self.tx.try_send(Job::Rescope);
    }
}
