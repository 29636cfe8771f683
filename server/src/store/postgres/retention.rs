//! Pruning each level past its own horizon ([`Horizons`], as the redb store does): raw
//! readings (with the change log), minute rollups, hour rollups.
//!
//! Readings are never deleted row by row. The horizon is recorded (`retention_horizons`),
//! every read leaves out readings before it from then on, and a partition goes with one
//! `DROP TABLE` once all of it is older ([`PgStore::drop_partitions_before`]). So a read
//! answers as if the readings before the horizon were gone the moment `prune` returns, and
//! the disk is given back a partition at a time. How many readings went is counted from
//! the minute rollups (whole minutes) and the readings themselves (the partial minutes at
//! either end), not by scanning the range. Rollups are deleted (a row per series and
//! period, a sixtieth of the readings at most), and their horizons are recorded too, so a
//! late reading rolled up into a pruned period is not shown either.
//!
//! Nodes pruning at once take turns (with each other and with roll-up passes): the horizons' rows are locked (`FOR UPDATE`) for the
//! transaction, so the second counts from where the first left off.

use std::time::SystemTime;

use deadpool_postgres::Transaction;
use telemetry::Millis;
use telemetry::history::{MINUTE_MS, ROLLUP_PERIODS};

use super::super::api::Pruned;
use super::super::retention::Horizons;
use super::error::PgError;
use super::rollups::{self, Kept, LEVELS, TABLES};
use super::store::PgStore;
use super::time;

/// `retention_horizons`' levels, finest first.
const LEVEL_NAMES: [&str; 3] = ["readings", "minute_rollups", "hour_rollups"];

/// The horizons each level was pruned to, as of `tx` (locked until it ends if `lock`).
pub(super) async fn recorded(tx: &Transaction<'_>, lock: bool) -> Result<Horizons, PgError> {
    let sql = if lock {
        "SELECT level, before FROM retention_horizons ORDER BY level FOR UPDATE"
    } else {
        "SELECT level, before FROM retention_horizons"
    };
    let statement = tx.prepare_cached(sql).await?;
    let mut h = Horizons::default();
    for row in tx.query(&statement, &[]).await? {
        let before = row.get::<_, Option<SystemTime>>(1).map(time::from_time).transpose()?;
        match row.get::<_, &str>(0) {
            "readings" => h.readings = before,
            "minute_rollups" => h.minute_rollups = before,
            "hour_rollups" => h.hour_rollups = before,
            other => return Err(PgError::Corrupt(format!("a retention level {other:?}"))),
        }
    }
    Ok(h)
}

/// Where what is left of each level starts, when `h` are the horizons pruned to: the first
/// reading time kept, and each level's first period that ended after its horizon.
pub(super) fn kept(h: &Horizons) -> Kept {
    let first =
        |h: Option<Millis>, period: Millis| h.map_or(time::EARLIEST, |h| h.div_euclid(period) * period);
    Kept {
        readings: h.readings.unwrap_or(time::EARLIEST),
        rollups: [first(h.minute_rollups, ROLLUP_PERIODS[0]), first(h.hour_rollups, ROLLUP_PERIODS[1])],
    }
}

/// A horizon as the database compares it: `None` where nothing stored lies before it.
fn usable(horizon: Option<Millis>) -> Option<Millis> {
    horizon.filter(|h| *h > time::EARLIEST).map(|h| h.min(time::LATEST - 1))
}

impl PgStore {
    /// Prunes each level to its horizon (`None` keeps it): readings before `horizons.readings`
    /// are no longer read and their partitions wholly before it are dropped, with the changes
    /// received before it; rollups of periods that ended by their level's horizon are
    /// deleted. Answers what went, counted as the redb store counts it (readings, changes,
    /// summaries); a second prune to the same horizons answers nothing. A level's horizon
    /// only moves forward.
    pub async fn prune(&self, horizons: Horizons) -> Result<Pruned, PgError> {
        let mut pruned = Pruned::default();
        let readings = usable(horizons.readings);
        let rollup_horizons = [usable(horizons.minute_rollups), usable(horizons.hour_rollups)];
        {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            // Not while a roll-up pass writes the rollups this deletes from.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&rollups::LOCK]).await?;
            let before = recorded(&tx, true).await?;
            if let Some(to) = readings {
                // Queued readings that go are rolled up first: rollups outlive them (and
                // counting reads whole minutes from the rollups).
                rollups::roll_up_in(&tx, to).await?;
                let from = before.readings.unwrap_or(time::EARLIEST);
                if to > from {
                    pruned.readings = count_readings(&tx, from, to, kept(&before).rollups[0]).await?;
                }
            }
            for (level, horizon) in rollup_horizons.into_iter().enumerate() {
                let Some(h) = horizon else { continue };
                let period = ROLLUP_PERIODS[level];
                let first = time::to_time(h.div_euclid(period) * period)?;
                let gone =
                    tx.execute(&format!("DELETE FROM {} WHERE start < $1", TABLES[level]), &[&first]).await?;
                match level {
                    0 => pruned.minute_rollups += gone,
                    _ => pruned.hour_rollups += gone,
                }
            }
            let statement = tx
                .prepare_cached(
                    "UPDATE retention_horizons SET before = greatest(before, $2) WHERE level = $1",
                )
                .await?;
            for (level, horizon) in
                LEVEL_NAMES.into_iter().zip([readings, rollup_horizons[0], rollup_horizons[1]])
            {
                if let Some(h) = horizon {
                    tx.execute(&statement, &[&level, &time::to_time(h)?]).await?;
                }
            }
            tx.commit().await?;
        }
        if let Some(to) = readings {
            // Recorded first: a crash here leaves the partitions for the next prune, unread.
            self.drop_partitions_before(to).await?;
            pruned.changes = self.prune_changes(to).await?;
        }
        Ok(pruned)
    }
}

/// Readings in `[from, to)`: whole minutes from the minute rollups (those from `minutes_from`
/// on are kept), the rest counted row by row.
async fn count_readings(
    tx: &Transaction<'_>,
    from: Millis,
    to: Millis,
    minutes_from: Millis,
) -> Result<u64, PgError> {
    let ceil = |t: Millis| {
        t.div_euclid(MINUTE_MS).saturating_add(i64::from(t.rem_euclid(MINUTE_MS) != 0)) * MINUTE_MS
    };
    let (lo, hi) = (ceil(from).max(minutes_from), to.div_euclid(MINUTE_MS) * MINUTE_MS);
    let raw = tx.prepare_cached("SELECT count(*) FROM readings WHERE ts >= $1 AND ts < $2").await?;
    let mut n: i64 = 0;
    if lo >= hi {
        n += tx.query_one(&raw, &[&time::to_time(from)?, &time::to_time(to)?]).await?.get::<_, i64>(0);
    } else {
        let summed = tx
            .prepare_cached(&format!(
                "SELECT coalesce(sum(count), 0)::int8 FROM {} WHERE start >= $1 AND start < $2",
                TABLES[0]
            ))
            .await?;
        let [from, lo, hi, to] = [from, lo, hi, to].map(time::to_time);
        let (from, lo, hi, to) = (from?, lo?, hi?, to?);
        n += tx.query_one(&raw, &[&from, &lo]).await?.get::<_, i64>(0);
        n += tx.query_one(&summed, &[&lo, &hi]).await?.get::<_, i64>(0);
        n += tx.query_one(&raw, &[&hi, &to]).await?.get::<_, i64>(0);
    }
    u64::try_from(n).map_err(|_| PgError::Corrupt(format!("{n} readings")))
}

const _: () = assert!(LEVELS == 2 && LEVEL_NAMES.len() == LEVELS + 1);
