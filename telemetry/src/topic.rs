//! The MQTT topic contract: devices publish readings to `app/device/<id>/telemetry`, their
//! (retained, last-will) liveness to `app/device/<id>/status`, and what they are (firmware,
//! model, …) to `app/device/<id>/attributes`.

use crate::name::{DeviceId, NameError};

/// Subscription filter for every device's readings.
pub const TELEMETRY_FILTER: &str = "app/device/+/telemetry";
/// Subscription filter for every device's online/offline status.
pub const STATUS_FILTER: &str = "app/device/+/status";
/// Subscription filter for every device's attributes.
pub const ATTRIBUTES_FILTER: &str = "app/device/+/attributes";

/// Where every device's topics live: `app/device/<id>/...`.
pub const DEVICE_PREFIX: &str = "app/device/";

/// A topic in the `app/device/` namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceTopic {
    Telemetry(DeviceId),
    Status(DeviceId),
    Attributes(DeviceId),
}

/// Why a topic is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicError {
    /// Outside `app/device/`: not the dashboard's business (a broker forwards it as usual).
    Foreign,
    /// Inside `app/device/` but the device id is invalid.
    BadDeviceId(NameError),
    /// Inside `app/device/<id>/` but not `telemetry`, `status` or `attributes`.
    UnknownKind,
}

impl DeviceTopic {
    /// Parses a topic name (not a filter).
    pub fn parse(topic: &str) -> Result<DeviceTopic, TopicError> {
        let rest = topic.strip_prefix(DEVICE_PREFIX).ok_or(TopicError::Foreign)?;
        let (id, kind) = rest.rsplit_once('/').ok_or(TopicError::UnknownKind)?;
        let kind = match kind {
            "telemetry" => DeviceTopic::Telemetry,
            "status" => DeviceTopic::Status,
            "attributes" => DeviceTopic::Attributes,
            _ => return Err(TopicError::UnknownKind),
        };
        Ok(kind(DeviceId::try_from(id).map_err(TopicError::BadDeviceId)?))
    }
}

/// Which way a command topic goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandTopic {
    /// `app/device/<id>/cmd/<cmd_id>`: server to device.
    Command,
    /// `app/device/<id>/res/<cmd_id>`: the device's answer.
    Result,
}

/// A command topic's device id, direction and command id (none of them checked), if `topic` is
/// `app/device/<id>/cmd/<cmd_id>` or `app/device/<id>/res/<cmd_id>`.
pub fn command_parts(topic: &str) -> Option<(&str, CommandTopic, &str)> {
    let rest = topic.strip_prefix(DEVICE_PREFIX)?;
    let (device, rest) = rest.split_once('/')?;
    let (kind, id) = rest.split_once('/')?;
    let kind = match kind {
        "cmd" => CommandTopic::Command,
        "res" => CommandTopic::Result,
        _ => return None,
    };
    Some((device, kind, id))
}

/// Where command `id` is sent to `device`.
pub fn command_topic(device: &str, id: &str) -> String {
    format!("{DEVICE_PREFIX}{device}/cmd/{id}")
}

/// Where `device` answers command `id`.
pub fn result_topic(device: &str, id: &str) -> String {
    format!("{DEVICE_PREFIX}{device}/res/{id}")
}

/// What a device subscribes to for its commands.
pub fn command_filter(device: &str) -> String {
    format!("{DEVICE_PREFIX}{device}/cmd/+")
}

/// Subscription filter for every device's answers to commands.
pub const RESULT_FILTER: &str = "app/device/+/res/+";

pub fn telemetry_topic(device: &str) -> String {
    format!("{DEVICE_PREFIX}{device}/telemetry")
}

pub fn status_topic(device: &str) -> String {
    format!("{DEVICE_PREFIX}{device}/status")
}

pub fn attributes_topic(device: &str) -> String {
    format!("{DEVICE_PREFIX}{device}/attributes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> DeviceId {
        DeviceId::try_from(s).unwrap()
    }

    #[test]
    fn parses_the_seed_topics() {
        assert_eq!(
            DeviceTopic::parse("app/device/ESP32_SIM_01/telemetry"),
            Ok(DeviceTopic::Telemetry(id("ESP32_SIM_01")))
        );
        assert_eq!(DeviceTopic::parse("app/device/TEST/status"), Ok(DeviceTopic::Status(id("TEST"))));
        assert_eq!(DeviceTopic::parse(&telemetry_topic("X")), Ok(DeviceTopic::Telemetry(id("X"))));
        assert_eq!(DeviceTopic::parse(&attributes_topic("X")), Ok(DeviceTopic::Attributes(id("X"))));
    }

    #[test]
    fn command_topics_name_device_direction_and_id() {
        assert_eq!(command_parts(&command_topic("d1", "abc")), Some(("d1", CommandTopic::Command, "abc")));
        assert_eq!(command_parts(&result_topic("d1", "abc")), Some(("d1", CommandTopic::Result, "abc")));
        assert_eq!(command_parts("app/device/d1/res/a/b"), Some(("d1", CommandTopic::Result, "a/b")));
        assert_eq!(command_parts("app/device/d1/telemetry"), None);
        assert_eq!(command_parts("app/device/d1/cmd"), None);
        assert_eq!(command_filter("d1"), "app/device/d1/cmd/+");
    }

    #[test]
    fn refuses_bad_ids_and_kinds() {
        assert_eq!(DeviceTopic::parse("other/topic"), Err(TopicError::Foreign));
        assert_eq!(DeviceTopic::parse(""), Err(TopicError::Foreign));
        assert_eq!(
            DeviceTopic::parse("app/device//telemetry"),
            Err(TopicError::BadDeviceId(NameError::Empty))
        );
        assert_eq!(
            DeviceTopic::parse("app/device/a/b/telemetry"),
            Err(TopicError::BadDeviceId(NameError::BadChar))
        );
        assert_eq!(
            DeviceTopic::parse("app/device/+/telemetry"),
            Err(TopicError::BadDeviceId(NameError::BadChar))
        );
        assert_eq!(DeviceTopic::parse("app/device/x/config"), Err(TopicError::UnknownKind));
        assert_eq!(DeviceTopic::parse("app/device/x"), Err(TopicError::UnknownKind));
    }
}
