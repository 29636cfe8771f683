//! What charts mark over their data for alarms: [`bands`], the spans when an alarm on a shown
//! series was active, from what a page fetched and what the live feed said since.
//!
//! An alarm concerns a chart's series when it is on the series' device and its rule reads the
//! series' metric, or no metric in particular (offline rules, no-data rules on any metric). An
//! alarm whose rule is gone (deleted since) is shown on every chart of its device rather than
//! lost.

use std::collections::BTreeMap;

use telemetry::alarm::{Alarm, Rule};

use super::chart_data::AlarmBand;

/// Whether `alarm` (on its device) concerns a chart of `metric`.
pub fn concerns(alarm: &Alarm, rules: &[Rule], metric: &str) -> bool {
    rules.iter().find(|r| r.id == alarm.rule_id).is_none_or(|rule| rule.metric().is_none_or(|m| m == metric))
}

/// Every alarm of `fetched` and of `live` (the live feed's latest news of each: the newest,
/// by `seq`, wins) that concerns one of `series` (device, metric), as bands, oldest first.
pub fn bands(
    fetched: &[Alarm],
    live: &BTreeMap<String, Alarm>,
    rules: &[Rule],
    series: &[(String, String)],
) -> Vec<AlarmBand> {
    let mut latest: BTreeMap<&str, &Alarm> = BTreeMap::new();
    for alarm in fetched.iter().chain(live.values()) {
        if latest.get(alarm.id.as_str()).is_none_or(|known| known.seq < alarm.seq) {
            latest.insert(&alarm.id, alarm);
        }
    }
    let mut out: Vec<AlarmBand> = latest
        .into_values()
        .filter(|a| series.iter().any(|(d, m)| *d == a.device && concerns(a, rules, m)))
        .map(|a| AlarmBand {
            alarm: a.id.clone(),
            severity: a.severity,
            from: a.started_at,
            to: a.end(),
            label: format!("{} on {}: {}", a.rule_name, a.device, a.severity),
        })
        .collect();
    out.sort_by(|a, b| (a.from, &a.alarm).cmp(&(b.from, &b.alarm)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::alarm::Severity;

    fn rule(id: &str, json: serde_json::Value) -> Rule {
        let mut r: Rule = serde_json::from_value(json).unwrap();
        r.id = id.into();
        r
    }

    fn rules() -> Vec<Rule> {
        vec![
            rule(
                "hot",
                serde_json::json!({"name": "hot", "kind": "threshold", "metric": "t", "op": ">",
                    "levels": [{"severity": "critical", "value": 30}]}),
            ),
            rule("quiet", serde_json::json!({"name": "quiet", "kind": "no_data", "after_secs": 60})),
            rule("gone", serde_json::json!({"name": "gone", "kind": "offline", "after_secs": 60})),
        ]
    }

    fn alarm(id: &str, rule: &str, device: &str, seq: u64, cleared_at: Option<i64>) -> Alarm {
        Alarm {
            id: id.into(),
            rule_id: rule.into(),
            rule_name: rule.into(),
            device: device.into(),
            severity: Severity::Critical,
            active: cleared_at.is_none(),
            acked: false,
            started_at: 100 + seq as i64,
            cleared_at,
            acked_at: None,
            acked_by: None,
            shelved_until: None,
            value: None,
            last_value: None,
            last_breach_at: None,
            opened: 1,
            flapping: false,
            remind_at: None,
            comments: 0,
            seq,
        }
    }

    fn ids(bands: &[AlarmBand]) -> Vec<&str> {
        bands.iter().map(|b| b.alarm.as_str()).collect()
    }

    #[test]
    fn a_chart_shades_its_devices_alarms_on_its_metric_or_on_none() {
        let fetched = vec![
            alarm("t-on-a", "hot", "a", 1, Some(500)),
            alarm("t-on-b", "hot", "b", 2, None),
            alarm("any-on-a", "quiet", "a", 3, None),
            alarm("offline-a", "gone", "a", 4, None),
            alarm("deleted-rule", "nope", "a", 5, None),
        ];
        let t_on_a = [("a".to_owned(), "t".to_owned())];
        let h_on_a = [("a".to_owned(), "h".to_owned())];
        let none = BTreeMap::new();
        assert_eq!(
            ids(&bands(&fetched, &none, &rules(), &t_on_a)),
            ["t-on-a", "any-on-a", "offline-a", "deleted-rule"]
        );
        assert_eq!(
            ids(&bands(&fetched, &none, &rules(), &h_on_a)),
            ["any-on-a", "offline-a", "deleted-rule"]
        );
        let b = &bands(&fetched, &none, &rules(), &t_on_a)[0];
        assert_eq!((b.from, b.to, b.label.as_str()), (101, Some(500), "hot on a: critical"));
    }

    #[test]
    fn the_live_feed_starts_and_ends_bands() {
        let series = [("a".to_owned(), "t".to_owned())];
        let fetched = vec![alarm("a1", "hot", "a", 1, None)];
        let mut live = BTreeMap::new();
        // Fired while the page was open: it starts a band.
        live.insert("a2".to_owned(), alarm("a2", "hot", "a", 7, None));
        // Cleared since the page fetched it: its band ends.
        live.insert("a1".to_owned(), alarm("a1", "hot", "a", 9, Some(900)));
        // Older news than what was fetched changes nothing.
        let stale = vec![alarm("a3", "hot", "a", 10, Some(950))];
        live.insert("a3".to_owned(), alarm("a3", "hot", "a", 5, None));
        let mut all = fetched.clone();
        all.extend(stale);
        let shown = bands(&all, &live, &rules(), &series);
        // Oldest first (the helper starts each at 100 + the seq of its latest news).
        assert_eq!(ids(&shown), ["a2", "a1", "a3"]);
        assert_eq!(shown.iter().map(|b| b.to).collect::<Vec<_>>(), [None, Some(900), Some(950)]);
    }
}
