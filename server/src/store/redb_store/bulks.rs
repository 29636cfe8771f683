//! Bulk commands: a row per bulk keyed by its counter, and a row per device it handled keyed
//! (bulk, place). The tables are made by the first bulk.

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
use telemetry::Millis;
use telemetry::command::{command_id, id_counter};

use super::super::bulks::{Bulk, BulkMember, BulkStore, MAX_BULKS};
use super::super::commands::{CommandOp, CommandsApplied};
use super::super::error::StoreError;
use super::RedbStore;
use super::commands::{apply_in, optional};

/// counter → the JSON [`Bulk`].
const BULKS: TableDefinition<u64, &[u8]> = TableDefinition::new("bulks");
/// (bulk counter, place) → the JSON [`BulkMember`].
const MEMBERS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("bulk_members");

fn parse<'a, T: serde::Deserialize<'a>>(json: &'a [u8]) -> Result<T, StoreError> {
    serde_json::from_slice(json).map_err(|e| StoreError::Corrupt(format!("bulk: {e}")))
}

impl BulkStore for RedbStore {
    fn open_bulk(&self, bulk: &Bulk, now: Millis) -> Result<Bulk, StoreError> {
        let _writer = self.writer();
        let tx = self.begin_write()?;
        let stored = {
            let mut bulks = tx.open_table(BULKS)?;
            // Ids keep growing: from the time for the first, then counted.
            let last = bulks.last()?.map(|(k, _)| k.value());
            let n = last.map_or(now.max(0) as u64, |l| l.saturating_add(1));
            let stored = Bulk { id: command_id(n), handled: 0, ..bulk.clone() };
            let json = serde_json::to_vec(&stored).expect("bulks serialise");
            bulks.insert(n, json.as_slice())?;
            let mut members = tx.open_table(MEMBERS)?;
            while bulks.len()? as usize > MAX_BULKS {
                let Some((oldest, _)) = bulks.pop_first()? else { break };
                let oldest = oldest.value();
                members.retain_in((oldest, 0)..=(oldest, u32::MAX), |_, _| false)?;
            }
            stored
        };
        tx.commit()?;
        Ok(stored)
    }

    fn add_to_bulk(
        &self,
        id: &str,
        ops: &[CommandOp],
        now: Millis,
    ) -> Result<Option<CommandsApplied>, StoreError> {
        let Some(n) = id_counter(id) else { return Ok(None) };
        let _writer = self.writer();
        let tx = self.begin_write()?;
        let found = tx.open_table(BULKS)?.get(n)?.map(|v| parse::<Bulk>(v.value())).transpose()?;
        let Some(mut bulk) = found else {
            tx.abort()?;
            return Ok(None);
        };
        let applied = {
            let applied = apply_in(&tx, ops, now)?;
            let mut members = tx.open_table(MEMBERS)?;
            for (op, answer) in ops.iter().zip(&applied.answers) {
                let device = match op {
                    CommandOp::Create { device, .. } | CommandOp::Event { device, .. } => device.clone(),
                };
                let member = match answer {
                    Ok(command) => BulkMember { device, id: Some(command.id.clone()), error: None },
                    Err(why) => BulkMember { device, id: None, error: Some(why.to_string()) },
                };
                let json = serde_json::to_vec(&member).expect("bulk members serialise");
                members.insert((n, bulk.handled), json.as_slice())?;
                bulk.handled = bulk.handled.saturating_add(1);
            }
            let json = serde_json::to_vec(&bulk).expect("bulks serialise");
            tx.open_table(BULKS)?.insert(n, json.as_slice())?;
            applied
        };
        tx.commit()?;
        Ok(Some(applied))
    }

    fn bulk(&self, id: &str) -> Result<Option<(Bulk, Vec<BulkMember>)>, StoreError> {
        let Some(n) = id_counter(id) else { return Ok(None) };
        let rx = self.db.read()?;
        let (Some(bulks), Some(members)) =
            (optional(rx.open_table(BULKS))?, optional(rx.open_table(MEMBERS))?)
        else {
            return Ok(None);
        };
        let Some(bulk) = bulks.get(n)?.map(|v| parse::<Bulk>(v.value())).transpose()? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(bulk.handled as usize);
        for entry in members.range((n, 0)..=(n, u32::MAX))? {
            out.push(parse(entry?.1.value())?);
        }
        Ok(Some((bulk, out)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use telemetry::command::NewCommand;

    use super::*;
    use crate::store::CommandRefusal;
    use crate::store::CommandStore;

    fn create(device: &str) -> CommandOp {
        let checked = NewCommand { method: "identify".into(), params: Some(json!({})), ..Default::default() }
            .check()
            .unwrap();
        CommandOp::Create { device: device.into(), checked, by: "ann".into(), observable: true }
    }

    fn asked(requested: u32) -> Bulk {
        Bulk {
            id: String::new(),
            created_by: "ann".into(),
            created_at: 1_000,
            method: "identify".into(),
            query: None,
            requested,
            handled: 0,
        }
    }

    #[test]
    fn a_bulks_commands_and_their_places_survive_a_reopen_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.redb");
        let id = {
            let store = RedbStore::open(&path).unwrap();
            assert!(store.bulk("1").unwrap().is_none(), "no tables yet");
            let bulk = store.open_bulk(&asked(3), 5_000).unwrap();
            assert_eq!(bulk.id, command_id(5_000));
            let made = store.add_to_bulk(&bulk.id, &[create("d1"), create("d2")], 6_000).unwrap().unwrap();
            assert_eq!(made.changed.len(), 2);
            assert_eq!(made.outcome.events.len(), 2, "their changes for the live feed");
            assert!(store.add_to_bulk("zz", &[create("d3")], 6_000).unwrap().is_none(), "no such bulk");
            assert!(store.open_commands().unwrap().iter().all(|c| c.device != "d3"), "nothing made");
            bulk.id
            // Dropped as by a kill.
        };
        let store = RedbStore::open(&path).unwrap();
        let (bulk, members) = store.bulk(&id).unwrap().unwrap();
        assert_eq!((bulk.requested, bulk.handled), (3, 2), "the third was never made");
        let open = store.open_commands().unwrap();
        for (member, device) in members.iter().zip(["d1", "d2"]) {
            assert_eq!(member.device, device);
            let command = open.iter().find(|c| Some(&c.id) == member.id.as_ref() && c.device == device);
            assert!(command.is_some(), "{member:?} names a command that was made");
        }
    }

    #[test]
    fn a_device_refused_is_recorded_with_why_and_old_bulks_go() {
        let store = RedbStore::in_memory().unwrap();
        let full: Vec<CommandOp> =
            (0..telemetry::command::MAX_PENDING_PER_DEVICE).map(|_| create("busy")).collect();
        store.apply_commands(&full, 1_000).unwrap();
        let bulk = store.open_bulk(&asked(2), 2_000).unwrap();
        let made = store.add_to_bulk(&bulk.id, &[create("busy"), create("idle")], 3_000).unwrap().unwrap();
        assert!(matches!(made.answers[0], Err(CommandRefusal::TooMany(_))));
        let (stored, members) = store.bulk(&bulk.id).unwrap().unwrap();
        assert_eq!(stored.handled, 2);
        assert_eq!(members[0].id, None);
        assert_eq!(members[0].error.as_deref(), Some("the device already has 100 unfinished commands"));
        assert!(members[1].id.is_some());

        let mut ids = vec![bulk.id.clone()];
        for _ in 0..MAX_BULKS {
            ids.push(store.open_bulk(&asked(1), 4_000).unwrap().id);
        }
        assert!(store.bulk(&ids[0]).unwrap().is_none(), "the oldest went");
        assert!(store.bulk(&ids[1]).unwrap().is_some());
        assert!(id_counter(&ids[MAX_BULKS]) > id_counter(&ids[MAX_BULKS - 1]), "ids keep growing");
    }
}
