//! Ingest: a batch of messages in one transaction, acknowledged (this returns) only after
//! the commit.
//!
//! 1. Each (device, metric) gets its series number: from memory, else inserted and read back
//!    (in sorted order, so nodes adding the same new series at once cannot deadlock).
//! 2. The partitions the batch's times fall in are made if missing ([`super::partitions`]).
//! 3. In the transaction, the batch's readings (the first of a reading repeated within the
//!    batch only) go into `readings` one of two ways:
//!    - straight, by binary COPY, when the batch is expected to be new (the node's last
//!      batch stored every reading it carried). A COPY either stores every row or fails
//!      whole: a reading already stored (same series and time, from an earlier delivery, or
//!      from another node at the same moment, whose insert this one waits for) aborts it with
//!      a unique violation. Then the transaction is rolled back, nothing of it having been
//!      written yet, and the batch is committed again the second way. So a COPY that
//!      succeeded stored every row it carried: the counts are exact without asking.
//!    - staged: by binary COPY into the connection's staging table, then into `readings`
//!      with `ON CONFLICT DO NOTHING … RETURNING`: a reading already stored is left as it
//!      was, and the returned rows say which messages stored something new. Taken after a
//!      batch's COPY met a stored reading, until a staged batch finds nothing stored
//!      (redeliveries come in runs, after a reconnection, and a failed COPY costs a round
//!      trip and the rows it wrote before the duplicate).
//!
//!    Both insert in (series, time) order, so two nodes storing some of the same readings at
//!    once never wait for each other in a circle (in arrival order they could deadlock).
//!    `scripts/bench-pg.sh` measures both: its 1-node line goes all straight, its "every
//!    batch staged" line ([`PgStore::ingest_staged`]) all staged, and its redelivery line
//!    fails one COPY and stages the rest.
//! 4. The readings stored (the new ones only) are queued for their minutes' and hours'
//!    rollups ([`super::rollups`], by binary COPY; a pass folds them in later).
//! 5. Each message that stored something gets a change (`LiveEvent::Reading`), numbered
//!    last ([`super::change_log`]), and each device's row its counts.
//! 6. What the commit carries besides readings ([`Besides`]: the retained messages it sets
//!    and clears, the devices' reports, the alarm engine's changes) is written in the same
//!    transaction, each in its own module; their changes are numbered after the readings', as
//!    the redb store numbers them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use deadpool_postgres::Transaction;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use telemetry::{LiveEvent, Millis};

use super::super::api::{CommitOutcome, Incoming, Report};
use super::super::maps::FastSet;
use super::super::retained::RetainedChange;
use super::error::PgError;
use super::store::PgStore;
use super::{change_log, rollups, time};

/// Messages one batch holds at most (the writer commits 4,096 readings at a time).
pub const MAX_BATCH: usize = 100_000;

/// What one device's messages in a batch add to its row.
struct Seen {
    first: Millis,
    last: Millis,
    stored: i64,
    last_change: i64,
}

/// What a commit carries besides readings ([`super::super::Store::commit_retaining`]).
#[derive(Debug, Clone, Copy)]
pub struct Besides<'a> {
    pub reports: &'a [Report],
    pub alarms: &'a crate::alarms::engine::Changes,
    pub retained: &'a [RetainedChange],
}

impl PgStore {
    /// Stores `batch` durably: when this answers `Ok`, every reading in it is committed (or was
    /// already stored), with its change and its device's counts; otherwise nothing of it is.
    /// A redelivered reading (same device, metric and time) is counted as a duplicate and left
    /// as first stored; a message none of whose readings is new makes no change.
    pub async fn ingest(&self, batch: &[Incoming]) -> Result<CommitOutcome, PgError> {
        self.commit(batch, None).await
    }

    /// [`PgStore::ingest`] staging the batch whatever is expected of it (the path a batch after
    /// a redelivery takes): what `bench pg-ingest` compares the straight COPY with.
    pub async fn ingest_staged(&self, batch: &[Incoming]) -> Result<CommitOutcome, PgError> {
        self.commit_by(batch, None, false).await
    }

    /// [`PgStore::ingest`] with what else the commit carries, all in one transaction: when this
    /// answers `Ok`, all of it is committed, and otherwise none of it.
    pub async fn commit(
        &self,
        batch: &[Incoming],
        besides: Option<Besides<'_>>,
    ) -> Result<CommitOutcome, PgError> {
        self.commit_by(batch, besides, true).await
    }

    /// [`PgStore::commit`], copying the readings straight in if `straight` and the batch is
    /// expected to be new.
    async fn commit_by(
        &self,
        batch: &[Incoming],
        besides: Option<Besides<'_>>,
        straight: bool,
    ) -> Result<CommitOutcome, PgError> {
        if batch.len() > MAX_BATCH {
            return Err(PgError::Setting(format!(
                "{} messages in one batch; at most {MAX_BATCH}",
                batch.len()
            )));
        }
        for incoming in batch {
            time::to_time(incoming.message.ts)?;
            time::to_time(incoming.received)?;
        }
        if batch.is_empty() && besides.is_none() {
            return Ok(CommitOutcome::default());
        }
        let ids = self.series_ids(batch).await?;
        let starts: BTreeSet<Millis> = batch.iter().map(|i| self.span.start_of(i.message.ts)).collect();
        let starts: Vec<Millis> = starts.into_iter().collect();
        self.ensure_starts(&starts).await?;
        match self.commit_once(batch, &ids, besides, straight).await {
            // Another node dropped a partition this one knew of (retention, while a late
            // reading came in): made again, once.
            Err(PgError::Db(e)) if e.code() == Some(&SqlState::CHECK_VIOLATION) => {
                self.forget_partitions();
                self.ensure_starts(&starts).await?;
                self.commit_once(batch, &ids, besides, straight).await
            }
            other => other,
        }
    }

    /// Each message's values' series numbers, in order.
    async fn series_ids(&self, batch: &[Incoming]) -> Result<Vec<Vec<i32>>, PgError> {
        let missing: BTreeSet<(&str, &str)> = {
            let known = self.series.lock().expect("series lock");
            batch
                .iter()
                .flat_map(|i| i.message.values.iter().map(|(m, _)| (i.message.device.as_str(), m.as_str())))
                .filter(|(d, m)| !known.contains_key(&((*d).to_owned(), (*m).to_owned())))
                .collect()
        };
        if !missing.is_empty() {
            let (devices, metrics): (Vec<&str>, Vec<&str>) = missing.iter().copied().unzip();
            let client = self.pool.get().await?;
            client
                .execute(
                    "INSERT INTO series (device, metric) SELECT * FROM unnest($1::text[], $2::text[]) \
                     ON CONFLICT DO NOTHING",
                    &[&devices, &metrics],
                )
                .await?;
            let rows = client
                .query(
                    "SELECT s.id, s.device, s.metric FROM series s \
                     JOIN unnest($1::text[], $2::text[]) AS m(device, metric) USING (device, metric)",
                    &[&devices, &metrics],
                )
                .await?;
            let mut known = self.series.lock().expect("series lock");
            for row in rows {
                known.insert((row.get(1), row.get(2)), row.get(0));
            }
        }
        let known = self.series.lock().expect("series lock");
        batch
            .iter()
            .map(|i| {
                let device = i.message.device.as_str();
                i.message
                    .values
                    .iter()
                    .map(|(metric, _)| {
                        known
                            .get(&(device.to_owned(), metric.clone()))
                            .copied()
                            .ok_or_else(|| PgError::Corrupt(format!("no series for {device} {metric}")))
                    })
                    .collect()
            })
            .collect()
    }

    /// One transaction: the readings copied straight in if the batch is expected to be new,
    /// and staged if that met a stored reading or none was expected to be.
    async fn commit_once(
        &self,
        batch: &[Incoming],
        ids: &[Vec<i32>],
        besides: Option<Besides<'_>>,
        straight: bool,
    ) -> Result<CommitOutcome, PgError> {
        if straight && !batch.is_empty() && self.expect_new.load(Ordering::Relaxed) {
            match self.commit_in(batch, ids, besides, Path::Straight).await {
                // Rolled back whole (the transaction is dropped): nothing of it was written.
                Err(PgError::Db(e)) if met_a_stored_reading(&e) => {
                    self.expect_new.store(false, Ordering::Relaxed);
                }
                other => return other,
            }
        }
        self.commit_in(batch, ids, besides, Path::Staged).await
    }

    async fn commit_in(
        &self,
        batch: &[Incoming],
        ids: &[Vec<i32>],
        besides: Option<Besides<'_>>,
        path: Path,
    ) -> Result<CommitOutcome, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // What was stored: (series, time), and those with their values.
        let mut stored: FastSet<(i32, Millis)> = FastSet::default();
        let mut new = Vec::new();
        // (series, time) each message wrote: the first of a repeated reading within the batch
        // only. A commit of reports alone skips the copy and the merge.
        let written = match path {
            _ if batch.is_empty() => Vec::new(),
            Path::Straight => {
                let (written, rows) = copy(&tx, "readings", batch, ids).await?;
                // Every row of a COPY that succeeded is new.
                stored.extend(rows.iter().map(|(series, ts, _)| (*series, *ts)));
                new = rows;
                written
            }
            Path::Staged => {
                let (written, rows) = copy(&tx, "incoming", batch, ids).await?;
                let merge = tx
                    .prepare_cached(
                        "INSERT INTO readings (series, ts, value) SELECT series, ts, value FROM incoming \
                         ORDER BY series, ts ON CONFLICT DO NOTHING RETURNING series, ts, value",
                    )
                    .await?;
                for row in tx.query(&merge, &[]).await? {
                    let (series, ts) = (row.get(0), time::from_time(row.get::<_, SystemTime>(1))?);
                    stored.insert((series, ts));
                    new.push((series, ts, row.get(2)));
                }
                // Nothing was stored before: the next batch may go straight in.
                if new.len() == rows.len() {
                    self.expect_new.store(true, Ordering::Relaxed);
                }
                written
            }
        };
        // Only what is new: a redelivered reading is not counted twice.
        rollups::commit_rollups(&tx, &new).await?;
        if let Some(besides) = besides {
            // Before the numbering below: it locks the retained totals' rows, and the change
            // counter's lock is to be held as briefly as can be. The caller checked the caps,
            // as for the redb store.
            super::retained::commit_retained(&tx, besides.retained, None).await?;
        }
        let values: usize = batch.iter().map(|i| i.message.values.len()).sum();
        let mut outcome = CommitOutcome {
            stored: stored.len() as u64,
            duplicates: (values - stored.len()) as u64,
            ..CommitOutcome::default()
        };
        let fresh: Vec<bool> = written.iter().map(|w| w.iter().any(|key| stored.contains(key))).collect();
        outcome.fresh_messages = fresh.iter().filter(|f| **f).count() as u64;

        let mut devices: BTreeMap<&str, Seen> = BTreeMap::new();
        for incoming in batch {
            let seen = devices.entry(incoming.message.device.as_str()).or_insert(Seen {
                first: incoming.received,
                last: incoming.received,
                stored: 0,
                last_change: 0,
            });
            seen.first = seen.first.min(incoming.received);
            seen.last = seen.last.max(incoming.received);
        }
        if outcome.fresh_messages > 0 {
            // Numbered last: the counter's lock is held from here to the commit.
            let first = change_log::number(&tx, outcome.fresh_messages).await?;
            for (seq, incoming) in
                (first..).zip(batch.iter().zip(&fresh).filter(|(_, f)| **f).map(|(i, _)| i))
            {
                let device = incoming.message.device.as_str();
                let seen = devices.get_mut(device).expect("every device is in");
                seen.stored += 1;
                seen.last_change = i64::try_from(seq).unwrap_or(i64::MAX);
                outcome.events.push(LiveEvent::Reading {
                    seq,
                    device: device.to_owned(),
                    ts: incoming.message.ts,
                    received: incoming.received,
                    values: incoming.message.values.iter().cloned().collect(),
                });
            }
            outcome.wire = outcome
                .events
                .iter()
                .map(|e| serde_json::to_string(e).expect("live events serialise"))
                .collect();
            let changes: Vec<(Millis, &str)> = batch
                .iter()
                .zip(&fresh)
                .filter(|(_, f)| **f)
                .map(|(i, _)| i.received)
                .zip(outcome.wire.iter().map(String::as_str))
                .collect();
            change_log::append(&tx, first, &changes).await?;
        }
        update_devices(&tx, &devices).await?;
        super::reports::commit_readings(&tx, batch, &fresh, &mut outcome).await?;
        if let Some(besides) = besides {
            super::reports::commit_reports(&tx, besides.reports, &mut outcome).await?;
            let alarms = super::alarms::commit_alarms(&tx, besides.alarms).await?;
            outcome.events.extend(alarms.events);
            outcome.wire.extend(alarms.wire);
        }
        tx.commit().await?;
        Ok(outcome)
    }
}

/// How a batch's readings go into `readings` (the module's doc says when each is taken).
#[derive(Debug, Clone, Copy)]
enum Path {
    /// COPY into `readings`: fails whole on a reading already stored.
    Straight,
    /// COPY into the staging table, merged skipping what is stored.
    Staged,
}

/// Whether a straight COPY failed on a reading already stored: a unique violation, or a
/// deadlock (ingests insert in key order and cannot deadlock with each other, but a device's
/// deletion deletes its readings in its own order; only this transaction is rolled back).
fn met_a_stored_reading(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION) || e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
}

/// Copies the batch's readings into `table` (`readings` or the staging table `incoming`),
/// the first of a reading repeated within the batch only, in (series, time) order; answers
/// what each message wrote and every row written, in that order.
async fn copy(
    tx: &Transaction<'_>,
    table: &str,
    batch: &[Incoming],
    ids: &[Vec<i32>],
) -> Result<(Vec<Vec<(i32, Millis)>>, Vec<(i32, Millis, f64)>), PgError> {
    let mut seen: FastSet<(i32, Millis)> = FastSet::default();
    let mut written = Vec::with_capacity(batch.len());
    let mut rows = Vec::new();
    for (incoming, ids) in batch.iter().zip(ids) {
        let ts = incoming.message.ts;
        let mut mine = Vec::new();
        for ((_, value), id) in incoming.message.values.iter().zip(ids) {
            if seen.insert((*id, ts)) {
                mine.push((*id, ts));
                rows.push((*id, ts, *value));
            }
        }
        written.push(mine);
    }
    // Every ingest inserts in key order, so two storing some of the same readings at once
    // (a redelivery arriving on two nodes) never wait for each other in a circle: whichever
    // reaches a shared reading second waits for the other's commit, which waits for nothing
    // of its.
    rows.sort_unstable_by_key(|(series, ts, _)| (*series, *ts));
    // Prepared once a connection: a COPY sent as text is prepared first, a round trip more.
    let statement =
        tx.prepare_cached(&format!("COPY {table} (series, ts, value) FROM STDIN (FORMAT binary)")).await?;
    let sink = tx.copy_in(&statement).await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT4, Type::TIMESTAMPTZ, Type::FLOAT8]);
    let mut writer = std::pin::pin!(writer);
    for (series, ts, value) in &rows {
        writer.as_mut().write(&[series, &time::to_time(*ts)?, value]).await?;
    }
    writer.finish().await?;
    Ok((written, rows))
}

/// Adds the batch to each device's row (made by its first batch), in id order so that two
/// nodes updating the same devices take their locks in the same order.
async fn update_devices(tx: &Transaction<'_>, devices: &BTreeMap<&str, Seen>) -> Result<(), PgError> {
    let ids: Vec<&str> = devices.keys().copied().collect();
    let mut first = Vec::with_capacity(ids.len());
    let mut last = Vec::with_capacity(ids.len());
    for seen in devices.values() {
        first.push(time::to_time(seen.first)?);
        last.push(time::to_time(seen.last)?);
    }
    let stored: Vec<i64> = devices.values().map(|s| s.stored).collect();
    let changes: Vec<i64> = devices.values().map(|s| s.last_change).collect();
    let statement = tx
        .prepare_cached(
            "INSERT INTO devices (id, first_seen, last_seen, message_count, last_change) \
             SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::int8[], $5::int8[]) \
             ON CONFLICT (id) DO UPDATE SET \
             last_seen = greatest(devices.last_seen, excluded.last_seen), \
             message_count = devices.message_count + excluded.message_count, \
             last_change = greatest(devices.last_change, excluded.last_change)",
        )
        .await?;
    tx.execute(&statement, &[&ids, &first, &last, &stored, &changes]).await?;
    Ok(())
}
