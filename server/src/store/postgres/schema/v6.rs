//! Version 6: the device registry beside `devices` (which ingest keeps: first and last seen,
//! stored messages):
//! - `device_records`: one row per device the store knows (a status alone makes one, as a
//!   reading does): its status (`status_at` in milliseconds, `status_session` the device's u64
//!   session counter kept bit for bit), name, note, the interval someone set, and as JSON what
//!   is only ever read and rewritten whole under the row's lock: its attributes (sorted, at most
//!   `attributes::MAX_ATTRIBUTES`), each metric's latest value and reading time, and the gaps
//!   its interval is learned from. Times are milliseconds, as the device and broker report
//!   them. Writers lock the row (`FOR UPDATE`), so two nodes reporting on one device take turns.
//! - `device_events`: each device's events (firmware changes, reboots) by change number, the
//!   latest `attributes::MAX_DEVICE_EVENTS` kept; the key serves its page newest first.
//! - `connections`: each device's connections to an embedded broker by the time each was made,
//!   the latest `connections::MAX_LOGGED` kept; `open` marks those not ended, and the partial
//!   index finds them at a start without reading the log.

pub(super) const SQL: &str = "
CREATE TABLE device_records (
    id text PRIMARY KEY,
    status_online boolean,
    status_at bigint,
    status_session bigint,
    name text,
    note text,
    interval_set bigint,
    attributes jsonb NOT NULL DEFAULT '[]',
    metrics jsonb NOT NULL DEFAULT '{}',
    rhythm jsonb NOT NULL DEFAULT '{}'
);
CREATE TABLE device_events (
    device text NOT NULL,
    seq bigint NOT NULL,
    event jsonb NOT NULL,
    PRIMARY KEY (device, seq)
);
CREATE TABLE connections (
    device text NOT NULL,
    id bigint NOT NULL,
    entry jsonb NOT NULL,
    open boolean NOT NULL,
    PRIMARY KEY (device, id)
);
CREATE INDEX connections_open ON connections (device, id) WHERE open;
";
