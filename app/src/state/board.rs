//! What every widget on a dashboard shares: the devices (server list merged with live data),
//! the clock, the time range, and whether data may be stale.

use std::collections::BTreeMap;

use leptos::prelude::*;
use telemetry::dashboard::{TimeRange, Widget};
use telemetry::query::{Group, Query};
use telemetry::{DeviceSummary, Millis};

/// A dashboard's shared state (a context for its widgets).
#[derive(Clone, Copy)]
pub struct Board {
    /// The dashboard's id (its controls name it when operated).
    pub id: StoredValue<String>,
    pub devices: Memo<BTreeMap<String, DeviceSummary>>,
    pub now: Signal<Millis>,
    /// Whether times may be shown in the browser's zone (after hydration).
    pub local: Signal<bool>,
    /// The live feed is down: values may be out of date.
    pub offline: Signal<bool>,
    /// The dashboard-wide time range.
    pub range: Signal<TimeRange>,
    /// The fleet's groups, which widgets' queries may name.
    pub groups: StoredValue<Vec<Group>>,
}

impl Board {
    /// The devices a widget shows: its list, or every device when the list is empty; of
    /// those, the ones its fleet query matches if it has one (an unknown group matches none).
    pub fn devices_of(&self, widget: &Widget) -> Vec<String> {
        let listed = || {
            if widget.devices.is_empty() {
                self.devices.with(|d| d.keys().cloned().collect())
            } else {
                widget.devices.clone()
            }
        };
        let Some(text) = widget.query.as_deref().filter(|q| !q.trim().is_empty()) else { return listed() };
        let lookup =
            |id: &str| self.groups.with_value(|g| g.iter().find(|g| g.id == id).map(|g| g.query.clone()));
        let Ok(query) = Query::parse(text).and_then(|q| q.resolve(lookup, true)) else { return Vec::new() };
        // Health and last-seen terms follow the clock; the others only the devices.
        let now = if query.is_timeless() { self.now.get_untracked() } else { self.now.get() };
        self.devices.with(|all| {
            listed().into_iter().filter(|id| all.get(id).is_some_and(|d| query.matches(d, now))).collect()
        })
    }

    /// The metrics a widget shows: its list, or every metric its devices have.
    pub fn metrics_of(&self, widget: &Widget) -> Vec<String> {
        if !widget.metrics.is_empty() {
            return widget.metrics.clone();
        }
        let devices = self.devices_of(widget);
        let mut names: Vec<String> = self.devices.with(|all| {
            devices
                .iter()
                .filter_map(|d| all.get(d))
                .flat_map(|d| d.metrics.iter().map(|m| m.name.clone()))
                .collect()
        });
        names.sort();
        names.dedup();
        names
    }

    /// The single (device, metric) a gauge or stat shows: the first device that has the metric.
    pub fn single_of(&self, widget: &Widget) -> Option<(String, String)> {
        let metric = self.metrics_of(widget).into_iter().next()?;
        let device = self.devices.with(|all| {
            self.devices_of(widget)
                .into_iter()
                .find(|d| all.get(d).is_some_and(|s| s.metric(&metric).is_some()))
        })?;
        Some((device, metric))
    }

    /// The time range a widget uses.
    pub fn range_of(&self, widget: &Widget) -> Signal<TimeRange> {
        let own = widget.range;
        let shared = self.range;
        Signal::derive(move || own.unwrap_or_else(|| shared.get()))
    }

    /// Every metric name any device has, for pickers.
    pub fn all_metrics(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .devices
            .with(|all| all.values().flat_map(|d| d.metrics.iter().map(|m| m.name.clone())).collect());
        names.sort();
        names.dedup();
        names
    }
}
