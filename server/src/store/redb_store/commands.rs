//! Commands to devices: a row per command keyed (device, counter), an index of the unfinished
//! ones, and each device's counter. The tables are made by the first command: a file without
//! them simply has none.

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, TableError, WriteTransaction};
use telemetry::command::{Command, MAX_PENDING, MAX_PENDING_PER_DEVICE, command_id, id_counter};
use telemetry::{LiveEvent, Millis};

use super::super::change_log::{self, CHANGES};
use super::super::commands::{
    CommandOp, CommandRefusal, CommandStore, CommandsApplied, MAX_HISTORY_PER_DEVICE,
};
use super::super::error::StoreError;
use super::super::registry::{META, counter};
use super::RedbStore;
use super::schema::LAST_SEQ;

/// (device, counter) → the JSON [`Command`].
const COMMANDS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("commands");
/// (device, counter) of every unfinished command.
const OPEN: TableDefinition<(&str, u64), ()> = TableDefinition::new("commands_open");
/// device → the latest counter handed out (kept when its commands go: ids are never reused).
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("command_counters");

fn parse(json: &[u8]) -> Result<Command, StoreError> {
    serde_json::from_slice(json).map_err(|e| StoreError::Corrupt(format!("command: {e}")))
}

/// A table that may not exist yet (no command was ever made): `None` then.
pub(super) fn optional<T>(table: Result<T, TableError>) -> Result<Option<T>, StoreError> {
    match table {
        Ok(t) => Ok(Some(t)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Applies `ops` in write transaction `tx`, with their changes in the change log; the caller
/// commits (a bulk stores its devices' places in the same transaction).
pub(super) fn apply_in(
    tx: &WriteTransaction,
    ops: &[CommandOp],
    now: Millis,
) -> Result<CommandsApplied, StoreError> {
    let mut applied = CommandsApplied::default();
    {
        let mut rows = tx.open_table(COMMANDS)?;
        let mut open = tx.open_table(OPEN)?;
        let mut counters = tx.open_table(COUNTERS)?;
        let mut open_total = open.len()? as usize;
        for op in ops {
            let answer = match op {
                CommandOp::Create { device, checked, by, observable } => {
                    let mine = open.range((device.as_str(), 0)..=(device.as_str(), u64::MAX))?.count();
                    if mine >= MAX_PENDING_PER_DEVICE {
                        Err(CommandRefusal::TooMany(MAX_PENDING_PER_DEVICE))
                    } else if open_total >= MAX_PENDING {
                        Err(CommandRefusal::Full(MAX_PENDING))
                    } else {
                        // A new device's ids start at the time, so they keep growing even
                        // after its history (or the database) is gone.
                        let last = counters.get(device.as_str())?.map(|v| v.value());
                        let n = last.map_or(now.max(0) as u64, |l| l.saturating_add(1));
                        counters.insert(device.as_str(), n)?;
                        let command = Command::new(
                            command_id(n),
                            device.clone(),
                            checked.clone(),
                            by.clone(),
                            now,
                            *observable,
                        );
                        open.insert((device.as_str(), n), ())?;
                        open_total += 1;
                        // The oldest finished ones beyond the history kept.
                        if let Some(upto) = n.checked_sub(MAX_HISTORY_PER_DEVICE) {
                            let old: Vec<u64> = rows
                                .range((device.as_str(), 0)..=(device.as_str(), upto))?
                                .take(100)
                                .map(|e| e.map(|(k, _)| k.value().1))
                                .collect::<Result<_, _>>()?;
                            for k in old {
                                if open.get((device.as_str(), k))?.is_none() {
                                    rows.remove((device.as_str(), k))?;
                                }
                            }
                        }
                        Ok((n, command))
                    }
                }
                CommandOp::Event { device, id, event } => {
                    let found = match id_counter(id) {
                        Some(n) => rows
                            .get((device.as_str(), n))?
                            .map(|v| parse(v.value()))
                            .transpose()?
                            .map(|c| (n, c)),
                        None => None,
                    };
                    match found {
                        None => Err(CommandRefusal::NotFound),
                        Some((n, mut command)) => match command.apply(event.clone(), now) {
                            Ok(true) => {
                                if command.is_terminal() {
                                    open.remove((device.as_str(), n))?;
                                    open_total = open_total.saturating_sub(1);
                                }
                                Ok((n, command))
                            }
                            Ok(false) => {
                                // Taken without a change of state (a send again counts).
                                if matches!(event, telemetry::command::CommandEvent::Sent(_)) {
                                    let json = serde_json::to_vec(&command).expect("commands serialise");
                                    rows.insert((device.as_str(), n), json.as_slice())?;
                                }
                                applied.answers.push(Ok(command));
                                continue;
                            }
                            Err(why) => Err(CommandRefusal::Illegal(why)),
                        },
                    }
                }
            };
            match answer {
                Ok((n, command)) => {
                    let json = serde_json::to_vec(&command).expect("commands serialise");
                    rows.insert((command.device.as_str(), n), json.as_slice())?;
                    applied.changed.push(command.clone());
                    applied.answers.push(Ok(command));
                }
                Err(why) => applied.answers.push(Err(why)),
            }
        }
        if !applied.changed.is_empty() {
            let mut meta = tx.open_table(META)?;
            let first = counter(&meta, LAST_SEQ)? + 1;
            let events: Vec<LiveEvent> = (first..)
                .zip(&applied.changed)
                .map(|(seq, c)| LiveEvent::Command { seq, at: c.changed_at(), command: Box::new(c.clone()) })
                .collect();
            let wire: Vec<String> =
                events.iter().map(|e| serde_json::to_string(e).expect("live events serialise")).collect();
            change_log::append(&mut tx.open_table(CHANGES)?, first, &wire)?;
            meta.insert(LAST_SEQ, first + events.len() as u64 - 1)?;
            applied.outcome.events = events;
            applied.outcome.wire = wire;
        }
    }
    Ok(applied)
}

impl CommandStore for RedbStore {
    fn apply_commands(&self, ops: &[CommandOp], now: Millis) -> Result<CommandsApplied, StoreError> {
        let _writer = self.writer();
        let tx = self.begin_write()?;
        let applied = apply_in(&tx, ops, now)?;
        tx.commit()?;
        Ok(applied)
    }

    fn open_commands(&self) -> Result<Vec<Command>, StoreError> {
        let rx = self.db.read()?;
        let (Some(open), Some(rows)) = (optional(rx.open_table(OPEN))?, optional(rx.open_table(COMMANDS))?)
        else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in open.iter()? {
            let (k, _) = entry?;
            let (device, n) = k.value();
            if let Some(row) = rows.get((device, n))? {
                out.push(parse(row.value())?);
            }
        }
        Ok(out)
    }

    fn commands_of(
        &self,
        device: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Command>, StoreError> {
        let rx = self.db.read()?;
        let Some(rows) = optional(rx.open_table(COMMANDS))? else { return Ok(Vec::new()) };
        let end = match before {
            Some(id) => match id_counter(id) {
                Some(0) | None => return Ok(Vec::new()),
                Some(n) => n - 1,
            },
            None => u64::MAX,
        };
        let mut out = Vec::new();
        for entry in rows.range((device, 0)..=(device, end))?.rev().take(limit) {
            out.push(parse(entry?.1.value())?);
        }
        Ok(out)
    }

    fn command(&self, device: &str, id: &str) -> Result<Option<Command>, StoreError> {
        let Some(n) = id_counter(id) else { return Ok(None) };
        let rx = self.db.read()?;
        let Some(rows) = optional(rx.open_table(COMMANDS))? else { return Ok(None) };
        rows.get((device, n))?.map(|v| parse(v.value())).transpose()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use telemetry::TelemetrySource;
    use telemetry::command::{CommandEvent, NewCommand, Receipt, Reply};

    use super::*;
    use telemetry::command::CommandStatus;

    fn create(device: &str) -> CommandOp {
        let checked =
            NewCommand { method: "identify".into(), params: Some(json!({"n": 1})), ..Default::default() }
                .check()
                .unwrap();
        CommandOp::Create { device: device.into(), checked, by: "ann".into(), observable: true }
    }

    fn event(device: &str, id: &str, event: CommandEvent) -> CommandOp {
        CommandOp::Event { device: device.into(), id: id.into(), event }
    }

    #[test]
    fn commands_are_numbered_changes_that_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.redb");
        let (first, second) = {
            let store = RedbStore::open(&path).unwrap();
            assert!(store.open_commands().unwrap().is_empty(), "no tables yet");
            let made = store.apply_commands(&[create("d1"), create("d1")], 5_000).unwrap();
            let ids: Vec<String> = made.changed.iter().map(|c| c.id.clone()).collect();
            assert_eq!(ids, [command_id(5_000), command_id(5_001)], "ids from the time, then counted");
            let seqs: Vec<u64> = made.outcome.events.iter().filter_map(LiveEvent::seq).collect();
            assert_eq!(seqs, [1, 2]);
            let sent = store
                .apply_commands(&[event("d1", &ids[0], CommandEvent::Sent(Receipt::Observable))], 6_000)
                .unwrap();
            assert_eq!(sent.changed[0].status, CommandStatus::Sent);
            assert_eq!(store.changes_since(2, 10).unwrap(), sent.outcome.events, "in the change log");
            (ids[0].clone(), ids[1].clone())
            // Dropped as by a kill: what was committed is there.
        };
        let store = RedbStore::open(&path).unwrap();
        let open = store.open_commands().unwrap();
        let states: Vec<(&str, CommandStatus)> = open.iter().map(|c| (c.id.as_str(), c.status)).collect();
        assert_eq!(states, [(first.as_str(), CommandStatus::Sent), (second.as_str(), CommandStatus::Queued)]);
        assert!(store.device("d1").unwrap().value.is_none(), "commands make no device record");

        let done = store
            .apply_commands(
                &[
                    event("d1", &first, CommandEvent::Answered(Reply::Ok(Some(json!(7))))),
                    event("d1", &first, CommandEvent::Delivered),
                    event("d1", &second, CommandEvent::Delivered),
                    event("d1", "zz", CommandEvent::Due),
                    create("d2"),
                ],
                7_000,
            )
            .unwrap();
        assert_eq!(done.answers[0].as_ref().unwrap().status, CommandStatus::Succeeded);
        assert_eq!(
            done.answers[1].as_ref().unwrap().status,
            CommandStatus::Succeeded,
            "a late PUBACK: no change"
        );
        assert!(matches!(done.answers[2], Err(CommandRefusal::Illegal(_))), "never sent");
        assert_eq!(done.answers[3], Err(CommandRefusal::NotFound));
        assert_eq!(done.changed.len(), 2);
        let open: Vec<String> = store.open_commands().unwrap().into_iter().map(|c| c.id).collect();
        assert_eq!(open.len(), 2, "the finished one left the index: {open:?}");

        let listed = store.commands_of("d1", None, 10).unwrap();
        assert_eq!(
            listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            [second.as_str(), first.as_str()]
        );
        assert_eq!(store.commands_of("d1", Some(&second), 10).unwrap()[0].id, first, "paged");
        assert_eq!(store.command("d1", &first).unwrap().unwrap().result, Some(json!(7)));
        assert!(store.command("d1", "Bad!").unwrap().is_none());
    }

    #[test]
    fn a_device_has_at_most_its_maximum_of_unfinished_commands() {
        let store = RedbStore::in_memory().unwrap();
        let ops: Vec<CommandOp> = (0..MAX_PENDING_PER_DEVICE + 1).map(|_| create("d1")).collect();
        let made = store.apply_commands(&ops, 1_000).unwrap();
        assert_eq!(made.changed.len(), MAX_PENDING_PER_DEVICE);
        assert_eq!(made.answers.last().unwrap(), &Err(CommandRefusal::TooMany(MAX_PENDING_PER_DEVICE)));
        assert!(store.apply_commands(&[create("d2")], 1_000).unwrap().answers[0].is_ok(), "per device");
        let first = made.changed[0].id.clone();
        store
            .apply_commands(&[event("d1", &first, CommandEvent::Cancel { by: "ann".into() })], 2_000)
            .unwrap();
        assert!(store.apply_commands(&[create("d1")], 3_000).unwrap().answers[0].is_ok(), "a place freed");
    }
}
