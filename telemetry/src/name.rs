//! Device ids and metric names: `[A-Za-z0-9_.-]{1,64}`. This keeps MQTT wildcards (`+`, `#`),
//! topic separators (`/`) and empty names out of topics, keys and URLs.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest accepted device id or metric name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong,
    BadChar,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::Empty => "empty",
            NameError::TooLong => "longer than 64 characters",
            NameError::BadChar => "only A-Z a-z 0-9 _ . - are allowed",
        })
    }
}

/// Checks a device id or metric name.
pub fn valid_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return Err(NameError::BadChar);
    }
    Ok(())
}

/// A validated device id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceId(String);

impl DeviceId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for DeviceId {
    type Error = NameError;
    fn try_from(s: &str) -> Result<Self, NameError> {
        valid_name(s).map(|()| DeviceId(s.to_owned()))
    }
}

impl TryFrom<String> for DeviceId {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        valid_name(&s).map(|()| DeviceId(s))
    }
}

impl From<DeviceId> for String {
    fn from(id: DeviceId) -> String {
        id.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_seed_ids_and_metric_names() {
        for ok in ["ESP32_SIM_01", "TEST", "temperature", "a.b-c_d", &"x".repeat(64)] {
            assert_eq!(valid_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_wildcards_separators_empty_and_long() {
        assert_eq!(valid_name(""), Err(NameError::Empty));
        assert_eq!(valid_name(&"x".repeat(65)), Err(NameError::TooLong));
        for bad in ["+", "#", "a/b", "dev ice", "dév", "a+", "$SYS", "<img>"] {
            assert_eq!(valid_name(bad), Err(NameError::BadChar), "{bad}");
        }
    }

    #[test]
    fn device_id_deserialisation_validates() {
        assert!(serde_json::from_str::<DeviceId>("\"ok_1\"").is_ok());
        assert!(serde_json::from_str::<DeviceId>("\"a/b\"").is_err());
    }
}
