//! Version 2: `groups`, the saved fleet queries ([`super::super::groups`]): one row per group,
//! its JSON as the server writes it.

pub(super) const SQL: &str = "
CREATE TABLE groups (
    id text PRIMARY KEY,
    doc jsonb NOT NULL
);
";
