//! The schema and its migrations: each version's SQL, applied in order, all in one
//! transaction under an advisory lock, so nodes starting at once take turns and a failure
//! leaves the database as it was. `schema_versions` lists what is applied; a database newer
//! than this server is refused.
//!
//! Each version's SQL is in its own file (`schema/vN.rs`), with what it adds.

use deadpool_postgres::Object;

use super::error::PgError;
use super::span::Span;

mod v1;
mod v10;
mod v11;
mod v2;
mod v3;
mod v4;
mod v5;
mod v6;
mod v7;
mod v8;
mod v9;

/// The newest schema version this server knows.
pub const LATEST_VERSION: i32 = 11;

/// The advisory lock key for migrations ("schema" in ASCII).
const LOCK: i64 = 0x0000_7363_6865_6d61;

/// Every version's SQL, in order.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, v1::SQL),
    (2, v2::SQL),
    (3, v3::SQL),
    (4, v4::SQL),
    (5, v5::SQL),
    (6, v6::SQL),
    (7, v7::SQL),
    (8, v8::SQL),
    (9, v9::SQL),
    (10, v10::SQL),
    (11, v11::SQL),
];

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
