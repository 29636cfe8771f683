//! Readings: a commit (validate, store, number the changes, all in one transaction: readings,
//! statuses, attributes, the device events they make and the retained messages), sealing the
//! head into chunks and rollups, pruning each level past its own horizon, and the read side:
//! history, raw points, the change log, a device's events.

use telemetry::attributes::{self, DeviceEvent, UPTIME_METRICS};
use telemetry::history::{LocalDays, bucket_width, day_edges};
use telemetry::{Current, DeviceSummary, History, LiveEvent, Millis, SourceError, TelemetrySource};

use super::super::api::{AttributesReport, CommitOutcome, Incoming, Pruned, Report, StatusReport, Store};
use super::super::change_log::{self, CHANGES};
use super::super::chunks::{self, CHUNKS};
use super::super::connection_log::{self, CONNECTIONS};
use super::super::device_events::{self, DEVICE_EVENTS};
use super::super::error::StoreError;
use super::super::head::{self, HEAD, Head};
use super::super::maps::{FastMap, FastSet};
use super::super::registry::{DeviceRecord, META, Registry, counter};
use super::super::retained::RetainedChange;
use super::super::retention::{self, Horizons};
use super::super::rollup;
use super::schema::{LAST_SEQ, NEXT_SERIES, SERIES, checkpoint, last_seq};
use super::{RedbStore, answer};

/// `device`'s record as this commit changes it, starting from the registry's.
fn record<'a>(
    records: &'a mut FastMap<String, DeviceRecord>,
    registry: &Registry,
    device: &str,
) -> &'a mut DeviceRecord {
    // Looked up before inserting: no key allocated for a device already in this commit.
    if !records.contains_key(device) {
        records.insert(device.to_owned(), registry.get(device).cloned().unwrap_or_default());
    }
    records.get_mut(device).expect("just inserted")
}

impl Store for RedbStore {
    fn commit_retaining(
        &self,
        messages: &[Incoming],
        reports: &[Report],
        alarm_changes: &crate::alarms::engine::Changes,
        retained: &[RetainedChange],
    ) -> Result<CommitOutcome, StoreError> {
        let _writer = self.writer();
        let mut outcome = CommitOutcome::default();
        let mut new_series: Vec<((String, String), u32)> = Vec::new();
        // First: after a reopen it reloads what `mem` holds.
        let tx = self.begin_write()?;
        let mem = self.mem();
        let mut added: Vec<head::Reading> = Vec::new();
        // (series, time) of this commit's new readings: a message repeated within one commit.
        let mut adding: FastSet<(u32, Millis)> = FastSet::default();
        let mut records: FastMap<String, DeviceRecord> = FastMap::default();
        // Device events this commit makes, with their change numbers.
        let mut device_events: Vec<(u64, DeviceEvent)> = Vec::new();
        {
            let mut points = tx.open_table(HEAD)?;
            let sealed_chunks = tx.open_table(CHUNKS)?;
            let mut series = tx.open_table(SERIES)?;
            let mut meta = tx.open_table(META)?;
            let mut changes = tx.open_table(CHANGES)?;
            let mut next_series = counter(&meta, NEXT_SERIES)?;
            let mut seq = counter(&meta, LAST_SEQ)?;
            let first_seq = seq + 1;
            for Incoming { message, received } in messages {
                let device = message.device.as_str();
                let rec = record(&mut records, &mem.devices, device);
                let mut fresh = false;
                for (metric, value) in &message.values {
                    let sid = match mem.series.get(device, metric).or_else(|| {
                        new_series.iter().find(|((d, m), _)| d == device && m == metric).map(|(_, id)| *id)
                    }) {
                        Some(id) => id,
                        None => {
                            let id = u32::try_from(next_series).expect("fewer than 2^32 series");
                            next_series += 1;
                            series.insert((device, metric.as_str()), id)?;
                            new_series.push(((device.to_owned(), metric.clone()), id));
                            id
                        }
                    };
                    let stored = mem.head.contains(sid, message.ts)
                        || mem.sealed.get(&sid).is_some_and(|end| message.ts <= *end)
                            && chunks::sealed_at(&sealed_chunks, sid, message.ts)?;
                    if !stored && adding.insert((sid, message.ts)) {
                        added.push((sid, message.ts, *value));
                        outcome.stored += 1;
                        fresh = true;
                    } else {
                        outcome.duplicates += 1;
                    }
                }
                // Its uptime went down: a reboot (told before the reading updates the latest).
                let reboot = UPTIME_METRICS.iter().find_map(|name| {
                    let (_, uptime) = message.values.iter().find(|(m, _)| m == name)?;
                    attributes::reboot(rec.metrics.get(*name).copied(), *uptime, message.ts)
                });
                rec.saw(message.ts, *received, &message.values);
                if fresh {
                    rec.arrived(message.ts, *received);
                    rec.message_count += 1;
                    outcome.fresh_messages += 1;
                    seq += 1;
                    rec.seq = seq;
                    outcome.events.push(LiveEvent::Reading {
                        seq,
                        device: device.to_owned(),
                        ts: message.ts,
                        received: *received,
                        values: message.values.iter().cloned().collect(),
                    });
                    if let Some(kind) = reboot {
                        seq += 1;
                        device_events
                            .push((seq, DeviceEvent { device: device.to_owned(), at: *received, kind }));
                    }
                }
            }
            let mut connections = Vec::new();
            for report in reports {
                let device = report.device().as_str();
                // The connection log is no change to the device's record (nor numbered), and
                // only a device the store knows has one (any client id may connect to an open
                // broker; a deleted device's last connection may end after it went).
                if let Report::Connection(connection) = report {
                    if records.contains_key(device) || mem.devices.get(device).is_some() {
                        connections.push(connection);
                    }
                    continue;
                }
                let rec = record(&mut records, &mem.devices, device);
                match report {
                    Report::Status(StatusReport { online, at, session, .. }) => {
                        if !rec.status(*online, *at, *session) {
                            outcome.stale_wills += 1;
                            continue;
                        }
                        seq += 1;
                        rec.seq = seq;
                        outcome.events.push(LiveEvent::Status {
                            seq,
                            device: device.to_owned(),
                            online: *online,
                            at: *at,
                            session: *session,
                        });
                    }
                    Report::Attributes(AttributesReport { values, at, .. }) => {
                        let (changed, kinds) = attributes::merge(&mut rec.attributes, values, *at);
                        if !changed.is_empty() {
                            seq += 1;
                            rec.seq = seq;
                            let values = changed.into_iter().collect();
                            outcome.events.push(LiveEvent::Attributes {
                                seq,
                                device: device.to_owned(),
                                at: *at,
                                values,
                            });
                        }
                        for kind in kinds {
                            seq += 1;
                            device_events
                                .push((seq, DeviceEvent { device: device.to_owned(), at: *at, kind }));
                        }
                    }
                    Report::Connection(_) => {}
                }
            }
            if !connections.is_empty() {
                let mut tables = connection_log::Tables::open(&tx)?;
                outcome.connections = connection_log::record_all(&mut tables, &connections)?;
            }
            // Device events in change order, after the reading or attributes that made them.
            device_events.sort_by_key(|(seq, _)| *seq);
            let mut kept = tx.open_table(DEVICE_EVENTS)?;
            for (seq, event) in device_events {
                device_events::append(&mut kept, seq, &event)?;
                let at = outcome.events.partition_point(|e| e.seq().is_some_and(|s| s < seq));
                outcome.events.insert(at, LiveEvent::Event { seq, event });
            }
            outcome.events.extend(super::alarms::write_changes(&tx, &mut meta, alarm_changes, &mut seq)?);
            outcome.wire = outcome
                .events
                .iter()
                .map(|e| serde_json::to_string(e).expect("live events serialise"))
                .collect();
            change_log::append(&mut changes, first_seq, &outcome.wire)?;
            head::append(&mut points, &mut meta, &added)?;
            meta.insert(NEXT_SERIES, next_series)?;
            meta.insert(LAST_SEQ, seq)?;
            super::retained::write(&tx, retained)?;
        }
        drop(mem);
        {
            let mut mem = self.mem_mut();
            tx.commit()?;
            for (sid, t, v) in added {
                mem.head.insert(sid, t, v);
            }
            for (id, rec) in records {
                mem.devices.put(id, rec);
            }
            mem.series.extend(new_series);
        }
        Ok(outcome)
    }

    fn end_connections(&self, at: Option<Millis>) -> Result<u64, StoreError> {
        let _writer = self.writer();
        let tx = self.begin_write()?;
        let ended = {
            let mem = self.mem();
            connection_log::end_open(&tx, |device| {
                at.unwrap_or_else(|| mem.devices.get(device).map_or(0, |r| r.last_seen))
            })?
        };
        tx.commit()?;
        Ok(ended)
    }

    fn prune(&self, horizons: Horizons) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        let _writer = self.writer();
        let tx = self.begin_write()?;
        let ids: Vec<u32> = self.mem().series.ids().collect();
        if let Some(before) = horizons.readings {
            // Rollups may outlive the readings: unsealed ones (late arrivals) are rolled up
            // before they go, as sealing would have.
            let mut rollups = rollup::Pending::default();
            for (sid, points) in self.mem().head.before(before) {
                for (t, v) in points {
                    rollups.add(sid, t, v);
                }
            }
            rollups.write(&tx)?;
            pruned.readings = Head::delete(&tx, None, before)?;
            for &sid in &ids {
                pruned.readings += chunks::prune(&tx, sid, before)?;
            }
        }
        let rollup_horizons = [horizons.minute_rollups, horizons.hour_rollups];
        if rollup_horizons.iter().any(Option::is_some) {
            for sid in ids {
                let [minutes, hours] = rollup::prune(&tx, sid, rollup_horizons)?;
                pruned.minute_rollups += minutes;
                pruned.hour_rollups += hours;
            }
        }
        retention::record(&tx, horizons)?;
        {
            let mut mem = self.mem_mut();
            tx.commit()?;
            if let Some(before) = horizons.readings {
                mem.head.drop_before(before);
            }
        }
        if let Some(before) = horizons.readings {
            let tx = self.begin_write()?;
            {
                let checkpoint = checkpoint(&tx)?;
                pruned.changes = change_log::prune(&mut tx.open_table(CHANGES)?, checkpoint, before)?;
            }
            tx.commit()?;
        }
        Ok(pruned)
    }

    fn seal(&self, before: Millis) -> Result<u64, StoreError> {
        let _writer = self.writer();
        let (due, dirty) = {
            let mem = self.mem();
            (mem.head.due(before), mem.devices.is_dirty())
        };
        if due.is_empty() && !dirty {
            return Ok(0);
        }
        let tx = self.begin_write()?;
        let (mut moved, mut ends, mut rollups) = (0, Vec::new(), rollup::Pending::default());
        for sid in due {
            // A series at a time (the head does not change while the writer lock is held):
            // copying every due reading first held a seal interval of the whole fleet's
            // readings twice (60 × 5,000 series × 16 bytes, 4.8 MB, with 1,000 devices × 5
            // metrics at 1 Hz).
            let points = self.mem().head.before_of(sid, before);
            moved += points.len() as u64;
            for (t, v) in &points {
                rollups.add(sid, *t, *v);
            }
            ends.extend(chunks::seal(&tx, sid, points)?.map(|end| (sid, end)));
        }
        rollups.write(&tx)?;
        {
            let mem = self.mem();
            Head::delete(&tx, None, before)?;
            mem.devices.checkpoint(&tx, last_seq(&tx)?)?;
        }
        let mut mem = self.mem_mut();
        tx.commit()?;
        mem.head.drop_before(before);
        mem.devices.clean();
        mem.sealed.extend(ends);
        Ok(moved)
    }

    fn trim_changes(&self, keep: u64) -> Result<u64, StoreError> {
        let _writer = self.writer();
        let tx = self.begin_write()?;
        let upto = last_seq(&tx)?.saturating_sub(keep).min(checkpoint(&tx)?);
        let trimmed = change_log::trim(&mut tx.open_table(CHANGES)?, upto)?;
        tx.commit()?;
        Ok(trimmed)
    }

    fn known_devices(&self) -> Vec<DeviceSummary> {
        self.mem().devices.iter().map(|(id, r)| r.summary(id)).collect()
    }

    fn healthy(&self) -> bool {
        self.db.read().map(|rx| rx.open_table(META).is_ok()).unwrap_or(false)
    }
}

impl RedbStore {
    /// What each rollup level takes on disk, finest first (for `bench storage`).
    pub fn rollup_sizes(&self) -> Result<[rollup::LevelSize; rollup::LEVELS], StoreError> {
        rollup::sizes(&self.db.read()?)
    }
}

/// The latest change number, as of `rx`.
fn read_last_seq(rx: &redb::ReadTransaction) -> Result<u64, StoreError> {
    counter(&rx.open_table(META)?, LAST_SEQ)
}

impl TelemetrySource for RedbStore {
    fn devices(&self) -> Result<Current<Vec<DeviceSummary>>, SourceError> {
        answer(|| {
            let mem = self.mem();
            let rx = self.db.read()?;
            let mut value: Vec<DeviceSummary> =
                mem.devices.iter().filter(|(_, r)| r.registered()).map(|(id, r)| r.summary(id)).collect();
            drop(mem);
            value.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(Current { value, last_seq: read_last_seq(&rx)? })
        })
    }

    fn device(&self, id: &str) -> Result<Current<Option<DeviceSummary>>, SourceError> {
        answer(|| {
            let mem = self.mem();
            let rx = self.db.read()?;
            let value = mem.devices.get(id).filter(|r| r.registered()).map(|r| r.summary(id));
            drop(mem);
            Ok(Current { value, last_seq: read_last_seq(&rx)? })
        })
    }

    /// Buckets of a minute or more are read from rollups, so they outlive the raw readings.
    /// Buckets finer than the finest level left at the range's start are widened to its period
    /// (a minute where readings were pruned, an hour where minute rollups were too). Local days
    /// are read from hour rollups, and where a zone's midnight is not on a whole hour, the
    /// rest from minute rollups and readings; where those are gone, the day is cut at the
    /// whole hour (or minute) before its midnight instead (`edges` say where).
    fn history_in(
        &self,
        device: &str,
        metric: &str,
        from: Millis,
        to: Millis,
        max_points: usize,
        days: Option<&dyn LocalDays>,
    ) -> Result<History, SourceError> {
        let (from, to) = (from.min(to), from.max(to));
        let local = days.and_then(|d| Some((d.name().to_owned(), day_edges(from, to, max_points, d)?)));
        let width = bucket_width(from, to, max_points);
        let mut history = History {
            device: device.to_owned(),
            metric: metric.to_owned(),
            from,
            to,
            bucket_ms: width,
            buckets: Vec::new(),
            last_seq: 0,
            edges: Vec::new(),
            zone: None,
        };
        answer(|| {
            let sid = self.series_id(device, metric);
            let (rx, head) = self.snapshot(sid, from, to)?;
            history.last_seq = read_last_seq(&rx)?;
            let pruned = retention::pruned(&rx)?;
            match local {
                Some((zone, (width, edges))) => {
                    history.bucket_ms = width;
                    history.edges = pruned.snap(&edges);
                    history.zone = Some(zone);
                    if let Some(sid) = sid {
                        history.buckets = rollup::buckets_between(&rx, &head, sid, from, to, &history.edges)?;
                    }
                }
                None => {
                    history.bucket_ms = pruned.width_at(from, width);
                    if let Some(sid) = sid {
                        history.buckets = rollup::buckets(&rx, &head, sid, from, to, history.bucket_ms)?;
                    }
                }
            }
            Ok(history)
        })
    }

    fn points(
        &self,
        device: &str,
        metric: &str,
        from: Millis,
        to: Millis,
        after: Option<Millis>,
        limit: usize,
    ) -> Result<Vec<(Millis, f64)>, SourceError> {
        let Some(sid) = self.series_id(device, metric) else { return Ok(Vec::new()) };
        let start = after.map_or(from, |a| a.saturating_add(1).max(from));
        if start > to {
            return Ok(Vec::new());
        }
        answer(|| {
            let (rx, head) = self.snapshot(Some(sid), start, to)?;
            let sealed = rx.open_table(CHUNKS)?;
            let mut out = Vec::with_capacity(limit.min(10_000));
            chunks::scan(&sealed, &head, sid, start, to, |t, v| {
                out.push((t, v));
                out.len() < limit
            })?;
            Ok(out)
        })
    }

    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<LiveEvent>, SourceError> {
        answer(|| {
            let rx = self.db.read()?;
            let changes = rx.open_table(CHANGES)?;
            let mut out = Vec::new();
            if limit > 0 {
                change_log::after(&changes, after, |event| {
                    out.push(event);
                    out.len() < limit
                })?;
            }
            Ok(out)
        })
    }

    fn last_seq(&self) -> Result<u64, SourceError> {
        answer(|| read_last_seq(&self.db.read()?))
    }

    fn device_log(&self, id: &str) -> Result<telemetry::source::DeviceLog, SourceError> {
        answer(|| {
            let rx = self.db.read()?;
            let events = device_events::of(&rx.open_table(DEVICE_EVENTS)?, id)?;
            let connections = connection_log::of(&rx.open_table(CONNECTIONS)?, id)?;
            // Whether connections are logged at all, the server says (it knows its broker).
            let last_seq = read_last_seq(&rx)?;
            Ok(telemetry::source::DeviceLog { last_seq, events, connections, connections_logged: false })
        })
    }

    fn availability(
        &self,
        ids: &[String],
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Option<f64>>, SourceError> {
        answer(|| {
            let rx = self.db.read()?;
            let table = rx.open_table(CONNECTIONS)?;
            ids.iter()
                .map(|id| {
                    let log = connection_log::of(&table, id)?;
                    Ok(telemetry::connections::availability(&log, from, to))
                })
                .collect()
        })
    }
}
