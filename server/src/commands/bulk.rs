//! Bulk commands: the same command to many devices, each device's its own command with its own
//! states (dispatch sends them as it sends any). They are made in slices, each one commit
//! through the writer with the devices' places in the bulk, at the pace of
//! [`Pacer`](super::pacer::Pacer) (`commands.bulk_per_sec` commands a second over all bulks at
//! once): a bulk to 10,000 devices leaves ingest its turns at the writer, and what follows from
//! the commands (sending, devices' receipts and answers) comes at that pace too. A bulk is
//! answered once all its commands are stored.

use serde::Deserialize;
use telemetry::command::{Checked, CommandStatus};

use super::{Commands, CommandsError};
use crate::clock::now_ms;
use crate::store::{Bulk, BulkMember, CommandOp};

/// Most devices one bulk may name.
pub const MAX_BULK_DEVICES: usize = 10_000;
/// Bounds of `commands.bulk_per_sec`.
pub const BULK_PER_SEC: std::ops::RangeInclusive<u32> = 10..=10_000;

/// The `[commands]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandsConfig {
    /// Commands bulks make a second, over all bulks at once.
    pub bulk_per_sec: u32,
}

/// A bulk as it stands: its record, and per device its command's id and status now (or why it
/// has none).
#[derive(Debug, Clone)]
pub struct BulkState {
    pub bulk: Bulk,
    /// (member, its command's status; `None` when refused, or gone from the device's history)
    pub members: Vec<(BulkMember, Option<CommandStatus>)>,
}

impl Commands {
    /// Makes `checked` for each of `devices` (known devices, at most [`MAX_BULK_DEVICES`],
    /// each once) as one bulk, at the bulk pace; answers the bulk with each device's command
    /// id, or why it got none, once all are stored. Made to the end even if the caller goes
    /// away, holding its `place` ([`Commands::bulk_place`]) until then.
    pub async fn bulk(
        &self,
        place: tokio::sync::OwnedSemaphorePermit,
        devices: Vec<String>,
        checked: Checked,
        by: &str,
        query: Option<String>,
    ) -> Result<(Bulk, Vec<BulkMember>), CommandsError> {
        let commands = self.clone();
        let by = by.to_owned();
        let made = tokio::spawn(async move {
            let made = commands.make_bulk(devices, checked, by, query).await;
            drop(place);
            made
        });
        made.await.map_err(|_| CommandsError::Storage)?
    }

    async fn make_bulk(
        &self,
        devices: Vec<String>,
        checked: Checked,
        by: String,
        query: Option<String>,
    ) -> Result<(Bulk, Vec<BulkMember>), CommandsError> {
        let asked = Bulk {
            id: String::new(),
            created_by: by.clone(),
            created_at: now_ms(),
            method: checked.method.clone(),
            query,
            requested: u32::try_from(devices.len()).unwrap_or(u32::MAX),
            handled: 0,
        };
        let store = self.store.clone();
        let opened = tokio::task::spawn_blocking(move || store.open_bulk(&asked, now_ms()));
        let mut bulk = opened.await.map_err(|_| CommandsError::Storage)??;
        let mut members = Vec::with_capacity(devices.len());
        for slice in devices.chunks(self.pacer.slice()) {
            self.pacer.turn(slice.len()).await;
            let ops = slice
                .iter()
                .map(|device| CommandOp::Create {
                    device: device.clone(),
                    checked: checked.clone(),
                    by: by.clone(),
                    observable: self.observable,
                })
                .collect();
            let applied = self.ingest.add_to_bulk(bulk.id.clone(), ops).await?;
            // The bulk was made a moment ago; only a hundred newer ones can have pushed it out.
            let applied = applied.ok_or(CommandsError::Storage)?;
            for (device, answer) in slice.iter().zip(applied.answers) {
                let device = device.clone();
                members.push(match answer {
                    Ok(command) => BulkMember { device, id: Some(command.id), error: None },
                    Err(why) => BulkMember { device, id: None, error: Some(why.to_string()) },
                });
            }
        }
        bulk.handled = u32::try_from(members.len()).unwrap_or(u32::MAX);
        Ok((bulk, members))
    }

    /// Bulk `id` as it stands, if the server still keeps it.
    pub async fn bulk_state(&self, id: &str) -> Result<Option<BulkState>, CommandsError> {
        let (store, id) = (self.store.clone(), id.to_owned());
        let read = tokio::task::spawn_blocking(move || {
            let Some((bulk, members)) = store.bulk(&id)? else { return Ok(None) };
            let mut out = Vec::with_capacity(members.len());
            for member in members {
                let status = match &member.id {
                    Some(cmd) => store.command(&member.device, cmd)?.map(|c| c.status),
                    None => None,
                };
                out.push((member, status));
            }
            Ok::<_, crate::store::StoreError>(Some(BulkState { bulk, members: out }))
        });
        Ok(read.await.map_err(|_| CommandsError::Storage)??)
    }
}
