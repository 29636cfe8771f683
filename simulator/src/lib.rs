//! The simulator's sensor signals, shared with the storage benchmarks so they store what
//! devices send, and the device side of commands and desired state, which tests of the server
//! can drive as a device would.

pub mod commands;
pub mod signal;
