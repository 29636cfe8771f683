//! Reading times are milliseconds since 1970 ([`Millis`]); the database keeps `timestamptz`
//! (microseconds), which operators can read and partition by. Both ways are exact for
//! milliseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use telemetry::Millis;

use super::error::PgError;

/// The earliest reading time stored: what the decoder accepts (2000-01-01).
pub(super) const EARLIEST: Millis = telemetry::timestamp::EARLIEST;
/// The latest: 3000-01-01, far past anything a device may send (the decoder allows an hour
/// ahead) and well inside what `timestamptz` holds.
pub(super) const LATEST: Millis = 32_503_680_000_000;

/// `ms` as a time, if it is one the store keeps.
pub(super) fn to_time(ms: Millis) -> Result<SystemTime, PgError> {
    if !(EARLIEST..LATEST).contains(&ms) {
        return Err(PgError::Time(ms));
    }
    let after = u64::try_from(ms).map_err(|_| PgError::Time(ms))?;
    Ok(UNIX_EPOCH + Duration::from_millis(after))
}

/// A time read back, in milliseconds (times before 1970 are never stored).
pub(super) fn from_time(t: SystemTime) -> Result<Millis, PgError> {
    let since = t.duration_since(UNIX_EPOCH).map_err(|_| PgError::Corrupt("a time before 1970".into()))?;
    Millis::try_from(since.as_millis()).map_err(|_| PgError::Corrupt("a time past the year 3000".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_round_trip_and_out_of_range_is_refused() {
        for ms in [EARLIEST, 1_765_000_000_123, LATEST - 1] {
            assert_eq!(from_time(to_time(ms).unwrap()).unwrap(), ms);
        }
        assert!(matches!(to_time(EARLIEST - 1), Err(PgError::Time(_))));
        assert!(matches!(to_time(LATEST), Err(PgError::Time(_))));
        assert!(matches!(to_time(-5), Err(PgError::Time(_))));
    }
}
