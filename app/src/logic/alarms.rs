//! Alarms as pages show them: the list's filters as they travel in the address (so they work
//! without JavaScript), which alarms need someone (the header's badge), a list kept current
//! with live changes, and when an active alarm's device went quiet.

use telemetry::alarm::{
    Alarm, AlarmAction, AlarmQuery, AlarmStatus, Rule, RuleKind, Severity, StatusFilter, TransitionKind,
};
use telemetry::dashboard::{MAX_RANGE_SECS, TimeRange};
use telemetry::device::DEFAULT_STALE_MS;
use telemetry::{DeviceSummary, Millis};

use super::chart_data::{Guide, GuideKind};

/// The status filters, by their names in the address (the API's names), with their labels.
pub const STATUS_FILTERS: [(StatusFilter, &str, &str); 5] = [
    (StatusFilter::ActiveUnack, "active_unack", "Needs attention"),
    (StatusFilter::Active, "active", "Active"),
    (StatusFilter::Unacked, "unacked", "Unacknowledged"),
    (StatusFilter::Cleared, "cleared", "Cleared"),
    (StatusFilter::All, "all", "All"),
];

pub fn status_key(filter: StatusFilter) -> &'static str {
    STATUS_FILTERS.iter().find(|(f, _, _)| *f == filter).map_or("active", |(_, key, _)| key)
}

pub fn parse_status(key: &str) -> Option<StatusFilter> {
    STATUS_FILTERS.iter().find(|(_, k, _)| *k == key).map(|(f, _, _)| *f)
}

pub fn parse_severity(key: &str) -> Option<Severity> {
    Severity::ALL.into_iter().find(|s| s.as_str() == key)
}

/// The list's query from the address's `status`, `severity`, `device` and `rule` (unknown
/// or empty values are left out).
pub fn query_from(
    status: Option<&str>,
    severity: Option<&str>,
    device: Option<&str>,
    rule: Option<&str>,
) -> AlarmQuery {
    let text =
        |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty() && v.len() <= 64).map(str::to_owned);
    AlarmQuery {
        status: status.and_then(parse_status).unwrap_or_default(),
        severity: severity.and_then(parse_severity),
        device: text(device),
        rule: text(rule),
        ..AlarmQuery::default()
    }
}

/// The address of the list with `query`'s filters.
pub fn list_href(query: &AlarmQuery) -> String {
    let mut href = format!("/alarms?status={}", status_key(query.status));
    if let Some(s) = query.severity {
        href.push_str(&format!("&severity={s}"));
    }
    for (key, value) in [("device", &query.device), ("rule", &query.rule)] {
        if let Some(v) = value {
            href.push_str(&format!("&{key}={}", encode(v)));
        }
    }
    href
}

/// Percent-encodes a query value (ids are `[A-Za-z0-9_.-]`, but a typed filter may be
/// anything).
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Whether an alarm needs someone at `now`: active, not acknowledged, not shelved.
pub fn needs_someone(alarm: &Alarm, now: Millis) -> bool {
    alarm.active && !alarm.acked && !alarm.shelved(now)
}

/// How many of `alarms` need someone at `now`.
pub fn needing<'a>(alarms: impl IntoIterator<Item = &'a Alarm>, now: Millis) -> usize {
    alarms.into_iter().filter(|a| needs_someone(a, now)).count()
}

/// How the header's badge reads: "3", or "500+" when the server listed only its first 500.
pub fn badge_text(count: usize, more: bool) -> String {
    if more { format!("{count}+") } else { count.to_string() }
}

/// Folds a live change of `alarm` into a list shown for `query` (newest first): replaced if
/// listed and still admitted, added if new to it, dropped if no longer admitted. Older news
/// (a lower `seq` than the listed copy) changes nothing. Answers whether the list changed.
pub fn fold(list: &mut Vec<Alarm>, query: &AlarmQuery, alarm: &Alarm) -> bool {
    let at = list.iter().position(|a| a.id == alarm.id);
    if at.is_some_and(|i| list[i].seq >= alarm.seq) {
        return false;
    }
    match (at, query.admits(alarm)) {
        (Some(i), true) => list[i] = alarm.clone(),
        (Some(i), false) => {
            list.remove(i);
        }
        (None, true) => {
            let i = list.partition_point(|a| a.started_at > alarm.started_at);
            list.insert(i, alarm.clone());
            list.truncate(query.limit());
        }
        (None, false) => return false,
    }
    true
}

/// When an active alarm's device last sent the alarm's metric (or anything, for rules
/// without one), if that is longer ago than the device counts as live (its own stale time,
/// from its expected interval): the alarm is kept, and the page says "no data since" then.
/// Silence never clears an alarm.
pub fn silent_since(
    alarm: &Alarm,
    device: Option<&DeviceSummary>,
    metric: Option<&str>,
    now: Millis,
) -> Option<Millis> {
    if !alarm.active {
        return None;
    }
    let heard = match (device, metric) {
        (Some(d), Some(m)) => d.metric(m).map(|m| m.ts).or(Some(d.last_seen)),
        (Some(d), None) => Some(d.last_seen),
        (None, _) => alarm.last_breach_at,
    }?;
    let stale_after = device.map_or(DEFAULT_STALE_MS, DeviceSummary::stale_after);
    (now.saturating_sub(heard) >= stale_after).then_some(heard)
}

/// The status as people read it.
pub fn status_label(status: AlarmStatus) -> &'static str {
    match status {
        AlarmStatus::ActiveUnack => "Active, unacknowledged",
        AlarmStatus::ActiveAck => "Active, acknowledged",
        AlarmStatus::ClearedUnack => "Cleared, unacknowledged",
        AlarmStatus::ClearedAck => "Cleared, acknowledged",
    }
}

/// How far an alarm's chart reaches before it fired and after it cleared.
pub const CHART_AROUND_MS: Millis = 3_600_000;

/// The range an alarm's chart shows: an hour either side of the alarm, never past now; while
/// it is active, up to now and on with it.
pub fn chart_range(started_at: Millis, cleared_at: Option<Millis>, now: Millis) -> TimeRange {
    let from = started_at - CHART_AROUND_MS;
    match cleared_at {
        Some(cleared) => TimeRange::Between { from, to: (cleared + CHART_AROUND_MS).min(now.max(cleared)) },
        None => TimeRange::Last { secs: ((now - from) / 1000).clamp(60, MAX_RANGE_SECS) },
    }
}

/// An entry of an alarm's log as people read it.
pub fn transition_label(kind: TransitionKind, by: Option<&str>) -> &'static str {
    match kind {
        TransitionKind::Fired => "Fired",
        TransitionKind::Reopened => "Fired again",
        TransitionKind::Escalated => "Escalated",
        TransitionKind::Deescalated => "Eased",
        TransitionKind::Cleared if by.is_some() => "Cleared by hand",
        TransitionKind::Cleared => "Cleared",
        TransitionKind::Acked => "Acknowledged",
        TransitionKind::Shelved => "Shelved",
        TransitionKind::Unshelved => "Unshelved",
        TransitionKind::Flapping => "Flapping: quiet until stable",
        TransitionKind::Stable => "Stable again",
        TransitionKind::Reminder => "Reminder",
        TransitionKind::Commented => "Comment",
    }
}

/// The lines a threshold rule's chart gets: each level where it trips, and where it clears
/// (when the rule says; otherwise it clears below its lowest level, already drawn).
pub fn guides(rule: &Rule) -> Vec<Guide> {
    let RuleKind::Threshold { op, levels, clear, clear_high, .. } = &rule.kind else { return Vec::new() };
    let mut out = Vec::new();
    for level in levels {
        match level.high {
            Some(high) if op.is_band() => {
                let what = op.as_str();
                out.push(Guide {
                    kind: GuideKind::Trip,
                    value: level.value,
                    label: format!("{} {what} {}–{high}", level.severity, level.value),
                });
                out.push(Guide { kind: GuideKind::Trip, value: high, label: String::new() });
            }
            _ => out.push(Guide {
                kind: GuideKind::Trip,
                value: level.value,
                label: format!("{} {} {}", level.severity, op.as_str(), level.value),
            }),
        }
    }
    for value in [clear, clear_high].into_iter().flatten() {
        out.push(Guide { kind: GuideKind::Clear, value: *value, label: format!("clears at {value}") });
    }
    out
}

/// The actions the forms post (`action` and, for shelving, `hours`; a bulk form's buttons
/// name the hours in the action: `shelve_8`), as the desk takes them.
pub fn action_from(action: &str, hours: Option<u32>, text: Option<String>) -> Result<AlarmAction, String> {
    let shelve = |hours: u32| AlarmAction::Shelve { hours };
    Ok(match action {
        "ack" => AlarmAction::Ack,
        "clear" => AlarmAction::Clear,
        "unshelve" => AlarmAction::Unshelve,
        "shelve" => shelve(hours.ok_or("shelve for how long: 1, 8 or 24 hours")?),
        "shelve_1" => shelve(1),
        "shelve_8" => shelve(8),
        "shelve_24" => shelve(24),
        "comment" => AlarmAction::Comment { text: text.unwrap_or_default().trim().to_owned() },
        _ => return Err("actions: ack, clear, shelve, unshelve, comment".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(id: &str, started_at: Millis, seq: u64) -> Alarm {
        Alarm { seq, ..Alarm::new(id.into(), "r", "hot", "d", Severity::Major, Some(31.0), started_at) }
    }

    #[test]
    fn status_keys_are_the_apis_names() {
        for (filter, key, _) in STATUS_FILTERS {
            assert_eq!(serde_json::to_value(filter).unwrap(), key);
            assert_eq!(parse_status(key), Some(filter));
            assert_eq!(status_key(filter), key);
        }
        assert_eq!(parse_status("ACTIVE"), None);
    }

    #[test]
    fn the_query_travels_in_the_address() {
        let q = query_from(Some("active_unack"), Some("critical"), Some(" ESP32_SIM_01 "), Some(""));
        assert_eq!(q.status, StatusFilter::ActiveUnack);
        assert_eq!(q.severity, Some(Severity::Critical));
        assert_eq!(q.device.as_deref(), Some("ESP32_SIM_01"));
        assert_eq!(q.rule, None);
        assert_eq!(list_href(&q), "/alarms?status=active_unack&severity=critical&device=ESP32_SIM_01");
        let odd = query_from(Some("nonsense"), Some("mild"), Some("a&b=c"), None);
        assert_eq!(odd.status, StatusFilter::Active);
        assert_eq!(odd.severity, None);
        assert_eq!(list_href(&odd), "/alarms?status=active&device=a%26b%3Dc");
        assert_eq!(query_from(None, None, Some(&"x".repeat(65)), None).device, None);
    }

    #[test]
    fn the_badge_counts_what_needs_someone() {
        let mut acked = alarm("b", 0, 2);
        acked.acked = true;
        let mut shelved = alarm("c", 0, 3);
        shelved.shelved_until = Some(1000);
        let mut cleared = alarm("d", 0, 4);
        cleared.active = false;
        let all = [alarm("a", 0, 1), acked, shelved, cleared];
        assert_eq!(needing(&all, 500), 1);
        assert_eq!(needing(&all, 1000), 2, "a shelf that ran out counts again");
        assert_eq!(badge_text(2, false), "2");
        assert_eq!(badge_text(500, true), "500+");
    }

    #[test]
    fn live_changes_fold_into_the_list_in_order() {
        let q = AlarmQuery { status: StatusFilter::ActiveUnack, ..AlarmQuery::default() };
        let mut list = vec![alarm("new", 300, 3), alarm("old", 100, 1)];
        assert!(fold(&mut list, &q, &alarm("mid", 200, 5)));
        assert_eq!(list.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["new", "mid", "old"]);
        // Acknowledged: no longer admitted here.
        let mut acked = alarm("old", 100, 6);
        acked.acked = true;
        assert!(fold(&mut list, &q, &acked));
        assert_eq!(list.len(), 2);
        // Older news of a listed alarm changes nothing; news of one it would not list, nothing.
        let mut stale = alarm("new", 300, 2);
        stale.severity = Severity::Critical;
        assert!(!fold(&mut list, &q, &stale));
        assert_eq!(list[0].severity, Severity::Major);
        assert!(!fold(&mut list, &q, &acked));
        let mut worse = alarm("new", 300, 7);
        worse.severity = Severity::Critical;
        assert!(fold(&mut list, &q, &worse));
        assert_eq!(list[0].severity, Severity::Critical);
    }

    #[test]
    fn a_quiet_device_shows_since_when_while_active() {
        let a = alarm("a", 1_000, 1);
        let device = DeviceSummary {
            id: "d".into(),
            first_seen: 0,
            last_seen: 50_000,
            status: None,
            message_count: 3,
            metrics: vec![telemetry::MetricLatest { name: "t".into(), value: 31.0, ts: 40_000 }],
            name: None,
            note: None,
            tags: Default::default(),
            refused: None,
            interval: Default::default(),
            attributes: Vec::new(),
        };
        assert_eq!(silent_since(&a, Some(&device), Some("t"), 90_000), None);
        assert_eq!(silent_since(&a, Some(&device), Some("t"), 100_001), Some(40_000));
        assert_eq!(silent_since(&a, Some(&device), Some("other"), 110_001), Some(50_000));
        assert_eq!(silent_since(&a, Some(&device), None, 100_001), None);
        assert_eq!(silent_since(&a, None, Some("t"), 100_000), Some(1_000));
        let mut cleared = a.clone();
        cleared.active = false;
        assert_eq!(silent_since(&cleared, Some(&device), Some("t"), 1_000_000), None);
        // A device expected every 5 min is not silent until 15 min have passed.
        let mut slow = device.clone();
        slow.interval.learned = Some(300_000);
        assert_eq!(silent_since(&a, Some(&slow), Some("t"), 40_000 + 899_999), None);
        assert_eq!(silent_since(&a, Some(&slow), Some("t"), 40_000 + 900_000), Some(40_000));
    }

    #[test]
    fn a_threshold_rule_draws_its_levels_and_clear_level() {
        let rule: Rule = serde_json::from_value(serde_json::json!({
            "name": "hot", "kind": "threshold", "metric": "t", "op": ">",
            "levels": [{"severity": "critical", "value": 30}, {"severity": "warning", "value": 27}], "clear": 26
        }))
        .unwrap();
        let lines: Vec<(GuideKind, f64, String)> =
            guides(&rule).into_iter().map(|g| (g.kind, g.value, g.label)).collect();
        assert_eq!(
            lines,
            [
                (GuideKind::Trip, 30.0, "critical > 30".to_owned()),
                (GuideKind::Trip, 27.0, "warning > 27".to_owned()),
                (GuideKind::Clear, 26.0, "clears at 26".to_owned()),
            ]
        );
        let band: Rule = serde_json::from_value(serde_json::json!({
            "name": "band", "kind": "threshold", "metric": "h", "op": "outside",
            "levels": [{"severity": "major", "value": 30, "high": 70}]
        }))
        .unwrap();
        assert_eq!(guides(&band).iter().map(|g| g.value).collect::<Vec<_>>(), [30.0, 70.0]);
        let offline: Rule =
            serde_json::from_value(serde_json::json!({"name": "gone", "kind": "offline", "after_secs": 60}))
                .unwrap();
        assert!(guides(&offline).is_empty());
        assert_eq!(transition_label(TransitionKind::Cleared, Some("ann")), "Cleared by hand");
    }

    #[test]
    fn the_chart_reaches_an_hour_either_side_and_no_further_than_now() {
        let h = CHART_AROUND_MS;
        assert_eq!(chart_range(10 * h, Some(12 * h), 20 * h), TimeRange::Between { from: 9 * h, to: 13 * h });
        assert_eq!(
            chart_range(10 * h, Some(12 * h), 12 * h + 5),
            TimeRange::Between { from: 9 * h, to: 12 * h + 5 }
        );
        assert_eq!(chart_range(10 * h, None, 11 * h), TimeRange::Last { secs: 7200 });
    }

    #[test]
    fn form_actions_read_as_the_desks() {
        assert_eq!(action_from("ack", None, None), Ok(AlarmAction::Ack));
        assert_eq!(action_from("shelve_8", None, None), Ok(AlarmAction::Shelve { hours: 8 }));
        assert_eq!(action_from("shelve", Some(24), None), Ok(AlarmAction::Shelve { hours: 24 }));
        assert!(action_from("shelve", None, None).is_err());
        assert_eq!(
            action_from("comment", None, Some(" hi ".into())),
            Ok(AlarmAction::Comment { text: "hi".into() })
        );
        assert!(action_from("explode", None, None).is_err());
    }
}
