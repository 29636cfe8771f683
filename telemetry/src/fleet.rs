//! The fleet as one list: what a query reads of a device ([`Facts`]), the bands of the
//! well-known metrics (signal, battery), and the fleet view's rows, order and summary.
//!
//! Well-known metrics are ordinary readings recognised by name: `rssi` (dBm), `battery_pct`,
//! `battery_v`, or `battery` (volts up to 5, else percent), `uptime_s`.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::Millis;
use crate::device::{DeviceSummary, Health};

/// What a query reads of a device. [`DeviceSummary`] answers it; so can a test's naive device.
pub trait Facts {
    fn id(&self) -> &str;
    fn name(&self) -> Option<&str>;
    fn health(&self, now: Millis) -> Health;
    fn tag(&self, key: &str) -> Option<&str>;
    /// An attribute the device reported (`fw`, `model`, …), as text.
    fn attribute(&self, key: &str) -> Option<Cow<'_, str>>;
    fn metric(&self, name: &str) -> Option<f64>;
    /// Server time of its latest reading.
    fn last_seen(&self) -> Millis;
}

impl Facts for DeviceSummary {
    fn id(&self) -> &str {
        &self.id
    }

    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn health(&self, now: Millis) -> Health {
        DeviceSummary::health(self, now)
    }

    fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    fn attribute(&self, key: &str) -> Option<Cow<'_, str>> {
        DeviceSummary::attribute(self, key).map(|a| a.value.text())
    }

    fn metric(&self, name: &str) -> Option<f64> {
        DeviceSummary::metric(self, name).map(|m| m.value)
    }

    fn last_seen(&self) -> Millis {
        self.last_seen
    }
}

/// Signal strength by RSSI: good at −67 dBm or more, fair down to −80, weak below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    Weak,
    Fair,
    Good,
}

impl Signal {
    pub fn of_rssi(dbm: f64) -> Signal {
        if dbm >= -67.0 {
            Signal::Good
        } else if dbm >= -80.0 {
            Signal::Fair
        } else {
            Signal::Weak
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Signal::Good => "good",
            Signal::Fair => "fair",
            Signal::Weak => "weak",
        }
    }

    pub fn parse(s: &str) -> Option<Signal> {
        [Signal::Good, Signal::Fair, Signal::Weak].into_iter().find(|b| b.label().eq_ignore_ascii_case(s))
    }
}

/// Battery: low under 20 % or under 3.4 V (one lithium cell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Battery {
    Low,
    Ok,
}

impl Battery {
    pub fn label(self) -> &'static str {
        match self {
            Battery::Low => "low",
            Battery::Ok => "ok",
        }
    }

    pub fn parse(s: &str) -> Option<Battery> {
        [Battery::Low, Battery::Ok].into_iter().find(|b| b.label().eq_ignore_ascii_case(s))
    }
}

/// Below this percentage, or these volts, a battery is low.
pub const LOW_BATTERY_PCT: f64 = 20.0;
pub const LOW_BATTERY_V: f64 = 3.4;

/// The device's signal, if it reports `rssi`.
pub fn signal(d: &(impl Facts + ?Sized)) -> Option<Signal> {
    d.metric("rssi").map(Signal::of_rssi)
}

/// The device's battery as a percentage or in volts, if it reports one.
pub fn battery_level(d: &(impl Facts + ?Sized)) -> Option<BatteryLevel> {
    if let Some(p) = d.metric("battery_pct") {
        return Some(BatteryLevel::Percent(p));
    }
    if let Some(v) = d.metric("battery_v") {
        return Some(BatteryLevel::Volts(v));
    }
    d.metric("battery").map(|b| if b <= 5.0 { BatteryLevel::Volts(b) } else { BatteryLevel::Percent(b) })
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BatteryLevel {
    Percent(f64),
    Volts(f64),
}

impl BatteryLevel {
    pub fn band(self) -> Battery {
        let low = match self {
            BatteryLevel::Percent(p) => p < LOW_BATTERY_PCT,
            BatteryLevel::Volts(v) => v < LOW_BATTERY_V,
        };
        if low { Battery::Low } else { Battery::Ok }
    }
}

/// The device's battery band, if it reports a battery.
pub fn battery(d: &(impl Facts + ?Sized)) -> Option<Battery> {
    battery_level(d).map(BatteryLevel::band)
}

/// Uptime in seconds, if it reports `uptime_s` (or `uptime`).
pub fn uptime_s(d: &(impl Facts + ?Sized)) -> Option<f64> {
    d.metric("uptime_s").or_else(|| d.metric("uptime"))
}

/// Firmware as the device reported it (its `fw` attribute).
pub fn firmware(d: &(impl Facts + ?Sized)) -> Option<Cow<'_, str>> {
    d.attribute("fw")
}

/// What the fleet view can sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Worst first: refused, offline, stale, online.
    Status,
    Id,
    Name,
    /// Last seen: longest quiet first.
    Seen,
    Fw,
    Rssi,
    Battery,
    Uptime,
    /// Open alarms.
    Alarms,
    /// Share of the last 24 hours connected, from the connection log ("Up 24 h"; devices
    /// without a log last).
    Up,
}

impl SortKey {
    pub const ALL: [SortKey; 10] = [
        SortKey::Status,
        SortKey::Id,
        SortKey::Name,
        SortKey::Seen,
        SortKey::Fw,
        SortKey::Rssi,
        SortKey::Battery,
        SortKey::Uptime,
        SortKey::Alarms,
        SortKey::Up,
    ];

    pub fn key(self) -> &'static str {
        match self {
            SortKey::Status => "status",
            SortKey::Id => "id",
            SortKey::Name => "name",
            SortKey::Seen => "seen",
            SortKey::Fw => "fw",
            SortKey::Rssi => "rssi",
            SortKey::Battery => "battery",
            SortKey::Uptime => "uptime",
            SortKey::Alarms => "alarms",
            SortKey::Up => "up",
        }
    }
}

/// An order for the fleet view: `status`, `-seen` (`-`: reversed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub desc: bool,
}

impl Default for Sort {
    fn default() -> Sort {
        Sort { key: SortKey::Status, desc: false }
    }
}

impl Sort {
    /// Reads `key` or `-key`; anything else is the default order.
    pub fn parse(text: &str) -> Sort {
        let (desc, key) = match text.strip_prefix('-') {
            Some(key) => (true, key),
            None => (false, text),
        };
        SortKey::ALL.into_iter().find(|k| k.key() == key).map_or_else(Sort::default, |key| Sort { key, desc })
    }

    pub fn as_string(self) -> String {
        format!("{}{}", if self.desc { "-" } else { "" }, self.key.key())
    }

    /// This key, or this key reversed when it is the order already (a column heading's link).
    pub fn toggled(self, key: SortKey) -> Sort {
        Sort { key, desc: self.key == key && !self.desc }
    }
}

fn health_rank(h: Health) -> u8 {
    match h {
        Health::Refused => 0,
        Health::Offline => 1,
        Health::Stale => 2,
        Health::Online => 3,
    }
}

fn by_number(a: Option<f64>, b: Option<f64>, desc: bool) -> Ordering {
    // A device without the value goes last either way.
    match (a, b) {
        (Some(a), Some(b)) if desc => b.total_cmp(&a),
        (Some(a), Some(b)) => a.total_cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn by_text(a: Option<&str>, b: Option<&str>, desc: bool) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) if desc => b.to_lowercase().cmp(&a.to_lowercase()),
        (Some(a), Some(b)) => a.to_lowercase().cmp(&b.to_lowercase()),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn battery_sort(d: &(impl Facts + ?Sized)) -> Option<f64> {
    // Percent and volts in one order: volts as a rough percentage of a lithium cell.
    battery_level(d).map(|b| match b {
        BatteryLevel::Percent(p) => p,
        BatteryLevel::Volts(v) => ((v - 3.0) / 1.2 * 100.0).clamp(0.0, 100.0),
    })
}

/// Sorts devices in `sort`'s order at `now`, ties by id (ascending either way); `alarms` counts a device's open alarms.
/// (No device has a share connected here: sorting by it is [`sort_devices_by`]'s.)
pub fn sort_devices<D: Facts>(devices: &mut [D], sort: Sort, now: Millis, alarms: impl Fn(&str) -> u32) {
    sort_devices_by(devices, sort, now, alarms, |_| None);
}

/// [`sort_devices`], with `up` answering a device's share of the last 24 hours connected (the
/// "Up 24 h" column; `None`: no connection log).
pub fn sort_devices_by<D: Facts>(
    devices: &mut [D],
    sort: Sort,
    now: Millis,
    alarms: impl Fn(&str) -> u32,
    up: impl Fn(&str) -> Option<f64>,
) {
    let desc = sort.desc;
    devices.sort_by(|a, b| {
        let order = match sort.key {
            SortKey::Id => a.id().cmp(b.id()),
            SortKey::Status => health_rank(a.health(now)).cmp(&health_rank(b.health(now))),
            SortKey::Name => {
                by_text(Some(a.name().unwrap_or(a.id())), Some(b.name().unwrap_or(b.id())), false)
            }
            SortKey::Seen => a.last_seen().cmp(&b.last_seen()),
            SortKey::Fw => {
                return by_text(firmware(a).as_deref(), firmware(b).as_deref(), desc)
                    .then(a.id().cmp(b.id()));
            }
            SortKey::Rssi => {
                return by_number(a.metric("rssi"), b.metric("rssi"), desc).then(a.id().cmp(b.id()));
            }
            SortKey::Battery => {
                return by_number(battery_sort(a), battery_sort(b), desc).then(a.id().cmp(b.id()));
            }
            SortKey::Uptime => return by_number(uptime_s(a), uptime_s(b), desc).then(a.id().cmp(b.id())),
            SortKey::Alarms => alarms(a.id()).cmp(&alarms(b.id())),
            SortKey::Up => return by_number(up(a.id()), up(b.id()), desc).then(a.id().cmp(b.id())),
        };
        let order = if desc { order.reverse() } else { order };
        order.then_with(|| a.id().cmp(b.id()))
    });
}

/// What the fleet view's chips say about a set of devices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub devices: usize,
    pub online: usize,
    pub stale: usize,
    pub offline: usize,
    pub refused: usize,
    /// Devices per firmware version, most first (at most [`MAX_FIRMWARE_CHIPS`]).
    pub firmware: Vec<(String, usize)>,
    pub weak_signal: usize,
    pub low_battery: usize,
}

/// Firmware versions the summary names.
pub const MAX_FIRMWARE_CHIPS: usize = 5;

/// Most devices one export of readings by query may hold (`GET /api/export.csv?q=`).
pub const MAX_EXPORT_DEVICES: usize = 1000;

/// Counts `devices` at `now`.
pub fn summarize<'a, D: Facts + 'a>(devices: impl IntoIterator<Item = &'a D>, now: Millis) -> Summary {
    let mut s = Summary::default();
    let mut versions: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for d in devices {
        s.devices += 1;
        match d.health(now) {
            Health::Online => s.online += 1,
            Health::Stale => s.stale += 1,
            Health::Offline => s.offline += 1,
            Health::Refused => s.refused += 1,
        }
        if let Some(fw) = firmware(d) {
            // Bounded: a version is an attribute, itself bounded in length.
            *versions.entry(fw.into_owned()).or_default() += 1;
        }
        s.weak_signal += usize::from(signal(d) == Some(Signal::Weak));
        s.low_battery += usize::from(battery(d) == Some(Battery::Low));
    }
    let mut versions: Vec<(String, usize)> = versions.into_iter().collect();
    versions.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    versions.truncate(MAX_FIRMWARE_CHIPS);
    s.firmware = versions;
    s
}

/// Why a group was not saved or deleted. Safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupError {
    /// What was sent is wrong (400).
    Invalid(String),
    /// No group has this id (404).
    NotFound,
    /// Another group has this id, the server keeps [`crate::query::MAX_GROUPS`] already, or a
    /// rule's scope names the group (409).
    Conflict(String),
    Storage(crate::SourceError),
}

impl std::fmt::Display for GroupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupError::Invalid(why) | GroupError::Conflict(why) => f.write_str(why),
            GroupError::NotFound => f.write_str("there is no such group"),
            GroupError::Storage(e) => e.fmt(f),
        }
    }
}

/// Tags and groups as the dashboard changes them: every change checked, bounded and done in
/// order with the readings (tag changes are numbered and broadcast like them).
pub trait FleetAdmin: Send + Sync {
    /// Applies `edit` to each of `devices` (unknown ones are left out), all or nothing.
    fn edit_tags(
        &self,
        devices: &[String],
        edit: &crate::tags::TagEdit,
    ) -> Result<crate::tags::Tagged, crate::tags::TagEditError>;
    /// Every group, by name.
    fn groups(&self) -> Result<Vec<crate::query::Group>, crate::SourceError>;
    /// Creates (`create`: its id must be free) or replaces a group, stamping `updated`;
    /// answers it as stored.
    fn save_group(&self, group: crate::query::Group, create: bool)
    -> Result<crate::query::Group, GroupError>;
    /// Deletes a group no rule's scope names.
    fn delete_group(&self, id: &str) -> Result<(), GroupError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MetricLatest;

    fn dev(id: &str, last_seen: Millis, metrics: &[(&str, f64)]) -> DeviceSummary {
        DeviceSummary {
            id: id.into(),
            last_seen,
            message_count: 1,
            metrics: metrics
                .iter()
                .map(|(n, v)| MetricLatest { name: (*n).into(), value: *v, ts: 0 })
                .collect(),
            ..DeviceSummary::default()
        }
    }

    #[test]
    fn bands_follow_the_well_known_metrics() {
        assert_eq!(signal(&dev("a", 0, &[("rssi", -67.0)])), Some(Signal::Good));
        assert_eq!(signal(&dev("a", 0, &[("rssi", -80.0)])), Some(Signal::Fair));
        assert_eq!(signal(&dev("a", 0, &[("rssi", -80.5)])), Some(Signal::Weak));
        assert_eq!(signal(&dev("a", 0, &[])), None);
        assert_eq!(battery(&dev("a", 0, &[("battery", 3.3)])), Some(Battery::Low), "volts");
        assert_eq!(battery(&dev("a", 0, &[("battery", 3.8)])), Some(Battery::Ok));
        assert_eq!(battery(&dev("a", 0, &[("battery", 15.0)])), Some(Battery::Low), "percent");
        assert_eq!(battery(&dev("a", 0, &[("battery_pct", 50.0), ("battery_v", 3.0)])), Some(Battery::Ok));
        assert_eq!(uptime_s(&dev("a", 0, &[("uptime", 5.0)])), Some(5.0));
    }

    #[test]
    fn sorting_puts_missing_values_last_and_ties_by_id() {
        let now = 1_000_000;
        let mut all = vec![
            dev("c", now, &[("rssi", -90.0)]),
            dev("a", now - 500_000, &[]),
            dev("b", now, &[("rssi", -50.0)]),
        ];
        let ids = |all: &[DeviceSummary]| all.iter().map(|d| d.id.clone()).collect::<Vec<_>>();
        sort_devices(&mut all, Sort::parse("rssi"), now, |_| 0);
        assert_eq!(ids(&all), ["c", "b", "a"]);
        sort_devices(&mut all, Sort::parse("-rssi"), now, |_| 0);
        assert_eq!(ids(&all), ["b", "c", "a"], "without rssi: last either way");
        sort_devices(&mut all, Sort::parse("status"), now, |_| 0);
        assert_eq!(ids(&all), ["a", "b", "c"], "stale first, then by id");
        sort_devices(&mut all, Sort::parse("-alarms"), now, |id| u32::from(id == "c"));
        assert_eq!(ids(&all), ["c", "a", "b"]);
        // Up 24 h: least connected first, devices without a connection log last either way.
        let up = |id: &str| match id {
            "a" => Some(0.5),
            "c" => Some(0.99),
            _ => None,
        };
        sort_devices_by(&mut all, Sort::parse("up"), now, |_| 0, up);
        assert_eq!(ids(&all), ["a", "c", "b"]);
        sort_devices_by(&mut all, Sort::parse("-up"), now, |_| 0, up);
        assert_eq!(ids(&all), ["c", "a", "b"]);
        assert_eq!(Sort::parse("-up"), Sort { key: SortKey::Up, desc: true });
        sort_devices(&mut all, Sort::parse("bogus"), now, |_| 0);
        assert_eq!(Sort::parse("bogus"), Sort::default());
        assert_eq!(Sort::parse("-seen").as_string(), "-seen");
        assert_eq!(Sort::parse("seen").toggled(SortKey::Seen).as_string(), "-seen");
        assert_eq!(Sort::parse("-seen").toggled(SortKey::Seen).as_string(), "seen");
        assert_eq!(Sort::parse("-seen").toggled(SortKey::Id).as_string(), "id");
    }

    #[test]
    fn the_summary_counts_statuses_bands_and_versions() {
        let now = 1_000_000;
        let all = [
            dev("a", now, &[("rssi", -90.0), ("battery", 3.1)]),
            dev("b", now, &[("rssi", -60.0)]),
            dev("c", now - 10 * 60_000, &[("battery_pct", 5.0)]),
        ];
        let s = summarize(&all, now);
        assert_eq!((s.devices, s.online, s.stale, s.weak_signal, s.low_battery), (3, 2, 1, 1, 2));
        assert!(s.firmware.is_empty(), "no attributes yet");
    }
}
