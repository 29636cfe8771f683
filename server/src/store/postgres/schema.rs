//! The schema and its migrations: each version's SQL, applied in order, all in one
//! transaction under an advisory lock, so nodes starting at once take turns and a failure
//! leaves the database as it was. `schema_versions` lists what is applied; a database newer
//! than this server is refused.
//!
//! Version 1:
//! - `settings`: what the database was made with (the partition span).
//! - `devices`: the registry, one row per device that sent a reading: first and last seen
//!   (server time), stored messages, its latest change's number.
//! - `series`: (device, metric) → a number, so a reading row is 20 bytes of data.
//! - `readings`: (series, ts, value), partitioned by range of `ts` ([`super::partitions`]).
//!   The primary key (series, ts) is both what makes a redelivery a no-op and the index a
//!   device's series is read by; BRIN on `ts` serves scans of a time range across series at
//!   almost no cost, since rows arrive roughly in time order.
//! - `changes`: the change log, numbered by the `change_seq` counter ([`super::change_log`]),
//!   BRIN on its time for pruning by age.
//! - `counters`: named counters.

use deadpool_postgres::Object;

use super::error::PgError;
use super::span::Span;

/// The newest schema version this server knows.
pub const LATEST_VERSION: i32 = 1;

/// The advisory lock key for migrations ("schema" in ASCII).
const LOCK: i64 = 0x0000_7363_6865_6d61;

const V1: &str = "
CREATE TABLE settings (
    name text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE devices (
    id text PRIMARY KEY,
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    message_count bigint NOT NULL,
    last_change bigint NOT NULL
);
CREATE TABLE series (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device text NOT NULL,
    metric text NOT NULL,
    UNIQUE (device, metric)
);
CREATE TABLE readings (
    series integer NOT NULL,
    ts timestamptz NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (series, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX readings_ts ON readings USING brin (ts);
CREATE TABLE changes (
    seq bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    event json NOT NULL
);
CREATE INDEX changes_at ON changes USING brin (at);
CREATE TABLE counters (
    name text PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO counters (name, value) VALUES ('change_seq', 0);
";

/// Every version's SQL, in order.
const MIGRATIONS: &[(i32, &str)] = &[(1, V1)];

/// Brings the schema up to date; answers the partition span the database keeps (`span` for
/// a new one).
pub(super) async fn migrate(client: &mut Object, span: Span) -> Result<Span, PgError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_versions (
            version integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let found: i32 = tx.query_one("SELECT coalesce(max(version), 0) FROM schema_versions", &[]).await?.get(0);
    if found > LATEST_VERSION {
        return Err(PgError::NewerSchema { found, known: LATEST_VERSION });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO schema_versions (version) VALUES ($1)", &[version]).await?;
        tracing::info!(version, "postgres: schema migrated");
    }
    tx.execute(
        "INSERT INTO settings (name, value) VALUES ('partition_span_hours', $1) ON CONFLICT DO NOTHING",
        &[&span.hours().to_string()],
    )
    .await?;
    let stored: String =
        tx.query_one("SELECT value FROM settings WHERE name = 'partition_span_hours'", &[]).await?.get(0);
    let stored = stored
        .parse()
        .ok()
        .and_then(Span::from_hours)
        .ok_or_else(|| PgError::Corrupt(format!("partition_span_hours is {stored:?}")))?;
    tx.commit().await?;
    Ok(stored)
}
