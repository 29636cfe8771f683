//! Each device's connection log against the whole server (issue 17, acceptance 4): why the
//! embedded broker ended each connection (a client that stops pinging, one that says
//! DISCONNECT), refused sign-ins, and connections a kill -9 or a stop left open, ended as
//! server_stopped when the server starts again; at most 100 kept per device.

mod common;

use std::time::Duration;

use common::raw::{Connect, Raw, Refused};
use common::*;
use serde_json::Value;

/// A device's connections (`/api/device_log`), newest first.
fn connections(server: &ServerProcess, id: &str, headers: &[(&str, &str)]) -> Vec<Value> {
    let path = format!("/api/device_log?id={id}");
    let (status, _, body) = http_full(server.http, "GET", &path, "", headers, b"");
    assert_eq!(status, 200, "{body}");
    let log: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(log["connections_logged"], Value::Bool(true), "the embedded broker logs connections");
    log["connections"].as_array().unwrap().clone()
}

/// The device's connections once `done` holds for them (commits come a moment after the fact).
fn connections_when(
    server: &ServerProcess,
    id: &str,
    headers: &[(&str, &str)],
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let log = connections(server, id, headers);
        if done(&log) {
            return log;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {log:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn reason(c: &Value) -> &str {
    c["reason"].as_str().unwrap_or("open")
}

fn reading(device: &mut Raw, id: &str) {
    let answer = device.publish(telemetry_topic(id).as_bytes(), payload([("t", 21.5)], now_ms()).as_bytes());
    assert_eq!(answer, common::raw::Answer::PubAck);
}

#[test]
fn a_client_that_stops_pinging_ends_as_a_keepalive_timeout_and_a_disconnect_as_clean() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("iot.toml");
    std::fs::write(&config, "[mqtt]\nmin_keepalive_secs = 1\n").unwrap();
    let server =
        ServerProcess::start(&dir.path().join("t.redb"), &[("IOT_CONFIG", config.display().to_string())]);

    // Keepalive 1 s, one reading, then silence: the broker ends it a few seconds later.
    let quiet = Connect { keep_alive: 1, ..Connect::new("QUIET") };
    let mut quiet = Raw::try_connect_with(server.mqtt(), &quiet).expect("connected");
    reading(&mut quiet, "QUIET");
    let started = now_ms();
    // A device that says goodbye.
    let mut polite = Raw::connect(server.mqtt(), "POLITE");
    reading(&mut polite, "POLITE");
    polite.disconnect();

    assert!(quiet.closed_within(Duration::from_secs(10)), "the broker ends a silent connection");
    let log = connections_when(&server, "QUIET", &[], "the silent connection ended", |l| {
        l.first().is_some_and(|c| c["ended_at"].is_i64())
    });
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(reason(&log[0]), "keepalive_timeout");
    let lasted = log[0]["ended_at"].as_i64().unwrap() - log[0]["connected_at"].as_i64().unwrap();
    assert!((1_000..10_000).contains(&lasted), "it lasted {lasted} ms");
    assert!(log[0]["connected_at"].as_i64().unwrap() <= started);
    assert_eq!(log[0]["protocol"], 4);
    assert!(log[0]["address"].as_str().unwrap().starts_with("127.0.0.1:"), "{log:?}");
    let log = connections_when(&server, "POLITE", &[], "the clean end", |l| !l.is_empty());
    assert_eq!(log.iter().map(reason).collect::<Vec<_>>(), ["clean"]);
    // The device page (as served, without JavaScript) lists them with their reasons, and how
    // much of the last 24 h and 7 d the device was connected.
    let (status, page) = server.get("/device/QUIET");
    assert_eq!(status, 200);
    let row = page.find(r#"data-reason="keepalive_timeout""#).expect("a keepalive timeout row");
    assert!(page[row..].contains("keepalive timeout") && page[row..].contains("3.1.1"), "{page}");
    assert!(page.contains("Connected, last 24 h") && page.contains("Connected, last 7 d"), "{page}");
    let (_, page) = server.get("/device/POLITE");
    assert!(page.contains(r#"data-reason="clean""#) && page.contains("clean disconnect"), "{page}");

    // A known device's next connection is listed while it lasts, then ended.
    let again = Raw::connect(server.mqtt(), "POLITE");
    let log = connections_when(&server, "POLITE", &[], "the open connection", |l| l.len() == 2);
    assert_eq!(log.iter().map(reason).collect::<Vec<_>>(), ["open", "clean"]);
    again.disconnect();
    connections_when(&server, "POLITE", &[], "the second clean end", |l| {
        l.iter().map(reason).collect::<Vec<_>>() == ["clean", "clean"]
    });
    // A client id that never sent anything has no log.
    Raw::connect(server.mqtt(), "STRANGER").disconnect();
    assert!(connections(&server, "STRANGER", &[]).is_empty());

    // The fleet page's rows say how much of the last 24 h each device was connected: none for
    // a device whose readings came under another client id (it has no log), not 0 %.
    let mut other = Raw::connect(server.mqtt(), "SOME-GATEWAY");
    reading(&mut other, "NOLOG");
    let (status, body) = server.get("/api/fleet");
    assert_eq!(status, 200, "{body}");
    let fleet: Value = serde_json::from_str(&body).unwrap();
    let share = |id: &str| {
        let rows = fleet["rows"].as_array().unwrap();
        rows.iter().find(|r| r["device"]["id"] == id).unwrap_or_else(|| panic!("{id} listed"))["availability"]
            .clone()
    };
    assert!(share("NOLOG").is_null(), "{fleet}");
    let polite = share("POLITE").as_f64().expect("POLITE has a share");
    assert!(polite > 0.0 && polite < 1.0, "connected part of what was logged: {polite}");
    let (_, page) = server.get("/fleet");
    assert!(page.contains("Up 24 h"), "the column shows");
    // Sortable, over every device (not only a page's), either way with devices without a log
    // last; its heading links the order.
    assert!(
        page.contains(r#"data-sort="up" title="Share of the last 24 h connected"><a href="/fleet?sort=up""#),
        "the heading sorts and says what it counts: {page}"
    );
    for (sort, descending) in [("up", false), ("-up", true)] {
        let (status, body) = server.get(&format!("/api/fleet?sort={sort}"));
        assert_eq!(status, 200, "{body}");
        let fleet: Value = serde_json::from_str(&body).unwrap();
        let rows = fleet["rows"].as_array().unwrap();
        let shares: Vec<Option<f64>> = rows.iter().map(|r| r["availability"].as_f64()).collect();
        assert_eq!(rows.last().unwrap()["device"]["id"], "NOLOG", "{sort}: no log, last");
        let known: Vec<f64> = shares.iter().flatten().copied().collect();
        assert!(
            known.len() >= 2 && shares.iter().take(known.len()).all(Option::is_some),
            "{sort}: {shares:?}"
        );
        let ordered = known.windows(2).all(|w| if descending { w[0] >= w[1] } else { w[0] <= w[1] });
        assert!(ordered, "{sort}: {known:?}");
    }
    // The CSV has the column: a percentage, empty without a log.
    let (_, csv) = server.get("/api/fleet.csv?sort=id");
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let at = header.iter().position(|c| *c == "up_24h").expect("an up_24h column");
    let cell = |id: &str| {
        let line =
            csv.lines().find(|l| l.starts_with(&format!("{id},"))).unwrap_or_else(|| panic!("{id}: {csv}"));
        line.split(',').nth(at).unwrap().to_owned()
    };
    assert_eq!(cell("NOLOG"), "", "{csv}");
    let polite_cell = cell("POLITE");
    let percent: f64 = polite_cell.trim_end_matches('%').parse().unwrap_or_else(|_| panic!("{polite_cell}"));
    assert!(
        polite_cell.ends_with('%') && (percent - polite * 100.0).abs() < 1.0,
        "{polite_cell} against {polite}"
    );
}

#[test]
fn a_wrong_key_is_an_auth_failure_and_connections_open_at_a_kill_or_a_stop_end_as_server_stopped() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    cli(&db, &["user", "add", "root"], "admin password");
    let key = cli(&db, &["device", "key", "KEYED"], "");
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("root:admin password"));
    let auth = [("Authorization", basic.as_str())];
    let server = ServerProcess::start(&db, &[]);
    let login = Some(("KEYED", key.as_str()));
    let mut device = Raw::try_connect_as(server.mqtt(), "KEYED", login).unwrap();
    reading(&mut device, "KEYED");

    // Someone with the wrong key: refused (bad user name or password), and listed.
    let wrong = Connect { login: Some(("KEYED", "not-the-key")), ..Connect::new("KEYED") };
    assert_eq!(Raw::try_connect_with(server.mqtt(), &wrong).err(), Some(Refused::Code(4)));
    let log = connections_when(&server, "KEYED", &auth, "the refused sign-in", |l| {
        l.iter().any(|c| reason(c) == "auth_failure")
    });
    assert_eq!(log.iter().map(reason).collect::<Vec<_>>(), ["auth_failure", "open"], "{log:?}");
    assert_eq!(log[0]["connected_at"], log[0]["ended_at"], "a refusal is a moment");

    // Killed while the device is connected: the next start ends it at its last message.
    reading(&mut device, "KEYED");
    let last_seen = |server: &ServerProcess| {
        let (status, _, body) = http_full(server.http, "GET", "/api/device?id=KEYED", "", &auth, b"");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["device"]["last_seen"].as_i64().unwrap()
    };
    let seen = last_seen(&server);
    server.kill();
    drop(device);
    let server = ServerProcess::start(&db, &[]);
    let log = connections(&server, "KEYED", &auth);
    assert_eq!(log.iter().map(reason).collect::<Vec<_>>(), ["auth_failure", "server_stopped"], "{log:?}");
    assert_eq!(log[1]["ended_at"].as_i64(), Some(seen), "ended at its last message");

    // Stopped (SIGTERM) while it is connected: ended as the server stops.
    let mut device = Raw::try_connect_as(server.mqtt(), "KEYED", login).unwrap();
    reading(&mut device, "KEYED");
    connections_when(&server, "KEYED", &auth, "the new connection", |l| l.len() == 3);
    let before = now_ms();
    server.stop();
    let after = now_ms();
    let server = ServerProcess::start(&db, &[]);
    let log = connections(&server, "KEYED", &auth);
    assert_eq!(reason(&log[0]), "server_stopped", "{log:?}");
    let ended = log[0]["ended_at"].as_i64().unwrap();
    assert!((before..=after).contains(&ended), "ended {ended}, stopped between {before} and {after}");
    drop(device);
}

#[test]
fn a_device_keeps_its_latest_100_connections() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let mut first = Raw::connect(server.mqtt(), "BUSY");
    reading(&mut first, "BUSY");
    first.disconnect();
    let oldest =
        connections_when(&server, "BUSY", &[], "the first connection", |l| l.len() == 1)[0]["connected_at"]
            .as_i64()
            .unwrap();
    for _ in 0..104 {
        // Right after a connection ends the broker may still be letting go of its session
        // (CONNACK 3, server unavailable): a device tries again.
        let again = (0..100).find_map(|_| {
            Raw::try_connect(server.mqtt(), "BUSY")
                .inspect_err(|_| std::thread::sleep(Duration::from_millis(10)))
                .ok()
        });
        again.expect("connected again").disconnect();
    }
    // The log's commits follow the connections: 100 ended ones may show while the last few
    // are still on their way, the first among them. Once all are in, the oldest is gone.
    let log =
        connections_when(&server, "BUSY", &[], "105 connections made and ended, the oldest gone", |l| {
            l.len() == 100
                && l.iter().all(|c| c["ended_at"].is_i64())
                && l.iter().all(|c| c["connected_at"].as_i64() != Some(oldest))
        });
    let times: Vec<i64> = log.iter().map(|c| c["connected_at"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] > w[1]), "newest first, each its own");
    assert!(times[99] > oldest, "the oldest went");
    assert!(log.iter().all(|c| reason(c) == "clean"));
}
