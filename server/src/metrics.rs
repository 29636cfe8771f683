//! Counters for `/metrics`, in the Prometheus text format. Every rejection, drop and replaced
//! timestamp is counted by reason, so a misbehaving device shows up on a graph.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

/// Where a message came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Mqtt,
    Http,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Mqtt => "mqtt",
            Source::Http => "http",
        }
    }
}

#[derive(Default)]
/// A counter per label; labels are fixed words (every refusal reason owns its own), so the
/// map stays small.
struct Labeled(Mutex<BTreeMap<&'static str, u64>>);

impl Labeled {
    fn add(&self, label: &'static str, n: u64) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(label).or_default() += n;
    }

    fn get(&self, label: &str) -> u64 {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(label).copied().unwrap_or(0)
    }

    fn render(&self, out: &mut String, name: &str, label: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (value, n) in self.0.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    received: Labeled,
    rejected: Labeled,
    dropped_metrics: Labeled,
    timestamps_replaced: Labeled,
    messages_stored: AtomicU64,
    readings_stored: AtomicU64,
    readings_duplicate: AtomicU64,
    status_updates: AtomicU64,
    stale_wills: AtomicU64,
    commits: AtomicU64,
    commit_failures: AtomicU64,
    commit_micros: AtomicU64,
    readings_pruned: AtomicU64,
    /// Rollup rows pruned, by level.
    rollups_pruned: Labeled,
    readings_sealed: AtomicU64,
    throttled: AtomicU64,
    mqtt_refused: Labeled,
    notifications: Labeled,
    /// Commands' stored transitions, by the state entered.
    commands: Labeled,
    changes_pruned: AtomicU64,
    live_clients: AtomicI64,
    live_resyncs: AtomicU64,
    mqtt_connected: AtomicBool,
    /// The latest commit failed (and none succeeded since).
    commit_failing: AtomicBool,
    /// Cluster mode: each lease this node takes part in, and whether it holds it.
    leases: Mutex<BTreeMap<String, bool>>,
}

impl Metrics {
    pub fn received(&self, source: Source) {
        self.received.add(source.label(), 1);
    }

    pub fn rejected(&self, reason: &'static str) {
        self.rejected.add(reason, 1);
    }

    pub fn rejected_count(&self, reason: &str) -> u64 {
        self.rejected.get(reason)
    }

    pub fn dropped_metric(&self, reason: &'static str) {
        self.dropped_metrics.add(reason, 1);
    }

    pub fn timestamp_replaced(&self, reason: &'static str) {
        self.timestamps_replaced.add(reason, 1);
    }

    pub fn committed(&self, messages: u64, stored: u64, duplicates: u64, statuses: u64, micros: u64) {
        self.commit_failing.store(false, Relaxed);
        self.commits.fetch_add(1, Relaxed);
        self.messages_stored.fetch_add(messages, Relaxed);
        self.readings_stored.fetch_add(stored, Relaxed);
        self.readings_duplicate.fetch_add(duplicates, Relaxed);
        self.status_updates.fetch_add(statuses, Relaxed);
        self.commit_micros.fetch_add(micros, Relaxed);
    }

    /// Last wills from an older session than the device's latest, ignored.
    pub fn stale_wills(&self, n: u64) {
        self.stale_wills.fetch_add(n, Relaxed);
    }

    pub fn mqtt_refused(&self, reason: &'static str) {
        self.mqtt_refused.add(reason, 1);
    }

    /// Notifications that came to `outcome` (sent, retried, failed, suppressed).
    pub fn notification(&self, outcome: &'static str, n: u64) {
        self.notifications.add(outcome, n);
    }

    /// A command entered `status` (made: QUEUED).
    pub fn command(&self, status: &'static str) {
        self.commands.add(status, 1);
    }

    pub fn throttled(&self) {
        self.throttled.fetch_add(1, Relaxed);
    }

    pub fn sealed(&self, readings: u64, changes_trimmed: u64) {
        self.readings_sealed.fetch_add(readings, Relaxed);
        self.changes_pruned.fetch_add(changes_trimmed, Relaxed);
    }

    pub fn pruned(&self, readings: u64, changes: u64) {
        self.readings_pruned.fetch_add(readings, Relaxed);
        self.changes_pruned.fetch_add(changes, Relaxed);
    }

    pub fn rollups_pruned(&self, minute: u64, hour: u64) {
        self.rollups_pruned.add("minute", minute);
        self.rollups_pruned.add("hour", hour);
    }

    pub fn commit_failed(&self) {
        self.commit_failing.store(true, Relaxed);
        self.commit_failures.fetch_add(1, Relaxed);
    }

    /// Whether the latest commit failed.
    pub fn last_commit_failed(&self) -> bool {
        self.commit_failing.load(Relaxed)
    }

    pub fn live_client(&self, delta: i64) {
        self.live_clients.fetch_add(delta, Relaxed);
    }

    pub fn live_resync(&self) {
        self.live_resyncs.fetch_add(1, Relaxed);
    }

    pub fn set_mqtt_connected(&self, up: bool) {
        self.mqtt_connected.store(up, Relaxed);
    }

    pub fn mqtt_connected(&self) -> bool {
        self.mqtt_connected.load(Relaxed)
    }

    pub fn readings_stored(&self) -> u64 {
        self.readings_stored.load(Relaxed)
    }

    /// Whether this node holds the cluster lease `name` (a fixed word: alarms, commands, …).
    pub fn lease(&self, name: &str, held: bool) {
        self.leases.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_owned(), held);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, devices: Option<usize>) -> String {
        let mut out = String::new();
        self.received.render(
            &mut out,
            "iot_messages_received_total",
            "source",
            "Telemetry messages received.",
        );
        self.rejected.render(
            &mut out,
            "iot_messages_rejected_total",
            "reason",
            "Messages refused as a whole, by reason.",
        );
        self.dropped_metrics.render(
            &mut out,
            "iot_metrics_dropped_total",
            "reason",
            "Single metrics left out of accepted messages, by reason.",
        );
        self.timestamps_replaced.render(
            &mut out,
            "iot_timestamps_replaced_total",
            "reason",
            "Readings stored at receive time because their timestamp was missing or unusable.",
        );
        self.mqtt_refused.render(
            &mut out,
            "iot_mqtt_connections_refused_total",
            "reason",
            "MQTT connections refused (missing or wrong device credentials, a last will elsewhere), by reason.",
        );
        self.rollups_pruned.render(
            &mut out,
            "iot_rollups_pruned_total",
            "level",
            "Rollup rows (a series' summary of a minute or an hour) deleted past their retention.",
        );
        self.notifications.render(
            &mut out,
            "iot_notifications_total",
            "outcome",
            "Alarm notifications by what came of an attempt: sent, retried, failed, suppressed (over a channel's rate, or counted but not listed in a digest).",
        );
        self.commands.render(
            &mut out,
            "iot_command_transitions_total",
            "status",
            "Commands to devices entering each state (QUEUED when made), as stored.",
        );
        let counters = [
            ("iot_messages_stored_total", "Messages durably stored.", &self.messages_stored),
            (
                "iot_readings_stored_total",
                "Readings (one metric at one time) newly stored.",
                &self.readings_stored,
            ),
            (
                "iot_readings_duplicate_total",
                "Readings already stored (redeliveries), not stored twice.",
                &self.readings_duplicate,
            ),
            ("iot_status_updates_total", "Device online/offline reports stored.", &self.status_updates),
            (
                "iot_stale_wills_total",
                "Last wills from an older session than the device's current one, ignored.",
                &self.stale_wills,
            ),
            ("iot_commits_total", "Storage commits (each holds many readings).", &self.commits),
            ("iot_commit_failures_total", "Storage commits that failed.", &self.commit_failures),
            (
                "iot_live_resyncs_total",
                "Live clients told to resync after falling behind.",
                &self.live_resyncs,
            ),
            (
                "iot_messages_throttled_total",
                "Messages held back (PUBACK delayed) to keep a device to its rate.",
                &self.throttled,
            ),
            ("iot_readings_pruned_total", "Readings deleted past the retention.", &self.readings_pruned),
            ("iot_readings_sealed_total", "Readings compressed into sealed chunks.", &self.readings_sealed),
            (
                "iot_changes_pruned_total",
                "Change-log entries deleted past the retention or beyond storage.change_log.",
                &self.changes_pruned,
            ),
            (
                "iot_render_panics_total",
                "Panics in the app's or Leptos's code on the server (page renders, server functions), nearly all renders that went on after their browser had left.",
                &crate::web::render_panics::COUNT,
            ),
        ];
        for (name, help, value) in counters {
            let _ =
                writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", value.load(Relaxed));
        }
        let secs = self.commit_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "# HELP iot_commit_seconds_total Time spent committing.\n# TYPE iot_commit_seconds_total counter\niot_commit_seconds_total {secs}"
        );
        let gauges = [
            ("iot_live_clients", "Connected /ws/live clients.", self.live_clients.load(Relaxed)),
            ("iot_mqtt_connected", "1 when MQTT ingest is up.", i64::from(self.mqtt_connected())),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        let leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        if !leases.is_empty() {
            let name = "iot_lease_held";
            let _ = writeln!(
                out,
                "# HELP {name} Cluster mode: 1 for each lease this node holds (the work only one node does).\n# TYPE {name} gauge"
            );
            for (lease, held) in leases.iter() {
                let _ = writeln!(out, "{name}{{lease=\"{lease}\"}} {}", u8::from(*held));
            }
        }
        drop(leases);
        if let Some(n) = devices {
            let _ = writeln!(
                out,
                "# HELP iot_devices Registered devices.\n# TYPE iot_devices gauge\niot_devices {n}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labeled_counters() {
        let m = Metrics::default();
        m.rejected("not_json");
        m.rejected("not_json");
        m.rejected("too_large");
        m.received(Source::Mqtt);
        m.committed(2, 6, 1, 0, 1500);
        let text = m.render(Some(3));
        assert!(text.contains("iot_messages_rejected_total{reason=\"not_json\"} 2\n"), "{text}");
        assert!(text.contains("iot_messages_rejected_total{reason=\"too_large\"} 1\n"));
        assert!(text.contains("iot_messages_received_total{source=\"mqtt\"} 1\n"));
        assert!(text.contains("iot_readings_stored_total 6\n"));
        assert!(text.contains("iot_readings_duplicate_total 1\n"));
        assert!(text.contains("iot_devices 3\n"));
        assert_eq!(m.rejected_count("not_json"), 2);
    }
}
