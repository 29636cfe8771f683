//! The readings' time partitions. Each holds one span of time (a day unless the database was
//! made with another span), aligned to whole spans since 1970 UTC, and is named for its start
//! in UTC: `readings_p2025120600` holds 2025-12-06 from 00:00. Ingest makes the partitions a
//! batch needs before it writes (and upkeep may make them ahead); retention drops a partition
//! once all of it is older than the horizon: one `DROP TABLE`, no row-by-row delete.
//!
//! Making and dropping partitions takes one advisory lock, so nodes doing it at once queue
//! instead of racing on the same name. A partition is made standalone and then attached,
//! which locks the parent only against other schema changes (SHARE UPDATE EXCLUSIVE), not
//! against ingest or reads. Dropping one locks the parent exclusively for a moment; the
//! transaction gives up after [`LOCK_WAIT`] rather than queue ingest behind a long read.
//! (`DETACH PARTITION … CONCURRENTLY` would avoid that lock, at the price of a two-step
//! drop that can be left half done; not needed at one drop per span.)

use chrono::{DateTime, NaiveDateTime};
use telemetry::Millis;

use super::error::PgError;
use super::store::PgStore;
use super::time;

/// The advisory lock key for making and dropping partitions ("readings" in ASCII).
const LOCK: i64 = 0x7265_6164_696e_6773;
/// How long dropping waits for the parent's lock.
const LOCK_WAIT: &str = "5s";
/// A partition's name: this, then its start as `%Y%m%d%H` in UTC.
const PREFIX: &str = "readings_p";
/// Partitions one call makes at most: a batch's readings span at most a few (the decoder
/// keeps times within years), and upkeep asks for a few ahead.
const MAX_MADE: usize = 400;

/// The name of the partition starting at `start`.
pub(super) fn name(start: Millis) -> String {
    let at = DateTime::from_timestamp_millis(start).expect("within the store's times");
    format!("{PREFIX}{}", at.format("%Y%m%d%H"))
}

/// The start of the partition named `name`, if it is one of ours.
pub(super) fn start(name: &str) -> Option<Millis> {
    let digits = name.strip_prefix(PREFIX)?;
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let at = NaiveDateTime::parse_from_str(&format!("{digits}00"), "%Y%m%d%H%M").ok()?;
    Some(at.and_utc().timestamp_millis())
}

impl PgStore {
    /// Makes sure a partition holds every time in `from..=to` (each made unless it exists);
    /// answers how many this call made.
    pub async fn ensure_partitions(&self, from: Millis, to: Millis) -> Result<u32, PgError> {
        time::to_time(from)?;
        time::to_time(to)?;
        let (first, last) = (self.span.start_of(from), self.span.start_of(to));
        let count = (last - first) / self.span.millis() + 1;
        if count > MAX_MADE as Millis {
            return Err(PgError::Setting(format!("{count} partitions at once; at most {MAX_MADE}")));
        }
        let starts: Vec<Millis> = (0..count).map(|i| first + i * self.span.millis()).collect();
        self.ensure_starts(&starts).await
    }

    /// Makes the partitions starting at `starts` that this node does not know of.
    pub(super) async fn ensure_starts(&self, starts: &[Millis]) -> Result<u32, PgError> {
        let missing: Vec<Millis> = {
            let known = self.partitions.lock().expect("partitions lock");
            starts.iter().copied().filter(|s| !known.contains(s)).collect()
        };
        if missing.is_empty() {
            return Ok(0);
        }
        if missing.len() > MAX_MADE {
            return Err(PgError::Setting(format!(
                "{} partitions at once; at most {MAX_MADE}",
                missing.len()
            )));
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK]).await?;
        let mut made = 0;
        for &start in &missing {
            let name = name(start);
            let exists: bool = tx.query_one("SELECT to_regclass($1) IS NOT NULL", &[&name]).await?.get(0);
            if exists {
                continue;
            }
            let from = time::to_time(start)?;
            let to = time::to_time(start + self.span.millis())?;
            // Bounds as parameters cannot go in DDL: written as UTC literals from our own
            // numbers, and the name is ours.
            let (from, to) = (literal(from), literal(to));
            tx.batch_execute(&format!(
                "CREATE TABLE \"{name}\" (series integer NOT NULL, ts timestamptz NOT NULL, \
                 value double precision NOT NULL);
                 ALTER TABLE readings ATTACH PARTITION \"{name}\" FOR VALUES FROM ('{from}') TO ('{to}');"
            ))
            .await?;
            made += 1;
        }
        tx.commit().await?;
        self.partitions.lock().expect("partitions lock").extend(missing);
        Ok(made)
    }

    /// Drops every partition that ends at or before `horizon`: all it holds is older. Answers
    /// the names dropped.
    pub async fn drop_partitions_before(&self, horizon: Millis) -> Result<Vec<String>, PgError> {
        let mut dropped = Vec::new();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK]).await?;
        tx.batch_execute(&format!("SET LOCAL lock_timeout = '{LOCK_WAIT}'")).await?;
        for name in list(&tx).await? {
            let Some(start) = start(&name) else { continue };
            if start.checked_add(self.span.millis()).is_some_and(|end| end <= horizon) {
                tx.batch_execute(&format!("DROP TABLE \"{name}\"")).await?;
                dropped.push((start, name));
            }
        }
        tx.commit().await?;
        let mut known = self.partitions.lock().expect("partitions lock");
        for (start, _) in &dropped {
            known.remove(start);
        }
        Ok(dropped.into_iter().map(|(_, name)| name).collect())
    }

    /// The readings' partitions, oldest first.
    pub async fn partitions(&self) -> Result<Vec<String>, PgError> {
        let client = self.pool.get().await?;
        let mut names = list(&client).await?;
        names.retain(|n| start(n).is_some());
        names.sort();
        Ok(names)
    }

    /// Forgets which partitions exist (another node dropped one this node knew of).
    pub(super) fn forget_partitions(&self) {
        self.partitions.lock().expect("partitions lock").clear();
    }
}

/// The partitions attached to `readings`.
async fn list(client: &impl deadpool_postgres::GenericClient) -> Result<Vec<String>, PgError> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'readings'::regclass",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A time as a `timestamptz` literal in UTC.
fn literal(t: std::time::SystemTime) -> String {
    DateTime::<chrono::Utc>::from(t).format("%Y-%m-%d %H:%M:%S+00").to_string()
}

#[cfg(test)]
mod tests {
    use super::super::span::Span;
    use super::*;

    #[test]
    fn names_say_the_start_in_utc_and_read_back() {
        let day = Span::DAY;
        // 2025-12-06 13:45 UTC
        let ts = 1_765_028_700_000;
        let start = day.start_of(ts);
        assert_eq!(name(start), "readings_p2025120600");
        assert_eq!(super::start("readings_p2025120600"), Some(start));
        let hourly = Span::from_hours(1).unwrap();
        assert_eq!(name(hourly.start_of(ts)), "readings_p2025120613");
        for other in ["readings", "readings_p2026", "readings_p20261206xx", "readings_p2026133200", "other"] {
            assert_eq!(super::start(other), None, "{other}");
        }
    }
}
