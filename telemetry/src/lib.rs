//! Shared telemetry types: the device payload contract, MQTT topics, live events and
//! history buckets. Pure (serde + chrono), so the server, the WASM app and the simulator
//! all speak exactly the same language.
//!
//! # Layout
//! - [`name`]: device ids and metric names (`[A-Za-z0-9_.-]{1,64}`).
//! - [`topic`]: `app/device/<id>/telemetry`, `.../status` and `.../attributes`.
//! - [`payload`]: parsing and validating a device's JSON message.
//! - [`decode`]: topic + payload → readings, a status or a [`Rejection`] (every edge's one
//!   decoder); [`rejection`]: why something was refused, with its `/metrics` label.
//! - [`text`]: outside text made safe for a log line.
//! - [`timestamp`]: the timestamp rules (RFC 3339, naive = UTC, sane range).
//! - [`live`]: events pushed to dashboards over `/ws/live`.
//! - [`rhythm`]: how often a device reports, learned from when its readings arrive;
//!   [`attributes`]: what a device says about itself (firmware, …), and the events on its page;
//!   [`connections`]: its connection log (why each ended) and availability.
//! - [`history`]: downsampled buckets for charts, in the viewer's local days from a day up;
//!   `zone` (feature `zones`, server only): time zones by IANA name, which give those days.
//! - [`device`]: what the dashboard knows about a device; [`tags`]: the `key=value` tags
//!   people give devices; [`query`]: the fleet query language (`tag:site=greenhouse
//!   fw!=1.4.2`) and groups (saved queries); [`fleet`]: what a query reads of a device, the
//!   signal and battery bands, the fleet view's rows.
//! - [`dashboard`]: dashboards, widgets, grid layouts per screen size, time ranges.
//! - [`source`]: the read-side interface the UI's server functions use.
//! - [`auth`]: roles and the signed-in user as the UI sees them.
//! - [`accounts`]: users and device keys, as the admin page manages them.
//! - [`alarm`]: alarm rules, alarms and the state machine that opens and clears them;
//!   [`notify`]: notification channels and what they are sent.
//! - [`command`]: commands to devices, their answers and the state machine they go through.
//! - [`command_desk`]: making, canceling and listing them from the dashboard's pages.
//! - [`control`]: dashboard controls (switch, button, number, select) bound to a command or a
//!   desired key; [`control_desk`]: operating them from a dashboard.
//! - [`desired`]: desired and reported state (device shadow), versions and whether they agree.

pub mod accounts;
pub mod alarm;
pub mod attributes;
pub mod auth;
pub mod command;
pub mod command_desk;
pub mod connections;
pub mod control;
pub mod control_desk;
pub mod dashboard;
pub mod decode;
pub mod desired;
pub mod device;
pub mod fleet;
pub mod history;
pub mod live;
pub mod name;
pub mod notify;
pub mod payload;
pub mod query;
pub mod rejection;
pub mod rhythm;
pub mod source;
pub mod tags;
pub mod text;
pub mod timestamp;
pub mod topic;
#[cfg(feature = "zones")]
pub mod zone;

pub use accounts::{AccountError, Accounts, IssuedKey, UserEntry};
pub use auth::{Access, Role, SessionUser};
pub use decode::{Decoded, decode, decode_http_item, own_topic};
pub use device::{DeviceStatus, DeviceSummary, MetricLatest};
pub use history::{Bucket, History};
pub use live::LiveEvent;
pub use name::{DeviceId, NameError, valid_name};
pub use payload::{DropReason, DroppedMetric, Message, RejectReason};
pub use rejection::{Refused, RefusedId, RefusedIds, Rejection};
pub use source::{Current, DashboardStore, DeviceAdmin, SaveError, SourceError, TelemetrySource};
pub use timestamp::TimestampSource;
pub use topic::DeviceTopic;

/// Milliseconds since the Unix epoch, UTC. Every time on the wire and on disk is one.
pub type Millis = i64;
