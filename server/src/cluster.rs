//! Cluster mode (several nodes on one PostgreSQL and one MQTT broker): what a node does
//! beyond a single server's work.
//!
//! - `tail`: every node's live clients see every stored change, whichever node stored it,
//!   in the change log's order: the hub is fed from the database's log, not from the node's
//!   own commits.
//! - `lease`: work one node at a time may do (evaluating alarm rules, sending notifications),
//!   on a lease the node keeps taking and renewing.
//! - `alarms`: the node holding the alarms lease evaluates every rule, from the change log,
//!   and a node taking it over goes on where it stopped.

pub mod alarms;
pub mod lease;
pub mod tail;
