//! The alarm rule editor's form as it is posted (every field text, so a plain form without
//! JavaScript posts the same thing as the hydrated page), and its conversion to and from a
//! [`Rule`]. Durations read as `90`, `90s`, `5m`, `2h` or `1d` and are written back the same
//! way.

use serde::{Deserialize, Serialize};
use telemetry::alarm::{Level, MAX_LEVELS, Op, Rule, RuleKind, Severity};

/// The kinds of rule, as the form's `kind` field names them, with their labels.
pub const KINDS: [(&str, &str); 6] = [
    ("threshold", "Threshold"),
    ("no_data", "No data"),
    ("offline", "Offline or stale"),
    ("overdue", "No data for N × its interval"),
    ("reboot_loop", "Reboot loop"),
    ("firmware_drift", "Firmware differs from the fleet's"),
];

/// The kinds whose fields are the fleet-health ones (count, tag).
pub const FLEET_KINDS: [&str; 3] = ["overdue", "reboot_loop", "firmware_drift"];

/// The comparisons, as the form's `op` field names them (the API's names), with their labels.
pub const OPS: [(Op, &str); 6] = [
    (Op::Gt, "above (>)"),
    (Op::Ge, "at or above (>=)"),
    (Op::Lt, "below (<)"),
    (Op::Le, "at or below (<=)"),
    (Op::Outside, "outside a band"),
    (Op::Inside, "inside a band"),
];

/// Rule templates the editor starts from (`?template=<key>`), with their labels: common
/// watches of the well-known metrics (README, Sending telemetry) as the existing kinds express
/// them, and the fleet-health kinds, to adjust before saving.
pub const TEMPLATES: [(&str, &str); 7] = [
    ("offline", "Offline for 10 min"),
    ("no_data_intervals", "No data for 3 × its interval"),
    ("battery_percent", "Battery low (under 20 %)"),
    ("battery_volts", "Battery low (under 3.4 V)"),
    ("weak_signal", "Weak signal for 10 min"),
    ("reboot_loop", "Reboot loop (3 in 1 h)"),
    ("firmware_drift", "Firmware differs from the fleet's"),
];

/// Most device ids the editor's device field takes (the rule's own limit).
pub const MAX_DEVICES: usize = telemetry::alarm::MAX_RULE_DEVICES;

/// One severity level's row: unused while its value is empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LevelForm {
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub high: String,
}

/// The rule editor's fields, as posted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleForm {
    /// Empty for a new rule.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// A ticked checkbox sends a value; an unticked one sends nothing.
    #[serde(default)]
    pub enabled: Option<String>,
    /// Device ids separated by commas, spaces or lines; empty: every device.
    #[serde(default)]
    pub devices: String,
    /// A fleet query the devices must match too (`tag:site=greenhouse`); empty: none.
    #[serde(default)]
    pub scope: String,
    /// `threshold`, `no_data` or `offline`.
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metric: String,
    #[serde(default)]
    pub op: String,
    #[serde(default)]
    pub levels: Vec<LevelForm>,
    #[serde(default)]
    pub clear: String,
    #[serde(default)]
    pub clear_high: String,
    /// No data or offline for this long; a reboot loop's window (a duration).
    #[serde(default)]
    pub after: String,
    /// Expected intervals (overdue) or reboots (reboot loop): a whole number.
    #[serde(default)]
    pub count: String,
    /// The tag whose devices a firmware is compared among (firmware drift); empty: all.
    #[serde(default)]
    pub tag: String,
    /// The severity of a no-data or offline alarm.
    #[serde(default)]
    pub severity: String,
    /// Durations.
    #[serde(default)]
    pub pending: String,
    #[serde(default)]
    pub clear_for: String,
    #[serde(default)]
    pub remind: String,
    #[serde(default)]
    pub flap_window: String,
    #[serde(default)]
    pub min_samples: String,
    /// Channel ids (ticked checkboxes).
    #[serde(default)]
    pub channels: Vec<String>,
}

/// Reads a duration: a whole number of seconds, or followed by `s`, `m`, `min`, `h` or `d`.
/// Empty reads as `None`.
pub fn parse_duration(text: &str) -> Result<Option<u64>, String> {
    let t = text.trim().to_ascii_lowercase();
    if t.is_empty() {
        return Ok(None);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit_secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1,
        "m" | "min" | "mins" => 60,
        "h" | "hr" | "hrs" => 3600,
        "d" | "day" | "days" => 86_400,
        _ => return Err(format!("{text:?} is not a duration (try 30s, 5m, 2h or 1d)")),
    };
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration (try 30s, 5m, 2h or 1d)"))?;
    n.checked_mul(unit_secs).map(Some).ok_or_else(|| format!("{text:?} is too long"))
}

/// Writes seconds as the largest whole unit: `90s`, `5m`, `2h`, `1d`; `0` as empty.
pub fn format_duration(secs: u64) -> String {
    match secs {
        0 => String::new(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The form's name of a severity, and back.
pub fn parse_severity(text: &str) -> Option<Severity> {
    Severity::ALL.into_iter().find(|s| s.as_str() == text.trim())
}

pub fn parse_op(text: &str) -> Option<Op> {
    OPS.iter().map(|(op, _)| *op).find(|op| op.as_str() == text.trim())
}

fn number(text: &str, what: &str) -> Result<Option<f64>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(format!("{what}: {t:?} is not a number")),
    }
}

fn duration(text: &str, what: &str) -> Result<u64, String> {
    parse_duration(text).map(Option::unwrap_or_default).map_err(|e| format!("{what}: {e}"))
}

fn whole(text: &str, what: &str) -> Result<Option<u32>, String> {
    match text.trim() {
        "" => Ok(None),
        n => n.parse().map(Some).map_err(|_| format!("{what}: {n:?} is not a whole number")),
    }
}

fn written(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

impl RuleForm {
    /// An empty form for a new rule: a threshold rule, enabled, with sensible timings.
    pub fn new_rule() -> RuleForm {
        RuleForm {
            enabled: Some("on".into()),
            kind: "threshold".into(),
            op: ">".into(),
            levels: Self::rows(&[]),
            severity: "major".into(),
            pending: "1m".into(),
            flap_window: "30m".into(),
            ..RuleForm::default()
        }
    }

    /// A new rule's form filled from template `key` ([`TEMPLATES`]); `None` for no such key.
    pub fn template(key: &str) -> Option<RuleForm> {
        let base = RuleForm::new_rule();
        let level = |severity: Severity, value: f64| Level { severity, value, high: None };
        // A threshold below `value` (a warning), cleared once back at `clear`.
        let below = |name: &str, metric: &str, value: f64, clear: f64, pending: &str| RuleForm {
            name: name.into(),
            metric: metric.into(),
            op: Op::Lt.as_str().into(),
            levels: Self::rows(&[level(Severity::Warning, value)]),
            clear: clear.to_string(),
            pending: pending.into(),
            clear_for: "5m".into(),
            ..base.clone()
        };
        Some(match key {
            "offline" => RuleForm {
                name: "Offline for 10 min".into(),
                kind: "offline".into(),
                after: "10m".into(),
                pending: String::new(),
                ..base
            },
            "no_data_intervals" => RuleForm {
                name: "No data for 3 × its interval".into(),
                kind: "overdue".into(),
                count: "3".into(),
                pending: String::new(),
                ..base
            },
            "reboot_loop" => RuleForm {
                name: "Reboot loop".into(),
                kind: "reboot_loop".into(),
                count: "3".into(),
                after: "1h".into(),
                pending: String::new(),
                ..base
            },
            "firmware_drift" => RuleForm {
                name: "Firmware differs from the fleet's".into(),
                kind: "firmware_drift".into(),
                severity: "warning".into(),
                pending: "10m".into(),
                ..base
            },
            "battery_percent" => below("Battery low", "battery", 20.0, 25.0, "5m"),
            "battery_volts" => below("Battery low", "battery", 3.4, 3.5, "5m"),
            "weak_signal" => below("Weak signal", "rssi", -80.0, -75.0, "10m"),
            _ => return None,
        })
    }

    /// Four level rows: `levels`, then empty ones.
    fn rows(levels: &[Level]) -> Vec<LevelForm> {
        let mut rows: Vec<LevelForm> = levels
            .iter()
            .map(|l| LevelForm {
                severity: l.severity.as_str().into(),
                value: l.value.to_string(),
                high: written(l.high),
            })
            .collect();
        // Empty rows offer the severities not used yet, highest first.
        let mut unused = Severity::ALL.into_iter().rev().filter(|s| !levels.iter().any(|l| l.severity == *s));
        while rows.len() < MAX_LEVELS {
            rows.push(LevelForm {
                severity: unused.next().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                ..LevelForm::default()
            });
        }
        rows
    }

    /// The form that edits `rule`.
    pub fn from_rule(rule: &Rule) -> RuleForm {
        let mut form = RuleForm {
            id: rule.id.clone(),
            name: rule.name.clone(),
            enabled: rule.enabled.then(|| "on".into()),
            devices: rule.devices.join(", "),
            scope: rule.scope.clone().unwrap_or_default(),
            pending: format_duration(rule.for_secs),
            clear_for: format_duration(rule.clear_for_secs),
            remind: format_duration(rule.remind_secs),
            flap_window: format_duration(rule.flap_window_secs),
            min_samples: if rule.min_samples > 1 { rule.min_samples.to_string() } else { String::new() },
            channels: rule.channels.clone(),
            op: ">".into(),
            severity: "major".into(),
            levels: Self::rows(&[]),
            ..RuleForm::default()
        };
        match &rule.kind {
            RuleKind::Threshold { metric, op, levels, clear, clear_high } => {
                form.kind = "threshold".into();
                form.metric = metric.clone();
                form.op = op.as_str().into();
                form.levels = Self::rows(levels);
                form.clear = written(*clear);
                form.clear_high = written(*clear_high);
            }
            RuleKind::NoData { metric, after_secs, severity } => {
                form.kind = "no_data".into();
                form.metric = metric.clone().unwrap_or_default();
                form.after = format_duration(*after_secs);
                form.severity = severity.as_str().into();
            }
            RuleKind::Offline { after_secs, severity } => {
                form.kind = "offline".into();
                form.after = format_duration(*after_secs);
                form.severity = severity.as_str().into();
            }
            RuleKind::Overdue { intervals, severity } => {
                form.kind = "overdue".into();
                form.count = intervals.to_string();
                form.severity = severity.as_str().into();
            }
            RuleKind::RebootLoop { count, window_secs, severity } => {
                form.kind = "reboot_loop".into();
                form.count = count.to_string();
                form.after = format_duration(*window_secs);
                form.severity = severity.as_str().into();
            }
            RuleKind::FirmwareDrift { tag, severity } => {
                form.kind = "firmware_drift".into();
                form.tag = tag.clone().unwrap_or_default();
                form.severity = severity.as_str().into();
            }
        }
        form
    }

    /// The rule this form describes, or what is wrong with it (the server checks the rest:
    /// limits, channels that exist).
    pub fn to_rule(&self) -> Result<Rule, String> {
        let mut devices: Vec<String> = Vec::new();
        for d in self.devices.split(|c: char| c == ',' || c.is_whitespace()).filter(|d| !d.is_empty()) {
            if devices.len() >= MAX_DEVICES {
                return Err(format!("devices: at most {MAX_DEVICES}"));
            }
            if !devices.iter().any(|known| known == d) {
                devices.push(d.to_owned());
            }
        }
        let severity = || match self.severity.trim() {
            "" => Ok(Severity::Major),
            s => parse_severity(s).ok_or_else(|| format!("severity: {s:?} is not one")),
        };
        let after = || match parse_duration(&self.after) {
            Ok(Some(secs)) => Ok(secs),
            Ok(None) => Err("after: how long before it opens (e.g. 5m)".to_owned()),
            Err(e) => Err(format!("after: {e}")),
        };
        let kind = match self.kind.trim() {
            "threshold" => {
                let op = parse_op(&self.op).ok_or("op: choose a comparison")?;
                let mut levels = Vec::new();
                for (i, row) in self.levels.iter().enumerate().take(MAX_LEVELS) {
                    let what = format!("level {}", i + 1);
                    let Some(value) = number(&row.value, &what)? else { continue };
                    let severity =
                        parse_severity(&row.severity).ok_or_else(|| format!("{what}: choose a severity"))?;
                    let high = if op.is_band() {
                        Some(
                            number(&row.high, &what)?
                                .ok_or_else(|| format!("{what}: a band needs its upper end"))?,
                        )
                    } else {
                        None
                    };
                    levels.push(Level { severity, value, high });
                }
                if levels.is_empty() {
                    return Err("levels: give at least one level a value".into());
                }
                let clear = number(&self.clear, "clear level")?;
                let clear_high = if op.is_band() { number(&self.clear_high, "clear level")? } else { None };
                if op.is_band() && clear.is_some() != clear_high.is_some() {
                    return Err("clear level: a band's clear level needs both ends".into());
                }
                RuleKind::Threshold { metric: self.metric.trim().to_owned(), op, levels, clear, clear_high }
            }
            "no_data" => {
                let metric = Some(self.metric.trim().to_owned()).filter(|m| !m.is_empty());
                RuleKind::NoData { metric, after_secs: after()?, severity: severity()? }
            }
            "offline" => RuleKind::Offline { after_secs: after()?, severity: severity()? },
            "overdue" => {
                let intervals = whole(&self.count, "intervals")?
                    .ok_or("intervals: how many expected intervals (e.g. 3)")?;
                RuleKind::Overdue { intervals, severity: severity()? }
            }
            "reboot_loop" => {
                let window = parse_duration(&self.after).map_err(|e| format!("within: {e}"))?;
                RuleKind::RebootLoop {
                    count: whole(&self.count, "reboots")?.unwrap_or(3),
                    window_secs: window.unwrap_or(3600),
                    severity: severity()?,
                }
            }
            "firmware_drift" => RuleKind::FirmwareDrift {
                tag: Some(self.tag.trim().to_owned()).filter(|t| !t.is_empty()),
                severity: severity()?,
            },
            _ => {
                return Err(
                    "kind: threshold, no data, offline, overdue, reboot loop or firmware drift".into()
                );
            }
        };
        let min_samples = match self.min_samples.trim() {
            "" => 0,
            n => n.parse().map_err(|_| format!("minimum samples: {n:?} is not a whole number"))?,
        };
        let flap_window = parse_duration(&self.flap_window).map_err(|e| format!("flap window: {e}"))?;
        Ok(Rule {
            id: self.id.trim().to_owned(),
            name: self.name.trim().to_owned(),
            enabled: self.enabled.is_some(),
            devices,
            scope: Some(self.scope.trim().to_owned()).filter(|s| !s.is_empty()),
            kind,
            for_secs: duration(&self.pending, "for")?,
            min_samples,
            clear_for_secs: duration(&self.clear_for, "clear for")?,
            remind_secs: duration(&self.remind, "remind every")?,
            flap_window_secs: flap_window.unwrap_or(30 * 60),
            channels: self.channels.iter().map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect(),
            version: 0,
        })
    }
}

/// A rule in a few words: "temperature > 30 (critical), clears < 28" or "offline 2m".
pub fn summary(rule: &Rule) -> String {
    let timing =
        if rule.for_secs > 0 { format!(" for {}", format_duration(rule.for_secs)) } else { String::new() };
    match &rule.kind {
        RuleKind::Threshold { metric, op, levels, clear, clear_high } => {
            let levels: Vec<String> = levels
                .iter()
                .map(|l| match l.high {
                    Some(high) => format!("{}–{high} ({})", l.value, l.severity),
                    None => format!("{} ({})", l.value, l.severity),
                })
                .collect();
            let clears = match (clear, clear_high) {
                (Some(c), Some(h)) => format!(", clears back in {c}–{h}"),
                (Some(c), None) => format!(", clears at {c}"),
                _ => String::new(),
            };
            format!("{metric} {} {}{timing}{clears}", op.as_str(), levels.join(", "))
        }
        RuleKind::NoData { metric, after_secs, severity } => format!(
            "no {} for {} ({severity})",
            metric.as_deref().unwrap_or("data"),
            format_duration(*after_secs)
        ),
        RuleKind::Offline { after_secs, severity } => {
            format!("offline or stale for {} ({severity})", format_duration(*after_secs))
        }
        RuleKind::Overdue { intervals, severity } => {
            format!("no data for {intervals} × its interval ({severity})")
        }
        RuleKind::RebootLoop { count, window_secs, severity } => {
            format!("{count} reboots within {} ({severity})", format_duration(*window_secs))
        }
        RuleKind::FirmwareDrift { tag: Some(tag), severity } => {
            format!("firmware differs from its {tag}'s most common{timing} ({severity})")
        }
        RuleKind::FirmwareDrift { tag: None, severity } => {
            format!("firmware differs from the fleet's most common{timing} ({severity})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_a_new_rule_that_saves_as_what_they_say() {
        for (key, label) in TEMPLATES {
            let form = RuleForm::template(key).unwrap_or_else(|| panic!("{key}"));
            assert!(form.id.is_empty() && form.enabled.is_some(), "{key}: a new, enabled rule");
            let rule = form.to_rule().unwrap_or_else(|e| panic!("{key}: {e}"));
            rule.validate().unwrap_or_else(|e| panic!("{key}: {e}"));
            assert!(!label.is_empty());
        }
        let rule = |key| RuleForm::template(key).unwrap().to_rule().unwrap();
        let offline = rule("offline");
        assert_eq!(offline.kind, RuleKind::Offline { after_secs: 600, severity: Severity::Major });
        let weak = rule("weak_signal");
        assert_eq!(weak.metric(), Some("rssi"));
        assert_eq!(weak.for_secs, 600, "for 10 min");
        let RuleKind::Threshold { op, levels, clear, .. } = &weak.kind else { panic!("{weak:?}") };
        assert_eq!((*op, levels.len(), levels[0].value, *clear), (Op::Lt, 1, -80.0, Some(-75.0)));
        for (key, low) in [("battery_percent", 20.0), ("battery_volts", 3.4)] {
            let RuleKind::Threshold { op, levels, .. } = rule(key).kind else { panic!("{key}") };
            assert_eq!((op, levels[0].value), (Op::Lt, low), "{key}");
            assert!(op.breaches(low - 0.1, low, low) && !op.breaches(low, low, low), "{key}");
        }
        assert_eq!(
            rule("no_data_intervals").kind,
            RuleKind::Overdue { intervals: 3, severity: Severity::Major }
        );
        assert_eq!(
            rule("reboot_loop").kind,
            RuleKind::RebootLoop { count: 3, window_secs: 3600, severity: Severity::Major }
        );
        let drift = rule("firmware_drift");
        assert_eq!(drift.kind, RuleKind::FirmwareDrift { tag: None, severity: Severity::Warning });
        assert_eq!(drift.for_secs, 600, "a firmware rollout takes a while");
        // Each fleet kind's form reads back as the rule it wrote.
        for key in ["no_data_intervals", "reboot_loop", "firmware_drift"] {
            let saved = rule(key);
            assert_eq!(RuleForm::from_rule(&saved).to_rule(), Ok(saved), "{key}");
        }
        let mut by_site = RuleForm::template("firmware_drift").unwrap();
        by_site.tag = "site".into();
        assert_eq!(
            by_site.to_rule().unwrap().kind,
            RuleKind::FirmwareDrift { tag: Some("site".into()), severity: Severity::Warning }
        );
        assert_eq!(RuleForm::template("nope"), None);
    }

    #[test]
    fn durations_read_and_write_in_the_largest_whole_unit() {
        assert_eq!(parse_duration(""), Ok(None));
        assert_eq!(parse_duration("90"), Ok(Some(90)));
        assert_eq!(parse_duration(" 90s "), Ok(Some(90)));
        assert_eq!(parse_duration("5m"), Ok(Some(300)));
        assert_eq!(parse_duration("5 min"), Ok(Some(300)));
        assert_eq!(parse_duration("2H"), Ok(Some(7200)));
        assert_eq!(parse_duration("1d"), Ok(Some(86_400)));
        for bad in ["m", "5x", "-5m", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for secs in [0, 1, 59, 60, 90, 300, 3600, 5400, 86_400, 7 * 86_400] {
            let written = format_duration(secs);
            assert_eq!(parse_duration(&written), Ok((secs > 0).then_some(secs)), "{written}");
        }
        assert_eq!(format_duration(5400), "90m");
    }

    fn api_rule(json: serde_json::Value) -> Rule {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn every_kind_of_rule_survives_the_form() {
        let rules = [
            api_rule(serde_json::json!({
                "id": "rule-1", "name": "hot", "devices": ["ESP32_SIM_01", "b"], "kind": "threshold",
                "metric": "temperature", "op": ">",
                "levels": [{"severity": "critical", "value": 30}, {"severity": "warning", "value": 27.5}],
                "clear": 28, "for_secs": 30, "clear_for_secs": 60, "remind_secs": 3600, "min_samples": 3,
                "channels": ["ch-a"]
            })),
            api_rule(serde_json::json!({
                "id": "rule-2", "name": "band", "kind": "threshold", "metric": "humidity", "op": "outside",
                "levels": [{"severity": "major", "value": 30, "high": 70}], "clear": 35, "clear_high": 65,
                "enabled": false, "flap_window_secs": 600
            })),
            api_rule(serde_json::json!({"id": "rule-3", "name": "quiet", "kind": "no_data", "metric": "t",
                "after_secs": 300, "severity": "minor"})),
            api_rule(
                serde_json::json!({"id": "rule-4", "name": "quiet any", "kind": "no_data", "after_secs": 60}),
            ),
            api_rule(
                serde_json::json!({"id": "rule-5", "name": "gone", "kind": "offline", "after_secs": 120}),
            ),
        ];
        for rule in rules {
            assert_eq!(rule.validate(), Ok(()), "{}", rule.name);
            let form = RuleForm::from_rule(&rule);
            assert_eq!(form.levels.len(), MAX_LEVELS);
            let mut back = form.to_rule().unwrap();
            back.version = rule.version;
            assert_eq!(back, rule);
        }
    }

    #[test]
    fn a_new_form_offers_unused_severities_and_reads_as_posted() {
        let form = RuleForm::new_rule();
        let offered: Vec<&str> = form.levels.iter().map(|l| l.severity.as_str()).collect();
        assert_eq!(offered, ["critical", "major", "minor", "warning"]);
        assert!(form.to_rule().unwrap_err().contains("levels"));
        // As a browser posts it: the wrapper's name, indexed rows, repeated channel boxes.
        let posted = "rule[name]=hot&rule[enabled]=on&rule[devices]=a,+b%0Ab&rule[kind]=threshold\
                      &rule[metric]=t&rule[op]=%3E&rule[levels][0][severity]=critical&rule[levels][0][value]=30\
                      &rule[levels][1][severity]=major&rule[levels][1][value]=&rule[clear]=28\
                      &rule[pending]=30s&rule[clear_for]=1m&rule[channels][]=ch-1&rule[channels][]=ch-2";
        #[derive(Deserialize)]
        struct Args {
            rule: RuleForm,
        }
        let args: Args = serde_qs::Config::new(5, false).deserialize_str(posted).unwrap();
        let rule = args.rule.to_rule().unwrap();
        assert_eq!(rule.devices, ["a", "b"]);
        assert_eq!(rule.for_secs, 30);
        assert_eq!(rule.clear_for_secs, 60);
        assert_eq!(rule.flap_window_secs, 1800);
        assert_eq!(rule.channels, ["ch-1", "ch-2"]);
        assert!(rule.enabled);
        assert_eq!(
            rule.kind,
            RuleKind::Threshold {
                metric: "t".into(),
                op: Op::Gt,
                levels: vec![Level { severity: Severity::Critical, value: 30.0, high: None }],
                clear: Some(28.0),
                clear_high: None,
            }
        );
        assert_eq!(summary(&rule), "t > 30 (critical) for 30s, clears at 28");
    }

    #[test]
    fn mistakes_say_which_field() {
        let mut form = RuleForm::new_rule();
        form.name = "x".into();
        form.metric = "t".into();
        form.levels[0].value = "abc".into();
        assert!(form.to_rule().unwrap_err().starts_with("level 1"));
        form.levels[0].value = "30".into();
        form.pending = "soon".into();
        assert!(form.to_rule().unwrap_err().starts_with("for:"));
        form.pending = "1m".into();
        form.op = "outside".into();
        assert!(form.to_rule().unwrap_err().contains("upper end"));
        form.op = "~".into();
        assert!(form.to_rule().unwrap_err().starts_with("op"));
        form.kind = "offline".into();
        assert!(form.to_rule().unwrap_err().starts_with("after"));
        form.after = "2m".into();
        form.severity = "apocalyptic".into();
        assert!(form.to_rule().unwrap_err().starts_with("severity"));
        form.severity = String::new();
        assert_eq!(
            form.to_rule().unwrap().kind,
            RuleKind::Offline { after_secs: 120, severity: Severity::Major }
        );
        form.kind = "telepathy".into();
        assert!(form.to_rule().is_err());
    }
}
