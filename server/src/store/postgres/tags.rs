//! Devices' tags, on each device's registry row: each change is a numbered
//! [`LiveEvent::Tags`] in the change log, written in the transaction that stores the tags.
//!
//! Lock order: the change counter first, then the devices' rows in id order, as ingest takes
//! them (it numbers, then updates its devices in id order). Taking the counter before reading
//! the tags also makes every tag change on every node take turns, so each compares against
//! the tags the previous one committed; the rows are read locked, so a device deleted
//! meanwhile is either gone before the read or deleted after the commit.

use deadpool_postgres::Transaction;
use telemetry::tags::Tags;
use telemetry::{LiveEvent, Millis};

use super::super::api::{CommitOutcome, TagStore};
use super::super::error::StoreError;
use super::super::maps::{FastMap, FastSet};
use super::blocking::PgBlocking;
use super::change_log;
use super::error::PgError;
use super::store::PgStore;

/// Locks the change counter until the transaction ends, without taking a number yet: what
/// follows reads what every earlier change committed, and [`change_log::number`] then numbers
/// under the lock already held.
pub(super) async fn lock_changes(tx: &Transaction<'_>) -> Result<(), PgError> {
    let statement =
        tx.prepare_cached("SELECT value FROM counters WHERE name = 'change_seq' FOR UPDATE").await?;
    tx.query_one(&statement, &[]).await?;
    Ok(())
}

impl PgStore {
    /// Sets each device's whole set of tags at server time `at`, durably: one numbered change
    /// per registered device whose tags differ, in the order given (a device's first entry
    /// that differs wins); unknown devices are left out.
    pub async fn put_tags(&self, tags: &[(String, Tags)], at: Millis) -> Result<CommitOutcome, PgError> {
        let mut outcome = CommitOutcome::default();
        if tags.is_empty() {
            return Ok(outcome);
        }
        let ids: Vec<&str> = tags.iter().map(|(id, _)| id.as_str()).collect();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        lock_changes(&tx).await?;
        let statement = tx
            .prepare_cached(
                "SELECT id, tags FROM devices WHERE id = ANY($1) AND message_count > 0 ORDER BY id FOR UPDATE",
            )
            .await?;
        let mut stored: FastMap<String, Tags> = FastMap::default();
        for row in tx.query(&statement, &[&ids]).await? {
            let id: String = row.get(0);
            let old = serde_json::from_value(row.get(1))
                .map_err(|e| PgError::Corrupt(format!("the tags of {id}: {e}")))?;
            stored.insert(id, old);
        }
        let mut seen: FastSet<&str> = FastSet::default();
        let changed: Vec<&(String, Tags)> = tags
            .iter()
            .filter(|(id, new)| stored.get(id).is_some_and(|old| old != new) && seen.insert(id))
            .collect();
        if changed.is_empty() {
            return Ok(outcome);
        }
        let first = change_log::number(&tx, changed.len() as u64).await?;
        let mut seqs = Vec::with_capacity(changed.len());
        let mut docs = Vec::with_capacity(changed.len());
        for (seq, (id, new)) in (first..).zip(&changed) {
            seqs.push(i64::try_from(seq).map_err(|_| PgError::Corrupt("change number past i64".into()))?);
            docs.push(serde_json::to_value(new).expect("tags serialise"));
            outcome.events.push(LiveEvent::Tags { seq, device: id.clone(), tags: new.clone(), at });
        }
        outcome.wire =
            outcome.events.iter().map(|e| serde_json::to_string(e).expect("live events serialise")).collect();
        let changes: Vec<(Millis, &str)> = outcome.wire.iter().map(|w| (at, w.as_str())).collect();
        change_log::append(&tx, first, &changes).await?;
        let ids: Vec<&str> = changed.iter().map(|(id, _)| id.as_str()).collect();
        let statement = tx
            .prepare_cached(
                "UPDATE devices d SET tags = u.tags, last_change = greatest(d.last_change, u.seq) \
                 FROM unnest($1::text[], $2::jsonb[], $3::int8[]) AS u(id, tags, seq) WHERE d.id = u.id",
            )
            .await?;
        tx.execute(&statement, &[&ids, &docs, &seqs]).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// A registered device's tags (`None` if it never stored a reading).
    pub async fn device_tags(&self, device: &str) -> Result<Option<Tags>, PgError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt("SELECT tags FROM devices WHERE id = $1 AND message_count > 0", &[&device])
            .await?;
        row.map(|r| {
            serde_json::from_value(r.get(0))
                .map_err(|e| PgError::Corrupt(format!("the tags of {device}: {e}")))
        })
        .transpose()
    }
}

impl TagStore for PgBlocking {
    fn put_tags(&self, tags: &[(String, Tags)], at: Millis) -> Result<CommitOutcome, StoreError> {
        let tags = tags.to_vec();
        self.call(|pg| async move { pg.put_tags(&tags, at).await })
    }
}
