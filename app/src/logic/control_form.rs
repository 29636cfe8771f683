//! The widget editor's control settings as typed (a method or desired key, a params key, a
//! state metric, a timeout, a step, options one per line, a button's value) read into a
//! [`Control`], checked as the server will check it.

use serde_json::Value;
use telemetry::control::{Binding, Choice, Control, scalar};
use telemetry::dashboard::WidgetKind;

/// The settings' fields, as text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControlDraft {
    /// Drives a desired key (else a command method).
    pub to_desired: bool,
    pub method: String,
    /// The params key (command) or the desired key.
    pub key: String,
    pub metric: String,
    pub timeout_secs: String,
    pub step: String,
    /// `label=value`, one per line.
    pub options: String,
    pub press: String,
    pub queue_offline: bool,
}

/// Text as a value: JSON when it reads as a JSON scalar (`true`, `30`, `"x"`), else the text.
pub fn parse_value(text: &str) -> Value {
    let text = text.trim();
    match serde_json::from_str::<Value>(text) {
        Ok(v) if scalar(&v) => v,
        _ => Value::String(text.to_owned()),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) if parse_value(s) == *v => s.clone(),
        other => other.to_string(),
    }
}

/// Options as the editor shows them: `label=value` per line.
pub fn options_text(options: &[Choice]) -> String {
    options.iter().map(|c| format!("{}={}", c.label, value_text(&c.value))).collect::<Vec<_>>().join("\n")
}

/// `label=value` per line (a line without `=` is its own label and value); blank lines skipped.
pub fn parse_options(text: &str) -> Vec<Choice> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (label, value) = line.split_once('=').unwrap_or((line, line));
            Choice { label: label.trim().to_owned(), value: parse_value(value) }
        })
        .collect()
}

impl ControlDraft {
    pub fn of(control: Option<&Control>) -> ControlDraft {
        let Some(c) = control else { return ControlDraft::default() };
        let (to_desired, method, key, metric) = match &c.binding {
            Binding::Command { method, key, metric } => {
                (false, method.clone(), key.clone().unwrap_or_default(), metric.clone().unwrap_or_default())
            }
            Binding::Desired { key } => (true, String::new(), key.clone(), String::new()),
        };
        ControlDraft {
            to_desired,
            method,
            key,
            metric,
            timeout_secs: c.timeout_secs.map(|t| t.to_string()).unwrap_or_default(),
            step: c.step.map(|s| s.to_string()).unwrap_or_default(),
            options: options_text(&c.options),
            press: c.press.as_ref().map(value_text).unwrap_or_default(),
            queue_offline: c.queue_offline,
        }
    }

    /// The control these fields make for a widget of `kind`: `Ok(None)` while nothing says
    /// what it drives, an error saying what to change when something does not hold.
    pub fn control(&self, kind: WidgetKind) -> Result<Option<Control>, String> {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let binding = if self.to_desired {
            let Some(key) = text(&self.key) else { return Ok(None) };
            Binding::Desired { key }
        } else {
            let Some(method) = text(&self.method) else { return Ok(None) };
            Binding::Command { method, key: text(&self.key), metric: text(&self.metric) }
        };
        let number = |s: &str, what: &str| match text(s) {
            None => Ok(None),
            Some(t) => t.parse::<f64>().map(Some).map_err(|_| format!("{what} must be a number")),
        };
        let timeout_secs = match text(&self.timeout_secs) {
            None => None,
            Some(t) => {
                Some(t.parse::<u64>().map_err(|_| "the timeout is a whole number of seconds".to_owned())?)
            }
        };
        let control = Control {
            binding,
            step: number(&self.step, "the step")?,
            options: parse_options(&self.options),
            press: text(&self.press).map(|p| parse_value(&p)),
            queue_offline: self.queue_offline,
            timeout_secs,
        };
        control.validate(kind).map_err(|e| e.to_string())?;
        Ok(Some(control))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_make_a_control_and_read_back_the_same() {
        let draft = ControlDraft {
            method: " set_relay ".into(),
            key: "on".into(),
            metric: "relay".into(),
            timeout_secs: "5".into(),
            ..ControlDraft::default()
        };
        let control = draft.control(WidgetKind::Switch).unwrap().unwrap();
        assert_eq!(
            control.binding,
            Binding::Command {
                method: "set_relay".into(),
                key: Some("on".into()),
                metric: Some("relay".into())
            }
        );
        assert_eq!(control.timeout_secs, Some(5));
        assert_eq!(ControlDraft::of(Some(&control)).control(WidgetKind::Switch), Ok(Some(control)));
    }

    #[test]
    fn nothing_entered_is_no_control_and_bad_fields_say_why() {
        assert_eq!(ControlDraft::default().control(WidgetKind::Switch), Ok(None));
        let bad = ControlDraft { method: "set relay".into(), key: "on".into(), ..ControlDraft::default() };
        assert!(bad.control(WidgetKind::Switch).unwrap_err().contains("method"));
        let keyless = ControlDraft { method: "set_relay".into(), ..ControlDraft::default() };
        assert!(keyless.control(WidgetKind::Switch).unwrap_err().contains("key"));
        assert!(keyless.control(WidgetKind::Button).is_ok(), "a button may send no params");
        let slow = ControlDraft { timeout_secs: "soon".into(), ..keyless };
        assert!(slow.control(WidgetKind::Button).unwrap_err().contains("timeout"));
    }

    #[test]
    fn options_are_label_equals_value_per_line() {
        let options = parse_options("Eco=eco\n\n Boost = 2 \nOff=false\nplain");
        let values: Vec<_> = options.iter().map(|c| (c.label.as_str(), c.value.clone())).collect();
        assert_eq!(
            values,
            [("Eco", json!("eco")), ("Boost", json!(2)), ("Off", json!(false)), ("plain", json!("plain"))]
        );
        assert_eq!(options_text(&options), "Eco=eco\nBoost=2\nOff=false\nplain=plain");
        let draft = ControlDraft {
            to_desired: true,
            key: "mode".into(),
            options: "".into(),
            ..ControlDraft::default()
        };
        assert!(draft.control(WidgetKind::Select).unwrap_err().contains("options"));
        assert_eq!(parse_value("\"2\""), json!("2"), "a quoted number stays a string");
        assert_eq!(value_text(&json!("2")), "\"2\"");
    }
}
