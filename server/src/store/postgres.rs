//! A PostgreSQL store: cluster mode's (issue 18), where several nodes share one database, and
//! what `storage.postgres_url` selects. All of [`super::Store`] and sign-in's
//! [`crate::auth::UserStore`]: readings partitioned by time (retention dropping whole
//! partitions) with their rollups, the device registry, the change log numbered so a tail
//! never skips a row and announced to every node (LISTEN/NOTIFY), alarms and the notification
//! outbox, commands, dashboards, tags, groups, retained messages, desired state, users and
//! sessions, and leases for work one node at a time does.
//!
//! # Why tokio-postgres with deadpool-postgres
//! - Binary COPY: `tokio_postgres::binary_copy::BinaryCopyInWriter` writes typed rows in
//!   PostgreSQL's binary format, the fastest way in. sqlx's `copy_in_raw` takes bytes we
//!   would have to format ourselves.
//! - No database at compile time: queries are strings prepared at run time (and cached per
//!   connection). sqlx's checked macros want a live database or a committed offline cache
//!   for every build, CI's included.
//! - Maturity: rust-postgres (tokio-postgres, postgres-types, postgres-protocol) has been the
//!   Rust PostgreSQL client since 2013, pure Rust (no libpq), and is what diesel-async and
//!   deadpool build on. deadpool-postgres is the small pool made for it: a health check when
//!   a connection is reused and a hook when one is made (which makes the session's staging
//!   table).
//!
//! The [`super::Store`] traits are synchronous, so [`PgBlocking`] runs these async functions on
//! a runtime of its own (blocking.rs says why).
//!
//! # Layout
//! - `store`: [`PgStore`], a node's handle, and opening it.
//! - `blocking`: [`PgBlocking`], the store for the synchronous traits, on a runtime of its own.
//! - `pool`: settings, the pool, each connection's staging table.
//! - `span`: how much time a partition holds.
//! - `schema`: the migrations, applied in order under a lock, each in its transaction.
//! - `partitions`: the readings' time partitions: naming, making ahead, dropping.
//! - `ingest`: a batch of readings in one transaction (COPY, de-duplication, change log,
//!   devices).
//! - `leases`: who does once-only work, with a fencing epoch.
//! - `change_log`: change numbers that become visible in order, and the tail.
//! - `follow`: hearing of other nodes' changes (LISTEN/NOTIFY).
//! - `reads`: what the read side reads back (a series' points, the change log as events, a
//!   device's counts).
//! - `rollups`: minute and hour summaries, kept by ingest, and how a range is read from them.
//! - `history`: a metric's downsampled history, from the rollups.
//! - `retention`: pruning each level past its horizon.
//! - `groups`: saved fleet queries.
//! - `records`: the device registry's rows as the redb store's records, and summaries.
//! - `reports`: a commit's share of the registry (latest values, statuses, attributes,
//!   connections, device events), in its transaction.
//! - `device_events`: each device's events, bounded.
//! - `connections`: each device's connection log, bounded; ending open ones; availability.
//! - `device_admin`: names, notes, expected intervals, deleting a device.
//! - `users`: users, sign-in sessions and device keys (`crate::auth::UserStore`).
//! - `alarms`: alarm rules, channels, rule states, alarms and their logs; an alarm commit's share.
//! - `docs`: records kept whole as JSON beside the columns they are found by.
//! - `deliveries`: the notification outbox, safe for two nodes' senders.
//! - `dashboards`: dashboards, saved against the copy loaded.
//! - `starter`: the starter dashboard a new database gets.
//! - `tags`: devices' tags, each change numbered.
//! - `retained`: the broker's retained messages, their caps checked again at commit.
//! - `desired`: devices' desired and reported state, versioned.
//! - `commands`: commands to devices, their transitions made on locked rows.
//! - `bulks`: bulk commands and each device's place in them.
//! - `node`: the `Store` trait: one commit of everything a batch carries, and upkeep.
//! - `source`: the read side (`TelemetrySource`) for the synchronous callers.
//! - `time`: milliseconds to and from `timestamptz`.
//! - `error`: what can go wrong.

mod alarm_work;
mod alarms;
mod blocking;
mod bulks;
mod change_log;
mod commands;
mod connections;
mod dashboards;
mod deliveries;
mod desired;
mod device_admin;
mod device_events;
mod docs;
mod error;
mod follow;
mod groups;
mod history;
mod ingest;
mod leases;
mod node;
mod owned;
mod partitions;
mod pool;
mod reads;
mod records;
mod reports;
mod retained;
mod retention;
mod rollups;
mod schema;
mod source;
mod span;
mod starter;
mod store;
mod tags;
mod time;
mod users;

pub use alarm_work::{ActFrom, LEASE_PREFIX as ALARM_LEASE_PREFIX, lease_name as alarm_lease};
pub use blocking::PgBlocking;
pub use change_log::MAX_TAIL;
pub use error::PgError;
pub use follow::Follower;
pub use history::LocalEdges;
pub use ingest::{Besides, MAX_BATCH};
pub use leases::{Held, LENGTH_MS as LEASE_LENGTH_MS, PARTITIONS, Seen, partition};
pub use owned::{Fence, WorkState};
pub use pool::{MAX_POOL, PgSettings};
pub use reads::{DeviceCounts, MAX_POINTS};
pub use schema::LATEST_VERSION;
pub use span::Span;
pub use store::PgStore;
