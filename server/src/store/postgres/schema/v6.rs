//! Version 6: the device registry: statuses, attributes, connection log, rollups (being written).

pub(super) const SQL: &str = "";
