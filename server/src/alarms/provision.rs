//! Rules and channels from the configuration file (`[[alarms.rules]]`, `[[notify.channels]]`),
//! as Grafana provisions alerting, so a deployment is reproducible. Each item has an id of its
//! own choosing; at start-up it is created, or replaces the stored one with that id, through
//! the writer like a save from the API (an unchanged one is left as it is, so its alarms'
//! state goes on). Items taken out of the file are not deleted. Every item is checked on its
//! own, so a mistake stops the start with an error naming it (`alarms.rules[2] (id "hot"):
//! levels: 1 to 4`); unknown settings (a misspelt `for_sec`) are mistakes too.

use std::fmt;

use serde::{Deserialize, Serialize};
use telemetry::alarm::{MAX_RULES, Rule};
use telemetry::notify::{ChannelKind, MAX_CHANNELS, NewChannel, valid_id};

use crate::notify::sign;

/// Items of one kind as the configuration file has them: checked by [`parse`]. Printed as
/// their ids only (a channel may hold a secret or a token).
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Items(pub Vec<toml::Value>);

impl fmt::Debug for Items {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = self.0.iter().map(|item| item.get("id").and_then(|v| v.as_str()).unwrap_or("?"));
        f.debug_list().entries(ids).finish()
    }
}

/// A channel as provisioned: an id, what the API takes, and a webhook's signing secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelSpec {
    pub id: String,
    #[serde(flatten)]
    pub channel: NewChannel,
    /// `whsec_` and base64: the secret the receiver checks signatures with (required for a
    /// webhook, given in the file so it is the same on every deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl fmt::Debug for ChannelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelSpec").field("id", &self.id).field("name", &self.channel.name).finish()
    }
}

/// What the configuration provisions, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provision {
    pub channels: Vec<ChannelSpec>,
    pub rules: Vec<Rule>,
}

impl Provision {
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.rules.is_empty()
    }
}

/// Checks every provisioned item; the error names the first wrong one and says what is wrong.
pub fn parse(rules: &Items, channels: &Items) -> Result<Provision, String> {
    let mut out = Provision::default();
    if channels.0.len() > MAX_CHANNELS {
        return Err(format!("notify.channels: at most {MAX_CHANNELS}"));
    }
    if rules.0.len() > MAX_RULES {
        return Err(format!("alarms.rules: at most {MAX_RULES}"));
    }
    for (i, item) in channels.0.iter().enumerate() {
        let spec: ChannelSpec = typed(item).map_err(|e| name("notify.channels", i, item, &e))?;
        channel(&spec).map_err(|e| name("notify.channels", i, item, &e))?;
        if out.channels.iter().any(|c| c.id == spec.id) {
            return Err(name("notify.channels", i, item, "another channel has this id"));
        }
        out.channels.push(spec);
    }
    for (i, item) in rules.0.iter().enumerate() {
        let mut rule: Rule = typed(item).map_err(|e| name("alarms.rules", i, item, &e))?;
        if !valid_id(&rule.id) {
            return Err(name("alarms.rules", i, item, "id: 1 to 64 of A-Z a-z 0-9 _ . -"));
        }
        rule.name = rule.name.trim().to_owned();
        rule.validate().map_err(|e| name("alarms.rules", i, item, &e))?;
        if out.rules.iter().any(|r| r.id == rule.id) {
            return Err(name("alarms.rules", i, item, "another rule has this id"));
        }
        out.rules.push(rule);
    }
    Ok(out)
}

/// `alarms.rules[2] (id "hot"): why`.
fn name(list: &str, i: usize, item: &toml::Value, why: &str) -> String {
    match item.get("id").and_then(|v| v.as_str()) {
        Some(id) => format!("{list}[{i}] (id {:?}): {why}", telemetry::text::untrusted(id).to_string()),
        None => format!("{list}[{i}]: {why}"),
    }
}

/// `item` as a `T`, refusing settings `T` does not have.
fn typed<T: serde::de::DeserializeOwned + Serialize>(item: &toml::Value) -> Result<T, String> {
    let value: T = item.clone().try_into().map_err(|e: toml::de::Error| e.message().to_owned())?;
    let given = serde_json::to_value(item).map_err(|e| e.to_string())?;
    let read = serde_json::to_value(&value).map_err(|e| e.to_string())?;
    match unknown(&given, &read) {
        Some(path) => Err(format!("unknown setting `{path}`")),
        None => Ok(value),
    }
}

/// The first key in `given` that `read` (what was understood of it) does not have.
fn unknown(given: &serde_json::Value, read: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match (given, read) {
        (Value::Object(g), Value::Object(r)) => g.iter().find_map(|(k, v)| match r.get(k) {
            None => Some(k.clone()),
            Some(rv) => unknown(v, rv).map(|inner| format!("{k}.{inner}")),
        }),
        (Value::Array(g), Value::Array(r)) => g
            .iter()
            .zip(r)
            .enumerate()
            .find_map(|(i, (g, r))| unknown(g, r).map(|inner| format!("{i}.{inner}"))),
        _ => None,
    }
}

fn channel(spec: &ChannelSpec) -> Result<(), String> {
    if !valid_id(&spec.id) {
        return Err("id: 1 to 64 of A-Z a-z 0-9 _ . -".into());
    }
    spec.channel.validate()?;
    match (&spec.channel.kind, &spec.secret) {
        (ChannelKind::Webhook { .. }, Some(secret)) if sign::signature(secret, "", 0, b"").is_some() => {
            Ok(())
        }
        (ChannelKind::Webhook { .. }, _) => Err(format!(
            "secret: a webhook needs its signing secret, {}<base64> (make one: echo {}$(head -c 24 /dev/urandom | base64))",
            sign::PREFIX,
            sign::PREFIX
        )),
        (_, Some(_)) => Err("secret: only a webhook has one".into()),
        (_, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(toml_text: &str, key: &str) -> Items {
        let table: toml::Table = toml_text.parse().unwrap();
        Items(table.get(key).and_then(|v| v.as_array()).cloned().unwrap_or_default())
    }

    fn parse_text(text: &str) -> Result<Provision, String> {
        parse(&items(text, "rules"), &items(text, "channels"))
    }

    const GOOD: &str = r#"
        [[channels]]
        id = "ops"
        name = "Ops webhook"
        kind = "webhook"
        url = "https://hooks.example/iot"
        secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

        [[channels]]
        id = "phone"
        name = "Phone"
        kind = "ntfy"
        url = "https://ntfy.sh/my-alarms"

        [[rules]]
        id = "greenhouse-hot"
        name = "Greenhouse too hot"
        devices = ["ESP32_SIM_01"]
        kind = "threshold"
        metric = "temperature"
        op = ">"
        levels = [{ severity = "critical", value = 30 }, { severity = "warning", value = 27.5 }]
        clear = 26
        for_secs = 60
        channels = ["ops", "phone"]

        [[rules]]
        id = "gone"
        name = "Offline"
        kind = "offline"
        after_secs = 300
    "#;

    #[test]
    fn rules_and_channels_read_as_the_api_takes_them() {
        let p = parse_text(GOOD).unwrap();
        assert_eq!(p.channels.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["ops", "phone"]);
        assert_eq!(p.rules.len(), 2);
        let hot = &p.rules[0];
        assert_eq!((hot.id.as_str(), hot.for_secs, hot.channels.len()), ("greenhouse-hot", 60, 2));
        assert!(matches!(&hot.kind, telemetry::alarm::RuleKind::Threshold { levels, clear: Some(c), .. }
            if levels.len() == 2 && *c == 26.0));
        assert_eq!(
            p.rules[1].kind,
            telemetry::alarm::RuleKind::Offline {
                after_secs: 300,
                severity: telemetry::alarm::Severity::Major
            }
        );
    }

    #[test]
    fn a_mistake_names_the_item_and_says_what_is_wrong() {
        let cases = [
            (
                GOOD.replace("for_secs = 60", "for_sec = 60"),
                r#"alarms.rules[0] (id "greenhouse-hot"): unknown setting `for_sec`"#,
            ),
            (GOOD.replace("value = 30 }", "value = 30, hihg = 2 }"), "unknown setting `levels.0.hihg`"),
            (
                GOOD.replace("after_secs = 300", "after_secs = 0"),
                r#"alarms.rules[1] (id "gone"): after_secs"#,
            ),
            (GOOD.replace(r#"id = "gone""#, r#"id = "greenhouse-hot""#), "another rule has this id"),
            (GOOD.replace(r#"id = "gone""#, r#"id = "a/b""#), r#"(id "a/b"): id:"#),
            (
                GOOD.replace(r#"kind = "offline""#, r#"kind = "telepathy""#),
                "alarms.rules[1] (id \"gone\"): unknown variant",
            ),
            (
                GOOD.replace("secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"", ""),
                r#"notify.channels[0] (id "ops"): secret"#,
            ),
            (GOOD.replace("whsec_MfKQ", "MfKQ"), "secret: a webhook needs"),
            (
                GOOD.replace(r#"url = "https://ntfy.sh/my-alarms""#, r#"url = "ftp://x""#),
                r#"notify.channels[1] (id "phone"): url"#,
            ),
        ];
        for (text, want) in cases {
            let err = parse_text(&text).unwrap_err();
            assert!(err.contains(want), "{want:?} not in {err:?}");
        }
    }

    #[test]
    fn secrets_are_not_printed() {
        let text = GOOD;
        let printed = format!("{:?} {:?}", items(text, "channels"), parse_text(text).unwrap());
        assert!(!printed.contains("whsec_") && printed.contains("ops"), "{printed}");
    }
}
