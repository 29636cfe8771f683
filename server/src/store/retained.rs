//! Retained MQTT messages the embedded broker keeps for subscribers that come later (MQTT
//! 3.3.1.3): the last message published with the retain flag on each topic, until an empty
//! retained payload clears it. Durable like everything acknowledged: set or cleared before the
//! publish's PUBACK, and loaded again when the server starts.

use telemetry::{Millis, Rejection};

use super::error::StoreError;

/// One retained message, as published (MQTT 5 properties included).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RetainedMessage {
    pub topic: String,
    /// Whose caps it counts against: the device of an `app/device/<id>/…` topic, otherwise
    /// the publishing connection's client id.
    pub owner: String,
    /// Not in the stored JSON: kept beside it as raw bytes.
    #[serde(skip)]
    pub payload: Vec<u8>,
    pub qos: u8,
    /// Server time it was published.
    pub at: Millis,
    /// Server time it expires (MQTT 5 message expiry), if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Millis>,
    #[serde(default, skip_serializing_if = "RetainedProperties::is_empty")]
    pub properties: RetainedProperties,
}

/// The MQTT 5 properties a retained message is delivered with.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RetainedProperties {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub utf8: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_data: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<(String, String)>,
}

impl RetainedProperties {
    pub fn is_empty(&self) -> bool {
        *self == RetainedProperties::default()
    }
}

impl RetainedMessage {
    /// Whether it has expired by `now`.
    pub fn expired(&self, now: Millis) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }
}

/// A change to the retained messages, in the order it was published.
#[derive(Debug, Clone, PartialEq)]
pub enum RetainedChange {
    Set(RetainedMessage),
    /// An empty retained payload on this topic: nothing is retained there any more.
    Clear(String),
}

impl RetainedChange {
    pub fn topic(&self) -> &str {
        match self {
            RetainedChange::Set(m) => &m.topic,
            RetainedChange::Clear(topic) => topic,
        }
    }
}

/// The caps on retained messages (`[limits]`): what a broker node checks as a publish
/// arrives ([`crate::ingest::Retained::reserve`]), and what a store shared by several nodes
/// checks again as it commits.
#[derive(Debug, Clone, Copy)]
pub struct RetainedCaps {
    /// Topics one owner (a device, or a connection on topics that are not a device's) may
    /// retain a message on.
    pub per_owner: usize,
    /// Bytes of payload one owner's retained messages may hold together.
    pub bytes_per_owner: usize,
    /// Retained messages in all.
    pub total: usize,
    /// Bytes of payload in all.
    pub total_bytes: usize,
}

impl RetainedCaps {
    /// Why a retained message is refused, if it is: its owner would then hold `mine` and all
    /// would hold `all` (each with the message counted). A broker node's check and the check
    /// of a commit on a store shared by several nodes.
    pub fn refusal(&self, mine: RetainedUsage, all: RetainedUsage) -> Option<Rejection> {
        if mine.count > self.per_owner {
            Some(Rejection::TooManyRetained(self.per_owner))
        } else if mine.bytes > self.bytes_per_owner {
            Some(Rejection::RetainedTooLarge(self.bytes_per_owner))
        } else if all.count > self.total || all.bytes > self.total_bytes {
            Some(Rejection::RetainedFull)
        } else {
            None
        }
    }
}

/// Retained messages and bytes of payload held (by an owner, or in all), counted against
/// [`RetainedCaps`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetainedUsage {
    pub count: usize,
    pub bytes: usize,
}

impl RetainedUsage {
    pub fn add(&mut self, other: RetainedUsage) {
        self.count = self.count.saturating_add(other.count);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }

    pub fn sub(&mut self, other: RetainedUsage) {
        self.count = self.count.saturating_sub(other.count);
        self.bytes = self.bytes.saturating_sub(other.bytes);
    }

    pub fn plus(mut self, other: RetainedUsage) -> RetainedUsage {
        self.add(other);
        self
    }
}

/// Where retained messages are kept.
pub trait RetainStore: Send + Sync {
    /// Every retained message, expired ones included.
    fn retained(&self) -> Result<Vec<RetainedMessage>, StoreError>;

    /// Sets and clears retained messages, in order, durably, in a transaction of their own:
    /// when this returns `Ok`, they survive a crash. A batch of publishes has its retained
    /// changes committed with it instead ([`super::Store::commit_retaining`]).
    fn put_retained(&self, changes: &[RetainedChange]) -> Result<(), StoreError>;
}
