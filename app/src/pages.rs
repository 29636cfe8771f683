//! One component per route.

pub mod device;
pub mod home;
