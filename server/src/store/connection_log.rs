//! Each device's connection log, the latest [`MAX_LOGGED`] connections per device (when each
//! began and ended and why, address, protocol), written with the commit of the reports the
//! embedded broker makes of them. The connections still open are listed apart, so a start can
//! close the ones a crash or a stop left open without reading the whole log.

use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};
use telemetry::Millis;
use telemetry::connections::{self, Connection, Ended, MAX_LOGGED};

use super::api::{ConnectionChange, ConnectionReport};
use super::error::StoreError;
use super::maps::FastSet;

/// (device, connection id: the time it was made) → JSON [`Connection`].
pub(super) const CONNECTIONS: TableDefinition<(&str, i64), &[u8]> = TableDefinition::new("connections");
/// The connections not ended yet.
pub(super) const OPEN: TableDefinition<(&str, i64), ()> = TableDefinition::new("connections_open");
/// device → how many connections its log holds, so bounding it needs no scan.
pub(super) const COUNTS: TableDefinition<&str, u32> = TableDefinition::new("connection_counts");

fn read(
    table: &impl ReadableTable<(&'static str, i64), &'static [u8]>,
    device: &str,
    id: i64,
) -> Result<Option<Connection>, StoreError> {
    table
        .get((device, id))?
        .map(|json| {
            serde_json::from_slice(json.value())
                .map_err(|e| StoreError::Corrupt(format!("connection of {device}: {e}")))
        })
        .transpose()
}

fn write(
    table: &mut Table<(&str, i64), &[u8]>,
    device: &str,
    id: i64,
    c: &Connection,
) -> Result<(), StoreError> {
    let json = serde_json::to_vec(c).expect("connections serialise");
    table.insert((device, id), json.as_slice())?;
    Ok(())
}

/// The log's tables, opened once for a commit's reports.
pub(super) struct Tables<'tx> {
    log: Table<'tx, (&'static str, i64), &'static [u8]>,
    open: Table<'tx, (&'static str, i64), ()>,
    counts: Table<'tx, &'static str, u32>,
}

impl<'tx> Tables<'tx> {
    pub(super) fn open(tx: &'tx WriteTransaction) -> Result<Tables<'tx>, StoreError> {
        Ok(Tables {
            log: tx.open_table(CONNECTIONS)?,
            open: tx.open_table(OPEN)?,
            counts: tx.open_table(COUNTS)?,
        })
    }

    /// How many entries `device`'s log holds (counted once for a log kept before its count).
    fn held(&self, device: &str) -> Result<usize, StoreError> {
        if let Some(n) = self.counts.get(device)? {
            return Ok(n.value() as usize);
        }
        let mut n = 0;
        for entry in self.log.range((device, i64::MIN)..=(device, i64::MAX))? {
            entry?;
            n += 1;
        }
        Ok(n)
    }
}

/// A connection made at `id` from `address` (bounded) over MQTT `protocol`, not ended: what
/// both stores log for a report of its beginning (or of a refusal, before its end is set).
pub(super) fn begun(id: Millis, address: &Option<String>, protocol: u8) -> Connection {
    Connection {
        connected_at: id,
        ended_at: None,
        reason: None,
        address: address.as_deref().map(connections::bounded_address),
        protocol,
    }
}

/// Records one report; answers the connection as the log now holds it (`None`: no change, a
/// report of a connection already ended).
pub(super) fn record(t: &mut Tables, report: &ConnectionReport) -> Result<Option<Connection>, StoreError> {
    let (device, id, at) = (report.device.as_str(), report.id, report.at);
    let entry = |address: &Option<String>, protocol: u8| begun(id, address, protocol);
    let (c, new) = match &report.change {
        // Logged already: its end came first (a device that became known as it left).
        ConnectionChange::Connected { .. } | ConnectionChange::Refused { .. }
            if t.log.get((device, id))?.is_some() =>
        {
            return Ok(None);
        }
        ConnectionChange::Connected { address, protocol } => {
            t.open.insert((device, id), ())?;
            (entry(address, *protocol), true)
        }
        ConnectionChange::Ended { address, protocol, reason } => {
            t.open.remove((device, id))?;
            // Not logged when it began (the device was not known yet, say): logged whole now.
            let (mut c, new) = match read(&t.log, device, id)? {
                Some(c) => (c, false),
                None => (entry(address, *protocol), true),
            };
            if c.ended_at.is_some() {
                return Ok(None);
            }
            c.ended_at = Some(at.max(id));
            c.reason = Some(*reason);
            (c, new)
        }
        ConnectionChange::Refused { address, protocol } => {
            let mut c = entry(address, *protocol);
            (c.ended_at, c.reason) = (Some(id), Some(Ended::AuthFailure));
            (c, true)
        }
    };
    if !new {
        write(&mut t.log, device, id, &c)?;
        return Ok(Some(c));
    }
    let mut held = t.held(device)?;
    write(&mut t.log, device, id, &c)?;
    held += 1;
    // The oldest beyond the bound go.
    while held > MAX_LOGGED {
        let oldest = t.log.range((device, i64::MIN)..=(device, i64::MAX))?.next().transpose()?;
        let Some(oldest) = oldest.map(|(k, _)| k.value().1) else { break };
        t.log.remove((device, oldest))?;
        t.open.remove((device, oldest))?;
        held -= 1;
    }
    t.counts.insert(device, held as u32)?;
    Ok(Some(c))
}

/// The reports of a commit that are written, in order: a connection made and ended within the
/// commit is written once, as ended (its end carries all its beginning does), so a storm of
/// short connections costs half. The redb and PostgreSQL stores both write these.
pub(super) fn to_write<'a>(
    reports: &'a [&'a ConnectionReport],
) -> impl Iterator<Item = &'a ConnectionReport> {
    let ended: FastSet<(&str, Millis)> = reports
        .iter()
        .filter(|r| matches!(r.change, ConnectionChange::Ended { .. }))
        .map(|r| (r.device.as_str(), r.id))
        .collect();
    reports.iter().copied().filter(move |report| {
        let begun = matches!(report.change, ConnectionChange::Connected { .. });
        !(begun && ended.contains(&(report.device.as_str(), report.id)))
    })
}

/// Records a commit's reports, in order ([`to_write`]); answers the entries they changed.
pub(super) fn record_all(
    t: &mut Tables,
    reports: &[&ConnectionReport],
) -> Result<Vec<(String, Connection)>, StoreError> {
    let mut changed = Vec::new();
    for report in to_write(reports) {
        if let Some(c) = record(t, report)? {
            changed.push((report.device.as_str().to_owned(), c));
        }
    }
    Ok(changed)
}

/// `device`'s connections, newest first.
pub(super) fn of(
    table: &impl ReadableTable<(&'static str, i64), &'static [u8]>,
    device: &str,
) -> Result<Vec<Connection>, StoreError> {
    let mut out = Vec::new();
    for entry in table.range((device, i64::MIN)..=(device, i64::MAX))?.rev() {
        let (_, json) = entry?;
        out.push(
            serde_json::from_slice(json.value())
                .map_err(|e| StoreError::Corrupt(format!("connection of {device}: {e}")))?,
        );
    }
    Ok(out)
}

/// Ends every connection still open, as the server stopped: at `end(device)` if that came
/// later than the connection, else when it was made. Answers how many.
pub(super) fn end_open(tx: &WriteTransaction, end: impl Fn(&str) -> Millis) -> Result<u64, StoreError> {
    let (mut table, mut open) = (tx.open_table(CONNECTIONS)?, tx.open_table(OPEN)?);
    let left: Vec<(String, i64)> = open
        .iter()?
        .map(|entry| entry.map(|(k, _)| (k.value().0.to_owned(), k.value().1)))
        .collect::<Result<_, _>>()?;
    for (device, id) in &left {
        if let Some(mut c) = read(&table, device, *id)?
            && c.ended_at.is_none()
        {
            c.ended_at = Some(end(device).max(*id));
            c.reason = Some(Ended::ServerStopped);
            write(&mut table, device, *id, &c)?;
        }
        open.remove((device.as_str(), *id))?;
    }
    Ok(left.len() as u64)
}

/// Deletes `device`'s log.
pub(super) fn delete(tx: &WriteTransaction, device: &str) -> Result<(), StoreError> {
    let range = (device, i64::MIN)..=(device, i64::MAX);
    tx.open_table(CONNECTIONS)?.retain_in(range.clone(), |_, _| false)?;
    tx.open_table(OPEN)?.retain_in(range, |_, _| false)?;
    tx.open_table(COUNTS)?.remove(device)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, ReadableTableMetadata};
    use telemetry::DeviceId;

    fn report(device: &str, id: i64, at: i64, change: ConnectionChange) -> ConnectionReport {
        ConnectionReport { device: DeviceId::try_from(device).unwrap(), id, at, change }
    }

    fn connected() -> ConnectionChange {
        ConnectionChange::Connected { address: Some("10.0.0.7:5100".into()), protocol: 4 }
    }

    fn ended(reason: Ended) -> ConnectionChange {
        ConnectionChange::Ended { address: Some("10.0.0.7:5100".into()), protocol: 4, reason }
    }

    #[test]
    fn connections_are_logged_ended_bounded_and_closed_after_a_stop() {
        let db =
            redb::Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = Tables::open(&tx).unwrap();
            let mut record = |r: ConnectionReport| record(&mut t, &r).unwrap();
            assert!(record(report("d", 1_000, 1_000, connected())).is_some_and(|c| c.ended_at.is_none()));
            let first = record(report("d", 1_000, 9_000, ended(Ended::KeepaliveTimeout))).unwrap();
            assert_eq!((first.connected_at, first.ended_at, first.protocol), (1_000, Some(9_000), 4));
            // Ended twice (a late report): the first reason stands, and nothing changed.
            assert_eq!(record(report("d", 1_000, 9_500, ended(Ended::Other))), None);
            // A connection logged only when it ended (its beginning, told late, changes nothing);
            // a refused sign-in; one still open.
            record(report("d", 10_000, 20_000, ended(Ended::Clean)));
            assert_eq!(record(report("d", 10_000, 10_000, connected())), None);
            let refused = ConnectionChange::Refused { address: Some("x".repeat(500)), protocol: 5 };
            record(report("d", 21_000, 21_000, refused));
            record(report("d", 22_000, 22_000, connected()));
        }
        let log = of(&tx.open_table(CONNECTIONS).unwrap(), "d").unwrap();
        let seen: Vec<_> = log.iter().map(|c| (c.connected_at, c.ended_at, c.reason)).collect();
        assert_eq!(
            seen,
            [
                (22_000, None, None),
                (21_000, Some(21_000), Some(Ended::AuthFailure)),
                (10_000, Some(20_000), Some(Ended::Clean)),
                (1_000, Some(9_000), Some(Ended::KeepaliveTimeout)),
            ]
        );
        assert_eq!(log[1].address.as_ref().map(String::len), Some(telemetry::connections::MAX_ADDRESS));
        assert_eq!(log[0].address.as_deref(), Some("10.0.0.7:5100"));
        // Made and ended within one commit: written once, ended.
        {
            let mut t = Tables::open(&tx).unwrap();
            let (begun, gone) =
                (report("f", 5, 5, connected()), report("f", 5, 7, ended(Ended::RemoteClose)));
            let changed = record_all(&mut t, &[&begun, &gone]).unwrap();
            assert_eq!(changed.len(), 1);
            let (device, c) = &changed[0];
            assert_eq!((device.as_str(), c.ended_at, c.reason), ("f", Some(7), Some(Ended::RemoteClose)));
            assert_eq!(c.address.as_deref(), Some("10.0.0.7:5100"));
        }
        assert!(tx.open_table(OPEN).unwrap().get(("f", 5)).unwrap().is_none());
        // A stop leaves it open; the next start ends it at the last reading.
        assert_eq!(end_open(&tx, |_| 25_000).unwrap(), 1);
        assert_eq!(end_open(&tx, |_| 25_000).unwrap(), 0);
        let latest = of(&tx.open_table(CONNECTIONS).unwrap(), "d").unwrap().remove(0);
        assert_eq!((latest.ended_at, latest.reason), (Some(25_000), Some(Ended::ServerStopped)));
        // At most MAX_LOGGED a device, open ones included; a connection that began before
        // the latest MAX_LOGGED and ends now is not logged again.
        {
            let mut t = Tables::open(&tx).unwrap();
            for i in 0..MAX_LOGGED as i64 + 5 {
                record(&mut t, &report("e", 100_000 + i, 100_000 + i, connected())).unwrap();
            }
            record(&mut t, &report("e", 100_000, 200_000, ended(Ended::Clean))).unwrap();
        }
        let e = of(&tx.open_table(CONNECTIONS).unwrap(), "e").unwrap();
        assert_eq!(e.len(), MAX_LOGGED);
        assert_eq!(e.last().map(|c| c.connected_at), Some(100_005));
        assert_eq!(tx.open_table(OPEN).unwrap().len().unwrap(), MAX_LOGGED as u64);
        assert_eq!(tx.open_table(COUNTS).unwrap().get("e").unwrap().map(|n| n.value()), Some(100));
        // A log kept before its count was: counted once, then bounded alike.
        tx.open_table(COUNTS).unwrap().remove("e").unwrap();
        record(&mut Tables::open(&tx).unwrap(), &report("e", 300_000, 300_000, connected())).unwrap();
        assert_eq!(of(&tx.open_table(CONNECTIONS).unwrap(), "e").unwrap().len(), MAX_LOGGED);
        assert_eq!(tx.open_table(COUNTS).unwrap().get("e").unwrap().map(|n| n.value()), Some(100));
        delete(&tx, "e").unwrap();
        assert!(tx.open_table(COUNTS).unwrap().get("e").unwrap().is_none());
        assert!(of(&tx.open_table(CONNECTIONS).unwrap(), "e").unwrap().is_empty());
        assert_eq!(tx.open_table(OPEN).unwrap().len().unwrap(), 0);
        tx.commit().unwrap();
        let rx = db.begin_read().unwrap();
        assert_eq!(of(&rx.open_table(CONNECTIONS).unwrap(), "d").unwrap().len(), 4);
    }
}
