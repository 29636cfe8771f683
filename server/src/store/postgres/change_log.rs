//! The change log: every stored change, numbered, for live clients on every node and for
//! clients catching up by number.
//!
//! The trap: numbers handed out when a row is inserted (a sequence) become visible in the
//! order transactions commit, not the order they were handed out, so a tail reading
//! `seq > last` can pass a number whose transaction commits a moment later and never see it.
//! Here the number is taken as the last step before commit, from the `change_seq` counter
//! row: `UPDATE … RETURNING` locks the row until the transaction ends, so the next writer
//! waits for this one to commit (or roll back) and then continues from its number. PostgreSQL
//! makes a transaction visible before it releases its locks, so when number n is visible every
//! number below it is too: the log is gapless and a tail sees it in order. Numbers are never
//! lost to a rollback either (the counter rolls back with it). The price is that writers take
//! turns from numbering to commit (a few statements and the commit's flush), each carrying a
//! whole batch.

use bytes::BytesMut;
use deadpool_postgres::Transaction;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{IsNull, ToSql, Type, accepts, to_sql_checked};

use telemetry::Millis;

use super::error::PgError;
use super::store::PgStore;
use super::{follow, time};

/// Changes one tail read answers at most.
pub const MAX_TAIL: u32 = 10_000;

/// Takes `count` (at least 1) numbers for this transaction's changes; answers the first. The
/// counter row stays locked until the transaction ends.
pub(super) async fn number(tx: &Transaction<'_>, count: u64) -> Result<u64, PgError> {
    let count = i64::try_from(count).map_err(|_| PgError::Corrupt("too many changes".into()))?;
    let statement = tx
        .prepare_cached("UPDATE counters SET value = value + $1 WHERE name = 'change_seq' RETURNING value")
        .await?;
    let last: i64 = tx.query_one(&statement, &[&count]).await?.get(0);
    u64::try_from(last - count + 1).map_err(|_| PgError::Corrupt(format!("change_seq is {last}")))
}

/// Writes changes numbered from `first`: `(at, json)` each.
pub(super) async fn append(
    tx: &Transaction<'_>,
    first: u64,
    changes: &[(Millis, &str)],
) -> Result<(), PgError> {
    let statement = tx.prepare_cached("COPY changes (seq, at, event) FROM STDIN (FORMAT binary)").await?;
    let sink = tx.copy_in(&statement).await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::TIMESTAMPTZ, Type::JSON]);
    let mut writer = std::pin::pin!(writer);
    for (seq, (at, json)) in (first..).zip(changes) {
        let seq = i64::try_from(seq).map_err(|_| PgError::Corrupt("change number past i64".into()))?;
        let at = time::to_time(*at)?;
        writer.as_mut().write(&[&seq, &at, &Json(json)]).await?;
    }
    writer.finish().await?;
    // Delivered at commit, in commit order: listeners on every node hear the new last number.
    let last =
        i64::try_from(first.saturating_add(changes.len() as u64).saturating_sub(1)).unwrap_or(i64::MAX);
    let notify = tx.prepare_cached("SELECT pg_notify($1, $2::bigint::text)").await?;
    tx.execute(&notify, &[&follow::CHANNEL, &last]).await?;
    Ok(())
}

/// JSON already written, sent as it is (the `json` type keeps the text as given).
#[derive(Debug)]
struct Json<'a>(&'a str);

impl ToSql for Json<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    accepts!(JSON);
    to_sql_checked!();
}

impl PgStore {
    /// The latest change's number (0 before the first): every change up to it is readable.
    pub async fn last_seq(&self) -> Result<u64, PgError> {
        let client = self.pool.get().await?;
        let last: i64 =
            client.query_one("SELECT value FROM counters WHERE name = 'change_seq'", &[]).await?.get(0);
        u64::try_from(last).map_err(|_| PgError::Corrupt(format!("change_seq is {last}")))
    }

    /// The changes after number `after`, in order, at most `limit` (1..=[`MAX_TAIL`]): each
    /// number and its JSON `LiveEvent`. The first is `after + 1` unless the log was trimmed
    /// past it (then the client reloads, as with the redb store).
    pub async fn changes_after(&self, after: u64, limit: u32) -> Result<Vec<(u64, String)>, PgError> {
        let limit = i64::from(limit.clamp(1, MAX_TAIL));
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached("SELECT seq, event::text FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2")
            .await?;
        let rows = client.query(&statement, &[&after, &limit]).await?;
        rows.iter()
            .map(|r| {
                let seq: i64 = r.get(0);
                let seq = u64::try_from(seq).map_err(|_| PgError::Corrupt(format!("change number {seq}")))?;
                Ok((seq, r.get(1)))
            })
            .collect()
    }

    /// Keeps only the latest `keep` changes; answers how many went. Only the oldest go, so
    /// the log stays gapless from its new first number.
    pub async fn trim_changes(&self, keep: u64) -> Result<u64, PgError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let client = self.pool.get().await?;
        let gone = client
            .execute(
                "DELETE FROM changes WHERE seq <= (SELECT value FROM counters WHERE name = 'change_seq') - $1",
                &[&keep],
            )
            .await?;
        Ok(gone)
    }

    /// Deletes the changes made before `before` (their `at`: a reading's server receive
    /// time); answers how many. Changes are made in about the order of their times, so this
    /// takes the oldest end too.
    pub async fn prune_changes(&self, before: Millis) -> Result<u64, PgError> {
        let before = time::to_time(before.clamp(time::EARLIEST, time::LATEST - 1))?;
        let client = self.pool.get().await?;
        Ok(client.execute("DELETE FROM changes WHERE at < $1", &[&before]).await?)
    }
}
