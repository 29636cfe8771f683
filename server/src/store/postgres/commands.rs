//! Commands to devices ([`CommandStore`]): a row per command, each device's counter, and the
//! changes they make in the change log, in one transaction per call, as the redb store keeps
//! them (the same ids, states, caps, history kept and answers).
//!
//! # Several nodes at once
//! - A transition is made on the command's row locked (`SELECT … FOR UPDATE`, every row a
//!   call moves taken first, in key order, so two calls cannot deadlock), and written with
//!   `UPDATE … WHERE status = <the state it was read in>`. A node that waited for another's
//!   transition reads the state that one left: a second PUBACK finds the command DELIVERED
//!   already (no change), a late answer finds it TIMED_OUT (refused), so only one wins.
//! - Making commands takes a transaction-level advisory lock first, so the caps (a device's
//!   unfinished commands, the server's) are counted in the database with no other node adding
//!   at the same time, and each device's counter is read and moved by one node at a time.
//!   Transitions elsewhere only lower those counts while the lock is held, so a count is
//!   never too low. Moves of commands do not take it: dispatch on many nodes does not queue
//!   behind a bulk being made.
//! - Lock order, to call [`apply_in`] inside a larger transaction: the bulk's row (bulks), the
//!   advisory lock, the commands' rows, old history rows (trimmed), the change counter.
//! - Nothing is cached between calls: every call reads what the rows are.
//!
//! A call's statements: the locks and what the events' commands and the making devices are
//! (one query each), an `UPDATE` per command moved, the commands made in one `INSERT` at the
//! end (or before a trim that must see them), a `DELETE` per command made past a device's
//! history, the counters in one statement, then the change log.

use std::collections::{BTreeSet, HashMap, HashSet};

use deadpool_postgres::Transaction;
use tokio_postgres::error::SqlState;

use telemetry::command::{
    Command, CommandEvent, CommandStatus, MAX_PENDING, MAX_PENDING_PER_DEVICE, command_id, id_counter,
};
use telemetry::{LiveEvent, Millis};

use super::super::commands::{
    CommandOp, CommandRefusal, CommandStore, CommandsApplied, MAX_HISTORY_PER_DEVICE,
};
use super::super::error::StoreError;
use super::blocking::PgBlocking;
use super::error::PgError;
use super::store::PgStore;
use super::{change_log, time};

/// The advisory lock a transaction that makes commands holds ("commands" in ASCII).
const MAKING: i64 = 0x636f_6d6d_616e_6473;

/// Times a call is tried when PostgreSQL ended it to break a deadlock or a serialization
/// conflict (possible only with other writers' locks in a combined transaction).
pub(super) const TRIES: usize = 3;

/// Finished commands looked at per trim, as the redb store does.
const TRIM_BATCH: i64 = 100;

/// A counter as the database keeps it.
fn stored(n: u64) -> Result<i64, PgError> {
    i64::try_from(n).map_err(|_| PgError::Corrupt(format!("command counter {n} past i64")))
}

fn counter(n: i64) -> Result<u64, PgError> {
    u64::try_from(n).map_err(|_| PgError::Corrupt(format!("command counter {n}")))
}

pub(super) fn parse(json: &str) -> Result<Command, PgError> {
    serde_json::from_str(json).map_err(|e| PgError::Corrupt(format!("command: {e}")))
}

/// The state's name as the `status` column holds it (`TIMED_OUT`, as in the JSON).
fn status_name(status: CommandStatus) -> &'static str {
    status.label()
}

/// Whether a call should be tried again: PostgreSQL ended it to let another go.
pub(super) fn retryable(e: &PgError) -> bool {
    matches!(e, PgError::Db(e)
        if matches!(e.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE))
}

/// What a making call knows of a device while it holds the lock.
struct Device {
    /// Its counter's latest value (`None`: it never had a command).
    last: Option<u64>,
    /// Its counter as read, to write back only what moved.
    read: Option<u64>,
    /// Its unfinished commands.
    open: usize,
    /// Its oldest command's counter: no trim is looked for below it.
    oldest: Option<u64>,
}

/// Applies `ops` in `tx` as [`CommandStore::apply_commands`] does, with their changes numbered
/// in the change log; the caller commits. For a combined commit: call it after the other
/// rows' locks but before anything else numbers changes (the counter's lock is held from
/// here to the commit).
pub(super) async fn apply_in(
    tx: &Transaction<'_>,
    ops: &[CommandOp],
    now: Millis,
) -> Result<CommandsApplied, PgError> {
    let mut applied = stage(tx, ops, now).await?;
    log(tx, &mut applied).await?;
    Ok(applied)
}

/// Numbers `applied.changed`'s changes and writes them to the change log (nothing when none
/// changed): `applied.outcome` then holds them.
pub(super) async fn log(tx: &Transaction<'_>, applied: &mut CommandsApplied) -> Result<(), PgError> {
    if applied.changed.is_empty() {
        return Ok(());
    }
    let first = change_log::number(tx, applied.changed.len() as u64).await?;
    let events: Vec<LiveEvent> = (first..)
        .zip(&applied.changed)
        .map(|(seq, c)| LiveEvent::Command { seq, at: c.changed_at(), command: Box::new(c.clone()) })
        .collect();
    let wire: Vec<String> =
        events.iter().map(|e| serde_json::to_string(e).expect("live events serialise")).collect();
    // The log's time is only what pruning by age goes by: a clock before 2000 (never a real
    // server's) is logged as 2000 rather than refused, as the redb store takes any time.
    let changes: Vec<(Millis, &str)> = applied
        .changed
        .iter()
        .map(|c| c.changed_at().clamp(time::EARLIEST, time::LATEST - 1))
        .zip(wire.iter().map(String::as_str))
        .collect();
    change_log::append(tx, first, &changes).await?;
    applied.outcome.events = events;
    applied.outcome.wire = wire;
    Ok(())
}

/// Applies `ops` in `tx` without numbering their changes ([`log`] does).
pub(super) async fn stage(
    tx: &Transaction<'_>,
    ops: &[CommandOp],
    now: Millis,
) -> Result<CommandsApplied, PgError> {
    let mut applied = CommandsApplied::default();
    if ops.is_empty() {
        return Ok(applied);
    }
    // Making commands: the lock first (lock order), then what their devices have.
    let making: BTreeSet<&str> = ops
        .iter()
        .filter_map(|op| match op {
            CommandOp::Create { device, .. } => Some(device.as_str()),
            CommandOp::Event { .. } => None,
        })
        .collect();
    if !making.is_empty() {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MAKING]).await?;
    }
    // Every command the events name that exists, locked in key order, with its state.
    let targets: BTreeSet<(&str, i64)> = ops
        .iter()
        .filter_map(|op| match op {
            CommandOp::Event { device, id, .. } => {
                Some((device.as_str(), i64::try_from(id_counter(id)?).ok()?))
            }
            CommandOp::Create { .. } => None,
        })
        .collect();
    // (device, counter) → the command as it is now in this transaction.
    let mut rows: HashMap<(String, u64), Command> = HashMap::new();
    if !targets.is_empty() {
        let (devices, counters): (Vec<&str>, Vec<i64>) = targets.iter().copied().unzip();
        let lock = tx
            .prepare_cached(
                "SELECT c.device, c.n, c.doc::text FROM commands c \
                 JOIN unnest($1::text[], $2::int8[]) AS t(device, n) ON c.device = t.device AND c.n = t.n \
                 ORDER BY c.device, c.n FOR UPDATE OF c",
            )
            .await?;
        for row in tx.query(&lock, &[&devices, &counters]).await? {
            rows.insert((row.get(0), counter(row.get(1))?), parse(row.get(2))?);
        }
    }
    let mut devices: HashMap<String, Device> = HashMap::new();
    let mut open_total = 0usize;
    if !making.is_empty() {
        let names: Vec<&str> = making.iter().copied().collect();
        let found = tx
            .query(
                "SELECT d.device, k.last, \
                 (SELECT count(*) FROM commands o WHERE o.device = d.device AND o.open), \
                 (SELECT min(m.n) FROM commands m WHERE m.device = d.device) \
                 FROM unnest($1::text[]) AS d(device) LEFT JOIN command_counters k ON k.device = d.device",
                &[&names],
            )
            .await?;
        for row in found {
            let last = row.get::<_, Option<i64>>(1).map(counter).transpose()?;
            let open: i64 = row.get(2);
            let oldest = row.get::<_, Option<i64>>(3).map(counter).transpose()?;
            devices.insert(
                row.get(0),
                Device { last, read: last, open: usize::try_from(open).unwrap_or(usize::MAX), oldest },
            );
        }
        let total: i64 = tx.query_one("SELECT count(*) FROM commands WHERE open", &[]).await?.get(0);
        open_total = usize::try_from(total).unwrap_or(usize::MAX);
    }
    // Commands made in this call and not written yet: written together (one statement),
    // before anything that could read them and at the end, as they are then.
    let mut unwritten: HashSet<(String, u64)> = HashSet::new();
    let update = tx
        .prepare_cached(
            "UPDATE commands SET status = $4, doc = $5::text::json WHERE device = $1 AND n = $2 AND status = $3",
        )
        .await?;
    let trim = tx
        .prepare_cached(
            "DELETE FROM commands WHERE device = $1 AND NOT open AND n IN \
             (SELECT n FROM commands WHERE device = $1 AND n <= $2 ORDER BY n LIMIT $3) RETURNING n",
        )
        .await?;
    for op in ops {
        let answer = match op {
            CommandOp::Create { device, checked, by, observable } => {
                let dev = devices.get_mut(device.as_str()).expect("every making device was read");
                if dev.open >= MAX_PENDING_PER_DEVICE {
                    Err(CommandRefusal::TooMany(MAX_PENDING_PER_DEVICE))
                } else if open_total >= MAX_PENDING {
                    Err(CommandRefusal::Full(MAX_PENDING))
                } else {
                    // A new device's ids start at the time, so they keep growing even after
                    // its history (or the database) is gone.
                    let n = dev.last.map_or(now.max(0) as u64, |l| l.saturating_add(1));
                    dev.last = Some(n);
                    let command = Command::new(
                        command_id(n),
                        device.clone(),
                        checked.clone(),
                        by.clone(),
                        now,
                        *observable,
                    );
                    unwritten.insert((device.clone(), n));
                    rows.insert((device.clone(), n), command.clone());
                    dev.open += 1;
                    open_total += 1;
                    dev.oldest = Some(dev.oldest.map_or(n, |o| o.min(n)));
                    // The oldest finished ones beyond the history kept.
                    if let Some(upto) = n.checked_sub(MAX_HISTORY_PER_DEVICE)
                        && dev.oldest.is_some_and(|o| o <= upto)
                    {
                        // More than the history made in this one call: what it made is
                        // looked at too.
                        if unwritten.iter().any(|(d, k)| d == device && *k <= upto) {
                            write(tx, &mut unwritten, &rows).await?;
                        }
                        for row in tx.query(&trim, &[device, &stored(upto)?, &TRIM_BATCH]).await? {
                            rows.remove(&(device.clone(), counter(row.get(0))?));
                        }
                    }
                    Ok(command)
                }
            }
            CommandOp::Event { device, id, event } => {
                let key = id_counter(id).map(|n| (device.clone(), n));
                match key.as_ref().and_then(|k| rows.get_mut(k)) {
                    None => Err(CommandRefusal::NotFound),
                    Some(command) => {
                        let was = command.status;
                        let mut moved = command.clone();
                        match moved.apply(event.clone(), now) {
                            Ok(changed) => {
                                // Taken without a change of state: only a send again is kept
                                // (its count).
                                let keep = changed || matches!(event, CommandEvent::Sent(_));
                                if keep && unwritten.contains(key.as_ref().expect("found by its key")) {
                                    // Made in this call: written as it ends up.
                                    *command = moved.clone();
                                } else if keep {
                                    let (device, n) = key.as_ref().expect("found by its key");
                                    let json = serde_json::to_string(&moved).expect("commands serialise");
                                    let done = tx
                                        .execute(
                                            &update,
                                            &[
                                                device,
                                                &stored(*n)?,
                                                &status_name(was),
                                                &status_name(moved.status),
                                                &json,
                                            ],
                                        )
                                        .await?;
                                    if done != 1 {
                                        return Err(PgError::Corrupt(format!(
                                            "command {id} of {device} moved while locked"
                                        )));
                                    }
                                    *command = moved.clone();
                                }
                                if changed {
                                    if moved.is_terminal() {
                                        open_total = open_total.saturating_sub(1);
                                        if let Some(dev) = devices.get_mut(device.as_str()) {
                                            dev.open = dev.open.saturating_sub(1);
                                        }
                                    }
                                    Ok(moved)
                                } else {
                                    applied.answers.push(Ok(moved));
                                    continue;
                                }
                            }
                            Err(why) => Err(CommandRefusal::Illegal(why)),
                        }
                    }
                }
            }
        };
        match answer {
            Ok(command) => {
                applied.changed.push(command.clone());
                applied.answers.push(Ok(command));
            }
            Err(why) => applied.answers.push(Err(why)),
        }
    }
    write(tx, &mut unwritten, &rows).await?;
    // Each making device's counter, where it moved.
    let mut names = Vec::new();
    let mut lasts = Vec::new();
    for (name, dev) in &devices {
        if let Some(last) = dev.last
            && dev.last != dev.read
        {
            names.push(name.as_str());
            lasts.push(stored(last)?);
        }
    }
    if !names.is_empty() {
        tx.execute(
            "INSERT INTO command_counters (device, last) SELECT * FROM unnest($1::text[], $2::int8[]) \
             ON CONFLICT (device) DO UPDATE SET last = excluded.last",
            &[&names, &lasts],
        )
        .await?;
    }
    Ok(applied)
}

/// Writes the commands made and not yet written, as they are now, in one statement.
async fn write(
    tx: &Transaction<'_>,
    unwritten: &mut HashSet<(String, u64)>,
    rows: &HashMap<(String, u64), Command>,
) -> Result<(), PgError> {
    if unwritten.is_empty() {
        return Ok(());
    }
    let mut devices = Vec::with_capacity(unwritten.len());
    let mut counters = Vec::with_capacity(unwritten.len());
    let mut statuses = Vec::with_capacity(unwritten.len());
    let mut docs = Vec::with_capacity(unwritten.len());
    for key in unwritten.drain() {
        let command =
            rows.get(&key).ok_or_else(|| PgError::Corrupt(format!("command {key:?} made and lost")))?;
        counters.push(stored(key.1)?);
        statuses.push(status_name(command.status));
        docs.push(serde_json::to_string(command).expect("commands serialise"));
        devices.push(key.0);
    }
    let statement = tx
        .prepare_cached(
            "INSERT INTO commands (device, n, status, doc) \
             SELECT device, n, status, doc::json FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[]) \
             AS m(device, n, status, doc)",
        )
        .await?;
    tx.execute(&statement, &[&devices, &counters, &statuses, &docs]).await?;
    Ok(())
}

impl PgStore {
    /// [`CommandStore::apply_commands`]: one transaction, tried again if PostgreSQL ended it
    /// to break a deadlock.
    pub async fn apply_commands(&self, ops: &[CommandOp], now: Millis) -> Result<CommandsApplied, PgError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let result = async {
                let mut client = self.pool.get().await?;
                let tx = client.transaction().await?;
                let applied = apply_in(&tx, ops, now).await?;
                tx.commit().await?;
                Ok(applied)
            }
            .await;
            match result {
                Err(e) if tries < TRIES && retryable(&e) => continue,
                other => return other,
            }
        }
    }

    /// Every unfinished command, by device (bytes) then as made.
    pub async fn open_commands(&self) -> Result<Vec<Command>, PgError> {
        let client = self.pool.get().await?;
        let rows = client.query("SELECT doc::text FROM commands WHERE open ORDER BY device, n", &[]).await?;
        rows.iter().map(|r| parse(r.get(0))).collect()
    }

    /// Every unfinished command as [`PgStore::open_commands`] reads it, with the change log's
    /// number as of the same moment: each change numbered up to it is in what was read, none
    /// after it is (what a cluster's dispatch starts from before following the log).
    pub async fn open_commands_at(&self) -> Result<(u64, Vec<Command>), PgError> {
        let mut client = self.pool.get().await?;
        let tx = super::records::snapshot(&mut client).await?;
        let seq: i64 =
            tx.query_one("SELECT value FROM counters WHERE name = 'change_seq'", &[]).await?.get(0);
        let seq = u64::try_from(seq).map_err(|_| PgError::Corrupt(format!("change_seq is {seq}")))?;
        let rows = tx.query("SELECT doc::text FROM commands WHERE open ORDER BY device, n", &[]).await?;
        let open = rows.iter().map(|r| parse(r.get(0))).collect::<Result<Vec<_>, _>>()?;
        tx.commit().await?;
        Ok((seq, open))
    }

    /// A device's commands, newest first, made before command `before` if given, at most
    /// `limit`.
    pub async fn commands_of(
        &self,
        device: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Command>, PgError> {
        let end = match before {
            Some(id) => match id_counter(id) {
                Some(0) | None => return Ok(Vec::new()),
                Some(n) => i64::try_from(n - 1).unwrap_or(i64::MAX),
            },
            None => i64::MAX,
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT doc::text FROM commands WHERE device = $1 AND n <= $2 ORDER BY n DESC LIMIT $3",
            )
            .await?;
        let rows = client.query(&statement, &[&device, &end, &limit]).await?;
        rows.iter().map(|r| parse(r.get(0))).collect()
    }

    pub async fn command(&self, device: &str, id: &str) -> Result<Option<Command>, PgError> {
        let Some(n) = id_counter(id).and_then(|n| i64::try_from(n).ok()) else { return Ok(None) };
        let client = self.pool.get().await?;
        let statement =
            client.prepare_cached("SELECT doc::text FROM commands WHERE device = $1 AND n = $2").await?;
        client.query_opt(&statement, &[&device, &n]).await?.map(|r| parse(r.get(0))).transpose()
    }
}

impl PgBlocking {
    /// [`PgStore::open_commands_at`], from a blocking thread.
    pub fn open_commands_at(&self) -> Result<(u64, Vec<Command>), StoreError> {
        self.call(|pg| async move { pg.open_commands_at().await })
    }
}

impl CommandStore for PgBlocking {
    fn apply_commands(&self, ops: &[CommandOp], now: Millis) -> Result<CommandsApplied, StoreError> {
        let ops = ops.to_vec();
        self.call(|pg| async move { pg.apply_commands(&ops, now).await })
    }

    fn open_commands(&self) -> Result<Vec<Command>, StoreError> {
        self.call(|pg| async move { pg.open_commands().await })
    }

    fn commands_of(
        &self,
        device: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Command>, StoreError> {
        let (device, before) = (device.to_owned(), before.map(str::to_owned));
        self.call(|pg| async move { pg.commands_of(&device, before.as_deref(), limit).await })
    }

    fn command(&self, device: &str, id: &str) -> Result<Option<Command>, StoreError> {
        let (device, id) = (device.to_owned(), id.to_owned());
        self.call(|pg| async move { pg.command(&device, &id).await })
    }
}
