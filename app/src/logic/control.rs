//! What a dashboard control shows, never optimistic: the device's actual state (its reported
//! desired key, or for a command binding the newer of its state metric and the last command
//! of the method that succeeded), and where the latest change stands: pending until the
//! device confirms, confirmed, or failed with the reason, the control showing the actual state
//! again.

use serde_json::Value;
use telemetry::Millis;
use telemetry::command::{Command, CommandStatus, id_counter};
use telemetry::desired::Shadow;

use super::commands::progress;

/// Where a control's latest change stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Nothing under way.
    Idle,
    /// Sent; the device has not confirmed yet. `target` is what was asked for, `detail` how
    /// far it has come ("queued", "sent", "waiting for the device's report").
    Pending { target: Value, detail: String },
    /// The device confirmed the change this page made.
    Confirmed,
    /// The change failed: the control shows the device's actual state, and this says why.
    Failed { reason: String },
}

/// The device's actual state and where the latest change stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    /// `None` while the device has not said.
    pub value: Option<Value>,
    pub phase: Phase,
}

/// Whether `a` is at least as new as `b` (a later desired version, or the same one reported
/// later): what the feed, a page's seed and an operation's answer each bring is folded so.
pub fn newer_shadow(a: &Shadow, b: &Shadow) -> bool {
    let at = |s: &Shadow| s.reported.as_ref().map_or(i64::MIN, |r| r.at);
    (a.v, at(a)) >= (b.v, at(b))
}

/// Whether command `a` is at least as new as `b`: a later id (they count up per device), or
/// the same one further along.
pub fn newer_command(a: &Command, b: &Command) -> bool {
    let counter = |c: &Command| id_counter(&c.id).unwrap_or(0);
    (counter(a), progress(a)) >= (counter(b), progress(b))
}

/// A control bound to desired `key`: the reported value, pending while the device has not
/// reported the version that set it, failed when it reported that version with another value.
/// `mine` is the desired version this page's last change made, if any (only it is confirmed).
pub fn desired_shown(shadow: Option<&Shadow>, key: &str, mine: Option<u64>) -> Shown {
    let Some(shadow) = shadow else { return Shown { value: None, phase: Phase::Idle } };
    let reported = shadow.reported.as_ref();
    let value = reported.and_then(|r| r.state.get(key)).cloned();
    let Some(target) = shadow.state.get(key) else { return Shown { value, phase: Phase::Idle } };
    let phase = match reported {
        None => {
            Phase::Pending { target: target.clone(), detail: "waiting for the device's first report".into() }
        }
        Some(r) if value.as_ref() == Some(target) => {
            if mine.is_some_and(|v| r.v >= v) {
                Phase::Confirmed
            } else {
                Phase::Idle
            }
        }
        Some(r) if r.v < shadow.v => {
            Phase::Pending { target: target.clone(), detail: "waiting for the device's report".into() }
        }
        Some(_) => Phase::Failed {
            reason: format!(
                "The device did not take {}: it reports {}",
                target,
                value.as_ref().map_or_else(|| "nothing for it".to_owned(), Value::to_string)
            ),
        },
    };
    Shown { value, phase }
}

/// A command's outcome in words, for a control that made it and failed.
pub fn failure(c: &Command) -> Option<String> {
    let said = || {
        c.error.as_ref().map(|e| match &e.message {
            Some(m) => format!("{}: {m}", e.code),
            None => e.code.clone(),
        })
    };
    let text = match c.status {
        CommandStatus::Failed => format!("Failed: {}", said().unwrap_or_default()),
        CommandStatus::Rejected => format!("Rejected: {}", said().unwrap_or_default()),
        CommandStatus::TimedOut => format!("Timed out: no answer within {} s", c.timeout_ms / 1000),
        CommandStatus::Expired => "Expired: the device did not take it in time".into(),
        CommandStatus::Canceled => {
            format!("Canceled by {}", c.canceled_by.as_deref().unwrap_or("someone"))
        }
        CommandStatus::Queued | CommandStatus::Sent | CommandStatus::Delivered | CommandStatus::Succeeded => {
            return None;
        }
    };
    Some(text.chars().take(300).collect())
}

/// A control bound to a command: the value is the newer of the state `metric` (value, reading
/// time) and what the last succeeded command sent under `key` (at its end); the phase follows
/// `last`, the newest command of the method. Only a command this page made (`mine`) is shown
/// confirmed or failed; anyone's unfinished one shows pending.
pub fn command_shown(
    key: Option<&str>,
    metric: Option<(f64, Millis)>,
    last: Option<&Command>,
    last_succeeded: Option<&Command>,
    mine: Option<&str>,
) -> Shown {
    let sent = |c: &Command| key.and_then(|k| c.params.get(k)).cloned();
    let by_command = last_succeeded.and_then(|c| Some((sent(c)?, c.finished_at.unwrap_or(c.created_at))));
    let by_metric = metric.map(|(v, at)| (telemetry::control::number(v), at));
    let value = match (by_metric, by_command) {
        (Some((m, m_at)), Some((c, c_at))) => Some(if c_at > m_at { c } else { m }),
        (m, c) => m.or(c).map(|(v, _)| v),
    };
    let phase = match last {
        Some(c) if !c.status.is_terminal() => Phase::Pending {
            target: sent(c).unwrap_or(Value::Null),
            detail: match c.status {
                CommandStatus::Queued => "queued".into(),
                CommandStatus::Sent if !c.delivery_observable => "sent".into(),
                CommandStatus::Sent => "sent, not yet received".into(),
                _ => "received, waiting for the answer".into(),
            },
        },
        Some(c) if mine == Some(c.id.as_str()) => match failure(c) {
            Some(reason) => Phase::Failed { reason },
            None => Phase::Confirmed,
        },
        _ => Phase::Idle,
    };
    Shown { value, phase }
}

/// Shown to viewers on a disabled control.
pub const VIEWERS_NOTE: &str = "Only admins can control devices";

/// What decides whether a control can be used now.
#[derive(Debug, Clone, Copy)]
pub struct Situation<'a> {
    pub device: &'a str,
    /// The page is hydrated (its script runs the control).
    pub interactive: bool,
    pub can_act: bool,
    /// The live feed is down: what the control shows may be out of date.
    pub feed_down: bool,
    /// The device is offline (its last will), or has never connected.
    pub device_offline: bool,
    pub queue_offline: bool,
    pub pending: bool,
}

/// Why a control cannot be used now (its tooltip), if it cannot: the first that applies.
pub fn why_disabled(s: &Situation) -> Option<String> {
    if !s.interactive {
        return Some("Loading…".to_owned());
    }
    if !s.can_act {
        return Some(VIEWERS_NOTE.to_owned());
    }
    if s.feed_down {
        return Some("The dashboard is offline; reconnecting".to_owned());
    }
    if s.device_offline && !s.queue_offline {
        return Some(format!("{} is offline; this control does not queue changes", s.device));
    }
    s.pending.then(|| "Waiting for the device to confirm".to_owned())
}

/// Whether a value shows a switch on: `true`, a number other than 0, `"on"` or `"true"`.
pub fn is_on(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => matches!(s.to_ascii_lowercase().as_str(), "on" | "true" | "1"),
        _ => false,
    }
}

/// A value as a control shows it: a string without its quotes, anything else as JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};
    use telemetry::command::CommandError;
    use telemetry::desired::Reported;

    use super::*;

    fn shadow(v: u64, desired: Value, reported: Option<(u64, Value)>) -> Shadow {
        Shadow {
            device: "d".into(),
            v,
            state: desired.as_object().cloned().unwrap_or_default(),
            updated_by: Some("ann".into()),
            updated_at: Some(1),
            reported: reported.map(|(v, s)| Reported { v, state: s.as_object().cloned().unwrap(), at: 10 }),
        }
    }

    #[test]
    fn a_desired_key_is_pending_until_reported_then_confirmed_or_failed() {
        let s = shadow(3, json!({"relay": true}), Some((2, json!({"relay": false}))));
        assert_eq!(
            desired_shown(Some(&s), "relay", Some(3)),
            Shown {
                value: Some(json!(false)),
                phase: Phase::Pending {
                    target: json!(true),
                    detail: "waiting for the device's report".into()
                }
            },
            "the switch still shows off"
        );
        let s = shadow(3, json!({"relay": true}), Some((3, json!({"relay": true}))));
        assert_eq!(desired_shown(Some(&s), "relay", Some(3)).phase, Phase::Confirmed);
        assert_eq!(desired_shown(Some(&s), "relay", None).phase, Phase::Idle, "someone else's change");
        let s = shadow(3, json!({"relay": true}), Some((3, json!({"relay": false}))));
        let shown = desired_shown(Some(&s), "relay", Some(3));
        assert_eq!(shown.value, Some(json!(false)), "reverted to what the device has");
        assert_eq!(
            shown.phase,
            Phase::Failed { reason: "The device did not take true: it reports false".into() }
        );
        let never = shadow(1, json!({"relay": true}), None);
        assert!(matches!(desired_shown(Some(&never), "relay", Some(1)).phase, Phase::Pending { .. }));
        assert_eq!(desired_shown(None, "relay", None), Shown { value: None, phase: Phase::Idle });
        let other = shadow(4, json!({"interval_s": 30, "relay": true}), Some((3, json!({"relay": true}))));
        assert_eq!(
            desired_shown(Some(&other), "relay", Some(3)).phase,
            Phase::Confirmed,
            "another key pending"
        );
    }

    fn command(id: &str, status: CommandStatus, on: bool, finished_at: Option<Millis>) -> Command {
        Command {
            id: id.into(),
            device: "d".into(),
            method: "set_relay".into(),
            params: Map::from_iter([("on".into(), json!(on))]),
            oneway: false,
            status,
            created_at: 100,
            created_by: "ann".into(),
            expires_at: 10_000,
            timeout_ms: 5_000,
            respond_by: None,
            sent_at: None,
            delivered_at: None,
            finished_at,
            result: None,
            error: None,
            canceled_by: None,
            delivery_observable: true,
            sends: 1,
        }
    }

    #[test]
    fn a_command_is_pending_then_confirmed_and_its_value_shown() {
        let sent = command("2", CommandStatus::Delivered, true, None);
        let before = command("1", CommandStatus::Succeeded, false, Some(50));
        let shown = command_shown(Some("on"), None, Some(&sent), Some(&before), Some("2"));
        assert_eq!(shown.value, Some(json!(false)), "still the last confirmed state");
        assert!(matches!(shown.phase, Phase::Pending { ref target, .. } if *target == json!(true)));
        let done = command("2", CommandStatus::Succeeded, true, Some(200));
        let shown = command_shown(Some("on"), Some((0.0, 150)), Some(&done), Some(&done), Some("2"));
        assert_eq!(
            (shown.value, shown.phase),
            (Some(json!(true)), Phase::Confirmed),
            "newer than the metric"
        );
        let shown = command_shown(Some("on"), Some((0.0, 250)), Some(&done), Some(&done), Some("2"));
        assert_eq!(shown.value, Some(json!(0)), "a later reading says what the device has");
        assert_eq!(command_shown(Some("on"), None, Some(&done), Some(&done), None).phase, Phase::Idle);
    }

    #[test]
    fn a_failed_command_reverts_with_its_reason() {
        let mut lost = command("2", CommandStatus::TimedOut, true, Some(5_200));
        let before = command("1", CommandStatus::Succeeded, false, Some(50));
        let shown = command_shown(Some("on"), None, Some(&lost), Some(&before), Some("2"));
        assert_eq!(shown.value, Some(json!(false)));
        assert_eq!(shown.phase, Phase::Failed { reason: "Timed out: no answer within 5 s".into() });
        lost.status = CommandStatus::Rejected;
        lost.error =
            Some(CommandError { code: "unknown_method".into(), message: Some("no method x".into()) });
        assert_eq!(failure(&lost).as_deref(), Some("Rejected: unknown_method: no method x"));
        assert_eq!(
            command_shown(Some("on"), None, Some(&lost), None, Some("other")).phase,
            Phase::Idle,
            "another page's failure is not this one's to report"
        );
    }

    #[test]
    fn newer_news_wins() {
        let a = shadow(3, json!({}), Some((3, json!({}))));
        let b = shadow(3, json!({}), None);
        assert!(newer_shadow(&a, &b) && !newer_shadow(&b, &a));
        let sent = command("a", CommandStatus::Sent, true, None);
        let done = command("a", CommandStatus::Succeeded, true, Some(1));
        let next = command("b", CommandStatus::Queued, true, None);
        assert!(newer_command(&done, &sent) && !newer_command(&sent, &done));
        assert!(newer_command(&next, &done));
    }

    #[test]
    fn a_control_is_disabled_with_the_first_reason_that_applies() {
        let usable = Situation {
            device: "pump",
            interactive: true,
            can_act: true,
            feed_down: false,
            device_offline: false,
            queue_offline: false,
            pending: false,
        };
        assert_eq!(why_disabled(&usable), None);
        let offline = Situation { device_offline: true, ..usable };
        assert_eq!(
            why_disabled(&offline).as_deref(),
            Some("pump is offline; this control does not queue changes")
        );
        assert_eq!(why_disabled(&Situation { queue_offline: true, ..offline }), None, "it may queue");
        let viewer = Situation { can_act: false, ..offline };
        assert_eq!(why_disabled(&viewer).as_deref(), Some(VIEWERS_NOTE), "a viewer is told that first");
        assert_eq!(why_disabled(&Situation { interactive: false, ..viewer }).as_deref(), Some("Loading…"));
        assert!(why_disabled(&Situation { feed_down: true, ..usable }).unwrap().contains("reconnecting"));
        assert_eq!(
            why_disabled(&Situation { pending: true, queue_offline: true, ..offline }).as_deref(),
            Some("Waiting for the device to confirm")
        );
    }

    #[test]
    fn values_read_as_a_switch_and_as_text() {
        assert!(is_on(&json!(true)) && is_on(&json!(1)) && is_on(&json!("ON")));
        assert!(!is_on(&json!(0)) && !is_on(&json!(false)) && !is_on(&Value::Null));
        assert_eq!((text(&json!("eco")), text(&json!(30))), ("eco".to_owned(), "30".to_owned()));
    }
}
