//! Version 1, the readings side:
//! - `settings`: what the database was made with (the partition span).
//! - `devices`: the registry, one row per device that sent a reading: first and last seen
//!   (server time), stored messages, its latest change's number.
//! - `series`: (device, metric) → a number, so a reading row is 20 bytes of data.
//! - `readings`: (series, ts, value), partitioned by range of `ts` ([`super::super::partitions`]).
//!   The primary key (series, ts) is both what makes a redelivery a no-op and the index a
//!   device's series is read by; BRIN on `ts` serves scans of a time range across series at
//!   almost no cost, since rows arrive roughly in time order.
//! - `changes`: the change log, numbered by the `change_seq` counter ([`super::super::change_log`]),
//!   BRIN on its time for pruning by age.
//! - `counters`: named counters.

pub(super) const SQL: &str = "
CREATE TABLE settings (
    name text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE devices (
    id text PRIMARY KEY,
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    message_count bigint NOT NULL,
    last_change bigint NOT NULL
);
CREATE TABLE series (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device text NOT NULL,
    metric text NOT NULL,
    UNIQUE (device, metric)
);
CREATE TABLE readings (
    series integer NOT NULL,
    ts timestamptz NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (series, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX readings_ts ON readings USING brin (ts);
CREATE TABLE changes (
    seq bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    event json NOT NULL
);
CREATE INDEX changes_at ON changes USING brin (at);
CREATE TABLE counters (
    name text PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO counters (name, value) VALUES ('change_seq', 0);
";
