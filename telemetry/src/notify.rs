//! Notification channels (where alarms are sent) and the notifications themselves, as the API
//! and the UI see them.

use serde::{Deserialize, Serialize};

use crate::Millis;
use crate::alarm::{Severity, TransitionKind};
use crate::name::valid_name;

/// Most channels the server keeps.
pub const MAX_CHANNELS: usize = 50;
/// Longest URL, address list.
pub const MAX_URL: usize = 2048;
pub const MAX_RECIPIENTS: usize = 20;

/// Where a channel sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelKind {
    /// A `POST` per alarm transition, signed per Standard Webhooks.
    Webhook { url: String },
    /// An ntfy topic URL (`https://ntfy.sh/my-alarms` or a self-hosted one), with an access
    /// token if the topic needs one.
    Ntfy {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// Mail, through the server's SMTP settings.
    Email { to: Vec<String> },
}

/// A channel as an admin creates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewChannel {
    pub name: String,
    #[serde(flatten)]
    pub kind: ChannelKind,
}

/// A channel as the server lists it: never its secret or token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    pub id: String,
    pub name: String,
    /// `webhook`, `ntfy` or `email`.
    pub kind: String,
    /// The URL (without credentials) or the addresses it sends to.
    pub target: String,
    pub created: Millis,
}

impl NewChannel {
    /// Checks what an admin sent; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err("name: 1 to 100 characters".into());
        }
        match &self.kind {
            ChannelKind::Webhook { url } => http_url(url),
            ChannelKind::Ntfy { url, token } => {
                http_url(url)?;
                if token.as_ref().is_some_and(|t| t.is_empty() || t.len() > 256 || t.contains(['\r', '\n'])) {
                    return Err("token: 1 to 256 characters on one line".into());
                }
                Ok(())
            }
            ChannelKind::Email { to } => {
                if to.is_empty() || to.len() > MAX_RECIPIENTS {
                    return Err(format!("to: 1 to {MAX_RECIPIENTS} addresses"));
                }
                for address in to {
                    let (local, domain) =
                        address.split_once('@').ok_or("to: addresses look like name@example.com")?;
                    let fine = |s: &str| !s.is_empty() && s.len() <= 254 && !s.contains(char::is_whitespace);
                    if !fine(local) || !fine(domain) || address.contains(['<', '>', ',', ';', '"']) {
                        return Err(format!("to: {address:?} is not an address"));
                    }
                }
                Ok(())
            }
        }
    }
}

fn http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("url: http:// or https://")?;
    if url.len() > MAX_URL || rest.is_empty() || url.contains(char::is_whitespace) {
        return Err(format!("url: at most {MAX_URL} characters, no spaces"));
    }
    Ok(())
}

/// What a notification says: one alarm transition (the webhook body, version 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub version: u32,
    /// `alarm.fired`, `alarm.cleared`, …
    pub event: String,
    pub alarm_id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub device: String,
    pub severity: Severity,
    /// `ACTIVE_UNACK`, …
    pub status: String,
    #[serde(default)]
    pub value: Option<f64>,
    /// When it happened (ms since the epoch).
    pub at: Millis,
    /// The alarm's page.
    pub url: String,
}

impl Notice {
    /// A one-line summary for people: "Fired: hot on ESP32_SIM_01 (critical, 31.2)".
    pub fn line(&self) -> String {
        let what = match self.event.strip_prefix("alarm.").unwrap_or(&self.event) {
            "fired" => "Fired",
            "reopened" => "Fired again",
            "escalated" => "Escalated",
            "deescalated" => "Eased",
            "cleared" => "Cleared",
            "acked" => "Acknowledged",
            "flapping" => "Flapping (quiet until stable)",
            "stable" => "Stable again",
            "reminder" => "Still active",
            other => other,
        };
        let value = self.value.map(|v| format!(", {v}")).unwrap_or_default();
        format!("{what}: {} on {} ({}{value})", self.rule_name, self.device, self.severity)
    }
}

/// Whether a transition of this kind is worth telling a channel about.
pub fn notifies(kind: TransitionKind) -> bool {
    !matches!(kind, TransitionKind::Commented | TransitionKind::Shelved | TransitionKind::Unshelved)
}

/// Whether a transition is told to the rule's channels: worth telling, and not one of the
/// changes a flapping alarm keeps quiet about (it opens, clears and moves until it is stable).
pub fn told(kind: TransitionKind, flapping: bool) -> bool {
    let hushed = flapping
        && matches!(
            kind,
            TransitionKind::Fired
                | TransitionKind::Reopened
                | TransitionKind::Cleared
                | TransitionKind::Escalated
                | TransitionKind::Deescalated
        );
    notifies(kind) && !hushed
}

/// Where a notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its (next) attempt.
    Pending,
    Sent,
    /// Given up: refused, or still failing after a day.
    Failed,
    /// Over the channel's rate: counted in a "more suppressed" message instead.
    Suppressed,
}

/// One notification to one channel, as the deliveries page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The `webhook-id`: the same for every attempt.
    pub id: String,
    pub channel: String,
    pub notice: Notice,
    pub state: DeliveryState,
    pub created: Millis,
    pub attempts: u32,
    pub next_at: Millis,
    #[serde(default)]
    pub last_status: Option<u16>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub done_at: Option<Millis>,
}

/// A channel id or rule id: the store makes them, `[a-z0-9-]`.
pub fn valid_id(id: &str) -> bool {
    valid_name(id).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_read_from_the_api_shape_and_validate() {
        let c: NewChannel =
            serde_json::from_str(r#"{"kind": "webhook", "name": "ops", "url": "http://127.0.0.1:9/hook"}"#)
                .unwrap();
        assert_eq!(c.validate(), Ok(()));
        let n: NewChannel = serde_json::from_str(
            r#"{"kind": "ntfy", "name": "phone", "url": "https://ntfy.sh/my-alarms", "token": "tk_x"}"#,
        )
        .unwrap();
        assert_eq!(n.validate(), Ok(()));
        let e: NewChannel =
            serde_json::from_str(r#"{"kind": "email", "name": "ann", "to": ["ann@example.com"]}"#).unwrap();
        assert_eq!(e.validate(), Ok(()));
        for bad in [
            r#"{"kind": "webhook", "name": "x", "url": "ftp://a"}"#,
            r#"{"kind": "webhook", "name": "", "url": "http://a"}"#,
            r#"{"kind": "ntfy", "name": "x", "url": "http://a", "token": "a\nb"}"#,
            r#"{"kind": "email", "name": "x", "to": ["ann"]}"#,
            r#"{"kind": "email", "name": "x", "to": ["a@b>, c@d"]}"#,
            r#"{"kind": "email", "name": "x", "to": []}"#,
        ] {
            let c: NewChannel = serde_json::from_str(bad).unwrap();
            assert!(c.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_notice_reads_as_a_line() {
        let n = Notice {
            version: 1,
            event: "alarm.fired".into(),
            alarm_id: "a1".into(),
            rule_id: "r1".into(),
            rule_name: "hot".into(),
            device: "ESP32_SIM_01".into(),
            severity: Severity::Critical,
            status: "ACTIVE_UNACK".into(),
            value: Some(31.2),
            at: 0,
            url: "http://x/alarms/a1".into(),
        };
        assert_eq!(n.line(), "Fired: hot on ESP32_SIM_01 (critical, 31.2)");
        assert!(notifies(TransitionKind::Fired) && !notifies(TransitionKind::Commented));
    }
}
