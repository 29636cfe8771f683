//! The one decoder every edge uses: a topic and its payload become readings, a status, or a
//! [`Rejection`]. The embedded broker, the external broker's client and HTTP ingest only
//! translate their transport to this, and its answer back.

use serde_json::Value;

use crate::Millis;
use crate::name::DeviceId;
use crate::payload::{self, Message};
use crate::rejection::Rejection;
use crate::topic::{DeviceTopic, TopicError};

/// What a message is, once decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// Readings to store.
    Readings(Message),
    /// `online` / `offline` on the device's status topic (a last will, usually).
    Status { device: DeviceId, online: bool },
    /// An empty message on a status topic: it clears the retained status; nothing to record.
    StatusCleared(DeviceId),
    /// Not the dashboard's to read: outside `app/device/`, or another kind of topic under a
    /// device (a broker routes it as usual).
    Other,
}

impl Decoded {
    /// The device the message is about, if it is one of ours.
    pub fn device(&self) -> Option<&DeviceId> {
        match self {
            Decoded::Readings(m) => Some(&m.device),
            Decoded::Status { device, .. } | Decoded::StatusCleared(device) => Some(device),
            Decoded::Other => None,
        }
    }
}

/// Decodes an MQTT message received at `received` (server time).
pub fn decode(topic: &str, payload: &[u8], received: Millis) -> Result<Decoded, Rejection> {
    // A topic name never holds wildcards (MQTT 4.7.1); one that does must not reach
    // subscribers whose filters it would match.
    if topic.contains(['+', '#']) {
        return Err(Rejection::WildcardTopic);
    }
    match DeviceTopic::parse(topic) {
        Ok(DeviceTopic::Telemetry(device)) => payload::parse_payload(device, payload, received)
            .map(Decoded::Readings)
            .map_err(Rejection::Payload),
        Ok(DeviceTopic::Status(device)) => match payload.trim_ascii() {
            b"online" => Ok(Decoded::Status { device, online: true }),
            b"offline" => Ok(Decoded::Status { device, online: false }),
            b"" => Ok(Decoded::StatusCleared(device)),
            _ => Err(Rejection::BadStatus),
        },
        Err(TopicError::BadDeviceId(e)) => Err(Rejection::BadDeviceId(e)),
        Err(TopicError::Foreign | TopicError::UnknownKind) => Ok(Decoded::Other),
    }
}

/// Decodes one HTTP ingest item: the MQTT payload plus a `device_id` field.
pub fn decode_http_item(item: &Value, received: Millis) -> Result<Message, Rejection> {
    payload::parse_http_item(item, received).map_err(Rejection::Payload)
}

/// Whether `topic` (a name or a filter) lies under `app/device/<device>/`: where a signed-in
/// device may publish and subscribe.
pub fn own_topic(device: &str, topic: &str) -> bool {
    topic
        .strip_prefix(crate::topic::DEVICE_PREFIX)
        .and_then(|t| t.strip_prefix(device))
        .is_some_and(|t| t.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::NameError;
    use crate::payload::RejectReason;

    fn id(s: &str) -> DeviceId {
        DeviceId::try_from(s).unwrap()
    }

    #[test]
    fn topics_and_payloads_become_readings_statuses_or_rejections() {
        let readings = decode("app/device/d1/telemetry", br#"{"telemetry": {"t": 1}}"#, 5).unwrap();
        assert!(matches!(&readings, Decoded::Readings(m) if m.values == [("t".into(), 1.0)]));
        assert_eq!(readings.device(), Some(&id("d1")));
        assert_eq!(
            decode("app/device/d1/status", b" offline\n", 5),
            Ok(Decoded::Status { device: id("d1"), online: false })
        );
        assert_eq!(decode("app/device/d1/status", b"", 5), Ok(Decoded::StatusCleared(id("d1"))));
        assert_eq!(decode("app/device/d1/status", b"gone", 5), Err(Rejection::BadStatus));
        assert_eq!(
            decode("app/device/d1/telemetry", b"[]", 5),
            Err(Rejection::Payload(RejectReason::NotObject))
        );
        assert_eq!(decode("app/device/+/telemetry", b"{}", 5), Err(Rejection::WildcardTopic));
        assert_eq!(decode("elsewhere/#", b"x", 5), Err(Rejection::WildcardTopic));
        assert_eq!(
            decode("app/device/a b/telemetry", b"{}", 5),
            Err(Rejection::BadDeviceId(NameError::BadChar))
        );
        assert_eq!(decode("elsewhere/x", b"x", 5), Ok(Decoded::Other));
        assert_eq!(decode("app/device/d1/config", b"x", 5), Ok(Decoded::Other));
    }

    #[test]
    fn own_topics_are_under_the_device_only() {
        assert!(own_topic("d1", "app/device/d1/telemetry"));
        assert!(own_topic("d1", "app/device/d1/#"));
        assert!(!own_topic("d1", "app/device/d10/telemetry"));
        assert!(!own_topic("d1", "app/device/d1"));
        assert!(!own_topic("d1", "app/device/+/telemetry"));
        assert!(!own_topic("d1", "#"));
    }
}
