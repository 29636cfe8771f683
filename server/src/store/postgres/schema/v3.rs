//! Version 3: dashboards, tags, retained messages and desired state (being written).

pub(super) const SQL: &str = "";
