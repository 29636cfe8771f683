//! Device keys for a broker where each device signs in as itself (user name = client id =
//! device id, password = its key from `server device key <id>`): a file of `<device id> <key>`
//! lines; blank lines and lines starting with `#` are skipped.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;

/// Each device's key, by device id.
#[derive(Clone, Debug, Default)]
pub struct Keys(HashMap<String, String>);

impl Keys {
    pub fn read(path: &Path) -> anyhow::Result<Keys> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Keys::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Keys> {
        let mut keys = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(id), Some(key), None) => {
                    keys.insert(id.to_owned(), key.to_owned());
                }
                _ => anyhow::bail!("line {}: expected `<device id> <key>`", n + 1),
            }
        }
        Ok(Keys(keys))
    }

    /// The key of `id`, or an error naming the device that has none.
    pub fn of(&self, id: &str) -> anyhow::Result<&str> {
        self.0.get(id).map(String::as_str).with_context(|| format!("no key for device {id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_device_and_key_a_line() {
        let keys =
            Keys::parse("# from server device key\nESP32_SIM_01 k1\n\n  ESP32_SIM_02\tk2  \n").unwrap();
        assert_eq!(keys.of("ESP32_SIM_01").unwrap(), "k1");
        assert_eq!(keys.of("ESP32_SIM_02").unwrap(), "k2");
        assert!(keys.of("ESP32_SIM_03").unwrap_err().to_string().contains("ESP32_SIM_03"));
        let err = Keys::parse("ESP32_SIM_01\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
