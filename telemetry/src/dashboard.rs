//! Dashboards: named sets of widgets with a grid layout per screen size and a time range.
//! Stored by the server, cached by the browser; validated on save.

use serde::{Deserialize, Serialize};

use crate::Millis;
use crate::name::valid_name;

/// Grid columns per breakpoint.
pub const WIDE_COLS: u32 = 12;
pub const MEDIUM_COLS: u32 = 6;
pub const PHONE_COLS: u32 = 1;
/// Most widgets one dashboard may hold.
pub const MAX_WIDGETS: usize = 100;
/// Devices and metrics one widget may name (empty devices: every device).
pub const MAX_WIDGET_DEVICES: usize = 50;
pub const MAX_WIDGET_METRICS: usize = 20;
/// Dashboards the server keeps.
pub const MAX_DASHBOARDS: usize = 200;
const MAX_TEXT: usize = 100;
const MAX_THRESHOLDS: usize = 10;
const MAX_ROWS: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    /// `[A-Za-z0-9_.-]{1,64}`, used in URLs.
    pub id: String,
    pub name: String,
    pub widgets: Vec<Widget>,
    pub layouts: Layouts,
    /// The dashboard-wide time range; widgets may override it.
    pub range: TimeRange,
    /// Server time of the last save.
    #[serde(default)]
    pub updated: Millis,
}

/// A grid layout per breakpoint: wide (12 columns), medium (6), phone (1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Layouts {
    pub wide: Vec<Placement>,
    pub medium: Vec<Placement>,
    pub phone: Vec<Placement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Breakpoint {
    Wide,
    Medium,
    Phone,
}

impl Breakpoint {
    pub const ALL: [Breakpoint; 3] = [Breakpoint::Wide, Breakpoint::Medium, Breakpoint::Phone];

    pub fn cols(self) -> u32 {
        match self {
            Breakpoint::Wide => WIDE_COLS,
            Breakpoint::Medium => MEDIUM_COLS,
            Breakpoint::Phone => PHONE_COLS,
        }
    }

    /// The breakpoint for a viewport width in CSS pixels.
    pub fn for_width(px: f64) -> Breakpoint {
        if px >= 1024.0 {
            Breakpoint::Wide
        } else if px >= 600.0 {
            Breakpoint::Medium
        } else {
            Breakpoint::Phone
        }
    }
}

impl Layouts {
    pub fn get(&self, bp: Breakpoint) -> &Vec<Placement> {
        match bp {
            Breakpoint::Wide => &self.wide,
            Breakpoint::Medium => &self.medium,
            Breakpoint::Phone => &self.phone,
        }
    }

    pub fn get_mut(&mut self, bp: Breakpoint) -> &mut Vec<Placement> {
        match bp {
            Breakpoint::Wide => &mut self.wide,
            Breakpoint::Medium => &mut self.medium,
            Breakpoint::Phone => &mut self.phone,
        }
    }
}

/// Where a widget sits, in grid cells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub widget: String,
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WidgetKind {
    LineChart,
    Gauge,
    Stat,
    Table,
    StatusList,
    /// The active alarms of its devices.
    AlarmList,
    /// Controls: drive one device (see [`crate::control`]).
    Switch,
    Button,
    Number,
    Select,
}

impl WidgetKind {
    pub const ALL: [WidgetKind; 10] = [
        WidgetKind::LineChart,
        WidgetKind::Gauge,
        WidgetKind::Stat,
        WidgetKind::Table,
        WidgetKind::StatusList,
        WidgetKind::AlarmList,
        WidgetKind::Switch,
        WidgetKind::Button,
        WidgetKind::Number,
        WidgetKind::Select,
    ];

    /// Whether it drives a device (a switch, button, number or select).
    pub fn is_control(self) -> bool {
        matches!(self, WidgetKind::Switch | WidgetKind::Button | WidgetKind::Number | WidgetKind::Select)
    }

    pub fn label(self) -> &'static str {
        match self {
            WidgetKind::LineChart => "Line chart",
            WidgetKind::Gauge => "Gauge",
            WidgetKind::Stat => "Stat",
            WidgetKind::Table => "Table",
            WidgetKind::StatusList => "Device status",
            WidgetKind::AlarmList => "Alarm list",
            WidgetKind::Switch => "Switch",
            WidgetKind::Button => "Button",
            WidgetKind::Number => "Number",
            WidgetKind::Select => "Select",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            WidgetKind::LineChart => "line_chart",
            WidgetKind::Gauge => "gauge",
            WidgetKind::Stat => "stat",
            WidgetKind::Table => "table",
            WidgetKind::StatusList => "status_list",
            WidgetKind::AlarmList => "alarm_list",
            WidgetKind::Switch => "switch",
            WidgetKind::Button => "button",
            WidgetKind::Number => "number",
            WidgetKind::Select => "select",
        }
    }

    /// Default size on the wide grid (w, h).
    pub fn default_size(self) -> (u32, u32) {
        match self {
            WidgetKind::LineChart => (6, 4),
            WidgetKind::Gauge => (3, 3),
            WidgetKind::Stat => (3, 2),
            WidgetKind::Table => (6, 4),
            WidgetKind::StatusList => (4, 4),
            WidgetKind::AlarmList => (4, 4),
            WidgetKind::Switch | WidgetKind::Button | WidgetKind::Number | WidgetKind::Select => (3, 2),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Widget {
    /// Unique within the dashboard.
    pub id: String,
    pub kind: WidgetKind,
    pub title: String,
    /// Devices shown; empty means every device.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Only the devices this fleet query matches too (`tag:site=greenhouse`, `group:north`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Metrics shown (a gauge and a stat use the first).
    #[serde(default)]
    pub metrics: Vec<String>,
    /// Overrides the guessed unit.
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub decimals: Option<u8>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// Ascending: a value at or above a threshold takes its colour.
    #[serde(default)]
    pub thresholds: Vec<Threshold>,
    /// Overrides the dashboard's time range.
    #[serde(default)]
    pub range: Option<TimeRange>,
    /// A control's binding and options (`None`: not a control, or not configured yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<crate::control::Control>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub value: f64,
    /// `#rrggbb`.
    pub color: String,
}

/// Longest time range a chart shows: a year.
pub const MAX_RANGE_SECS: i64 = 366 * 86_400;

/// A time range: the last so many seconds (following now), or fixed bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TimeRange {
    Last { secs: i64 },
    Between { from: Millis, to: Millis },
}

impl Default for TimeRange {
    fn default() -> Self {
        TimeRange::Last { secs: 24 * 3600 }
    }
}

impl TimeRange {
    /// The presets offered by the picker.
    pub const PRESETS: [(&'static str, i64); 6] =
        [("15m", 900), ("1h", 3600), ("6h", 21_600), ("24h", 86_400), ("7d", 604_800), ("30d", 2_592_000)];

    /// The preset with this key (`"1h"`), if any.
    pub fn preset(key: &str) -> Option<TimeRange> {
        Self::PRESETS.iter().find(|(k, _)| *k == key).map(|(_, secs)| TimeRange::Last { secs: *secs })
    }

    /// This range's preset key, if it is one.
    pub fn preset_key(self) -> Option<&'static str> {
        match self {
            TimeRange::Last { secs } => Self::PRESETS.iter().find(|(_, s)| *s == secs).map(|(k, _)| *k),
            TimeRange::Between { .. } => None,
        }
    }

    /// `[from, to]` at time `now`.
    pub fn bounds(self, now: Millis) -> (Millis, Millis) {
        match self {
            TimeRange::Last { secs } => (now - secs * 1000, now),
            TimeRange::Between { from, to } => (from.min(to), from.max(to)),
        }
    }

    /// A range a chart can show: the last minute to year, or fixed bounds from 1970 to 2100.
    pub fn is_sane(self) -> bool {
        const YEAR_2100: Millis = 4_102_444_800_000;
        match self {
            TimeRange::Last { secs } => (60..=MAX_RANGE_SECS).contains(&secs),
            TimeRange::Between { from, to } => [from, to].iter().all(|t| (0..=YEAR_2100).contains(t)),
        }
    }

    /// Whether the range moves with the clock.
    pub fn follows_now(self) -> bool {
        matches!(self, TimeRange::Last { .. })
    }
}

impl Widget {
    /// The colour for a value: the highest threshold it reaches.
    pub fn color_for(&self, value: f64) -> Option<&str> {
        self.thresholds.iter().rev().find(|t| value >= t.value).map(|t| t.color.as_str())
    }
}

/// Why a dashboard was refused; its text says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DashboardError {
    Id,
    Name,
    TooManyWidgets,
    /// A widget id that is not a valid name, or is used twice.
    WidgetId(String),
    WidgetTitle(String),
    /// A widget names too many devices or metrics.
    WidgetLists(String),
    /// A widget names a device or metric that is not a valid name.
    WidgetNames(String),
    /// A widget's fleet query does not read.
    WidgetQuery(String, crate::query::QueryError),
    Unit(String),
    Thresholds(String),
    MinMax(String),
    /// A control's settings do not hold.
    Control(String, crate::control::ControlError),
    /// A layout places a widget the dashboard does not have.
    UnknownWidget(String),
    PlacedTwice(Breakpoint, String),
    OffGrid(Breakpoint, String),
    Range,
}

impl std::fmt::Display for DashboardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DashboardError::Id => f.write_str("dashboard id must be 1-64 of A-Z a-z 0-9 _ . -"),
            DashboardError::Name => write!(f, "dashboard name must be 1-{MAX_TEXT} characters"),
            DashboardError::TooManyWidgets => write!(f, "at most {MAX_WIDGETS} widgets"),
            DashboardError::WidgetId(w) => write!(f, "widget id {w:?} is invalid or repeated"),
            DashboardError::WidgetTitle(w) => {
                write!(f, "widget {w:?}: title longer than {MAX_TEXT} characters")
            }
            DashboardError::WidgetLists(w) => write!(
                f,
                "widget {w:?}: at most {MAX_WIDGET_DEVICES} devices and {MAX_WIDGET_METRICS} metrics"
            ),
            DashboardError::WidgetNames(w) => {
                write!(f, "widget {w:?}: device and metric names must be valid ids")
            }
            DashboardError::WidgetQuery(w, e) => write!(f, "widget {w:?}: {e}"),
            DashboardError::Unit(w) => write!(f, "widget {w:?}: unit longer than 16 characters"),
            DashboardError::Thresholds(w) => {
                write!(
                    f,
                    "widget {w:?}: at most {MAX_THRESHOLDS} thresholds, each a number and a #rrggbb colour"
                )
            }
            DashboardError::MinMax(w) => write!(f, "widget {w:?}: min and max must be finite numbers"),
            DashboardError::Control(w, e) => write!(f, "widget {w:?}: {e}"),
            DashboardError::UnknownWidget(w) => write!(f, "layout places unknown widget {w:?}"),
            DashboardError::PlacedTwice(bp, w) => write!(f, "the {bp:?} layout places widget {w:?} twice"),
            DashboardError::OffGrid(bp, w) => write!(f, "widget {w:?} does not fit the {bp:?} grid"),
            DashboardError::Range => {
                f.write_str("time range must be between 1 minute and a year, within 1970 to 2100")
            }
        }
    }
}

impl std::error::Error for DashboardError {}

fn is_color(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl Dashboard {
    /// Checks what a client sent before it is stored.
    pub fn validate(&self) -> Result<(), DashboardError> {
        use DashboardError as E;
        if valid_name(&self.id).is_err() {
            return Err(E::Id);
        }
        if self.name.trim().is_empty() || self.name.chars().count() > MAX_TEXT {
            return Err(E::Name);
        }
        if self.widgets.len() > MAX_WIDGETS {
            return Err(E::TooManyWidgets);
        }
        let mut ids = std::collections::HashSet::new();
        for w in &self.widgets {
            let id = || w.id.clone();
            if valid_name(&w.id).is_err() || !ids.insert(w.id.as_str()) {
                return Err(E::WidgetId(id()));
            }
            if w.title.chars().count() > MAX_TEXT {
                return Err(E::WidgetTitle(id()));
            }
            if w.devices.len() > MAX_WIDGET_DEVICES || w.metrics.len() > MAX_WIDGET_METRICS {
                return Err(E::WidgetLists(id()));
            }
            if w.devices.iter().chain(&w.metrics).any(|n| valid_name(n).is_err()) {
                return Err(E::WidgetNames(id()));
            }
            if let Some(Err(e)) = w.query.as_deref().map(crate::query::Query::parse) {
                return Err(E::WidgetQuery(id(), e));
            }
            if w.unit.as_ref().is_some_and(|u| u.chars().count() > 16) {
                return Err(E::Unit(id()));
            }
            if w.thresholds.len() > MAX_THRESHOLDS
                || w.thresholds.iter().any(|t| !t.value.is_finite() || !is_color(&t.color))
            {
                return Err(E::Thresholds(id()));
            }
            if [w.min, w.max].iter().flatten().any(|v| !v.is_finite()) {
                return Err(E::MinMax(id()));
            }
            if let Some(control) = &w.control {
                if !w.kind.is_control() {
                    return Err(E::Control(id(), crate::control::ControlError::NotConfigured));
                }
                control.validate(w.kind).map_err(|e| E::Control(id(), e))?;
                if w.devices.len() > 1 {
                    return Err(E::Control(id(), crate::control::ControlError::Device));
                }
            }
        }
        for bp in Breakpoint::ALL {
            let mut placed = std::collections::HashSet::new();
            for p in self.layouts.get(bp) {
                if !ids.contains(p.widget.as_str()) {
                    return Err(E::UnknownWidget(p.widget.clone()));
                }
                if !placed.insert(p.widget.as_str()) {
                    return Err(E::PlacedTwice(bp, p.widget.clone()));
                }
                if p.w == 0
                    || p.h == 0
                    || p.x.saturating_add(p.w) > bp.cols()
                    || p.y > MAX_ROWS
                    || p.h > MAX_ROWS
                {
                    return Err(E::OffGrid(bp, p.widget.clone()));
                }
            }
        }
        if !self.range.is_sane() || self.widgets.iter().any(|w| w.range.is_some_and(|r| !r.is_sane())) {
            return Err(E::Range);
        }
        Ok(())
    }
}

impl Dashboard {
    /// The dashboard created on first run: every device's status, a table of the seed's three
    /// metrics for every device, and their temperatures over the last 24 h.
    pub fn starter() -> Dashboard {
        let widget = |id: &str, kind, title: &str, metrics: &[&str]| Widget {
            id: id.into(),
            kind,
            title: title.into(),
            devices: vec![],
            query: None,
            metrics: metrics.iter().map(|m| (*m).to_owned()).collect(),
            unit: None,
            decimals: None,
            min: None,
            max: None,
            thresholds: vec![],
            range: None,
            control: None,
        };
        let widgets = vec![
            widget("status", WidgetKind::StatusList, "Devices", &[]),
            widget("latest", WidgetKind::Table, "Latest readings", &["temperature", "humidity", "battery"]),
            widget("temperature", WidgetKind::LineChart, "Temperature", &["temperature"]),
        ];
        let place = |widget: &str, x, y, w, h| Placement { widget: widget.into(), x, y, w, h };
        let layouts = Layouts {
            wide: vec![
                place("status", 0, 0, 4, 4),
                place("latest", 4, 0, 8, 4),
                place("temperature", 0, 4, 12, 4),
            ],
            medium: vec![
                place("status", 0, 0, 3, 4),
                place("latest", 3, 0, 3, 4),
                place("temperature", 0, 4, 6, 4),
            ],
            phone: vec![
                place("status", 0, 0, 1, 4),
                place("latest", 0, 4, 1, 4),
                place("temperature", 0, 8, 1, 4),
            ],
        };
        Dashboard {
            id: "overview".into(),
            name: "Overview".into(),
            widgets,
            layouts,
            range: TimeRange::default(),
            updated: 0,
        }
    }
}

/// A URL-safe id for a new dashboard named `name`: its name's words, then `suffix` (random,
/// chosen by the store so the id is unique).
pub fn new_id(name: &str, suffix: &str) -> String {
    let slug: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let slug: String = slug.chars().take(40).collect();
    if slug.is_empty() { format!("board-{suffix}") } else { format!("{slug}-{suffix}") }
}

/// Summary for the dashboard list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardInfo {
    pub id: String,
    pub name: String,
    pub widgets: usize,
    pub updated: Millis,
}

impl From<&Dashboard> for DashboardInfo {
    fn from(d: &Dashboard) -> Self {
        DashboardInfo { id: d.id.clone(), name: d.name.clone(), widgets: d.widgets.len(), updated: d.updated }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget(id: &str, kind: WidgetKind) -> Widget {
        Widget {
            id: id.into(),
            kind,
            title: "t".into(),
            devices: vec![],
            query: None,
            metrics: vec!["temperature".into()],
            unit: None,
            decimals: None,
            min: None,
            max: None,
            thresholds: vec![],
            range: None,
            control: None,
        }
    }

    fn board() -> Dashboard {
        Dashboard {
            id: "home".into(),
            name: "Home".into(),
            widgets: vec![widget("a", WidgetKind::Gauge)],
            layouts: Layouts {
                wide: vec![Placement { widget: "a".into(), x: 9, y: 0, w: 3, h: 3 }],
                medium: vec![],
                phone: vec![Placement { widget: "a".into(), x: 0, y: 0, w: 1, h: 3 }],
            },
            range: TimeRange::default(),
            updated: 0,
        }
    }

    #[test]
    fn a_sound_dashboard_passes() {
        assert_eq!(board().validate(), Ok(()));
        let json = serde_json::to_string(&board()).unwrap();
        assert_eq!(serde_json::from_str::<Dashboard>(&json).unwrap(), board());
    }

    #[test]
    fn bad_dashboards_are_refused_with_a_reason() {
        let mut d = board();
        d.id = "a/b".into();
        assert_eq!(d.validate(), Err(DashboardError::Id));
        let mut d = board();
        d.layouts.wide[0].x = 10;
        assert_eq!(d.validate(), Err(DashboardError::OffGrid(Breakpoint::Wide, "a".into())));
        let mut d = board();
        d.widgets.push(widget("a", WidgetKind::Stat));
        assert_eq!(d.validate(), Err(DashboardError::WidgetId("a".into())));
        let mut d = board();
        d.widgets[0].thresholds.push(Threshold { value: 1.0, color: "red".into() });
        assert_eq!(d.validate(), Err(DashboardError::Thresholds("a".into())));
        let mut d = board();
        d.widgets[0].devices.push("<script>".into());
        assert_eq!(d.validate(), Err(DashboardError::WidgetNames("a".into())));
        let mut d = board();
        d.layouts.phone[0].widget = "ghost".into();
        assert_eq!(d.validate(), Err(DashboardError::UnknownWidget("ghost".into())));
    }

    #[test]
    fn the_starter_dashboard_is_valid() {
        assert_eq!(Dashboard::starter().validate(), Ok(()));
    }

    #[test]
    fn thresholds_pick_the_highest_reached() {
        let mut w = widget("a", WidgetKind::Gauge);
        w.thresholds = vec![
            Threshold { value: 0.0, color: "#00ff00".into() },
            Threshold { value: 30.0, color: "#ffaa00".into() },
            Threshold { value: 40.0, color: "#ff0000".into() },
        ];
        assert_eq!(w.color_for(35.0), Some("#ffaa00"));
        assert_eq!(w.color_for(40.0), Some("#ff0000"));
        assert_eq!(w.color_for(-1.0), None);
    }

    #[test]
    fn ranges_and_breakpoints() {
        assert_eq!(TimeRange::Last { secs: 60 }.bounds(100_000), (40_000, 100_000));
        assert_eq!(TimeRange::Between { from: 9, to: 3 }.bounds(0), (3, 9));
        assert_eq!(Breakpoint::for_width(360.0), Breakpoint::Phone);
        assert_eq!(Breakpoint::for_width(800.0), Breakpoint::Medium);
        assert_eq!(Breakpoint::for_width(1440.0), Breakpoint::Wide);
    }

    #[test]
    fn new_ids_are_slugs_with_a_suffix() {
        assert_eq!(new_id("Green house #2", "ab12c"), "green-house-2-ab12c");
        assert_eq!(new_id("  ", "x"), "board-x");
        assert_eq!(new_id("Ünïcode ★", "x"), "n-code-x");
        assert!(valid_name(&new_id(&"x".repeat(200), "abcdef")).is_ok());
    }

    #[test]
    fn widget_lists_and_layouts_are_bounded() {
        let mut d = Dashboard::starter();
        d.widgets[0].devices = (0..=MAX_WIDGET_DEVICES).map(|i| format!("d{i}")).collect();
        let first = d.widgets[0].id.clone();
        assert_eq!(d.validate(), Err(DashboardError::WidgetLists(first.clone())));
        assert!(d.validate().unwrap_err().to_string().contains("at most"));
        let mut d = Dashboard::starter();
        d.widgets[0].metrics = (0..=MAX_WIDGET_METRICS).map(|i| format!("m{i}")).collect();
        assert_eq!(d.validate(), Err(DashboardError::WidgetLists(first.clone())));
        let mut d = Dashboard::starter();
        let extra = d.layouts.wide[0].clone();
        d.layouts.wide.extend(std::iter::repeat_n(extra.clone(), 10_000));
        assert_eq!(d.validate(), Err(DashboardError::PlacedTwice(Breakpoint::Wide, extra.widget)));
    }

    #[test]
    fn a_control_is_saved_unconfigured_or_with_sound_settings_only() {
        use crate::control::{Binding, Control, ControlError};
        let mut d = board();
        d.widgets[0].kind = WidgetKind::Switch;
        assert_eq!(d.validate(), Ok(()), "a switch just added has no settings yet");
        d.widgets[0].devices = vec!["pump".into()];
        d.widgets[0].control = Some(Control {
            binding: Binding::Desired { key: "relay".into() },
            step: None,
            options: vec![],
            press: None,
            queue_offline: false,
            timeout_secs: None,
        });
        assert_eq!(d.validate(), Ok(()));
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Dashboard>(&json).unwrap(), d);
        d.widgets[0].devices.push("other".into());
        assert_eq!(d.validate(), Err(DashboardError::Control("a".into(), ControlError::Device)));
        d.widgets[0].devices.pop();
        d.widgets[0].control.as_mut().unwrap().binding = Binding::Desired { key: "a/b".into() };
        assert_eq!(d.validate(), Err(DashboardError::Control("a".into(), ControlError::Key)));
        d.widgets[0].kind = WidgetKind::Gauge;
        assert_eq!(d.validate(), Err(DashboardError::Control("a".into(), ControlError::NotConfigured)));
    }

    #[test]
    fn a_widget_s_query_must_read() {
        let mut d = Dashboard::starter();
        d.widgets[0].query = Some("tag:site=greenhouse OR group:north".into());
        assert_eq!(d.validate(), Ok(()));
        d.widgets[0].query = Some("tag:site=greenhouse stauts:x".into());
        let e = d.validate().unwrap_err().to_string();
        assert!(e.starts_with("widget \"status\": query, at character 21: unknown field"), "{e}");
    }
}
