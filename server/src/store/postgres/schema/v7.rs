//! Version 7: users, sessions and device keys (being written).

pub(super) const SQL: &str = "";
