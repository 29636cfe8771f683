//! Time zones against the real server: a week of readings every five minutes across a DST
//! change, in two zones (Berlin springs forward, New York falls back), asked for in day
//! buckets naming the zone: the buckets start at the local midnights and each holds its local
//! day's readings, from the head and from rollups alike; the CSV's local times change offset
//! at the right row; a zone that is not one is a 400 saying why.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const FIVE_MINUTES: i64 = 300_000;

/// One zone's week around its change.
struct Week {
    zone: &'static str,
    device: &'static str,
    /// The local midnights (as UTC instants) that start its 7 days, then the one that ends them.
    midnights: [&'static str; 8],
    /// The hours of each local day.
    hours: [i64; 7],
    /// The CSV's local times of the last reading before the change and the first after it.
    change: [&'static str; 2],
}

const WEEKS: [Week; 2] = [
    Week {
        zone: "Europe/Berlin",
        device: "TZ_BERLIN",
        // Sunday 2026-03-29, 02:00 CET → 03:00 CEST (01:00 UTC).
        midnights: [
            "2026-03-25T23:00:00Z",
            "2026-03-26T23:00:00Z",
            "2026-03-27T23:00:00Z",
            "2026-03-28T23:00:00Z",
            "2026-03-29T22:00:00Z",
            "2026-03-30T22:00:00Z",
            "2026-03-31T22:00:00Z",
            "2026-04-01T22:00:00Z",
        ],
        hours: [24, 24, 24, 23, 24, 24, 24],
        change: ["2026-03-29T01:55:00.000+01:00", "2026-03-29T03:00:00.000+02:00"],
    },
    Week {
        zone: "America/New_York",
        device: "TZ_NEW_YORK",
        // Sunday 2026-11-01, 02:00 EDT → 01:00 EST (06:00 UTC).
        midnights: [
            "2026-10-29T04:00:00Z",
            "2026-10-30T04:00:00Z",
            "2026-10-31T04:00:00Z",
            "2026-11-01T04:00:00Z",
            "2026-11-02T05:00:00Z",
            "2026-11-03T05:00:00Z",
            "2026-11-04T05:00:00Z",
            "2026-11-05T05:00:00Z",
        ],
        hours: [24, 24, 24, 25, 24, 24, 24],
        change: ["2026-11-01T01:55:00.000-04:00", "2026-11-01T01:00:00.000-05:00"],
    },
];

fn at(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

fn urlencoded(s: &str) -> String {
    s.replace('/', "%2F").replace('+', "%2B")
}

/// The day buckets' (start, count) of a week's history in its zone.
fn day_buckets(server: &ServerProcess, week: &Week) -> (Value, Vec<(i64, u64)>) {
    let (from, to) = (at(week.midnights[0]), at(week.midnights[7]) - 1);
    let (from, to) = (from.to_string(), to.to_string());
    let h = server.server_fn(
        "history_between",
        &[
            ("device", week.device),
            ("metric", "t"),
            ("from", &from),
            ("to", &to),
            // 167 to 169 hours in 9: a day each.
            ("max_points", "9"),
            ("tz", week.zone),
        ],
    );
    let buckets = h["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["t"].as_i64().unwrap(), b["count"].as_u64().unwrap()))
        .collect();
    (h, buckets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn day_buckets_follow_local_days_across_a_dst_change_in_two_zones() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("IOT_RETENTION_DAYS", "0".to_owned()), ("IOT_SEAL_INTERVAL_SECS", "1".to_owned())];
    let server = ServerProcess::start(&dir.path().join("tz.redb"), &env);
    let mut stored = Vec::new();
    for week in &WEEKS {
        let (start, end) = (at(week.midnights[0]), at(week.midnights[7]));
        // Every five minutes, and a last one a minute before the change.
        let mut times: Vec<i64> = (start..end).step_by(FIVE_MINUTES as usize).collect();
        let change = at(week.change[1]);
        times.push(change - 60_000);
        times.sort_unstable();
        let items: Vec<Value> = times
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"device_id": week.device, "telemetry": {"t": (i % 50) as f64}, "timestamp": t}))
            .collect();
        let (status, body) =
            server.post_json("/api/telemetry", serde_json::to_vec(&items).unwrap().as_slice());
        assert_eq!(status, 202, "{body}");
        stored.push(times);
    }

    // From the head, then once sealed into chunks and rollups: the same local days.
    for phase in ["head", "rollups"] {
        if phase == "rollups" {
            let all = stored.iter().map(Vec::len).sum::<usize>() as u64;
            eventually("the weeks are sealed", || {
                std::thread::sleep(Duration::from_millis(200));
                (server.metric_opt("iot_readings_sealed_total") == Some(all)).then_some(())
            });
        }
        for (week, times) in WEEKS.iter().zip(&stored) {
            let (h, buckets) = day_buckets(&server, week);
            assert_eq!(h["zone"], week.zone, "{phase}");
            assert_eq!(h["bucket_ms"], 86_400_000);
            let starts: Vec<i64> = buckets.iter().map(|b| b.0).collect();
            let midnights: Vec<i64> = week.midnights[..7].iter().map(|m| at(m)).collect();
            assert_eq!(starts, midnights, "{} {phase}: buckets start at local midnights", week.zone);
            let hours: Vec<i64> =
                week.midnights.windows(2).map(|w| (at(w[1]) - at(w[0])) / 3_600_000).collect();
            assert_eq!(hours, week.hours);
            for (i, (start, count)) in buckets.iter().enumerate() {
                let end = at(week.midnights[i + 1]);
                let want = times.iter().filter(|t| (*start..end).contains(*t)).count() as u64;
                assert_eq!(*count, want, "{} {phase}: the local day from {}", week.zone, week.midnights[i]);
            }
            // The same range without a zone: UTC days.
            let (from, to) = (at(week.midnights[0]).to_string(), (at(week.midnights[7]) - 1).to_string());
            let utc = server.server_fn(
                "history_between",
                &[
                    ("device", week.device),
                    ("metric", "t"),
                    ("from", &from),
                    ("to", &to),
                    ("max_points", "9"),
                ],
            );
            assert!(utc.get("zone").is_none() && utc.get("edges").is_none());
            let utc_starts = utc["buckets"].as_array().unwrap().iter().map(|b| b["t"].as_i64().unwrap());
            assert!(utc_starts.into_iter().all(|t| t % 86_400_000 == 0));
        }
    }

    // A chart following now names the zone too.
    let h = server.server_fn(
        "history",
        &[
            ("device", "TZ_BERLIN"),
            ("metric", "t"),
            ("span_secs", &(365 * 86_400).to_string()),
            ("max_points", "200"),
            ("tz", "Europe/Berlin"),
        ],
    );
    assert_eq!((h["zone"].as_str(), h["bucket_ms"].as_i64()), (Some("Europe/Berlin"), Some(2 * 86_400_000)));
    let total: u64 = h["buckets"].as_array().unwrap().iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(total, stored[0].len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_gives_each_row_its_own_offset_and_bad_zones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        ServerProcess::start(&dir.path().join("csv.redb"), &[("IOT_RETENTION_DAYS", "0".to_owned())]);
    for week in &WEEKS {
        let change = at(week.change[1]);
        // Two readings either side of the change.
        let times = [change - 2 * FIVE_MINUTES, change - FIVE_MINUTES, change, change + FIVE_MINUTES];
        let items: Vec<Value> = times
            .iter()
            .map(|t| json!({"device_id": week.device, "telemetry": {"t": 1.5}, "timestamp": t}))
            .collect();
        let (status, body) =
            server.post_json("/api/telemetry", serde_json::to_vec(&items).unwrap().as_slice());
        assert_eq!(status, 202, "{body}");
        let (from, to) = (times[0], times[3]);
        let query = format!("/api/export.csv?device={}&metric=t&from={from}&to={to}", week.device);
        let (status, csv) = server.get(&format!("{query}&tz={}", urlencoded(week.zone)));
        assert_eq!(status, 200, "{csv}");
        let local: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').nth(1).unwrap()).collect();
        assert_eq!(local.len(), 4);
        assert_eq!(&local[1..3], &week.change, "{}: the offset changes at the change", week.zone);
        for (row, t) in local.iter().zip(times) {
            assert_eq!(chrono::DateTime::parse_from_rfc3339(row).unwrap().timestamp_millis(), t, "{row}");
        }
        // An older link's fixed offset is every row's.
        let (status, csv) = server.get(&format!("{query}&offset=60"));
        assert_eq!(status, 200);
        assert!(csv.lines().skip(1).all(|l| l.split(',').nth(1).unwrap().ends_with("+01:00")), "{csv}");
    }

    // Zones that are not: a 400 with the reason, from the export and the history alike.
    let history = "/api/history?device=TZ_BERLIN&metric=t&span_secs=31536000&max_points=9";
    let unknown = "unknown time zone \"Mars/Olympus_Mons\"";
    for (tz, why) in
        [("Mars%2FOlympus_Mons", unknown), ("..%2Fetc%2Fpasswd", "must be an IANA time zone name")]
    {
        let (status, body) = server.get(&format!("/api/export.csv?device=TZ_BERLIN&tz={tz}"));
        assert_eq!(status, 400, "{body}");
        assert!(body.contains(why), "{body}");
        let (status, body) = server.get(&format!("{history}&tz={tz}"));
        assert_eq!(status, 400, "{body}");
        let reason: Value = serde_json::from_str(&body).unwrap();
        assert!(reason["BadRequest"].as_str().unwrap().contains(why), "{body}");
    }
    let (status, _) = server.get(&format!("{history}&tz=Europe%2FBerlin"));
    assert_eq!(status, 200);
}
