//! Leases: work that must happen once in a cluster (a device partition's alarm timers and
//! command deadlines, retention, sending notifications) is done by the node holding its lease.
//! A holder renews well before the lease runs out; when a node dies (kill -9) its leases run
//! out and a surviving node takes them over, within one lease's length.
//!
//! - **The database's clock decides**, never a node's: expiry is compared with
//!   `clock_timestamp()` on the server, so nodes whose clocks disagree still agree on who
//!   holds what.
//! - **Fencing.** A node that stalled (a long pause, a lost network) may still believe it
//!   holds a lease another node has taken. Every change of holder raises the lease's epoch, and
//!   work done under a lease is committed in a transaction that first checks, with
//!   [`holds`], that the lease is still this holder's at this epoch and unexpired, locking
//!   the row (`FOR SHARE`) so it cannot change hands until that transaction ends. So the work
//!   of a holder that lost its lease is refused, not done twice.

use deadpool_postgres::Transaction;
use futures::future::BoxFuture;

use super::error::PgError;
use super::store::PgStore;

/// The longest lease name and holder name.
pub const MAX_NAME: usize = 128;
/// Lease lengths allowed: long enough to renew in time, short enough to take over quickly.
pub const LENGTH_MS: std::ops::RangeInclusive<i64> = 500..=600_000;

/// How many partitions devices fall into for work split by device (the alarm engine's,
/// commands'): each kind of work has a lease per partition, taken by one node. Fixed by the
/// schema (version 11 made the alarm engine's, with their cursors), so every node agrees; a
/// different number needs a migration that moves the partitions' cursors.
pub const PARTITIONS: u32 = 8;

/// The partition device `id` falls into: FNV-1a of its bytes, so every node and every version
/// agrees (a std hasher is seeded per process).
pub fn partition(id: &str) -> u32 {
    let hash =
        id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (hash % u64::from(PARTITIONS)) as u32
}

/// A lease held: its epoch, the fencing token its work is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub epoch: i64,
}

fn check(name: &str, holder: &str, length_ms: i64) -> Result<(), PgError> {
    if name.is_empty() || name.len() > MAX_NAME || holder.is_empty() || holder.len() > MAX_NAME {
        return Err(PgError::Setting(format!("lease and holder names are 1 to {MAX_NAME} bytes")));
    }
    if !LENGTH_MS.contains(&length_ms) {
        return Err(PgError::Setting("a lease lasts 0.5 s to 10 min".into()));
    }
    Ok(())
}

impl PgStore {
    /// Takes the lease `name` for `holder` for `length_ms` if it is free, run out, or already
    /// `holder`'s (then it is renewed, keeping its epoch); `None` while another holds it.
    pub async fn acquire(&self, name: &str, holder: &str, length_ms: i64) -> Result<Option<Held>, PgError> {
        check(name, holder, length_ms)?;
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "INSERT INTO leases AS l (name, holder, epoch, expires_at)
                 VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 millisecond')
                 ON CONFLICT (name) DO UPDATE SET
                    holder = EXCLUDED.holder,
                    epoch = l.epoch + CASE WHEN l.holder = EXCLUDED.holder THEN 0 ELSE 1 END,
                    expires_at = EXCLUDED.expires_at
                 WHERE l.holder = EXCLUDED.holder OR l.expires_at <= clock_timestamp()
                 RETURNING epoch",
            )
            .await?;
        let row = client.query_opt(&statement, &[&name, &holder, &(length_ms as f64)]).await?;
        Ok(row.map(|r| Held { epoch: r.get(0) }))
    }

    /// Renews a lease `holder` holds at `held`'s epoch; false if it ran out and was taken (or
    /// was given up), when the holder must stop its work.
    pub async fn renew(&self, name: &str, holder: &str, held: Held, length_ms: i64) -> Result<bool, PgError> {
        check(name, holder, length_ms)?;
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "UPDATE leases SET expires_at = clock_timestamp() + $4 * interval '1 millisecond'
                 WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()",
            )
            .await?;
        Ok(client.execute(&statement, &[&name, &holder, &held.epoch, &(length_ms as f64)]).await? == 1)
    }

    /// Gives a lease up at once (a node stopping cleanly), so another takes it without
    /// waiting for it to run out; false if `holder` no longer held it.
    pub async fn release(&self, name: &str, holder: &str, held: Held) -> Result<bool, PgError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "UPDATE leases SET expires_at = clock_timestamp()
                 WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()",
            )
            .await?;
        Ok(client.execute(&statement, &[&name, &holder, &held.epoch]).await? == 1)
    }

    /// Runs `work` in a transaction that commits only if `holder` still holds `lease` at
    /// `held`'s epoch ([`holds`]); `None`, with nothing of `work` committed or even begun, if
    /// it does not.
    pub async fn under_lease<T, W>(
        &self,
        lease: &str,
        holder: &str,
        held: Held,
        work: W,
    ) -> Result<Option<T>, PgError>
    where
        W: for<'t> FnOnce(&'t Transaction<'t>) -> BoxFuture<'t, Result<T, PgError>>,
    {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if !holds(&tx, lease, holder, held).await? {
            return Ok(None);
        }
        let out = work(&tx).await?;
        tx.commit().await?;
        Ok(Some(out))
    }

    /// Every lease ever taken with its holder and whether it is still held, as the embedded
    /// broker's claim names its holder (a row no node took yet, made for its work's state, and
    /// one a migration retired are left out).
    pub async fn leases(&self) -> Result<Vec<(String, String, bool)>, PgError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT name, holder, expires_at > clock_timestamp() FROM leases \
                 WHERE holder NOT IN ('', 'retired') ORDER BY name LIMIT 10000",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }
}

/// Whether `holder` still holds `name` at `held`'s epoch, checked inside the transaction that
/// commits the lease's work: the row is locked until that transaction ends, so the lease
/// cannot pass to another node between this check and the commit.
pub(super) async fn holds(
    tx: &Transaction<'_>,
    name: &str,
    holder: &str,
    held: Held,
) -> Result<bool, PgError> {
    let statement = tx
        .prepare_cached(
            "SELECT 1 FROM leases
             WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()
             FOR SHARE",
        )
        .await?;
    Ok(tx.query_opt(&statement, &[&name, &holder, &held.epoch]).await?.is_some())
}

/// A lease of a set (the names starting with one prefix), as a node choosing which to take
/// sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub name: String,
    pub holder: String,
    /// Whether it is held now.
    pub held: bool,
    /// Whether it has been free for longer than the orphan time asked for (or was never
    /// taken): no node under its share took it.
    pub orphaned: bool,
}

impl PgStore {
    /// The leases whose names start with `prefix`, and how many nodes are alive: those holding
    /// their own lease, named `nodes` and their name. Node leases run out an hour ago are
    /// deleted, so restarts do not pile them up.
    pub async fn lease_set(
        &self,
        prefix: &str,
        nodes: &str,
        orphan_ms: i64,
    ) -> Result<(Vec<Seen>, usize), PgError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT name, holder, expires_at > clock_timestamp(),
                        expires_at < clock_timestamp() - $2 * interval '1 millisecond'
                 FROM leases WHERE left(name, length($1)) = $1 ORDER BY name LIMIT 10000",
            )
            .await?;
        let rows = client.query(&statement, &[&prefix, &(orphan_ms as f64)]).await?;
        let seen = rows
            .iter()
            .map(|r| Seen { name: r.get(0), holder: r.get(1), held: r.get(2), orphaned: r.get(3) })
            .collect();
        let alive: i64 = client
            .query_one(
                "SELECT count(*) FROM leases
                 WHERE left(name, length($1)) = $1 AND expires_at > clock_timestamp()",
                &[&nodes],
            )
            .await?
            .get(0);
        client
            .execute(
                "DELETE FROM leases WHERE left(name, length($1)) = $1
                 AND expires_at < clock_timestamp() - interval '1 hour'",
                &[&nodes],
            )
            .await?;
        Ok((seen, usize::try_from(alive).unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fall_into_partitions_by_a_hash_every_node_and_version_agrees_on() {
        // FNV-1a's published values: "" is its offset basis, "a" 0xaf63dc4c8601ec8c.
        assert_eq!(partition(""), (0xcbf2_9ce4_8422_2325_u64 % 8) as u32);
        assert_eq!(partition("a"), (0xaf63_dc4c_8601_ec8c_u64 % 8) as u32);
        let mut counts = [0u32; PARTITIONS as usize];
        for i in 0..8000 {
            counts[partition(&format!("esp32-{i:05}")) as usize] += 1;
        }
        assert!(counts.iter().all(|&n| (850..=1150).contains(&n)), "spread evenly: {counts:?}");
    }
}
