//! Alarms on the server: the engine that runs every rule for every device and opens, changes
//! and clears alarms ([`engine`]). What it decides is committed with the readings, tick or
//! action that caused it (the ingest writer), and notified through [`crate::notify`].

pub mod engine;
