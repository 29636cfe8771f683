//! The dashboard UI: Leptos components rendered on the server and hydrated in the browser,
//! plus the server functions they call. The browser's entry point, which hydrates [`App`], is
//! the `frontend` crate.
//!
//! # Layout
//! Rooms by job; each uses only rooms listed before it here. `tools/module_cycles.py` checks
//! that no two modules, or rooms (`--depth 1`), need each other.
//! - [`logic`]: pure code, tested natively: [`format`](logic::format) (units, numbers, times),
//!   [`grid`](logic::grid) (the dashboard grid's move, resize and compaction rules),
//!   [`series`](logic::series) (live readings folded into a history), chart maths
//!   ([`scale`](logic::scale), [`chart_data`](logic::chart_data)), and alarms as pages show
//!   them ([`alarms`](logic::alarms), [`rule_form`](logic::rule_form), and on charts:
//!   [`marks`](logic::marks)).
//! - [`api`]: server functions by domain, their error type ([`api::ApiError`]) and the
//!   encoding their answers travel in; server-only helpers in `api::ssr`.
//! - [`state`]: contexts the components share: [`live`](state::live) (live data merged over
//!   server data) and [`board`](state::board) (what a dashboard's widgets share).
//! - [`browser`]: the DOM, storage and the live feed: [`dom`](browser::dom) (element sizes),
//!   [`offline`](browser::offline) (the IndexedDB cache behind the installed app), `socket`
//!   (keeps `/ws/live` connected; browser only), [`theme`](browser::theme),
//!   [`zone`](browser::zone) (the browser's time zone, by name, for day buckets and CSVs); and
//!   `browser::start`, which starts them once the page is hydrated.
//! - [`widgets`]: reusable components, one per file (device card, charts, gauge, stat,
//!   table, status list, alarm list, range picker, widget settings, confirm box), and their
//!   data hooks: [`use_series`](widgets::use_series) (charts and stats) and
//!   [`use_marks`](widgets::use_marks) (alarm rules and bands on charts and gauges).
//! - [`topbar`]: the bar on every page (account menu, theme toggle, alarm and live badges)
//!   and the banners under it.
//! - [`pages`]: one component per route; [`pages::dashboard`] is split by what a person sees
//!   (editor, widget frame, grid binding, saving), and so are [`pages::alarms`] (the list, one
//!   alarm, the rules page with its editor, backtest, channels and deliveries) and
//!   [`pages::device`] (its vitals, attributes, events, tags, name and note).
//! - [`app`]: the HTML shell (and the [`Assets`] it links), the live-state context and the
//!   routes.

// Leptos view types nest deeply; release builds (without type erasure) need the headroom.
#![recursion_limit = "512"]

pub mod api;
pub mod app;
pub mod browser;
pub mod logic;
pub mod pages;
pub mod state;
pub mod topbar;
pub mod widgets;

pub use app::{App, Assets, shell};
