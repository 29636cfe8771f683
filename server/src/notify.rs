//! Notifications: the channels alarms are sent to, signed webhooks, and when to try again.
//!
//! # Layout
//! - [`channels`]: sending to a webhook, an ntfy topic or a mailbox.
//! - [`sign`]: Standard Webhooks signatures.
//! - [`schedule`]: the retry schedule and what an answer means.
//! - [`sender`]: the outbox's sender (grouping, rate, retries).

pub mod channels;
pub mod schedule;
pub mod sender;
pub mod sign;
