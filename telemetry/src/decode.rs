//! The one decoder every edge uses: a topic and its payload become readings, a status,
//! attributes, or a [`Rejection`]. The embedded broker, the external broker's client and HTTP ingest only
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
    /// `online` / `offline` on the device's status topic (a last will, usually), with the
    /// session (connection) counter the device numbered it with, if it did.
    Status { device: DeviceId, online: bool, session: Option<u64> },
    /// An empty message on a status topic: it clears the retained status; nothing to record.
    StatusCleared(DeviceId),
    /// What the device says about itself ([`crate::attributes`]), sorted by name.
    Attributes { device: DeviceId, values: Vec<(String, crate::attributes::AttrValue)> },
    /// A device's answer to command `id`.
    CommandResult { device: DeviceId, id: String, reply: crate::command::Reply },
    /// What a device reports it applied of its desired state ([`crate::desired`]).
    Reported { device: DeviceId, v: u64, state: serde_json::Map<String, Value> },
    /// The device asks for its desired state again.
    DesiredGet(DeviceId),
    /// Not the dashboard's to read: outside `app/device/`, or another kind of topic under a
    /// device (a broker routes it as usual).
    Other,
}

impl Decoded {
    /// The device the message is about, if it is one of ours.
    pub fn device(&self) -> Option<&DeviceId> {
        match self {
            Decoded::Readings(m) => Some(&m.device),
            Decoded::Status { device, .. }
            | Decoded::StatusCleared(device)
            | Decoded::Attributes { device, .. }
            | Decoded::CommandResult { device, .. }
            | Decoded::Reported { device, .. }
            | Decoded::DesiredGet(device) => Some(device),
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
    if let Some((device, kind, id)) = crate::topic::command_parts(topic) {
        let device = DeviceId::try_from(device).map_err(Rejection::BadDeviceId)?;
        return match kind {
            crate::topic::CommandTopic::Command => Err(Rejection::CommandFromClient),
            crate::topic::CommandTopic::Result if !crate::command::valid_id(id) => {
                Err(Rejection::BadCommandResult(crate::command::ReplyError::BadId))
            }
            crate::topic::CommandTopic::Result => crate::command::parse_reply(payload)
                .map(|reply| Decoded::CommandResult { device, id: id.to_owned(), reply })
                .map_err(Rejection::BadCommandResult),
        };
    }
    if let Some((device, kind)) = crate::desired::desired_parts(topic) {
        let device = DeviceId::try_from(device).map_err(Rejection::BadDeviceId)?;
        use crate::desired::{DesiredError, DesiredTopic};
        return match kind {
            DesiredTopic::Desired => Err(Rejection::DesiredFromClient),
            DesiredTopic::Get if payload.trim_ascii().is_empty() => Ok(Decoded::DesiredGet(device)),
            DesiredTopic::Get => Err(Rejection::BadReported(DesiredError::NotObject)),
            DesiredTopic::Reported => crate::desired::parse_reported(payload)
                .map(|(v, state)| Decoded::Reported { device, v, state })
                .map_err(Rejection::BadReported),
        };
    }
    match DeviceTopic::parse(topic) {
        Ok(DeviceTopic::Telemetry(device)) => payload::parse_payload(device, payload, received)
            .map(Decoded::Readings)
            .map_err(Rejection::Payload),
        Ok(DeviceTopic::Status(device)) => match status(payload) {
            Ok(Some((online, session))) => Ok(Decoded::Status { device, online, session }),
            Ok(None) => Ok(Decoded::StatusCleared(device)),
            Err(()) => Err(Rejection::BadStatus),
        },
        Ok(DeviceTopic::Attributes(device)) => crate::attributes::parse_attributes(payload)
            .map(|values| Decoded::Attributes { device, values })
            .map_err(Rejection::Attributes),
        Err(TopicError::BadDeviceId(e)) => Err(Rejection::BadDeviceId(e)),
        Err(TopicError::Foreign | TopicError::UnknownKind) => Ok(Decoded::Other),
    }
}

/// Longest JSON status read.
pub const MAX_STATUS_BYTES: usize = 256;

/// A status payload: `online` or `offline`, or `{"state": "online"|"offline", "session": n}`
/// with the device's connection counter (optional; other fields ignored), as Sparkplug's
/// bdSeq, so a last will delayed past the device's next connection can be told from a real
/// one. `Ok(None)`: empty, which clears the retained status.
fn status(payload: &[u8]) -> Result<Option<(bool, Option<u64>)>, ()> {
    #[derive(serde::Deserialize)]
    struct Numbered<'a> {
        #[serde(borrow)]
        state: std::borrow::Cow<'a, str>,
        #[serde(default)]
        session: Option<u64>,
    }
    let online = |state: &str| match state {
        "online" => Ok(true),
        "offline" => Ok(false),
        _ => Err(()),
    };
    match payload.trim_ascii() {
        b"" => Ok(None),
        json @ [b'{', ..] if json.len() <= MAX_STATUS_BYTES => {
            let numbered: Numbered = serde_json::from_slice(json).map_err(|_| ())?;
            Ok(Some((online(&numbered.state)?, numbered.session)))
        }
        word => Ok(Some((online(std::str::from_utf8(word).map_err(|_| ())?)?, None))),
    }
}

/// The status a device numbers with its session counter: `{"state":"offline","session":17}`.
pub fn status_payload(online: bool, session: u64) -> String {
    let state = if online { "online" } else { "offline" };
    format!(r#"{{"state":"{state}","session":{session}}}"#)
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
            Ok(Decoded::Status { device: id("d1"), online: false, session: None })
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
        let attributes = decode("app/device/d1/attributes", br#"{"fw": "1.4.2"}"#, 5).unwrap();
        let fw = vec![("fw".to_owned(), crate::attributes::AttrValue::Text("1.4.2".into()))];
        assert_eq!(attributes, Decoded::Attributes { device: id("d1"), values: fw });
        assert_eq!(
            decode("app/device/d1/attributes", b"[]", 5),
            Err(Rejection::Attributes(crate::attributes::AttrError::NotObject))
        );
    }

    #[test]
    fn command_answers_are_decoded_and_commands_from_clients_refused() {
        use crate::command::{Reply, ReplyError};
        let ok = decode("app/device/d1/res/1kq", br#"{"status":"ok","result":{"a":1}}"#, 5).unwrap();
        let result = Some(serde_json::json!({"a": 1}));
        assert_eq!(
            ok,
            Decoded::CommandResult { device: id("d1"), id: "1kq".into(), reply: Reply::Ok(result) }
        );
        assert_eq!(ok.device(), Some(&id("d1")));
        assert_eq!(
            decode("app/device/d1/res/1kq", b"done", 5),
            Err(Rejection::BadCommandResult(ReplyError::NotJson))
        );
        assert_eq!(
            decode("app/device/d1/res/A!", br#"{"status":"ok"}"#, 5),
            Err(Rejection::BadCommandResult(ReplyError::BadId))
        );
        assert_eq!(decode("app/device/d1/cmd/1kq", b"{}", 5), Err(Rejection::CommandFromClient));
        assert_eq!(decode("app/device/d1/desired", b"{}", 5), Err(Rejection::DesiredFromClient));
        assert_eq!(decode("app/device/d1/desired/get", b"", 5), Ok(Decoded::DesiredGet(id("d1"))));
        assert!(matches!(
            decode("app/device/d1/reported", br#"{"v":4,"state":{"a":1}}"#, 5),
            Ok(Decoded::Reported { v: 4, .. })
        ));
        assert!(matches!(
            decode("app/device/d1/reported", b"[]", 5),
            Err(Rejection::BadReported(crate::desired::DesiredError::NotObject))
        ));
        assert_eq!(decode("app/device/a b/res/1", b"{}", 5), Err(Rejection::BadDeviceId(NameError::BadChar)));
    }

    #[test]
    fn a_status_may_carry_its_session() {
        let status = |payload: &[u8]| decode("app/device/d1/status", payload, 5);
        let numbered = |online, session| Ok(Decoded::Status { device: id("d1"), online, session });
        assert_eq!(status(br#"{"state":"offline","session":17}"#), numbered(false, Some(17)));
        assert_eq!(status(br#" {"session": 3, "state": "online", "fw": "1.4"} "#), numbered(true, Some(3)));
        assert_eq!(status(br#"{"state":"online"}"#), numbered(true, None));
        assert_eq!(status(status_payload(false, u64::MAX).as_bytes()), numbered(false, Some(u64::MAX)));
        assert_eq!(status(b"online"), numbered(true, None));
        for bad in [
            &br#"{"state":"gone","session":1}"#[..],
            br#"{"session":1}"#,
            br#"{"state":"offline","session":-1}"#,
            br#"{"state":"offline","session":"17"}"#,
            br#"{"state":"offline""#,
            b"Offline",
            b"\xff",
        ] {
            assert_eq!(status(bad), Err(Rejection::BadStatus), "{}", String::from_utf8_lossy(bad));
        }
        let long = format!(r#"{{"state":"offline","session":1,"x":"{}"}}"#, "y".repeat(MAX_STATUS_BYTES));
        assert_eq!(status(long.as_bytes()), Err(Rejection::BadStatus), "bounded");
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
