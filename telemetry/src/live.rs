//! Events pushed to dashboards over the `/ws/live` WebSocket, one JSON object per message.
//!
//! Every stored reading and status carries a sequence number, increasing by one per change
//! across the whole server, so a client that was away fetches exactly what it missed
//! (everything after the highest `seq` it has) and nothing twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Millis;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// First message on a connection: the server's clock and its latest sequence number.
    Hello { server_time: Millis, last_seq: u64 },
    /// A stored reading.
    Reading {
        seq: u64,
        device: String,
        /// Reading time.
        ts: Millis,
        /// Server receive time (the device's last-seen).
        received: Millis,
        values: BTreeMap<String, f64>,
    },
    /// A device reported `online` or `offline` (possibly through its last will), numbered with
    /// its session counter if it did.
    Status {
        seq: u64,
        device: String,
        online: bool,
        at: Millis,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<u64>,
    },
    /// This client fell behind and `missed` events were skipped: reload state, then carry on.
    Resync { missed: u64 },
    /// The server is refusing a device's messages or connections (`refused`), or stopped
    /// doing so (`null`). Not a stored change: it has no `seq`.
    Refused { device: String, refused: Option<crate::Refused> },
    /// An alarm opened or changed (fired, cleared, acknowledged, …), as it is now.
    Alarm { seq: u64, alarm: crate::alarm::Alarm },
    /// A device's attributes changed (only those that did), received at server time `at`.
    Attributes {
        seq: u64,
        device: String,
        at: Millis,
        values: BTreeMap<String, crate::attributes::AttrValue>,
    },
    /// Something happened to a device (its firmware changed, it rebooted, …).
    Event { seq: u64, event: crate::attributes::DeviceEvent },
    /// Someone changed a device's tags: all of them as they are now, set at server time `at`.
    Tags { seq: u64, device: String, tags: crate::tags::Tags, at: Millis },
    /// One of a device's connections to the embedded broker began, ended or was refused: the
    /// entry as its connection log now holds it (the same `connected_at` replaces it). Not a
    /// numbered change: the log is read whole from `/api/device_log`.
    Connection { device: String, connection: crate::connections::Connection },
    /// A command to a device was made or changed state (at server time `at`), as it is now.
    Command { seq: u64, at: Millis, command: Box<crate::command::Command> },
    /// A device's desired state was changed, or it reported what it applied (at server time
    /// `at`): the whole shadow as it is now.
    Desired { seq: u64, at: Millis, shadow: Box<crate::desired::Shadow> },
}

impl LiveEvent {
    /// The device an event is about, for per-device filtering.
    pub fn device(&self) -> Option<&str> {
        match self {
            LiveEvent::Reading { device, .. }
            | LiveEvent::Status { device, .. }
            | LiveEvent::Refused { device, .. }
            | LiveEvent::Attributes { device, .. }
            | LiveEvent::Tags { device, .. }
            | LiveEvent::Connection { device, .. } => Some(device),
            LiveEvent::Alarm { alarm, .. } => Some(&alarm.device),
            LiveEvent::Event { event, .. } => Some(&event.device),
            LiveEvent::Command { command, .. } => Some(&command.device),
            LiveEvent::Desired { shadow, .. } => Some(&shadow.device),
            LiveEvent::Hello { .. } | LiveEvent::Resync { .. } => None,
        }
    }

    /// The change's sequence number, for stored changes.
    pub fn seq(&self) -> Option<u64> {
        match self {
            LiveEvent::Reading { seq, .. }
            | LiveEvent::Status { seq, .. }
            | LiveEvent::Alarm { seq, .. }
            | LiveEvent::Attributes { seq, .. }
            | LiveEvent::Event { seq, .. }
            | LiveEvent::Tags { seq, .. }
            | LiveEvent::Command { seq, .. }
            | LiveEvent::Desired { seq, .. } => Some(*seq),
            LiveEvent::Hello { .. }
            | LiveEvent::Resync { .. }
            | LiveEvent::Refused { .. }
            | LiveEvent::Connection { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_change_is_about_its_device_and_not_numbered() {
        let connection = crate::connections::Connection {
            connected_at: 5,
            ended_at: Some(9),
            reason: Some(crate::connections::Ended::KeepaliveTimeout),
            address: Some("10.0.0.7:5100".into()),
            protocol: 5,
        };
        let event = LiveEvent::Connection { device: "d1".into(), connection };
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"type":"connection","device":"d1","connection":{"connected_at":5,"ended_at":9,"reason":"keepalive_timeout","address":"10.0.0.7:5100","protocol":5}}"#
        );
        assert_eq!(serde_json::from_str::<LiveEvent>(&json).unwrap(), event);
        assert_eq!((event.device(), event.seq()), (Some("d1"), None));
    }

    #[test]
    fn wire_format_is_tagged_json() {
        let e = LiveEvent::Reading {
            seq: 7,
            device: "d1".into(),
            ts: 5,
            received: 6,
            values: BTreeMap::from([("temperature".into(), 25.5)]),
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"type":"reading","seq":7,"device":"d1","ts":5,"received":6,"values":{"temperature":25.5}}"#
        );
        assert_eq!(serde_json::from_str::<LiveEvent>(&json).unwrap(), e);
        assert_eq!(
            serde_json::to_string(&LiveEvent::Resync { missed: 3 }).unwrap(),
            r#"{"type":"resync","missed":3}"#
        );
        let will = LiveEvent::Status { seq: 8, device: "d1".into(), online: false, at: 9, session: Some(17) };
        let json = serde_json::to_string(&will).unwrap();
        assert_eq!(json, r#"{"type":"status","seq":8,"device":"d1","online":false,"at":9,"session":17}"#);
        let plain = r#"{"type":"status","seq":8,"device":"d1","online":false,"at":9}"#;
        assert_eq!(
            serde_json::from_str::<LiveEvent>(plain).unwrap(),
            LiveEvent::Status { seq: 8, device: "d1".into(), online: false, at: 9, session: None }
        );
    }
}
