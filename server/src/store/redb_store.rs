//! The redb store. Series ids are assigned per (device, metric) on first sight; a series'
//! readings are kept in the [`head`](super::head) until sealed into compressed
//! [`chunks`](super::chunks), with [`rollups`](super::rollup) per minute and hour for long
//! ranges. The device [`registry`](super::registry) is kept in memory and checkpointed.

use std::path::Path;
use std::sync::{Mutex, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use telemetry::dashboard::{Dashboard, MAX_DASHBOARDS, new_id};
use telemetry::history::bucket_width;
use telemetry::{
    Current, DashboardStore, DeviceAdmin, DeviceSummary, History, LiveEvent, Millis, SaveError, SourceError,
    TelemetrySource,
};

use super::change_log::{self, CHANGES};
use super::chunks::{self, CHUNKS, SEALED};
use super::handle::{Handle, Write};
use super::head::{self, HEAD, Head};
use super::registry::{CHECKPOINT, DEVICES, DeviceRecord, META, Registry};
use super::rollup;
use super::series_ids::SeriesIds;
use super::{CommitOutcome, Incoming, Pruned, StatusReport, Store, StoreError};

/// (device, metric) → series id.
const SERIES: TableDefinition<(&str, &str), u32> = TableDefinition::new("series");
/// dashboard id → JSON [`Dashboard`].
const DASHBOARDS: TableDefinition<&str, &[u8]> = TableDefinition::new("dashboards");

/// 1: a row per reading, keyed (series, time); 2: head, chunks and rollups (a version 1
/// file's readings are sealed into chunks and rollups on first open); 3: the head written a
/// batch per commit (a version 2 file's head rows are moved into batches on first open).
const SCHEMA_VERSION: u64 = 3;
/// The version 1 readings table.
const POINTS_V1: TableDefinition<(u32, i64), f64> = TableDefinition::new("points");

/// Page cache when none is configured: `storage.cache_mb`'s default.
pub const DEFAULT_CACHE_BYTES: usize = 8 << 20;

/// What the store keeps in memory.
struct Memory {
    /// (device, metric) → series id, as in the SERIES table.
    series: SeriesIds,
    head: Head,
    devices: Registry,
    /// series id → latest sealed reading time: readings at or before it may be in a chunk.
    sealed: super::FastMap<u32, i64>,
}

pub struct RedbStore {
    db: Handle,
    /// Changed only with `write` held and around the commit whose changes it mirrors, so a
    /// reader taking it with its read transaction sees both alike.
    mem: RwLock<Memory>,
    write: Mutex<()>,
}

fn meta_flag(tx: &redb::WriteTransaction, key: &str) -> Result<bool, StoreError> {
    Ok(tx.open_table(META)?.get(key)?.is_some())
}

impl RedbStore {
    /// Opens (or creates) the database file, creating its folder if needed. After a crash redb
    /// repairs the file here, before anything is served.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens with at most `cache_bytes` of pages cached in memory (redb's own default, 1 GiB,
    /// would let the server's memory grow with the database).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<RedbStore, StoreError> {
        let create = |at: &Path, source| StoreError::CreateDir { path: at.display().to_string(), source };
        if let Some(dir) = path.parent() {
            crate::files::private_dir(dir).map_err(|e| create(dir, e))?;
        }
        crate::files::private_file(path).map_err(|e| create(path, e))?;
        let db = Database::builder().set_cache_size(cache_bytes).create(path)?;
        Self::init(db, Some(path.to_owned()), cache_bytes)
    }

    /// An in-memory store, for tests.
    pub fn in_memory() -> Result<RedbStore, StoreError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::init(db, None, 0)
    }

    fn init(
        db: Database,
        path: Option<std::path::PathBuf>,
        cache_bytes: usize,
    ) -> Result<RedbStore, StoreError> {
        let tx = db.begin_write()?;
        {
            tx.open_table(HEAD)?;
            tx.open_table(CHUNKS)?;
            tx.open_table(SEALED)?;
            rollup::init(&tx)?;
            let version = tx.open_table(META)?.get("schema_version")?.map(|v| v.value());
            match version {
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::Corrupt(format!(
                        "the database was written by a newer version of the dashboard (schema {v}, this one reads up to {SCHEMA_VERSION})"
                    )));
                }
                Some(1) => Self::migrate_v1(&tx)?,
                Some(2) => head::migrate_v2(&tx)?,
                _ => {}
            }
            tx.open_table(DEVICES)?;
            tx.open_table(SERIES)?;
            tx.open_table(CHANGES)?;
            let mut dashboards = tx.open_table(DASHBOARDS)?;
            if dashboards.is_empty()? && !meta_flag(&tx, "dashboards_seeded")? {
                let starter = Dashboard::starter();
                let bytes = serde_json::to_vec(&starter).expect("dashboards serialise");
                dashboards.insert(starter.id.as_str(), bytes.as_slice())?;
            }
            let mut meta = tx.open_table(META)?;
            meta.insert("schema_version", SCHEMA_VERSION)?;
            // Files from before checkpoints stored every change in the device records.
            if meta.get(CHECKPOINT)?.is_none() {
                let last = meta.get("last_seq")?.map_or(0, |v| v.value());
                meta.insert(CHECKPOINT, last)?;
            }
            // The starter dashboard is made once; deleting it is the user's choice.
            meta.insert("dashboards_seeded", 1)?;
        }
        tx.commit()?;
        let mem = Self::load(&db.begin_read()?)?;
        Ok(RedbStore { db: Handle::new(db, path, cache_bytes), mem: RwLock::new(mem), write: Mutex::new(()) })
    }

    /// What the store keeps in memory, as of `rx`.
    fn load(rx: &redb::ReadTransaction) -> Result<Memory, StoreError> {
        let (mut series, mut sealed) = (SeriesIds::default(), super::FastMap::default());
        for entry in rx.open_table(SERIES)?.iter()? {
            let (k, v) = entry?;
            let (device, metric) = k.value();
            series.insert(device.to_owned(), metric.to_owned(), v.value());
        }
        for entry in rx.open_table(SEALED)?.iter()? {
            let (k, v) = entry?;
            sealed.insert(k.value(), v.value());
        }
        Ok(Memory { series, head: Head::load(rx)?, devices: Registry::load(rx)?, sealed })
    }

    /// Begins a write (the writer lock held). After the file was reopened, what memory holds
    /// is loaded again from it, as it stands after its last commit.
    fn begin_write(&self) -> Result<Write<'_>, StoreError> {
        let (tx, reopened) = self.db.write()?;
        if reopened {
            *self.mem_mut() = Self::load(&self.db.read()?)?;
        }
        Ok(tx)
    }

    /// Runs redb's integrity check (and repair), as after a crash.
    pub fn check_integrity(&self) -> Result<bool, StoreError> {
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        self.db.check_integrity()
    }

    /// Seals a version 1 file's readings, series by series, into chunks and rollups.
    fn migrate_v1(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
        let mut run: Vec<(Millis, f64)> = Vec::new();
        let mut current = None;
        let flush = |sid: Option<u32>, run: &mut Vec<(Millis, f64)>| -> Result<(), StoreError> {
            if let Some(sid) = sid {
                let mut rollups = rollup::Pending::default();
                for (t, v) in run.iter() {
                    rollups.add(sid, *t, *v);
                }
                chunks::seal(tx, sid, std::mem::take(run))?;
                rollups.write(tx)?;
            }
            Ok(())
        };
        {
            let old = tx.open_table(POINTS_V1)?;
            for entry in old.iter()? {
                let (k, v) = entry?;
                let (sid, t) = k.value();
                if current != Some(sid) {
                    flush(current, &mut run)?;
                    current = Some(sid);
                }
                run.push((t, v.value()));
            }
        }
        flush(current, &mut run)?;
        tx.delete_table(POINTS_V1)?;
        Ok(())
    }

    /// A read transaction and, as of it, `sid`'s head readings in `[from, to]`.
    fn snapshot(
        &self,
        sid: Option<u32>,
        from: Millis,
        to: Millis,
    ) -> Result<(redb::ReadTransaction, Vec<(Millis, f64)>), StoreError> {
        let mem = self.mem();
        let rx = self.db.read()?;
        Ok((rx, sid.map(|sid| mem.head.range(sid, from, to)).unwrap_or_default()))
    }

    fn mem(&self) -> std::sync::RwLockReadGuard<'_, Memory> {
        self.mem.read().unwrap_or_else(|e| e.into_inner())
    }

    fn mem_mut(&self) -> std::sync::RwLockWriteGuard<'_, Memory> {
        self.mem.write().unwrap_or_else(|e| e.into_inner())
    }

    fn series_id(&self, device: &str, metric: &str) -> Option<u32> {
        self.mem().series.get(device, metric)
    }

    /// Number of stored points, across all series.
    pub fn point_count(&self) -> Result<u64, StoreError> {
        let (head, rx) = {
            let mem = self.mem();
            (mem.head.len(), self.db.read()?)
        };
        Ok(head + chunks::sealed_count(&rx.open_table(CHUNKS)?)?)
    }

    /// Readings waiting in the head, not yet sealed into chunks.
    pub fn head_count(&self) -> u64 {
        self.mem().head.len()
    }

    /// Compacts the file, giving freed pages back to the file system (the server must be idle).
    pub fn compact(&mut self) -> Result<bool, StoreError> {
        self.db.compact()
    }

    fn read_last_seq(rx: &redb::ReadTransaction) -> Result<u64, SourceError> {
        let meta = rx.open_table(META).map_err(source_err)?;
        Ok(meta.get("last_seq").map_err(source_err)?.map(|v| v.value()).unwrap_or(0))
    }
}

fn last_seq(tx: &redb::WriteTransaction) -> Result<u64, StoreError> {
    Ok(tx.open_table(META)?.get("last_seq")?.map_or(0, |v| v.value()))
}

/// Every change up to this one is in the stored device records.
fn checkpoint(tx: &redb::WriteTransaction) -> Result<u64, StoreError> {
    Ok(tx.open_table(META)?.get(CHECKPOINT)?.map_or(0, |v| v.value()))
}

/// `device`'s record as this commit changes it, starting from the registry's.
fn record<'a>(
    records: &'a mut super::FastMap<String, DeviceRecord>,
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
    fn commit(&self, messages: &[Incoming], statuses: &[StatusReport]) -> Result<CommitOutcome, StoreError> {
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut outcome = CommitOutcome::default();
        let mut new_series: Vec<((String, String), u32)> = Vec::new();
        // First: after a reopen it reloads what `mem` holds.
        let tx = self.begin_write()?;
        let mem = self.mem();
        let mut added: Vec<head::Reading> = Vec::new();
        // (series, time) of this commit's new readings: a message repeated within one commit.
        let mut adding: super::FastSet<(u32, Millis)> = super::FastSet::default();
        let mut records: super::FastMap<String, DeviceRecord> = super::FastMap::default();
        {
            let mut points = tx.open_table(HEAD)?;
            let sealed_chunks = tx.open_table(CHUNKS)?;
            let mut series = tx.open_table(SERIES)?;
            let mut meta = tx.open_table(META)?;
            let mut changes = tx.open_table(CHANGES)?;
            let mut next_series = meta.get("next_series_id")?.map(|v| v.value()).unwrap_or(0);
            let mut seq = meta.get("last_seq")?.map(|v| v.value()).unwrap_or(0);
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
                rec.saw(message.ts, *received, &message.values);
                if fresh {
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
                }
            }
            for StatusReport { device, online, at } in statuses {
                let device = device.as_str();
                let rec = record(&mut records, &mem.devices, device);
                rec.status(*online, *at);
                seq += 1;
                rec.seq = seq;
                outcome.events.push(LiveEvent::Status {
                    seq,
                    device: device.to_owned(),
                    online: *online,
                    at: *at,
                });
            }
            outcome.wire = outcome
                .events
                .iter()
                .map(|e| serde_json::to_string(e).expect("live events serialise"))
                .collect();
            change_log::append(&mut changes, first_seq, &outcome.wire)?;
            head::append(&mut points, &mut meta, &added)?;
            meta.insert("next_series_id", next_series)?;
            meta.insert("last_seq", seq)?;
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

    fn prune(&self, before: Millis) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let tx = self.begin_write()?;
        let ids: Vec<u32> = self.mem().series.ids().collect();
        pruned.readings = Head::delete(&tx, None, before)?;
        for sid in ids {
            pruned.readings += chunks::prune(&tx, sid, before)?;
            rollup::prune(&tx, sid, before)?;
        }
        {
            let mut mem = self.mem_mut();
            tx.commit()?;
            mem.head.drop_before(before);
        }
        let tx = self.begin_write()?;
        {
            let checkpoint = checkpoint(&tx)?;
            pruned.changes = change_log::prune(&mut tx.open_table(CHANGES)?, checkpoint, before)?;
        }
        tx.commit()?;
        Ok(pruned)
    }

    fn seal(&self, before: Millis) -> Result<u64, StoreError> {
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let (due, dirty) = {
            let mem = self.mem();
            (mem.head.before(before), mem.devices.is_dirty())
        };
        if due.is_empty() && !dirty {
            return Ok(0);
        }
        let tx = self.begin_write()?;
        let (mut moved, mut ends, mut rollups) = (0, Vec::new(), rollup::Pending::default());
        for (sid, points) in due {
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
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
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

fn source_err(e: impl Into<StoreError>) -> SourceError {
    let e = e.into();
    tracing::error!(error = %e, "storage read failed");
    SourceError("storage read failed".into())
}

impl TelemetrySource for RedbStore {
    fn devices(&self) -> Result<Current<Vec<DeviceSummary>>, SourceError> {
        let mem = self.mem();
        let rx = self.db.read().map_err(source_err)?;
        let mut value: Vec<DeviceSummary> =
            mem.devices.iter().filter(|(_, r)| r.registered()).map(|(id, r)| r.summary(id)).collect();
        drop(mem);
        value.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Current { value, last_seq: Self::read_last_seq(&rx)? })
    }

    fn device(&self, id: &str) -> Result<Current<Option<DeviceSummary>>, SourceError> {
        let mem = self.mem();
        let rx = self.db.read().map_err(source_err)?;
        let value = mem.devices.get(id).filter(|r| r.registered()).map(|r| r.summary(id));
        drop(mem);
        Ok(Current { value, last_seq: Self::read_last_seq(&rx)? })
    }

    fn history(
        &self,
        device: &str,
        metric: &str,
        from: Millis,
        to: Millis,
        max_points: usize,
    ) -> Result<History, SourceError> {
        let (from, to) = (from.min(to), from.max(to));
        let width = bucket_width(from, to, max_points);
        let mut history = History {
            device: device.to_owned(),
            metric: metric.to_owned(),
            from,
            to,
            bucket_ms: width,
            buckets: Vec::new(),
            last_seq: 0,
        };
        let sid = self.series_id(device, metric);
        let (rx, head) = self.snapshot(sid, from, to).map_err(source_err)?;
        history.last_seq = Self::read_last_seq(&rx)?;
        if let Some(sid) = sid {
            history.buckets = rollup::buckets(&rx, &head, sid, from, to, width).map_err(source_err)?;
        }
        Ok(history)
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
        let (rx, head) = self.snapshot(Some(sid), start, to).map_err(source_err)?;
        let sealed = rx.open_table(CHUNKS).map_err(source_err)?;
        let mut out = Vec::with_capacity(limit.min(10_000));
        chunks::scan(&sealed, &head, sid, start, to, |t, v| {
            out.push((t, v));
            out.len() < limit
        })
        .map_err(source_err)?;
        Ok(out)
    }

    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<LiveEvent>, SourceError> {
        let rx = self.db.read().map_err(source_err)?;
        let changes = rx.open_table(CHANGES).map_err(source_err)?;
        let mut out = Vec::new();
        if limit > 0 {
            change_log::after(&changes, after, |event| {
                out.push(event);
                out.len() < limit
            })
            .map_err(|e| {
                tracing::error!(error = %e, "reading the change log failed");
                SourceError("storage read failed".into())
            })?;
        }
        Ok(out)
    }

    fn last_seq(&self) -> Result<u64, SourceError> {
        let rx = self.db.read().map_err(source_err)?;
        Self::read_last_seq(&rx)
    }
}

impl DeviceAdmin for RedbStore {
    fn set_device_meta(
        &self,
        id: &str,
        name: Option<String>,
        note: Option<String>,
    ) -> Result<bool, SourceError> {
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut rec) = self.mem().devices.get(id).filter(|r| r.registered()).cloned() else {
            return Ok(false);
        };
        rec.name = name;
        rec.note = note;
        let tx = self.begin_write().map_err(source_err)?;
        let bytes = serde_json::to_vec(&rec).expect("device records serialise");
        tx.open_table(DEVICES).map_err(source_err)?.insert(id, bytes.as_slice()).map_err(source_err)?;
        let mut mem = self.mem_mut();
        tx.commit().map_err(source_err)?;
        mem.devices.put(id.to_owned(), rec);
        Ok(true)
    }

    fn delete_device(&self, id: &str) -> Result<bool, SourceError> {
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let tx = self.begin_write().map_err(source_err)?;
        let gone: Vec<(String, u32)> = {
            let series = tx.open_table(SERIES).map_err(source_err)?;
            let mut found = Vec::new();
            for entry in series.range((id, "")..).map_err(source_err)? {
                let (k, v) = entry.map_err(source_err)?;
                let (device, metric) = k.value();
                if device != id {
                    break;
                }
                found.push((metric.to_owned(), v.value()));
            }
            found
        };
        let existed = {
            let mem = self.mem();
            let mut series = tx.open_table(SERIES).map_err(source_err)?;
            let sids: Vec<u32> = gone.iter().map(|(_, sid)| *sid).collect();
            Head::delete(&tx, Some(&sids), i64::MAX).map_err(source_err)?;
            for (metric, sid) in &gone {
                chunks::delete(&tx, *sid).map_err(source_err)?;
                rollup::delete(&tx, *sid).map_err(source_err)?;
                series.remove((id, metric.as_str())).map_err(source_err)?;
            }
            // A checkpoint first, so the change log is never replayed onto the deleted device.
            mem.devices.checkpoint(&tx, last_seq(&tx).map_err(source_err)?).map_err(source_err)?;
            tx.open_table(DEVICES).map_err(source_err)?.remove(id).map_err(source_err)?;
            mem.devices.get(id).is_some()
        };
        {
            let mut mem = self.mem_mut();
            tx.commit().map_err(source_err)?;
            for (metric, sid) in &gone {
                mem.head.drop_series(*sid);
                mem.sealed.remove(sid);
                mem.series.remove(id, metric);
            }
            mem.devices.remove(id);
            mem.devices.clean();
        }
        Ok(existed)
    }
}

impl DashboardStore for RedbStore {
    fn dashboards(&self) -> Result<Vec<Dashboard>, SourceError> {
        let rx = self.db.read().map_err(source_err)?;
        let table = rx.open_table(DASHBOARDS).map_err(source_err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(source_err)? {
            let (_, v) = entry.map_err(source_err)?;
            match serde_json::from_slice::<Dashboard>(v.value()) {
                Ok(d) => out.push(d),
                Err(e) => tracing::error!(error = %e, "unreadable dashboard skipped"),
            }
        }
        out.sort_by_key(|d| d.name.to_lowercase());
        Ok(out)
    }

    fn dashboard(&self, id: &str) -> Result<Option<Dashboard>, SourceError> {
        let rx = self.db.read().map_err(source_err)?;
        let table = rx.open_table(DASHBOARDS).map_err(source_err)?;
        Ok(table.get(id).map_err(source_err)?.and_then(|v| serde_json::from_slice(v.value()).ok()))
    }

    fn create_dashboard(&self, mut dashboard: Dashboard) -> Result<Dashboard, SaveError> {
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let tx = self.begin_write().map_err(source_err)?;
        let refused = {
            let mut table = tx.open_table(DASHBOARDS).map_err(source_err)?;
            if table.len().map_err(source_err)? >= MAX_DASHBOARDS as u64 {
                Some(SaveError::Full)
            } else {
                // Random suffixes: a taken one (about one in two billion) just draws again.
                dashboard.id = loop {
                    let id = new_id(&dashboard.name, &crate::random::base36(6));
                    if table.get(id.as_str()).map_err(source_err)?.is_none() {
                        break id;
                    }
                };
                dashboard.updated = chrono::Utc::now().timestamp_millis();
                let bytes = serde_json::to_vec(&dashboard).expect("dashboards serialise");
                table.insert(dashboard.id.as_str(), bytes.as_slice()).map_err(source_err)?;
                None
            }
        };
        // A refusal is no failure: the write is aborted, not abandoned, so the file is not reopened.
        if let Some(refusal) = refused {
            tx.abort().map_err(source_err)?;
            return Err(refusal);
        }
        tx.commit().map_err(source_err)?;
        Ok(dashboard)
    }

    fn save_dashboard(&self, mut dashboard: Dashboard) -> Result<Dashboard, SaveError> {
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let tx = self.begin_write().map_err(source_err)?;
        let refused = {
            let mut table = tx.open_table(DASHBOARDS).map_err(source_err)?;
            let stored = match table.get(dashboard.id.as_str()).map_err(source_err)? {
                Some(v) => Some(
                    serde_json::from_slice::<Dashboard>(v.value()).map(|d| d.updated).unwrap_or(i64::MIN),
                ),
                None => None,
            };
            match stored {
                None => Some(SaveError::NotFound),
                Some(stored) if stored != dashboard.updated => Some(SaveError::Stale),
                Some(stored) => {
                    // Always newer than the copy it replaces, even within one millisecond.
                    dashboard.updated = chrono::Utc::now().timestamp_millis().max(stored.saturating_add(1));
                    let bytes = serde_json::to_vec(&dashboard).expect("dashboards serialise");
                    table.insert(dashboard.id.as_str(), bytes.as_slice()).map_err(source_err)?;
                    None
                }
            }
        };
        if let Some(refusal) = refused {
            tx.abort().map_err(source_err)?;
            return Err(refusal);
        }
        tx.commit().map_err(source_err)?;
        Ok(dashboard)
    }

    fn delete_dashboard(&self, id: &str) -> Result<bool, SourceError> {
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let tx = self.begin_write().map_err(source_err)?;
        let existed =
            tx.open_table(DASHBOARDS).map_err(source_err)?.remove(id).map_err(source_err)?.is_some();
        tx.commit().map_err(source_err)?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::{DeviceId, DeviceStatus, Message, TimestampSource};

    fn msg(device: &str, ts: Millis, values: &[(&str, f64)]) -> Incoming {
        Incoming {
            message: Message {
                device: DeviceId::try_from(device).unwrap(),
                ts,
                ts_source: TimestampSource::Device,
                values: values.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect(),
                dropped: vec![],
            },
            received: ts + 10,
        }
    }

    #[test]
    fn stores_registers_and_reads_back() {
        let store = RedbStore::in_memory().unwrap();
        let out = store
            .commit(
                &[
                    msg("a", 1_000, &[("temperature", 20.0), ("humidity", 50.0)]),
                    msg("b", 1_500, &[("temperature", 30.0)]),
                ],
                &[],
            )
            .unwrap();
        assert_eq!((out.stored, out.duplicates, out.fresh_messages), (3, 0, 2));
        assert_eq!(out.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), [Some(1), Some(2)]);
        store.commit(&[msg("a", 2_000, &[("temperature", 21.0)])], &[]).unwrap();

        let devices = store.devices().unwrap().value;
        assert_eq!(devices.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let a = &devices[0];
        assert_eq!((a.first_seen, a.last_seen, a.message_count), (1_010, 2_010, 2));
        assert_eq!(a.metric("temperature").map(|m| (m.value, m.ts)), Some((21.0, 2_000)));
        assert_eq!(a.metric("humidity").map(|m| (m.value, m.ts)), Some((50.0, 1_000)));

        let h = store.history("a", "temperature", 0, 10_000, 100).unwrap();
        assert_eq!(h.buckets.iter().map(|b| b.avg).collect::<Vec<_>>(), [20.0, 21.0]);
        assert!(store.history("a", "nope", 0, 10_000, 100).unwrap().buckets.is_empty());
        assert!(store.history("zzz", "temperature", 0, 10_000, 100).unwrap().buckets.is_empty());
    }

    #[test]
    fn redelivery_is_stored_once() {
        let store = RedbStore::in_memory().unwrap();
        let m = msg("a", 1_000, &[("t", 1.0), ("h", 2.0)]);
        store.commit(std::slice::from_ref(&m), &[]).unwrap();
        let again = store.commit(&[m.clone(), m], &[]).unwrap();
        assert_eq!((again.stored, again.duplicates, again.fresh_messages), (0, 4, 0));
        assert!(again.events.is_empty(), "a redelivery is not a change");
        assert_eq!(store.last_seq().unwrap(), 1);
        assert_eq!(store.point_count().unwrap(), 2);
        assert_eq!(store.device("a").unwrap().value.unwrap().message_count, 1);
    }

    #[test]
    fn late_readings_do_not_replace_the_latest_value() {
        let store = RedbStore::in_memory().unwrap();
        store.commit(&[msg("a", 5_000, &[("t", 5.0)])], &[]).unwrap();
        store.commit(&[msg("a", 1_000, &[("t", 1.0)])], &[]).unwrap();
        let a = store.device("a").unwrap().value.unwrap();
        assert_eq!(a.metric("t").map(|m| m.value), Some(5.0));
        assert_eq!(store.point_count().unwrap(), 2);
    }

    #[test]
    fn status_is_recorded_but_does_not_register() {
        let store = RedbStore::in_memory().unwrap();
        let id = DeviceId::try_from("x").unwrap();
        store.commit(&[], &[StatusReport { device: id.clone(), online: true, at: 100 }]).unwrap();
        assert!(store.devices().unwrap().value.is_empty());
        store.commit(&[msg("x", 200, &[("t", 1.0)])], &[]).unwrap();
        store.commit(&[], &[StatusReport { device: id, online: false, at: 300 }]).unwrap();
        let x = store.device("x").unwrap().value.unwrap();
        assert_eq!(x.status, Some(DeviceStatus { online: false, at: 300 }));
    }

    #[test]
    fn devices_get_names_and_notes_and_can_be_deleted_with_their_history() {
        let store = RedbStore::in_memory().unwrap();
        store
            .commit(&[msg("a", 1_000, &[("t", 1.0), ("h", 2.0)]), msg("b", 1_000, &[("t", 3.0)])], &[])
            .unwrap();
        assert!(
            store.set_device_meta("a", Some("Greenhouse".into()), Some("<b>north</b> wall".into())).unwrap()
        );
        assert!(!store.set_device_meta("zzz", None, None).unwrap());
        let a = store.device("a").unwrap().value.unwrap();
        assert_eq!((a.name.as_deref(), a.note.as_deref()), (Some("Greenhouse"), Some("<b>north</b> wall")));
        // A new reading keeps the name.
        store.commit(&[msg("a", 2_000, &[("t", 5.0)])], &[]).unwrap();
        assert_eq!(store.device("a").unwrap().value.unwrap().label(), "Greenhouse");

        assert!(store.delete_device("a").unwrap());
        assert!(!store.delete_device("a").unwrap());
        assert!(store.device("a").unwrap().value.is_none());
        assert!(store.history("a", "t", 0, 10_000, 10).unwrap().buckets.is_empty());
        assert_eq!(store.point_count().unwrap(), 1, "only b's reading is left");
        // The id can be used again from scratch.
        store.commit(&[msg("a", 3_000, &[("t", 7.0)])], &[]).unwrap();
        let again = store.device("a").unwrap().value.unwrap();
        assert_eq!((again.message_count, again.name), (1, None));
        assert_eq!(store.history("a", "t", 0, 10_000, 10).unwrap().buckets.len(), 1);
    }

    #[test]
    fn pruning_drops_old_readings_and_changes_only() {
        let store = RedbStore::in_memory().unwrap();
        let msgs: Vec<_> = (0..10).map(|i| msg("a", 1_000 * i, &[("t", i as f64), ("h", 1.0)])).collect();
        store.commit(&msgs, &[]).unwrap();
        store.commit(&[msg("b", 9_500, &[("t", 9.5)])], &[]).unwrap();
        store.seal(0).unwrap(); // a registry checkpoint: changes before it may go
        let pruned = store.prune(5_000).unwrap();
        // Readings at 0..4 s of two metrics; changes received before 5 s (received = ts + 10).
        assert_eq!(pruned, Pruned { readings: 10, changes: 5 });
        assert_eq!(store.point_count().unwrap(), 11);
        let left = store.points("a", "t", 0, 20_000, None, 100).unwrap();
        assert_eq!(left.first(), Some(&(5_000, 5.0)));
        assert_eq!(left.len(), 5);
        assert_eq!(store.changes_since(0, 100).unwrap().first().and_then(LiveEvent::seq), Some(6));
        assert_eq!(store.prune(5_000).unwrap(), Pruned::default(), "nothing left to prune");
        assert!(store.device("a").unwrap().value.is_some(), "the device stays registered");
    }

    #[test]
    fn raw_points_page_by_time() {
        let store = RedbStore::in_memory().unwrap();
        let msgs: Vec<_> = (0..10).map(|i| msg("a", 1_000 + i * 100, &[("t", i as f64)])).collect();
        store.commit(&msgs, &[]).unwrap();
        let first = store.points("a", "t", 1_100, 1_800, None, 3).unwrap();
        assert_eq!(first, [(1_100, 1.0), (1_200, 2.0), (1_300, 3.0)]);
        let next = store.points("a", "t", 1_100, 1_800, Some(1_300), 100).unwrap();
        assert_eq!(next.iter().map(|p| p.0).collect::<Vec<_>>(), [1_400, 1_500, 1_600, 1_700, 1_800]);
        assert!(store.points("a", "nope", 0, 9_999, None, 10).unwrap().is_empty());
    }

    #[test]
    fn changes_are_numbered_and_paged() {
        let store = RedbStore::in_memory().unwrap();
        for i in 0..5 {
            store.commit(&[msg("a", 1_000 + i, &[("t", i as f64)])], &[]).unwrap();
        }
        let id = DeviceId::try_from("a").unwrap();
        store.commit(&[], &[StatusReport { device: id, online: false, at: 9_000 }]).unwrap();
        assert_eq!(store.last_seq().unwrap(), 6);
        let page = store.changes_since(2, 2).unwrap();
        assert_eq!(page.iter().map(|e| e.seq().unwrap()).collect::<Vec<_>>(), [3, 4]);
        let rest = store.changes_since(4, 100).unwrap();
        assert_eq!(rest.len(), 2);
        assert!(matches!(rest[1], LiveEvent::Status { seq: 6, online: false, .. }));
        assert!(store.changes_since(6, 100).unwrap().is_empty());
    }

    #[test]
    fn dashboards_are_seeded_once_saved_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.redb");
        {
            let store = RedbStore::open(&path).unwrap();
            assert_eq!(
                store.dashboards().unwrap().iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
                ["overview"]
            );
            let mut mine = Dashboard::starter();
            mine.id = "overview".into();
            mine.name = "Mine".into();
            let created = store.create_dashboard(mine).unwrap();
            assert!(created.id.starts_with("mine-") && created.updated > 0, "{}", created.id);
            let overview = store.dashboard("overview").unwrap().unwrap();
            assert_eq!(overview.name, "Overview", "creating never replaces another dashboard");
            let mut edit = created.clone();
            edit.name = "Mine, edited".into();
            let saved = store.save_dashboard(edit.clone()).unwrap();
            assert!(saved.updated > created.updated);
            assert_eq!(
                store.save_dashboard(edit).unwrap_err(),
                SaveError::Stale,
                "a copy older than the stored one"
            );
            let mut gone = saved.clone();
            gone.id = "nope".into();
            assert_eq!(store.save_dashboard(gone).unwrap_err(), SaveError::NotFound);
            assert!(store.delete_dashboard("overview").unwrap());
            assert!(!store.delete_dashboard("overview").unwrap());
        }
        // Reopening does not bring the deleted starter back.
        let store = RedbStore::open(&path).unwrap();
        let all = store.dashboards().unwrap();
        assert_eq!(all.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["Mine, edited"]);
        assert_eq!(store.dashboard(&all[0].id).unwrap().map(|d| d.widgets.len()), Some(3));
        assert_eq!(store.dashboard("nope").unwrap(), None);
    }

    #[test]
    fn the_number_of_dashboards_is_capped() {
        let store = RedbStore::in_memory().unwrap();
        for _ in 1..MAX_DASHBOARDS {
            store.create_dashboard(Dashboard::starter()).unwrap();
        }
        assert_eq!(store.create_dashboard(Dashboard::starter()).unwrap_err(), SaveError::Full);
        assert!(store.delete_dashboard("overview").unwrap());
        assert!(store.create_dashboard(Dashboard::starter()).is_ok(), "a deleted one frees a place");
    }

    /// A file as schema `version` left it: `series` numbered from 0, and what `fill` writes.
    fn old_file(
        path: &Path,
        version: u64,
        series: &[(&str, &str)],
        fill: impl FnOnce(&redb::WriteTransaction),
    ) {
        let db = Database::create(path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut table = tx.open_table(SERIES).unwrap();
            for (id, key) in (0u32..).zip(series) {
                table.insert(key, id).unwrap();
            }
            let mut meta = tx.open_table(META).unwrap();
            meta.insert("schema_version", version).unwrap();
            meta.insert("next_series_id", series.len() as u64).unwrap();
        }
        fill(&tx);
        tx.commit().unwrap();
    }

    #[test]
    fn a_file_from_before_rollups_gets_them_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.redb");
        old_file(&path, 1, &[("a", "t")], |tx| {
            let mut points = tx.open_table(POINTS_V1).unwrap();
            for i in 0..7_200i64 {
                points.insert((0, i * 1_000), (i % 60) as f64).unwrap();
            }
        });
        let store = RedbStore::open(&path).unwrap();
        // Two hours in hour-wide buckets: read from the hour rollups the migration built.
        let h = store.history("a", "t", 0, 7_199_999, 3).unwrap();
        assert_eq!(h.bucket_ms, 3_600_000);
        let summary: Vec<_> = h.buckets.iter().map(|b| (b.t, b.count, b.min, b.max, b.last)).collect();
        assert_eq!(summary, [(0, 3_600, 0.0, 59.0, 59.0), (3_600_000, 3_600, 0.0, 59.0, 59.0)]);
        assert_eq!(h.buckets[0].avg, 29.5);
    }

    #[test]
    fn a_version_2_head_moves_into_batches_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.redb");
        old_file(&path, 2, &[("a", "t"), ("a", "h")], |tx| {
            let mut old = tx.open_table(head::HEAD_V2).unwrap();
            for i in 0..5_000i64 {
                old.insert((i * 1_000, 0), i as f64).unwrap();
                old.insert((i * 1_000, 1), -(i as f64)).unwrap();
            }
        });
        for _ in 0..2 {
            let store = RedbStore::open(&path).unwrap();
            assert_eq!(store.head_count(), 10_000);
            let h = store.history("a", "h", 0, 4_999_999, 5).unwrap();
            let count: u32 = h.buckets.iter().map(|b| b.count).sum();
            let min = h.buckets.iter().map(|b| b.min).fold(f64::INFINITY, f64::min);
            let max = h.buckets.iter().map(|b| b.max).fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(
                (count, min, max, h.buckets.last().map(|b| b.last)),
                (5_000, -4_999.0, 0.0, Some(-4_999.0))
            );
            // A redelivery of a migrated reading is known as one.
            let again = store.commit(&[msg("a", 4_999_000, &[("t", 4_999.0)])], &[]).unwrap();
            assert_eq!((again.stored, again.duplicates), (0, 1));
        }
        let db = Database::open(&path).unwrap();
        let rx = db.begin_read().unwrap();
        assert!(rx.open_table(head::HEAD_V2).is_err(), "the version 2 head table is gone");
    }

    #[test]
    fn a_file_from_a_newer_version_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future.redb");
        old_file(&path, SCHEMA_VERSION + 1, &[], |_| {});
        let err = RedbStore::open(&path).err().expect("refused").to_string();
        assert!(err.contains("newer version"), "{err}");
        let db = Database::open(&path).unwrap();
        let meta = db.begin_read().unwrap().open_table(META).unwrap();
        assert_eq!(meta.get("schema_version").unwrap().map(|v| v.value()), Some(SCHEMA_VERSION + 1));
    }

    #[test]
    fn a_reading_repeated_within_one_commit_is_stored_once() {
        let store = RedbStore::in_memory().unwrap();
        let out = store
            .commit(
                &[
                    msg("a", 1_000, &[("t", 1.0)]),
                    msg("a", 1_000, &[("t", 9.0)]),
                    msg("a", 2_000, &[("t", 2.0)]),
                ],
                &[],
            )
            .unwrap();
        assert_eq!((out.stored, out.duplicates, out.fresh_messages), (2, 1, 2));
        let h = store.history("a", "t", 0, 10_000, 10).unwrap();
        assert_eq!(h.buckets.iter().map(|b| b.last).collect::<Vec<_>>(), [1.0, 2.0], "the first one counts");
    }

    #[test]
    fn survives_reopen_with_series_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/t.redb");
        {
            let store = RedbStore::open(&path).unwrap();
            store.commit(&[msg("a", 1_000, &[("t", 1.0)]), msg("b", 1_000, &[("t", 2.0)])], &[]).unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        store.commit(&[msg("c", 2_000, &[("t", 3.0)])], &[]).unwrap();
        for (d, v) in [("a", 1.0), ("b", 2.0), ("c", 3.0)] {
            let h = store.history(d, "t", 0, 10_000, 10).unwrap();
            assert_eq!(h.buckets.iter().map(|b| b.last).collect::<Vec<_>>(), [v], "{d}");
        }
    }
}
