//! The simulator's sensor signals, shared with the storage benchmarks so they store what
//! devices send.

pub mod signal;
