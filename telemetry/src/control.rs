//! Dashboard controls: a switch, button, number or select widget bound to one device, either
//! to a command method (the control's value goes into the command's params under a key:
//! `set_relay {"on": true}`) or to a key of its desired state (a merge patch `{key: value}`).
//! What a control may send is checked here, on save and again when it is operated, so the
//! server sends only what the dashboard's admin configured.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::command::{MAX_TIMEOUT_SECS, NewCommand};
use crate::dashboard::{Widget, WidgetKind};
use crate::name::valid_name;

/// Most options a select offers.
pub const MAX_OPTIONS: usize = 20;
/// Longest value a control sends or an option holds, as JSON.
pub const MAX_VALUE_BYTES: usize = 256;
/// Longest option label.
const MAX_LABEL: usize = 40;

/// What operating a control does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Binding {
    /// Sends the command `method`, the control's value in its params under `key` (none: no
    /// params, for a button). What the control shows comes from the telemetry `metric` when
    /// given, else from the last command of `method` that succeeded.
    Command {
        method: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metric: Option<String>,
    },
    /// Sets `key` of the device's desired state; the control shows the reported value.
    Desired { key: String },
}

/// A select's option: what it shows and the value it sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub label: String,
    pub value: Value,
}

/// A control widget's settings (its device is the widget's only device; a number's bounds
/// are the widget's `min` and `max`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Control {
    pub binding: Binding,
    /// A number's step (none: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<f64>,
    /// A select's options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<Choice>,
    /// What a button sends under its key (none: `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub press: Option<Value>,
    /// Operable while the device is offline (the command or desired state waits for it).
    #[serde(default)]
    pub queue_offline: bool,
    /// How long a command waits for the device's answer (none: the commands' default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
}

/// What operating a control asks the server to do for its device.
#[derive(Debug, Clone, PartialEq)]
pub enum ControlRequest {
    Command(NewCommand),
    /// A JSON merge patch of one key.
    Desired {
        key: String,
        value: Value,
    },
}

/// Why a control's settings or a value for it were refused; the text says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// Not a control widget, or one not configured yet.
    NotConfigured,
    /// A control drives exactly one device.
    Device,
    Method,
    /// A key (params or desired) that is not `[A-Za-z0-9_.-]{1,64}`.
    Key,
    /// A switch, number or select bound to a command needs a params key.
    NeedsKey,
    Metric,
    Step,
    Options,
    Timeout,
    /// A value (an option's, a button's or one sent) that is not a short JSON scalar.
    Value,
    /// A value this control does not take (not a boolean, out of range, not an option).
    Refused(String),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::NotConfigured => f.write_str("the control is not configured"),
            ControlError::Device => f.write_str("a control drives exactly one device"),
            ControlError::Method => f.write_str("the method must be 1 to 64 of A-Z a-z 0-9 _ . -"),
            ControlError::Key => f.write_str("the key must be 1 to 64 of A-Z a-z 0-9 _ . -"),
            ControlError::NeedsKey => f.write_str("a switch, number or select needs a params key"),
            ControlError::Metric => f.write_str("the state metric must be a metric name"),
            ControlError::Step => f.write_str("the step must be a number above 0"),
            ControlError::Options => write!(
                f,
                "a select needs 1 to {MAX_OPTIONS} options, each with a label of 1 to {MAX_LABEL} characters"
            ),
            ControlError::Timeout => write!(f, "the timeout must be 1 to {MAX_TIMEOUT_SECS} s"),
            ControlError::Value => {
                write!(f, "a value must be a boolean, number or string of at most {MAX_VALUE_BYTES} bytes")
            }
            ControlError::Refused(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ControlError {}

/// A short JSON scalar: a boolean, a finite number or a string, at most [`MAX_VALUE_BYTES`].
pub fn scalar(value: &Value) -> bool {
    let short = serde_json::to_string(value).is_ok_and(|s| s.len() <= MAX_VALUE_BYTES);
    short && matches!(value, Value::Bool(_) | Value::Number(_) | Value::String(_))
}

/// A number as JSON: whole numbers as integers, so a device reading `interval_s` as a whole
/// number takes `30`, never `30.0`.
pub fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

impl Control {
    /// Checks the settings of a control widget of `kind`.
    pub fn validate(&self, kind: WidgetKind) -> Result<(), ControlError> {
        match &self.binding {
            Binding::Command { method, key, metric } => {
                valid_name(method).map_err(|_| ControlError::Method)?;
                match key {
                    Some(k) => valid_name(k).map_err(|_| ControlError::Key)?,
                    None if kind != WidgetKind::Button => return Err(ControlError::NeedsKey),
                    None => {}
                }
                if metric.as_deref().is_some_and(|m| valid_name(m).is_err()) {
                    return Err(ControlError::Metric);
                }
            }
            Binding::Desired { key } => valid_name(key).map_err(|_| ControlError::Key)?,
        }
        if self.step.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
            return Err(ControlError::Step);
        }
        if self.timeout_secs.is_some_and(|t| !(1..=MAX_TIMEOUT_SECS).contains(&t)) {
            return Err(ControlError::Timeout);
        }
        if self.press.as_ref().is_some_and(|v| !scalar(v)) || self.options.iter().any(|c| !scalar(&c.value)) {
            return Err(ControlError::Value);
        }
        let labels_ok =
            self.options.iter().all(|c| (1..=MAX_LABEL).contains(&c.label.trim().chars().count()));
        let count_ok = if kind == WidgetKind::Select {
            (1..=MAX_OPTIONS).contains(&self.options.len())
        } else {
            self.options.len() <= MAX_OPTIONS
        };
        if !labels_ok || !count_ok {
            return Err(ControlError::Options);
        }
        Ok(())
    }

    /// The desired key or command params key the control's value goes to.
    pub fn key(&self) -> Option<&str> {
        match &self.binding {
            Binding::Command { key, .. } => key.as_deref(),
            Binding::Desired { key } => Some(key),
        }
    }

    /// The command method, for a command binding.
    pub fn method(&self) -> Option<&str> {
        match &self.binding {
            Binding::Command { method, .. } => Some(method),
            Binding::Desired { .. } => None,
        }
    }
}

impl Widget {
    /// The device a control widget drives (its only device), if it is one and configured.
    pub fn control_device(&self) -> Option<&str> {
        match (self.kind.is_control(), self.control.is_some(), self.devices.as_slice()) {
            (true, true, [device]) => Some(device),
            _ => None,
        }
    }

    /// Checks `value` against this control and answers what to do with it, for its device. A
    /// switch takes a boolean, a number a number within `min`..`max`, a select one of its
    /// options' values; a button sends what it was set to press (`value` is not read).
    pub fn control_request(&self, value: &Value) -> Result<(String, ControlRequest), ControlError> {
        let control =
            self.control.as_ref().filter(|_| self.kind.is_control()).ok_or(ControlError::NotConfigured)?;
        control.validate(self.kind)?;
        let device = self.control_device().ok_or(ControlError::Device)?.to_owned();
        let value = match self.kind {
            WidgetKind::Switch => match value {
                Value::Bool(_) => value.clone(),
                _ => return Err(ControlError::Refused("a switch takes true or false".into())),
            },
            WidgetKind::Number => {
                let x = value.as_f64().filter(|x| x.is_finite());
                let x = x.ok_or_else(|| ControlError::Refused("a number control takes a number".into()))?;
                if self.min.is_some_and(|min| x < min) || self.max.is_some_and(|max| x > max) {
                    return Err(ControlError::Refused(format!("{x} is outside {}", self.bounds_text())));
                }
                number(x)
            }
            WidgetKind::Select => match control.options.iter().find(|c| &c.value == value) {
                Some(c) => c.value.clone(),
                None => return Err(ControlError::Refused("not one of the select's options".into())),
            },
            WidgetKind::Button => control.press.clone().unwrap_or(Value::Bool(true)),
            _ => return Err(ControlError::NotConfigured),
        };
        let request = match &control.binding {
            Binding::Desired { key } => ControlRequest::Desired { key: key.clone(), value },
            Binding::Command { method, key, .. } => {
                let params = key.as_ref().map(|k| Value::Object(Map::from_iter([(k.clone(), value)])));
                ControlRequest::Command(NewCommand {
                    method: method.clone(),
                    params,
                    ttl_secs: None,
                    timeout_secs: control.timeout_secs,
                    oneway: false,
                })
            }
        };
        Ok((device, request))
    }

    fn bounds_text(&self) -> String {
        let show = |v: Option<f64>| v.map_or_else(|| "…".to_owned(), |v| v.to_string());
        format!("{} to {}", show(self.min), show(self.max))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::dashboard::Widget;

    fn control(kind: WidgetKind, binding: Binding) -> Widget {
        Widget {
            id: "c".into(),
            kind,
            title: "c".into(),
            devices: vec!["pump".into()],
            query: None,
            metrics: vec![],
            unit: None,
            decimals: None,
            min: Some(5.0),
            max: Some(3600.0),
            thresholds: vec![],
            range: None,
            control: Some(Control {
                binding,
                step: None,
                options: vec![],
                press: None,
                queue_offline: false,
                timeout_secs: Some(5),
            }),
        }
    }

    fn relay() -> Binding {
        Binding::Command { method: "set_relay".into(), key: Some("on".into()), metric: Some("relay".into()) }
    }

    #[test]
    fn a_switch_sends_its_value_under_its_key() {
        let w = control(WidgetKind::Switch, relay());
        let (device, request) = w.control_request(&json!(true)).unwrap();
        assert_eq!(device, "pump");
        let ControlRequest::Command(new) = request else { panic!("a command") };
        assert_eq!(
            (new.method.as_str(), new.params, new.timeout_secs),
            ("set_relay", Some(json!({"on": true})), Some(5))
        );
        assert_eq!(
            w.control_request(&json!("on")),
            Err(ControlError::Refused("a switch takes true or false".into()))
        );
    }

    #[test]
    fn a_number_stays_within_its_bounds_and_whole_numbers_go_as_integers() {
        let w = control(WidgetKind::Number, Binding::Desired { key: "interval_s".into() });
        let (_, request) = w.control_request(&json!(30.0)).unwrap();
        assert_eq!(request, ControlRequest::Desired { key: "interval_s".into(), value: json!(30) });
        assert_eq!(serde_json::to_string(&number(30.0)).unwrap(), "30");
        assert_eq!(serde_json::to_string(&number(2.5)).unwrap(), "2.5");
        let e = w.control_request(&json!(1)).unwrap_err();
        assert_eq!(e.to_string(), "1 is outside 5 to 3600");
        assert!(w.control_request(&json!("30")).is_err());
    }

    #[test]
    fn a_select_sends_only_its_options_and_a_button_what_it_presses() {
        let mut w = control(WidgetKind::Select, Binding::Desired { key: "mode".into() });
        assert_eq!(w.control.as_ref().unwrap().validate(WidgetKind::Select), Err(ControlError::Options));
        w.control.as_mut().unwrap().options = vec![
            Choice { label: "Eco".into(), value: json!("eco") },
            Choice { label: "Boost".into(), value: json!("boost") },
        ];
        assert!(w.control_request(&json!("boost")).is_ok());
        assert!(matches!(w.control_request(&json!("turbo")), Err(ControlError::Refused(_))));

        let mut b = control(
            WidgetKind::Button,
            Binding::Command { method: "identify".into(), key: None, metric: None },
        );
        let (_, ControlRequest::Command(new)) = b.control_request(&Value::Null).unwrap() else { panic!() };
        assert_eq!(new.params, None, "a button without a key sends no params");
        b.control = Some(Control { press: Some(json!(3)), ..b.control.unwrap() });
        b.control.as_mut().unwrap().binding =
            Binding::Command { method: "blink".into(), key: Some("times".into()), metric: None };
        let (_, ControlRequest::Command(new)) = b.control_request(&json!(false)).unwrap() else { panic!() };
        assert_eq!(new.params, Some(json!({"times": 3})));
    }

    #[test]
    fn bad_settings_are_refused() {
        let check = |kind, binding| control(kind, binding).control.unwrap().validate(kind);
        assert_eq!(
            check(
                WidgetKind::Switch,
                Binding::Command { method: "a b".into(), key: Some("on".into()), metric: None }
            ),
            Err(ControlError::Method)
        );
        assert_eq!(
            check(WidgetKind::Switch, Binding::Command { method: "set".into(), key: None, metric: None }),
            Err(ControlError::NeedsKey)
        );
        assert_eq!(check(WidgetKind::Switch, Binding::Desired { key: "".into() }), Err(ControlError::Key));
        let mut c = control(WidgetKind::Number, relay()).control.unwrap();
        c.step = Some(0.0);
        assert_eq!(c.validate(WidgetKind::Number), Err(ControlError::Step));
        c.step = None;
        c.timeout_secs = Some(0);
        assert_eq!(c.validate(WidgetKind::Number), Err(ControlError::Timeout));
        c.timeout_secs = None;
        c.press = Some(json!({"nested": 1}));
        assert_eq!(c.validate(WidgetKind::Number), Err(ControlError::Value));
        c.press = Some(json!("x".repeat(300)));
        assert_eq!(c.validate(WidgetKind::Number), Err(ControlError::Value));
    }

    #[test]
    fn a_control_drives_exactly_one_device_and_must_be_configured() {
        let mut w = control(WidgetKind::Switch, relay());
        w.devices.push("other".into());
        assert_eq!(w.control_request(&json!(true)), Err(ControlError::Device));
        w.devices.clear();
        assert_eq!(w.control_request(&json!(true)), Err(ControlError::Device));
        w.control = None;
        assert_eq!(w.control_request(&json!(true)), Err(ControlError::NotConfigured));
        let mut gauge = control(WidgetKind::Gauge, relay());
        gauge.kind = WidgetKind::Gauge;
        assert_eq!(gauge.control_request(&json!(true)), Err(ControlError::NotConfigured));
    }
}
