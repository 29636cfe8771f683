//! Version 5: commands and bulk commands ([`super::super::commands`], [`super::super::bulks`]).
//! - `commands`: one row per command kept, keyed (device, counter) as the redb store keys it,
//!   so a device's history pages by its primary key. `doc` is the command's JSON as the
//!   server writes it (`json`, not `jsonb`: the params' key order is what the device is sent);
//!   `status` is its state, the column a transition is conditional on; `open` (made from it)
//!   marks the unfinished ones, and the partial index on it lists them, counts a device's
//!   (its cap) and the server's (the global cap) without reading finished history. `device`
//!   sorts by bytes (`COLLATE "C"`), as the redb store's keys do, so every node lists and
//!   locks in the same order whatever the database's locale.
//! - `command_counters`: device → the latest counter handed out, kept when the commands go,
//!   so ids are never reused.
//! - `bulks`: one row per bulk kept, keyed by its counter; `doc` its JSON.
//! - `bulk_members`: (bulk, place) → the device's command id or why it has none; they go with
//!   their bulk (`ON DELETE CASCADE`) when it is dropped beyond the bulks kept.
//! - the `bulk_seq` counter: the latest bulk's counter (-1 before the first), whose row lock
//!   makes nodes opening bulks at once take turns.

pub(super) const SQL: &str = r#"
CREATE TABLE commands (
    device text COLLATE "C" NOT NULL,
    n bigint NOT NULL,
    status text NOT NULL,
    open boolean GENERATED ALWAYS AS (status IN ('QUEUED', 'SENT', 'DELIVERED')) STORED,
    doc json NOT NULL,
    PRIMARY KEY (device, n)
);
CREATE INDEX commands_open ON commands (device, n) WHERE open;
CREATE TABLE command_counters (
    device text PRIMARY KEY,
    last bigint NOT NULL
);
CREATE TABLE bulks (
    n bigint PRIMARY KEY,
    doc json NOT NULL
);
CREATE TABLE bulk_members (
    bulk bigint NOT NULL REFERENCES bulks (n) ON DELETE CASCADE,
    place integer NOT NULL,
    doc json NOT NULL,
    PRIMARY KEY (bulk, place)
);
INSERT INTO counters (name, value) VALUES ('bulk_seq', -1);
"#;
