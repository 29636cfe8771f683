//! The settings and the connection pool. Every connection gets its own staging table for
//! ingest when it is made.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::error::PgError;
use super::span::Span;

/// Connections a node keeps at most.
pub const MAX_POOL: usize = 256;
/// How long a connection is waited for, made or taken from the pool.
const WAIT: Duration = Duration::from_secs(10);

/// Where the database is and how to use it.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// A libpq-style URL (`postgres://user:password@host:port/database`) or key=value string,
    /// over TCP or a unix socket (`host=/path`). Its `sslmode` decides TLS: `prefer` (the
    /// default: TLS when the server offers it), `require`, or `disable`; when TLS is used the
    /// server's certificate is always verified, against `ca_file`.
    pub url: String,
    /// The certificate authorities (PEM) the database's certificate is checked against; empty:
    /// the system's.
    pub ca_file: PathBuf,
    /// Connections kept at most, 1..=[`MAX_POOL`].
    pub pool_size: usize,
    /// The readings' partition span for a new database.
    pub span: Span,
}

impl PgSettings {
    /// `url` with 8 connections and daily partitions.
    pub fn new(url: impl Into<String>) -> PgSettings {
        PgSettings { url: url.into(), ca_file: PathBuf::new(), pool_size: 8, span: Span::DAY }
    }
}

/// Each connection's staging table, where a batch is copied before it is merged into the
/// readings when it may hold readings already stored (COPY cannot skip them; ingest.rs says
/// when). Temporary, so private to the connection; emptied at every commit, so a batch never
/// sees another's rows, and a rollback empties it too.
const STAGING: &str = "CREATE TEMPORARY TABLE incoming (
    series integer NOT NULL,
    ts timestamptz NOT NULL,
    value double precision NOT NULL
) ON COMMIT DELETE ROWS";

/// How a node connects: the settings parsed, and TLS.
#[derive(Clone)]
pub(super) struct Connect {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
}

/// The pool, and how to connect (for connections of its own, as a listener's).
pub(super) fn pool(settings: &PgSettings) -> Result<(Pool, Connect), PgError> {
    if !(1..=MAX_POOL).contains(&settings.pool_size) {
        return Err(PgError::Setting(format!("pool size must be 1 to {MAX_POOL}")));
    }
    // The parser's message names the bad option, never the password.
    let mut config = tokio_postgres::Config::from_str(&settings.url)
        .map_err(|e| PgError::Setting(format!("the database URL is not usable: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(WAIT);
    }
    if config.get_application_name().is_none() {
        config.application_name("iot-dashboard");
    }
    // Fast: a reused connection is only checked for being open. (Clean would run DISCARD
    // ALL, which drops the staging table.)
    let tls = crate::tls::client::config(&settings.ca_file)
        .map_err(|e| PgError::Setting(format!("TLS to the database: {e}")))?;
    let tls = MakeRustlsConnect::new((*tls).clone());
    let manager = Manager::from_config(
        config.clone(),
        tls.clone(),
        ManagerConfig { recycling_method: RecyclingMethod::Fast },
    );
    let pool = Pool::builder(manager)
        .max_size(settings.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(WAIT))
        .create_timeout(Some(WAIT))
        .post_create(Hook::async_fn(|client, _| {
            Box::pin(async move {
                client.batch_execute(STAGING).await.map_err(HookError::Backend)?;
                // An acknowledgement means the commit is flushed: a database whose default
                // is `synchronous_commit = off` would lose the last acknowledged batches in a
                // crash (the kill -9 test catches that), so this session flushes. Stronger
                // settings (waiting for standbys) are kept.
                let row =
                    client.query_one("SHOW synchronous_commit", &[]).await.map_err(HookError::Backend)?;
                if row.get::<_, &str>(0) == "off" {
                    client.batch_execute("SET synchronous_commit = on").await.map_err(HookError::Backend)?;
                }
                Ok(())
            })
        }))
        .build()
        .map_err(|e| PgError::Setting(format!("the pool: {e}")))?;
    Ok((pool, Connect { config, tls }))
}
