//! `bench alarm-engine [MESSAGES]`: the alarm engine alone, as the writer runs it, on MESSAGES
//! (100,000) messages of 3 readings from 1,000 devices in commits of 500, with the 50 rules
//! scripts/bench-alarms.sh makes (none firing), after each device's first reading (when its
//! rules are worked out), and a tick with every device's presence: the time per message and
//! per tick.

use std::time::Instant;

use server::alarms::engine::{Engine, Presence, Reading};
use telemetry::alarm::Rule;

const DEVICES: usize = 1000;
const COMMIT: usize = 500;

/// The script's 50 rules over every device.
fn rules() -> Vec<Rule> {
    let mut json = Vec::new();
    for i in 1..=20 {
        json.push(
            serde_json::json!({"name": format!("hot {i}"), "kind": "threshold", "metric": "temperature",
            "op": ">", "levels": [{"severity": "major", "value": 60 + i}], "for_secs": 30}),
        );
    }
    for i in 1..=10 {
        json.push(
            serde_json::json!({"name": format!("humidity {i}"), "kind": "threshold", "metric": "humidity",
            "op": "outside", "levels": [{"severity": "minor", "value": 0, "high": 100 + i}]}),
        );
        json.push(serde_json::json!({"name": format!("battery {i}"), "kind": "threshold", "metric": "battery",
            "op": "<", "levels": [{"severity": "warning", "value": 2.0 + f64::from(i) / 10.0}], "clear_for_secs": 60}));
    }
    for i in 1..=5 {
        json.push(
            serde_json::json!({"name": format!("quiet {i}"), "kind": "no_data", "metric": "temperature",
            "after_secs": 600 + i}),
        );
        json.push(
            serde_json::json!({"name": format!("offline {i}"), "kind": "offline", "after_secs": 600 + i}),
        );
    }
    json.into_iter()
        .enumerate()
        .map(|(i, j)| {
            let mut rule: Rule = serde_json::from_value(j).expect("a rule");
            rule.validate().expect("a valid rule");
            rule.id = format!("r{i}");
            rule
        })
        .collect()
}

pub fn run(messages: usize) {
    let now = server::clock::now_ms();
    let devices: Vec<String> = (1..=DEVICES).map(|d| format!("DEV{d:04}")).collect();
    let values: Vec<Vec<(String, f64)>> = (0..messages)
        .map(|i| {
            let x = (i % 97) as f64 / 97.0;
            vec![
                ("battery".to_owned(), 3.7 + x / 10.0),
                ("humidity".to_owned(), 40.0 + 20.0 * x),
                ("temperature".to_owned(), 20.0 + 5.0 * x),
            ]
        })
        .collect();
    let start = now - messages as i64;
    let readings: Vec<Reading> = (0..messages)
        .map(|i| (devices[i % DEVICES].as_str(), values[i].as_slice(), start + i as i64))
        .collect();
    let time = |rules: Vec<Rule>| {
        let mut engine = Engine::new(0, "http://localhost".into());
        engine.load(rules, Vec::new(), Vec::new(), Vec::new());
        // Each device once first: its rules are worked out on its first reading, not every one.
        let first: Vec<Reading> =
            devices.iter().map(|d| (d.as_str(), values[0].as_slice(), start - 1)).collect();
        let changes = engine.on_batch(&first, &[], now);
        engine.apply(&changes);
        let started = Instant::now();
        for batch in readings.chunks(COMMIT) {
            let changes = engine.on_batch(batch, &[], now);
            assert!(changes.is_empty(), "no rule fires");
            engine.apply(&changes);
        }
        let per_message = started.elapsed().as_secs_f64() * 1e9 / messages as f64;
        let presence = Presence { last_seen: now, offline_since: None, stale_after: 60_000, interval: None };
        let presences: Vec<(String, Presence)> = devices.iter().map(|d| (d.clone(), presence)).collect();
        let started = Instant::now();
        let ticks = 20;
        for t in 0..ticks {
            let changes = engine.on_tick(now + 1000 * (t + 1), &presences);
            engine.apply(&changes);
        }
        (per_message, started.elapsed().as_secs_f64() * 1e3 / ticks as f64)
    };
    let (none, _) = time(Vec::new());
    let (fifty, tick) = time(rules());
    println!(
        "| alarm engine alone, {messages} messages × 3 readings from {DEVICES} devices in commits of {COMMIT} | per message | per tick ({DEVICES} devices) |"
    );
    println!("|---|---|---|");
    println!("| no rules | {none:.0} ns | |");
    println!("| 50 rules over every device (none firing) | {fifty:.0} ns | {tick:.2} ms |");
}
