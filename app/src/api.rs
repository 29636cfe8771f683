//! Server functions: the only way the UI reads and changes data, by domain ([`devices`] and
//! their [`commands`], the dashboards' [`controls`],
//! [`fleet`] (tags, groups, the fleet list), [`dashboards`], [`auth`], [`alarms`], and for
//! admins only [`users`] and [`device_keys`]).
//! Their bodies run on the server against the stores it provides as context.
//! Reads are GET requests, so the service worker can answer them from its cache when offline;
//! changes are POSTs. They answer with an [`ApiError`]; their bodies share the server-only
//! helpers in `ssr`, and their answers travel as [`codec`] says.

pub mod alarms;
pub mod auth;
pub mod codec;
pub mod commands;
pub mod controls;
pub mod dashboards;
pub mod desired;
pub mod device_keys;
pub mod devices;
mod error;
pub mod fleet;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod users;

pub use alarms::*;
pub use auth::*;
pub use commands::*;
pub use controls::*;
pub use dashboards::*;
pub use desired::*;
pub use device_keys::*;
pub use devices::*;
pub use error::ApiError;
pub use fleet::*;
pub use users::*;
