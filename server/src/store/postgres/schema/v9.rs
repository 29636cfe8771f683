//! Version 9: `leases` ([`super::super::leases`]): who does the work that must happen once in
//! a cluster (alarm timers, command deadlines, retention, notifications, by device partition),
//! one row per piece of work: its holder (a node), until when, and an epoch that goes up each
//! time the holder changes (the fencing token a holder's writes are checked against).

pub(super) const SQL: &str = "
CREATE TABLE leases (
    name text PRIMARY KEY,
    holder text NOT NULL,
    epoch bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
";
