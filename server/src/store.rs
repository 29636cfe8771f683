//! Durable storage of readings, device registry, status and attributes. [`Store`] is what
//! ingest writes through; reads go through [`telemetry::TelemetrySource`], which every store
//! implements.

mod api;
mod bulks;
mod change_log;
mod chunks;
mod codec;
mod commands;
mod connection_log;
mod desired;
mod device_events;
mod error;
mod handle;
mod head;
mod maps;
mod outcome;
pub mod postgres;
mod redb_store;
mod registry;
mod retained;
mod retention;
mod rollup;
mod series_ids;

pub use api::{
    AlarmState, AlarmStore, AttributesReport, CommitOutcome, ConnectionChange, ConnectionReport, GroupStore,
    Incoming, MAX_ALARM_LOG, MAX_DONE_DELIVERIES, Pruned, Report, StatusReport, Store, TagStore,
};
pub use bulks::{Bulk, BulkMember, BulkStore, MAX_BULKS};
pub use commands::{CommandOp, CommandRefusal, CommandStore, CommandsApplied, MAX_HISTORY_PER_DEVICE};
pub use desired::{DesiredApplied, DesiredOp, DesiredRefusal, DesiredStore, MAX_SHADOWS};
pub use error::StoreError;
pub use redb_store::RedbStore;
pub use retained::{
    RetainStore, RetainedCaps, RetainedChange, RetainedMessage, RetainedProperties, RetainedUsage,
};
pub use retention::{Horizons, Retention};

#[cfg(test)]
mod engine_tests;
