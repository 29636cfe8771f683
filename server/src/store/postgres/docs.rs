//! Records kept whole as JSON in a `doc` column (alarms, rules, channels, deliveries), beside
//! the columns they are found and sorted by: writing them, reading them back, and limits.

use serde_json::Value;

use super::error::PgError;

/// A record as the `doc` column keeps it.
pub(super) fn doc<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("records serialise")
}

/// A `doc` read back.
pub(super) fn parse<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<T, PgError> {
    serde_json::from_value(value).map_err(|e| PgError::Corrupt(format!("{what}: {e}")))
}

/// Every row's first column, read back.
pub(super) fn parse_all<T: serde::de::DeserializeOwned>(
    rows: Vec<tokio_postgres::Row>,
    what: &str,
) -> Result<Vec<T>, PgError> {
    rows.into_iter().map(|r| parse(r.get(0), what)).collect()
}

/// A limit as SQL's `LIMIT`.
pub(super) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
