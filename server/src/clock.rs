//! Server time, the one clock every room reads.

use telemetry::Millis;

/// Server time now, in milliseconds.
pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}
