//! What charts mark over their data for alarms: [`bands`], the spans when an alarm on a shown
//! series was active, from what a page fetched and what the live feed said since; and what
//! charts and gauges mark at fixed values: [`rule_guides`], the levels of the threshold rules
//! watching a shown series (matched by metric and device scope, [`Rule::watches`]).
//!
//! An alarm concerns a chart's series when it is on the series' device and its rule reads the
//! series' metric, or no metric in particular (offline rules, no-data rules on any metric). An
//! alarm whose rule is gone (deleted since) is shown on every chart of its device rather than
//! lost.

use std::collections::BTreeMap;

use telemetry::alarm::{Alarm, Rule, RuleKind};

use super::alarms::guides;
use super::chart_data::{AlarmBand, Guide};

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

/// The guide lines of a chart (or the marks of a gauge) of `series` (device, metric): each
/// level of every enabled threshold rule on one of their metrics that watches its device, and
/// its clear level, labelled with the rule's name; a line two series share is drawn once.
pub fn rule_guides(rules: &[Rule], series: &[(String, String)]) -> Vec<Guide> {
    let mut out: Vec<Guide> = Vec::new();
    for rule in rules {
        let RuleKind::Threshold { metric, .. } = &rule.kind else { continue };
        if !series.iter().any(|(d, m)| m == metric && rule.watches(d)) {
            continue;
        }
        for mut g in guides(rule) {
            if !g.label.is_empty() {
                g.label = format!("{}: {}", rule.name, g.label);
            }
            if !out.contains(&g) {
                out.push(g);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logic::chart_data::GuideKind;
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
            active: cleared_at.is_none(),
            cleared_at,
            seq,
            ..Alarm::new(id.into(), rule, rule, device, Severity::Critical, None, 100 + seq as i64)
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

    #[test]
    fn charts_and_gauges_draw_the_levels_of_the_rules_watching_them() {
        let mut rules = rules();
        rules.push(rule(
            "band",
            serde_json::json!({"name": "comfort", "devices": ["b"], "kind": "threshold", "metric": "t",
                "op": "outside", "levels": [{"severity": "minor", "value": 18, "high": 26}],
                "clear": 19, "clear_high": 25}),
        ));
        rules.push(rule(
            "off",
            serde_json::json!({"name": "off", "enabled": false, "kind": "threshold", "metric": "t", "op": "<",
                "levels": [{"severity": "warning", "value": 0}]}),
        ));
        let lines = |series: &[(&str, &str)]| {
            let series: Vec<(String, String)> =
                series.iter().map(|(d, m)| ((*d).to_owned(), (*m).to_owned())).collect();
            rule_guides(&rules, &series).into_iter().map(|g| (g.kind, g.value, g.label)).collect::<Vec<_>>()
        };
        // "hot" watches every device's t; "comfort" only b's; "off" is disabled; "quiet" and
        // "gone" have no levels.
        assert_eq!(lines(&[("a", "t")]), [(GuideKind::Trip, 30.0, "hot: critical > 30".to_owned())]);
        assert_eq!(lines(&[("a", "h")]), []);
        let b = lines(&[("a", "t"), ("b", "t")]);
        assert_eq!(b.len(), 5, "hot once for both devices, then comfort's band and clear levels: {b:?}");
        assert_eq!(
            b.iter().map(|(k, v, _)| (*k, *v)).collect::<Vec<_>>(),
            [
                (GuideKind::Trip, 30.0),
                (GuideKind::Trip, 18.0),
                (GuideKind::Trip, 26.0),
                (GuideKind::Clear, 19.0),
                (GuideKind::Clear, 25.0)
            ]
        );
        assert_eq!(b[1].2, "comfort: minor outside 18–26");
        assert_eq!(b[2].2, "", "a band's upper line is not labelled again");
    }
}
