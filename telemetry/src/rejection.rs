//! Why the server refused something a device (or a script) sent: one enum for every edge, so
//! the embedded broker, the external broker's client and HTTP ingest count, log and show a
//! refusal the same way. Each reason owns its `/metrics` label and the words a user reads.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::name::NameError;
use crate::payload::RejectReason;

/// Why a message, or an MQTT connection, was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    /// A topic name holding `+` or `#` (MQTT 4.7.1), in any namespace.
    WildcardTopic,
    /// Under `app/device/`, with an id that is not a valid name.
    BadDeviceId(NameError),
    /// A signed-in device publishing or subscribing outside `app/device/<its id>/`.
    NotOwnTopic,
    /// The readings payload broke the contract.
    Payload(RejectReason),
    /// A status that is neither `online` nor `offline` (plain, or as `{"state": …}`).
    BadStatus,
    /// An attributes message that broke its contract ([`crate::attributes`]).
    Attributes(crate::attributes::AttrError),
    /// New attribute names beyond [`crate::attributes::MAX_ATTRIBUTES`] for the device.
    TooManyAttributes(usize),
    /// Over the device's message rate (messages per second).
    RateLimited(f64),
    /// A new device beyond `limits.max_devices`.
    TooManyDevices(usize),
    /// Every metric is a new name beyond `limits.max_metrics_per_device`.
    TooManyMetrics(usize),
    /// Sign-in is required and the connection has no credentials (or came in while the
    /// dashboard was open, without a key).
    NotSignedIn,
    /// A user name and password that are not the device's id and key.
    WrongKey,
    /// Signed in as one device with another client id.
    ClientIdNotDevice,
    /// A last will on another topic than the device's own status.
    WillNotOwnStatus,
    /// The server was too far behind to take a QoS 0 message (which nobody resends).
    Overloaded,
    /// A client id longer than the broker takes (`mqtt.max_client_id`).
    ClientIdTooLong(usize),
    /// A retained message on a new topic beyond the device's (or connection's) maximum of
    /// retained messages (`limits.max_retained_per_device`).
    TooManyRetained(usize),
    /// A retained message that would take the device's (or connection's) retained payloads
    /// past `limits.max_retained_bytes_per_device`.
    RetainedTooLarge(usize),
    /// A retained message beyond the broker's total (`limits.max_retained`, or
    /// `limits.max_retained_bytes` of payloads).
    RetainedFull,
    /// A retained message on a command topic (`app/device/<id>/cmd/…`): it would run again
    /// on every reconnect.
    RetainedCommand,
    /// A client publishing on a command topic (`app/device/<id>/cmd/…`): only the server sends
    /// commands.
    CommandFromClient,
    /// An answer on `app/device/<id>/res/<cmd_id>` that is not one ([`crate::command`]), or
    /// whose command id cannot be one.
    BadCommandResult(crate::command::ReplyError),
    /// An answer to a command the device does not have (unknown, or not sent to it).
    UnknownCommand,
    /// A client publishing on a device's `desired` topic: only the server sets desired state.
    DesiredFromClient,
    /// A `reported` message that is not one ([`crate::desired`]), or a `desired/get` with a
    /// payload.
    BadReported(crate::desired::DesiredError),
    /// A `reported` message from a device without desired state while the server has its
    /// maximum of them.
    TooManyShadows(usize),
}

impl Rejection {
    /// The `/metrics` label (`reason="…"`): stable and of low cardinality.
    pub fn label(&self) -> &'static str {
        match self {
            Rejection::WildcardTopic => "bad_topic",
            Rejection::BadDeviceId(_) => "bad_device_id",
            Rejection::NotOwnTopic => "not_authorized",
            Rejection::Payload(reason) => reason.label(),
            Rejection::BadStatus => "bad_status",
            Rejection::Attributes(_) => "bad_attributes",
            Rejection::TooManyAttributes(_) => "too_many_attributes",
            Rejection::RateLimited(_) => "rate_limited",
            Rejection::TooManyDevices(_) => "too_many_devices",
            Rejection::TooManyMetrics(_) => "too_many_metrics",
            Rejection::NotSignedIn => "not_signed_in",
            Rejection::WrongKey => "wrong_key",
            Rejection::ClientIdNotDevice => "client_id_not_device",
            Rejection::WillNotOwnStatus => "will_not_own_status",
            Rejection::Overloaded => "overloaded",
            Rejection::ClientIdTooLong(_) => "client_id_too_long",
            Rejection::TooManyRetained(_) => "too_many_retained",
            Rejection::RetainedTooLarge(_) => "retained_too_large",
            Rejection::RetainedFull => "retained_full",
            Rejection::RetainedCommand => "retained_command",
            Rejection::CommandFromClient => "command_from_client",
            Rejection::DesiredFromClient => "desired_from_client",
            Rejection::BadReported(_) => "bad_reported",
            Rejection::BadCommandResult(_) => "bad_command_result",
            Rejection::UnknownCommand => "unknown_command",
            Rejection::TooManyShadows(_) => "too_many_shadows",
        }
    }

    /// Whether the device's credentials are the problem (the fix is a key), not what it sent.
    pub fn is_sign_in(&self) -> bool {
        matches!(
            self,
            Rejection::NotSignedIn
                | Rejection::WrongKey
                | Rejection::ClientIdNotDevice
                | Rejection::WillNotOwnStatus
        )
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::WildcardTopic => f.write_str("wildcard in a topic name"),
            Rejection::BadDeviceId(e) => write!(f, "invalid device id: {e}"),
            Rejection::NotOwnTopic => f.write_str("a device publishes only to its own topics"),
            Rejection::Payload(reason) => reason.fmt(f),
            Rejection::BadStatus => {
                f.write_str(r#"status must be online, offline or {"state": "offline", "session": n}"#)
            }
            Rejection::Attributes(why) => why.fmt(f),
            Rejection::TooManyAttributes(n) => {
                write!(f, "the device already has its maximum of {n} attributes")
            }
            Rejection::RateLimited(rate) => write!(f, "device sends faster than {rate} messages per second"),
            Rejection::TooManyDevices(n) => write!(f, "the server already has its maximum of {n} devices"),
            Rejection::TooManyMetrics(n) => {
                write!(f, "every metric is beyond the device's maximum of {n} metrics")
            }
            Rejection::NotSignedIn => f.write_str("not signed in (issue a key)"),
            Rejection::WrongKey => f.write_str("wrong key"),
            Rejection::ClientIdNotDevice => f.write_str("the client id must be the device id"),
            Rejection::WillNotOwnStatus => f.write_str("a last will goes only to the device's own status"),
            Rejection::Overloaded => f.write_str("the server is behind; a QoS 0 message was dropped"),
            Rejection::ClientIdTooLong(max) => write!(f, "client ids are at most {max} bytes"),
            Rejection::TooManyRetained(n) => {
                write!(f, "the device already has its maximum of {n} retained messages")
            }
            Rejection::RetainedTooLarge(n) => {
                write!(f, "the device's retained messages would exceed {n} bytes")
            }
            Rejection::RetainedFull => f.write_str("the broker holds its maximum of retained messages"),
            Rejection::RetainedCommand => f.write_str("commands are never retained"),
            Rejection::CommandFromClient => f.write_str("only the server sends commands"),
            Rejection::DesiredFromClient => f.write_str("only the server sets desired state"),
            Rejection::BadReported(why) => write!(f, "reported state: {why}"),
            Rejection::BadCommandResult(why) => why.fmt(f),
            Rejection::UnknownCommand => f.write_str("an answer to a command the device was not sent"),
            Rejection::TooManyShadows(n) => {
                write!(f, "the server already has its maximum of {n} devices with desired state")
            }
        }
    }
}

/// A device whose messages (or connections) are being refused, as the dashboard shows it:
/// "Refused since 15:03 — not signed in (issue a key), 12 times".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refused {
    /// The `/metrics` label of the latest reason.
    pub reason: String,
    /// What a person reads.
    pub text: String,
    /// Server time of the first refusal since the device was last accepted.
    pub since: crate::Millis,
    /// Server time of the latest refusal.
    pub last: crate::Millis,
    /// Refusals since `since`.
    pub count: u64,
}

/// An id the server has never registered whose connection or message was refused, as the
/// admin page lists it (not a device: nothing is stored for it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusedId {
    /// The client id or device id, cut to 64 characters.
    pub id: String,
    /// The `/metrics` label of the latest reason.
    pub reason: String,
    pub text: String,
    /// The client's address, when known.
    pub peer: Option<String>,
    /// Server time of the latest refusal.
    pub last: crate::Millis,
    pub count: u64,
}

/// The refused ids the admin page lists, newest first.
pub trait RefusedIds: Send + Sync {
    fn refused_ids(&self) -> Vec<RefusedId>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_and_texts_say_what_to_do() {
        let all = [
            Rejection::WildcardTopic,
            Rejection::BadDeviceId(NameError::Empty),
            Rejection::NotOwnTopic,
            Rejection::BadStatus,
            Rejection::RateLimited(1.0),
            Rejection::TooManyDevices(1),
            Rejection::TooManyMetrics(1),
            Rejection::NotSignedIn,
            Rejection::WrongKey,
            Rejection::ClientIdNotDevice,
            Rejection::WillNotOwnStatus,
            Rejection::Overloaded,
            Rejection::ClientIdTooLong(1),
            Rejection::Payload(RejectReason::NotObject),
            Rejection::Attributes(crate::attributes::AttrError::NotJson),
            Rejection::TooManyAttributes(1),
            Rejection::RetainedCommand,
            Rejection::CommandFromClient,
            Rejection::BadCommandResult(crate::command::ReplyError::NotJson),
            Rejection::UnknownCommand,
            Rejection::DesiredFromClient,
            Rejection::BadReported(crate::desired::DesiredError::NotJson),
            Rejection::TooManyShadows(1),
        ];
        let mut labels: Vec<_> = all.iter().map(Rejection::label).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), all.len());
        assert_eq!(Rejection::NotSignedIn.to_string(), "not signed in (issue a key)");
        assert!(Rejection::WrongKey.is_sign_in() && !Rejection::NotOwnTopic.is_sign_in());
    }
}
