//! MQTT in: the embedded broker ([`broker`]) with its sign-in bookkeeping ([`sessions`]),
//! per-connection pacing ([`pacing`]) and retained messages ([`retained`]), or the client of
//! an external broker ([`client`]). Both
//! only translate MQTT to the ingest door ([`crate::ingest::Ingest::admit`]) and its answer
//! back. The embedded broker also tells each device's connection log ([`connections`]) and
//! sends commands to devices ([`commands`]).

pub mod broker;
pub mod client;
pub mod commands;
pub mod connections;
pub mod desired;
pub mod pacing;
pub mod retained;
pub mod sessions;
