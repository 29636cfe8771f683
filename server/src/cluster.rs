//! Cluster mode (several nodes on one PostgreSQL and one MQTT broker): what a node does
//! beyond a single server's work.
//!
//! - `tail`: every node's live clients see every stored change, whichever node stored it,
//!   in the change log's order: the hub is fed from the database's log, not from the node's
//!   own commits.
//! - `lease`: work one node at a time may do (sending notifications, the database's upkeep,
//!   running the embedded broker), on a lease the node keeps taking and renewing.
//! - `partitions`: work split by device partition, a lease each, shared out over the nodes.
//! - `broker`: one node with the embedded broker per database; a second is refused.
//! - `alarms`: each partition's rules are evaluated by the node holding its lease, from the
//!   change log, and a node taking it over goes on where it stopped.

pub mod alarms;
pub mod broker;
pub mod lease;
pub mod partitions;
pub mod tail;
