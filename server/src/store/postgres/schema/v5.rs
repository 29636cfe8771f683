//! Version 5: commands and bulk commands (being written).

pub(super) const SQL: &str = "";
