//! Version 4: alarms, rules, channels and deliveries (being written).

pub(super) const SQL: &str = "";
