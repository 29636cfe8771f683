//! One component per route.

pub mod account;
pub mod admin;
pub mod alarms;
pub mod dashboard;
pub mod dashboards;
pub mod device;
pub mod fleet;
pub mod home;
pub mod login;
