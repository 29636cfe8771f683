//! The registry's share of a commit, written inside the commit's transaction: what a batch's
//! fresh readings change in their devices' records (latest values, the interval's rhythm, a
//! reboot seen in a falling uptime) and what its reports change (statuses, with the session
//! rule for delayed last wills; attributes, with firmware and other event attributes'
//! changes; connections), with the device events they make. Statuses, attributes and events
//! are numbered changes, numbered by [`change_log::number`] after the commit's readings, in
//! the order the redb store numbers them.
//!
//! # Locks
//! Each device's record row is read and rewritten under its lock (`FOR UPDATE`), so two nodes
//! reporting on one device at once take turns and neither update is lost. Both functions first
//! take the change counter's lock (which a commit with readings already holds from its
//! numbering), so every commit locks records only while holding the counter: commits never
//! wait on each other's records in a circle, and the connection log's bound and the device
//! events' are counted with no other commit writing them. Edits without the counter
//! (names, deletion) lock `devices` before `device_records`, in the order ingest does.

use deadpool_postgres::Transaction;
use telemetry::attributes::{self, DeviceEvent, UPTIME_METRICS};
use telemetry::{LiveEvent, Millis};

use super::super::api::{AttributesReport, CommitOutcome, ConnectionReport, Incoming, Report, StatusReport};
use super::super::maps::FastSet;
use super::error::PgError;
use super::store::PgStore;
use super::{change_log, connections, device_events, records};

/// Takes the change counter's lock for the rest of the transaction (a no-op if held).
async fn hold_counter(tx: &Transaction<'_>) -> Result<(), PgError> {
    let statement =
        tx.prepare_cached("SELECT value FROM counters WHERE name = 'change_seq' FOR UPDATE").await?;
    tx.query_one(&statement, &[]).await?;
    Ok(())
}

/// Numbers `events` (made with `seq` 0, in order) after every change numbered before in this
/// transaction, keeps the device events among them and logs them all; adds them to `outcome`.
async fn log(
    tx: &Transaction<'_>,
    events: Vec<LiveEvent>,
    outcome: &mut CommitOutcome,
) -> Result<(), PgError> {
    if events.is_empty() {
        return Ok(());
    }
    let first = change_log::number(tx, events.len() as u64).await?;
    let mut numbered = Vec::with_capacity(events.len());
    for (n, mut event) in (first..).zip(events) {
        if let LiveEvent::Status { seq, .. }
        | LiveEvent::Attributes { seq, .. }
        | LiveEvent::Event { seq, .. } = &mut event
        {
            *seq = n;
        }
        numbered.push(event);
    }
    let kept: Vec<(u64, &DeviceEvent)> = numbered
        .iter()
        .filter_map(|e| match e {
            LiveEvent::Event { seq, event } => Some((*seq, event)),
            _ => None,
        })
        .collect();
    device_events::append(tx, &kept).await?;
    let wire: Vec<String> =
        numbered.iter().map(|e| serde_json::to_string(e).expect("live events serialise")).collect();
    let changes: Vec<(Millis, &str)> = numbered.iter().map(at).zip(wire.iter().map(String::as_str)).collect();
    change_log::append(tx, first, &changes).await?;
    outcome.events.extend(numbered);
    outcome.wire.extend(wire);
    Ok(())
}

/// The server time a change of this module's was made (what the change log is pruned by).
fn at(event: &LiveEvent) -> Millis {
    match event {
        LiveEvent::Status { at, .. } | LiveEvent::Attributes { at, .. } => *at,
        LiveEvent::Event { event, .. } => event.at,
        _ => 0,
    }
}

/// What a batch's fresh messages (`fresh[i]`: `batch[i]` stored something new) change in their
/// devices' records: each metric's latest value (a reading older than the latest leaves it),
/// the arrivals the interval is learned from, and a reboot where an uptime metric fell, each a
/// numbered device event. Call it after the readings are numbered, in their transaction.
/// A redelivered message changes nothing (its readings are stored as first sent).
pub(super) async fn commit_readings(
    tx: &Transaction<'_>,
    batch: &[Incoming],
    fresh: &[bool],
    outcome: &mut CommitOutcome,
) -> Result<(), PgError> {
    let stored: Vec<&Incoming> = batch.iter().zip(fresh).filter(|(_, f)| **f).map(|(i, _)| i).collect();
    if stored.is_empty() {
        return Ok(());
    }
    hold_counter(tx).await?;
    let mut ids: Vec<&str> = stored.iter().map(|i| i.message.device.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut records = records::lock(tx, &ids).await?;
    let mut reboots = Vec::new();
    for Incoming { message, received } in stored {
        let device = message.device.as_str();
        let rec =
            records.get_mut(device).ok_or_else(|| PgError::Corrupt(format!("no record of {device}")))?;
        // Told before the reading updates the latest.
        let reboot = UPTIME_METRICS.iter().find_map(|name| {
            let (_, uptime) = message.values.iter().find(|(m, _)| m == name)?;
            attributes::reboot(rec.metrics.get(*name).copied(), *uptime, message.ts)
        });
        rec.saw(message.ts, *received, &message.values);
        rec.arrived(message.ts, *received);
        if let Some(kind) = reboot {
            let event = DeviceEvent { device: device.to_owned(), at: *received, kind };
            reboots.push(LiveEvent::Event { seq: 0, event });
        }
    }
    records::write_seen(tx, &records).await?;
    log(tx, reboots, outcome).await
}

/// Writes a batch's reports in order: a status (unless it is a last will from an older session
/// than the device's latest, counted in `outcome.stale_wills`), attributes (a numbered change
/// if any changed, then an event per event attribute that changed), connections (logged only
/// for a device the store knows, as of this report: from earlier commits, this commit's
/// readings or its earlier reports; not numbered). Adds the changes to `outcome`.
pub(super) async fn commit_reports(
    tx: &Transaction<'_>,
    reports: &[Report],
    outcome: &mut CommitOutcome,
) -> Result<(), PgError> {
    if reports.is_empty() {
        return Ok(());
    }
    hold_counter(tx).await?;
    let mut reported: Vec<&str> =
        reports.iter().filter(|r| !matches!(r, Report::Connection(_))).map(|r| r.device().as_str()).collect();
    reported.sort_unstable();
    reported.dedup();
    let mut asked: Vec<&str> =
        reports.iter().filter(|r| matches!(r, Report::Connection(_))).map(|r| r.device().as_str()).collect();
    asked.sort_unstable();
    asked.dedup();
    // Known before these reports: in the registry (this commit's readings included).
    let mut known: FastSet<String> = FastSet::default();
    if !asked.is_empty() {
        let rows = tx
            .query(
                "SELECT id FROM devices WHERE id = ANY($1) UNION SELECT id FROM device_records WHERE id = ANY($1)",
                &[&asked],
            )
            .await?;
        known.extend(rows.iter().map(|r| r.get::<_, String>(0)));
    }
    let mut records = records::lock(tx, &reported).await?;
    let mut events = Vec::new();
    let mut logged: Vec<&ConnectionReport> = Vec::new();
    for report in reports {
        let device = report.device().as_str();
        let rec = match report {
            Report::Connection(connection) => {
                if known.contains(device) {
                    logged.push(connection);
                }
                continue;
            }
            _ => {
                known.insert(device.to_owned());
                records.get_mut(device).ok_or_else(|| PgError::Corrupt(format!("no record of {device}")))?
            }
        };
        match report {
            Report::Status(StatusReport { online, at, session, .. }) => {
                if !rec.status(*online, *at, *session) {
                    outcome.stale_wills += 1;
                    continue;
                }
                events.push(LiveEvent::Status {
                    seq: 0,
                    device: device.to_owned(),
                    online: *online,
                    at: *at,
                    session: *session,
                });
            }
            Report::Attributes(AttributesReport { values, at, .. }) => {
                let (changed, kinds) = attributes::merge(&mut rec.attributes, values, *at);
                if !changed.is_empty() {
                    let values = changed.into_iter().collect();
                    events.push(LiveEvent::Attributes { seq: 0, device: device.to_owned(), at: *at, values });
                }
                for kind in kinds {
                    let event = DeviceEvent { device: device.to_owned(), at: *at, kind };
                    events.push(LiveEvent::Event { seq: 0, event });
                }
            }
            Report::Connection(_) => {}
        }
    }
    if !records.is_empty() {
        records::write_reported(tx, &records).await?;
    }
    log(tx, events, outcome).await?;
    if !logged.is_empty() {
        outcome.connections.extend(connections::record_all(tx, &logged).await?);
    }
    Ok(())
}

impl PgStore {
    /// Stores reports with no readings, in a transaction of their own, durably when this
    /// answers ([`commit_reports`]; a commit with readings writes them in its transaction).
    pub async fn commit_reports(&self, reports: &[Report]) -> Result<CommitOutcome, PgError> {
        let mut outcome = CommitOutcome::default();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        commit_reports(&tx, reports, &mut outcome).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// What happened to one device lately, newest first: its events, current to change
    /// `last_seq`, and its connections (whether the server logs connections at all, the server
    /// says: it knows its broker).
    pub async fn device_log(&self, id: &str) -> Result<telemetry::source::DeviceLog, PgError> {
        let mut client = self.pool.get().await?;
        let tx = records::snapshot(&mut client).await?;
        let events = device_events::of(&tx, id).await?;
        let connections = connections::of(&tx, id).await?;
        let last_seq = records::last_seq(&tx).await?;
        tx.commit().await?;
        Ok(telemetry::source::DeviceLog { last_seq, events, connections, connections_logged: false })
    }
}
