//! Version 8: history rollups (being written).

pub(super) const SQL: &str = "";
