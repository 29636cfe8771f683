//! Version 3: dashboards, tags, retained messages and desired state.
//! - `dashboards` ([`super::super::dashboards`]): one row per dashboard, its JSON, with the
//!   `updated` stamp a save is checked against in a column of its own. At most
//!   `MAX_DASHBOARDS` (200): counted under a lock as one is created, so no index beyond the key.
//! - `devices.tags` ([`super::super::tags`]): a device's tags (a JSON object of strings) on its
//!   registry row, which the change numbering already locks in id order; `{}` for none.
//! - `retained` ([`super::super::retained`]): the broker's retained message per topic: its
//!   JSON without the payload, the payload as bytes, and its owner and payload size in
//!   columns, indexed by owner, so an owner's usage is read from a few rows. The totals are
//!   two counter rows (`retained_count`, `retained_bytes`), whose lock also makes nodes take
//!   turns changing retained messages, so the caps hold across nodes.
//! - `shadows` ([`super::super::desired`]): each device's desired and reported state, its
//!   JSON; how many there are is the `shadows` counter row (a cap of `MAX_SHADOWS`).

pub(super) const SQL: &str = "
CREATE TABLE dashboards (
    id text PRIMARY KEY,
    updated bigint NOT NULL,
    doc jsonb NOT NULL
);
ALTER TABLE devices ADD COLUMN tags jsonb NOT NULL DEFAULT '{}';
CREATE TABLE retained (
    topic text PRIMARY KEY,
    owner text NOT NULL,
    bytes integer NOT NULL,
    meta jsonb NOT NULL,
    payload bytea NOT NULL
);
CREATE INDEX retained_owner ON retained (owner);
CREATE TABLE shadows (
    device text PRIMARY KEY,
    doc jsonb NOT NULL
);
INSERT INTO counters (name, value) VALUES
    ('retained_count', 0), ('retained_bytes', 0), ('shadows', 0);
";
