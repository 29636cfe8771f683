//! Bulk commands: the same command to many devices, each device's its own command with its own
//! states (dispatch sends them as it sends any). They are made in slices of at most [`SLICE`],
//! each slice one commit through the writer with the devices' places in the bulk, at most
//! `commands.bulk_per_sec` commands a second over all bulks at once ([`Pacer`]): a bulk to
//! 10,000 devices leaves ingest its turns at the writer, and what follows from the commands
//! (sending, devices' receipts and answers) comes at that pace too. A bulk is answered once all
//! its commands are stored.

use std::time::Duration;

use serde::Deserialize;
use telemetry::command::{Checked, CommandStatus};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{Commands, CommandsError};
use crate::clock::now_ms;
use crate::store::{Bulk, BulkMember, CommandOp};

/// Most devices one bulk may name.
pub const MAX_BULK_DEVICES: usize = 10_000;
/// Most commands made in one commit.
pub const SLICE: usize = 100;
/// Bounds of `commands.bulk_per_sec`.
pub const BULK_PER_SEC: std::ops::RangeInclusive<u32> = 10..=10_000;

/// The `[commands]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandsConfig {
    /// Commands bulks make a second, over all bulks at once.
    pub bulk_per_sec: u32,
}

/// Hands out turns to make commands, at most `per_sec` a second over everyone asking.
pub(super) struct Pacer {
    per_sec: u32,
    /// When the next turn may start.
    next: Mutex<Instant>,
}

impl Pacer {
    pub(super) fn new(per_sec: u32) -> Pacer {
        Pacer { per_sec: per_sec.max(1), next: Mutex::new(Instant::now()) }
    }

    /// Commands per slice: at most [`SLICE`], and small enough that slices come at least ten
    /// times a second.
    fn slice(&self) -> usize {
        (self.per_sec as usize / 10).clamp(1, SLICE)
    }

    /// Waits for the turn to make `n` commands.
    async fn turn(&self, n: usize) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + Duration::from_secs_f64(n as f64 / f64::from(self.per_sec));
            at
        };
        tokio::time::sleep_until(at).await;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_keep_to_the_rate_over_everyone_asking() {
        assert_eq!(Pacer::new(1_000).slice(), 100);
        assert_eq!(Pacer::new(10).slice(), 1);
        assert_eq!(Pacer::new(10_000).slice(), SLICE);
        let pacer = std::sync::Arc::new(Pacer::new(2_000));
        let start = Instant::now();
        // Two bulks at once, 500 commands each: 1,000 at 2,000 a second, the first slice at
        // once and the tenth 0.45 s later.
        let other = tokio::spawn({
            let p = pacer.clone();
            async move {
                for _ in 0..5 {
                    p.turn(100).await;
                }
            }
        });
        for _ in 0..5 {
            pacer.turn(100).await;
        }
        other.await.unwrap();
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(450), "faster than the rate: {took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
}
