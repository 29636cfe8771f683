//! What can go wrong talking to PostgreSQL.

use telemetry::Millis;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The URL or a setting is not usable (said before connecting).
    #[error("postgres: {0}")]
    Setting(String),
    #[error("postgres: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// No connection from the pool (the database is down or the pool is exhausted past its
    /// wait).
    #[error("postgres: no connection: {}", with_causes(.0))]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The database was migrated by a newer server.
    #[error("postgres: the database's schema is version {found}, newer than this server's {known}")]
    NewerSchema { found: i32, known: i32 },
    /// A reading's time outside what the store keeps (the decoder already refuses these).
    #[error("postgres: reading time {0} ms is out of range")]
    Time(Millis),
    /// The database holds something this server cannot read.
    #[error("postgres: {0}")]
    Corrupt(String),
}

/// An error with what caused it, as far down as it goes ("error performing TLS handshake:
/// invalid peer certificate: UnknownIssuer"), so the log says why a connection failed.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        cause = c.source();
    }
    text
}

impl PgError {
    /// What of it the read side is told ([`telemetry::SourceError`]).
    pub fn kind(&self) -> telemetry::SourceError {
        use telemetry::SourceError;
        match self {
            // Down, unreachable or out of connections: worth trying again.
            PgError::Pool(_) => SourceError::Unavailable,
            PgError::Db(e) if e.is_closed() => SourceError::Unavailable,
            PgError::Corrupt(_) => SourceError::Corrupt,
            PgError::Setting(_) | PgError::Db(_) | PgError::NewerSchema { .. } | PgError::Time(_) => {
                SourceError::Failed
            }
        }
    }
}

impl From<PgError> for super::super::StoreError {
    fn from(e: PgError) -> Self {
        super::super::StoreError::Database { kind: e.kind(), source: Box::new(e) }
    }
}
