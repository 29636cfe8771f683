//! The dashboard UI: Leptos components rendered on the server and hydrated in the browser,
//! plus the server functions they call. The browser's entry point, which hydrates [`App`], is
//! the `frontend` crate.
//!
//! # Layout
//! - [`app`]: the HTML shell, routes and top bar; [`account`]: who is signed in.
//! - [`board`]: what a dashboard's widgets share.
//! - [`api`]: server functions (device list, one device, history), their error type and the
//!   encoding their answers travel in.
//! - [`live`]: live state merged over server data; `socket` (browser only) keeps `/ws/live`
//!   connected and fetches missed changes.
//! - [`offline`]: the IndexedDB cache behind the offline-capable installed app.
//! - [`format`]: units, numbers, times and ages as shown on screen.
//! - [`grid`]: the dashboard grid's move, resize and compaction rules.
//! - [`series`]: a metric's history kept current with live readings (charts, stats).
//! - [`pages`]: the device overview and a device's history page.
//! - [`widgets`]: device card and line chart.

// Leptos view types nest deeply; release builds (without type erasure) need the headroom.
#![recursion_limit = "512"]

pub mod account;
pub mod api;
pub mod app;
pub mod board;
pub mod browser;
pub mod confirm;
pub mod dom;
pub mod format;
pub mod grid;
pub mod live;
pub mod offline;
pub mod pages;
pub mod series;
#[cfg(feature = "hydrate")]
mod socket;
pub mod theme;
pub mod widgets;

pub use app::{App, shell};
