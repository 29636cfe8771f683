//! The device registry on the PostgreSQL store, against a real PostgreSQL: summaries with
//! latest values, statuses and the session rule for delayed last wills, attributes and the
//! device events they and falling uptimes make, learned and set intervals, names, notes and
//! deletion, the connection log (bounded, ended at the next start), two nodes reporting on one
//! device at once, and acknowledged statuses and attributes surviving kill -9 of the database.
//! The assertions are the redb store's tests' (store/redb_store/tests.rs,
//! store/connection_log.rs), with times of this century (the change log keeps real times).

mod common;

use common::postgres::Postgres;
use server::store::postgres::{PgBlocking, PgSettings, PgStore};
use server::store::{AttributesReport, ConnectionChange, ConnectionReport, Incoming, Report, StatusReport};
use telemetry::attributes::{AttrValue, EventKind, MAX_DEVICE_EVENTS};
use telemetry::connections::{Ended, MAX_ADDRESS, MAX_LOGGED};
use telemetry::device::{Health, Interval};
use telemetry::{DeviceAdmin, DeviceId, DeviceStatus, LiveEvent, Message, Millis};

/// 2025-12-06 05:46:40 UTC.
const T0: Millis = 1_765_000_000_000;
const MIN: Millis = 60_000;

fn msg(device: &str, ts: Millis, values: &[(&str, f64)]) -> Incoming {
    Incoming {
        message: Message::new(DeviceId::try_from(device).unwrap(), ts, values.iter().copied()),
        received: ts + 10,
    }
}

fn status(device: &str, online: bool, at: Millis, session: Option<u64>) -> Report {
    StatusReport { device: DeviceId::try_from(device).unwrap(), online, at, session }.into()
}

fn attrs(device: &str, at: Millis, values: &[(&str, &str)]) -> Report {
    let values = values.iter().map(|(k, v)| ((*k).to_owned(), AttrValue::Text((*v).into()))).collect();
    Report::Attributes(AttributesReport { device: DeviceId::try_from(device).unwrap(), values, at })
}

fn connection(device: &str, id: Millis, at: Millis, change: ConnectionChange) -> Report {
    Report::Connection(ConnectionReport { device: DeviceId::try_from(device).unwrap(), id, at, change })
}

fn connected() -> ConnectionChange {
    ConnectionChange::Connected { address: Some("10.0.0.7:5100".into()), protocol: 5 }
}

fn ended(reason: Ended) -> ConnectionChange {
    ConnectionChange::Ended { address: None, protocol: 5, reason }
}

/// How many readings the database holds of `device` (looked at directly).
async fn readings_of(url: &str, device: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let sql = "SELECT count(*) FROM readings r JOIN series s ON s.id = r.series WHERE s.device = $1";
    client.query_one(sql, &[&device]).await.unwrap().get(0)
}

async fn open(pg: &Postgres) -> PgStore {
    PgStore::open(&PgSettings::new(&pg.url)).await.unwrap()
}

async fn status_of(store: &PgStore, device: &str) -> DeviceStatus {
    store.device(device).await.unwrap().value.unwrap().status.unwrap()
}

fn kinds(events: &[LiveEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            LiveEvent::Reading { .. } => "reading",
            LiveEvent::Status { .. } => "status",
            LiveEvent::Attributes { .. } => "attributes",
            LiveEvent::Event { event, .. } => match event.kind {
                EventKind::Reboot { .. } => "reboot",
                EventKind::Attribute { .. } => "fw",
            },
            _ => "other",
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_are_listed_with_their_latest_values_and_a_status_alone_does_not_register() {
    let pg = Postgres::start();
    let store = open(&pg).await;
    let out = store
        .ingest(&[
            msg("b", T0 + 500, &[("temperature", 30.0)]),
            msg("a", T0, &[("temperature", 20.0), ("humidity", 50.0)]),
        ])
        .await
        .unwrap();
    assert_eq!(out.events.len(), 2);
    store.ingest(&[msg("a", T0 + 1_000, &[("temperature", 21.0)])]).await.unwrap();
    // A late reading does not replace the latest value.
    store.ingest(&[msg("a", T0 - 5_000, &[("temperature", 1.0)])]).await.unwrap();
    // A status alone makes a record the device cap counts, but does not register.
    store.commit_reports(&[status("x", true, T0, None)]).await.unwrap();

    let current = store.devices().await.unwrap();
    assert_eq!(current.last_seq, store.last_seq().await.unwrap());
    let devices = current.value;
    assert_eq!(devices.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    let a = &devices[0];
    assert_eq!((a.first_seen, a.last_seen, a.message_count), (T0 + 10, T0 + 1_010, 3));
    assert_eq!(a.metric("temperature").map(|m| (m.value, m.ts)), Some((21.0, T0 + 1_000)));
    assert_eq!(a.metric("humidity").map(|m| (m.value, m.ts)), Some((50.0, T0)));
    assert!(store.device("x").await.unwrap().value.is_none());
    assert!(store.device("nobody").await.unwrap().value.is_none());
    let mut known: Vec<String> = store.known_devices().await.unwrap().into_iter().map(|d| d.id).collect();
    known.sort();
    assert_eq!(known, ["a", "b", "x"]);
    assert_eq!(store.known_device_count().await.unwrap(), 3);

    // Its first reading registers it, its status kept; a later status replaces it.
    store.ingest(&[msg("x", T0 + 2_000, &[("t", 1.0)])]).await.unwrap();
    assert_eq!(status_of(&store, "x").await, DeviceStatus { online: true, at: T0, session: None });
    store.commit_reports(&[status("x", false, T0 + 3_000, None)]).await.unwrap();
    assert_eq!(status_of(&store, "x").await, DeviceStatus { online: false, at: T0 + 3_000, session: None });
    // A redelivery changes nothing.
    let again = store.ingest(&[msg("a", T0, &[("temperature", 99.0)])]).await.unwrap();
    assert!(again.events.is_empty());
    let a = store.device("a").await.unwrap().value.unwrap();
    assert_eq!((a.message_count, a.metric("temperature").map(|m| m.value)), (3, Some(21.0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_will_from_an_older_session_is_ignored() {
    let pg = Postgres::start();
    let store = open(&pg).await;
    let s = |online, at, session| [status("x", online, T0 + at, session)];
    store.ingest(&[msg("x", T0 + 100, &[("t", 1.0)])]).await.unwrap();
    store.commit_reports(&s(true, 200, Some(16))).await.unwrap();
    store.commit_reports(&s(true, 300, Some(17))).await.unwrap();
    // Session 16's will, delayed past session 17's connection: no change, no event.
    let out = store.commit_reports(&s(false, 400, Some(16))).await.unwrap();
    assert_eq!((out.stale_wills, out.events.len()), (1, 0));
    assert_eq!(status_of(&store, "x").await, DeviceStatus { online: true, at: T0 + 300, session: Some(17) });
    // A plain status keeps the known session; session 17's own will is taken.
    store.commit_reports(&s(true, 450, None)).await.unwrap();
    assert_eq!(status_of(&store, "x").await.session, Some(17));
    store.commit_reports(&s(false, 500, Some(15))).await.unwrap();
    let out = store.commit_reports(&s(false, 600, Some(17))).await.unwrap();
    assert_eq!((out.stale_wills, out.events.len()), (0, 1));
    assert_eq!(status_of(&store, "x").await, DeviceStatus { online: false, at: T0 + 600, session: Some(17) });
    // A device that lost its counter starts over from what it announces.
    store.commit_reports(&s(true, 700, Some(1))).await.unwrap();
    store.commit_reports(&s(false, 800, Some(16))).await.unwrap();
    store.commit_reports(&s(true, 900, Some(2))).await.unwrap();
    store.commit_reports(&s(false, 950, Some(1))).await.unwrap();
    // A session counter past i64 is kept as it is.
    store.commit_reports(&[status("y", true, T0, Some(u64::MAX - 1))]).await.unwrap();
    let out = store.commit_reports(&[status("y", false, T0 + 1, Some(u64::MAX - 2))]).await.unwrap();
    assert_eq!(out.stale_wills, 1);

    // Another node reads the same.
    let other = open(&pg).await;
    assert_eq!(status_of(&other, "x").await, DeviceStatus { online: true, at: T0 + 900, session: Some(2) });
    let changes = other.changes_after(0, 100).await.unwrap();
    let wills: Vec<_> = changes
        .iter()
        .filter_map(|(_, json)| match serde_json::from_str(json).unwrap() {
            LiveEvent::Status { online: false, session, device, .. } if device == "x" => Some(session),
            _ => None,
        })
        .collect();
    assert_eq!(wills, [Some(17), Some(16)], "only the wills taken are changes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_keep_when_they_changed_and_firmware_changes_and_reboots_are_events() {
    let pg = Postgres::start();
    let store = open(&pg).await;
    let shown = |x: telemetry::DeviceSummary| -> Vec<(String, String, Millis)> {
        x.attributes.into_iter().map(|a| (a.name, a.value.to_string(), a.changed_at)).collect()
    };
    let out = store.ingest(&[msg("x", T0, &[("uptime_s", 3_600.0)])]).await.unwrap();
    let more =
        store.commit_reports(&[attrs("x", T0 + 10, &[("fw", "1.4.1"), ("ip", "10.0.0.7")])]).await.unwrap();
    assert_eq!(kinds(&out.events), ["reading"]);
    assert_eq!(kinds(&more.events), ["attributes"]);
    let same = store.commit_reports(&[attrs("x", T0 + 1_010, &[("fw", "1.4.1")])]).await.unwrap();
    assert!(same.events.is_empty(), "nothing changed");
    // Rebooted onto new firmware: the reading, its reboot, then the attributes and their event,
    // numbered in order.
    let rebooted = store.ingest(&[msg("x", T0 + 60_000, &[("uptime_s", 5.0)])]).await.unwrap();
    let updated = store.commit_reports(&[attrs("x", T0 + 60_010, &[("fw", "1.4.2")])]).await.unwrap();
    let events: Vec<LiveEvent> = rebooted.events.into_iter().chain(updated.events).collect();
    let wire: Vec<String> = rebooted.wire.into_iter().chain(updated.wire).collect();
    assert_eq!(kinds(&events), ["reading", "reboot", "attributes", "fw"]);
    let seqs: Vec<u64> = events.iter().filter_map(LiveEvent::seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "numbered in order: {seqs:?}");
    let expected = vec![
        ("fw".to_owned(), "1.4.2".to_owned(), T0 + 60_010),
        ("ip".to_owned(), "10.0.0.7".to_owned(), T0 + 10),
    ];
    assert_eq!(shown(store.device("x").await.unwrap().value.unwrap()), expected);
    // The change log holds what was sent live.
    let logged: Vec<(u64, String)> = store.changes_after(seqs[0] - 1, 100).await.unwrap();
    assert_eq!(logged.iter().map(|(s, _)| *s).collect::<Vec<_>>(), seqs);
    assert_eq!(logged.into_iter().map(|(_, j)| j).collect::<Vec<_>>(), wire);

    let other = open(&pg).await;
    assert_eq!(shown(other.device("x").await.unwrap().value.unwrap()), expected, "seen by another node");
    let log = other.device_log("x").await.unwrap();
    let texts: Vec<String> = log.events.iter().map(|e| e.text()).collect();
    assert_eq!(texts, ["fw 1.4.1 → 1.4.2", "rebooted (uptime 3600 s → 5 s)"], "newest first");
    assert_eq!(log.events[0].at, T0 + 60_010);
    assert_eq!(log.last_seq, other.last_seq().await.unwrap());
    assert!(other.device_log("nobody").await.unwrap().events.is_empty());

    // At most MAX_DEVICE_EVENTS a device, the latest.
    for i in 0..MAX_DEVICE_EVENTS as i64 + 5 {
        let fw = format!("2.0.{i}");
        store.commit_reports(&[attrs("x", T0 + 100_000 + i, &[("fw", fw.as_str())])]).await.unwrap();
    }
    let log = store.device_log("x").await.unwrap();
    assert_eq!(log.events.len(), MAX_DEVICE_EVENTS);
    assert_eq!(
        log.events[0].text(),
        format!("fw 2.0.{} → 2.0.{}", MAX_DEVICE_EVENTS + 3, MAX_DEVICE_EVENTS + 4)
    );

    let admin = PgBlocking::open(&PgSettings::new(&pg.url)).unwrap();
    let deleted = tokio::task::spawn_blocking(move || admin.delete_device("x").unwrap()).await.unwrap();
    assert!(deleted);
    assert!(store.device_log("x").await.unwrap().events.is_empty(), "deleted with the device");
}

#[test]
fn intervals_are_learned_and_set_and_devices_get_names_notes_and_are_deleted_with_their_history() {
    let pg = Postgres::start();
    let admin = PgBlocking::open(&PgSettings::new(&pg.url)).unwrap();
    let store = admin.store().clone();
    let on = |f: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        admin.spawn(async move {
            f.await;
            let _ = tx.send(());
        });
        rx.recv().expect("the test's queries ran");
    };
    let arrived = |device: &str, at: Millis| Incoming {
        message: Message::new(DeviceId::try_from(device).unwrap(), at, [("t", 1.0)]),
        received: at,
    };
    {
        let store = store.clone();
        let batches: Vec<Vec<Incoming>> = (0..6)
            .flat_map(|i| {
                [
                    vec![arrived("slow", T0 + i * 5 * MIN), arrived("fast", T0 + i * 10_000)],
                    vec![arrived("set", T0 + i * 10_000)],
                ]
            })
            .chain([vec![arrived("slow", T0 + 25 * MIN)]])
            .collect();
        on(Box::pin(async move {
            for batch in batches {
                store.ingest(&batch).await.unwrap();
            }
        }));
    }
    assert!(admin.set_expected_interval("set", Some(60 * MIN)).unwrap());
    assert!(!admin.set_expected_interval("nobody", Some(60 * MIN)).unwrap());
    let summaries = |store: std::sync::Arc<PgStore>| {
        let (tx, rx) = std::sync::mpsc::channel();
        admin.spawn(async move {
            let _ = tx.send(store.devices().await.unwrap().value);
        });
        rx.recv().unwrap()
    };
    let learned = |ms| Interval { learned: Some(ms), set: None };
    let intervals: Vec<(String, Interval)> =
        summaries(store.clone()).into_iter().map(|d| (d.id, d.interval)).collect();
    assert_eq!(
        intervals,
        [
            ("fast".to_owned(), learned(10_000)),
            ("set".to_owned(), Interval { learned: Some(10_000), set: Some(60 * MIN) }),
            ("slow".to_owned(), learned(5 * MIN)),
        ]
    );
    let slow = summaries(store.clone()).into_iter().find(|d| d.id == "slow").unwrap();
    assert_eq!(slow.health(slow.last_seen + 6 * MIN), Health::Online);
    assert_eq!(slow.health(slow.last_seen + 15 * MIN), Health::Stale);
    assert!(admin.set_expected_interval("set", None).unwrap());
    let set = summaries(store.clone()).into_iter().find(|d| d.id == "set").unwrap();
    assert_eq!(set.interval, learned(10_000), "back to learning");

    // Names and notes, for registered devices only; a new reading keeps them.
    assert!(
        admin.set_device_meta("fast", Some("Greenhouse".into()), Some("<b>north</b> wall".into())).unwrap()
    );
    assert!(!admin.set_device_meta("zzz", None, None).unwrap());
    {
        let store = store.clone();
        on(Box::pin(async move {
            store.commit_reports(&[status("statusonly", true, T0, None)]).await.unwrap();
            store.ingest(&[arrived("fast", T0 + 3_600_000)]).await.unwrap();
        }));
    }
    assert!(!admin.set_device_meta("statusonly", Some("n".into()), None).unwrap(), "not registered");
    let fast = summaries(store.clone()).into_iter().find(|d| d.id == "fast").unwrap();
    assert_eq!((fast.label(), fast.note.as_deref()), ("Greenhouse", Some("<b>north</b> wall")));

    // Deleted with its history; the id can be used again from scratch.
    assert!(admin.delete_device("fast").unwrap());
    assert!(!admin.delete_device("fast").unwrap());
    assert!(admin.delete_device("statusonly").unwrap(), "a record alone is a device to delete");
    let ids: Vec<String> = summaries(store.clone()).into_iter().map(|d| d.id).collect();
    assert_eq!(ids, ["set", "slow"]);
    {
        let (store, url) = (store.clone(), pg.url.clone());
        on(Box::pin(async move {
            assert_eq!(readings_of(&url, "fast").await, 0);
            assert_eq!(readings_of(&url, "slow").await, 6);
            store.ingest(&[arrived("fast", T0 + 7_200_000)]).await.unwrap();
            let again = store.device("fast").await.unwrap().value.unwrap();
            assert_eq!((again.message_count, again.name, again.interval), (1, None, Interval::default()));
            assert_eq!(readings_of(&url, "fast").await, 1);
            assert_eq!(store.known_device_count().await.unwrap(), 3);
        }));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_logged_for_known_devices_bounded_and_ended_at_the_next_start() {
    let pg = Postgres::start();
    let store = open(&pg).await;
    // A client id the store does not know (anyone may connect to an open broker).
    let out = store.commit_reports(&[connection("stranger", T0, T0, connected())]).await.unwrap();
    assert!(out.connections.is_empty());
    // A device's first connection, after its first reading: logged, not numbered.
    store.ingest(&[msg("x", T0 + 2_000, &[("t", 1.0)])]).await.unwrap();
    let out = store.commit_reports(&[connection("x", T0 + 1_500, T0 + 1_500, connected())]).await.unwrap();
    assert_eq!((out.connections.len(), out.events.len()), (1, 0));
    let out =
        store.commit_reports(&[connection("x", T0 + 1_500, T0 + 5_000, ended(Ended::Clean))]).await.unwrap();
    assert_eq!(out.connections[0].1.reason, Some(Ended::Clean));
    // Ended twice (a late report): the first reason stands, and nothing changed.
    let out =
        store.commit_reports(&[connection("x", T0 + 1_500, T0 + 5_500, ended(Ended::Other))]).await.unwrap();
    assert!(out.connections.is_empty());
    // Logged only when it ended (its beginning, told late, changes nothing); a refused sign-in.
    store
        .commit_reports(&[connection("x", T0 + 5_600, T0 + 5_700, ended(Ended::RemoteClose))])
        .await
        .unwrap();
    let late = store.commit_reports(&[connection("x", T0 + 5_600, T0 + 5_600, connected())]).await.unwrap();
    assert!(late.connections.is_empty());
    let refused = ConnectionChange::Refused { address: Some("x".repeat(500)), protocol: 4 };
    store.commit_reports(&[connection("x", T0 + 5_800, T0 + 5_800, refused)]).await.unwrap();
    // A status makes a device known to the reports after it in the same commit.
    let out = store
        .commit_reports(&[
            connection("y", T0, T0, connected()),
            status("y", true, T0, None),
            connection("y", T0 + 1, T0 + 1, connected()),
        ])
        .await
        .unwrap();
    assert_eq!(out.connections.iter().map(|(_, c)| c.connected_at).collect::<Vec<_>>(), [T0 + 1]);
    // Made and ended within one commit: written once, ended, with where it came from.
    let out = store
        .commit_reports(&[
            connection("x", T0 + 5_900, T0 + 5_900, connected()),
            connection(
                "x",
                T0 + 5_900,
                T0 + 5_950,
                ConnectionChange::Ended {
                    address: Some("10.0.0.9:6000".into()),
                    protocol: 5,
                    reason: Ended::KeepaliveTimeout,
                },
            ),
        ])
        .await
        .unwrap();
    assert_eq!(out.connections.len(), 1);
    assert_eq!(out.connections[0].1.address.as_deref(), Some("10.0.0.9:6000"), "its end's");
    store.ingest(&[msg("x", T0 + 8_000, &[("t", 2.0)])]).await.unwrap();
    store.commit_reports(&[connection("x", T0 + 6_000, T0 + 6_000, connected())]).await.unwrap();
    // A crash leaves it open; the next start ends it at the last reading, once.
    let other = open(&pg).await;
    assert_eq!(other.end_connections(None).await.unwrap(), 2, "x's and y's");
    assert_eq!(other.end_connections(None).await.unwrap(), 0);
    let log = other.device_log("x").await.unwrap().connections;
    let seen: Vec<_> =
        log.iter().map(|c| (c.connected_at - T0, c.ended_at.map(|e| e - T0), c.reason)).collect();
    assert_eq!(
        seen,
        [
            (6_000, Some(8_010), Some(Ended::ServerStopped)),
            (5_900, Some(5_950), Some(Ended::KeepaliveTimeout)),
            (5_800, Some(5_800), Some(Ended::AuthFailure)),
            (5_600, Some(5_700), Some(Ended::RemoteClose)),
            (1_500, Some(5_000), Some(Ended::Clean)),
        ]
    );
    assert_eq!(log[2].address.as_ref().map(String::len), Some(MAX_ADDRESS));
    assert_eq!(log[4].address.as_deref(), Some("10.0.0.7:5100"), "kept from when it began");
    // y, known by its status only, ended when it was made (no reading to end it at).
    let y = other.device_log("y").await.unwrap().connections;
    assert_eq!(y[0].ended_at, Some(T0 + 1));
    // A stop ends them at the time given.
    store.commit_reports(&[connection("x", T0 + 9_000, T0 + 9_000, connected())]).await.unwrap();
    assert_eq!(store.end_connections(Some(T0 + 20_000)).await.unwrap(), 1);
    assert_eq!(store.device_log("x").await.unwrap().connections[0].ended_at, Some(T0 + 20_000));
    // Availability over a window the log covers: connected 1.5 s..5 s of 0..10 s is about
    // whatever the shared rule says; none where nothing is logged.
    let shares = store.availability(&["x".into(), "stranger".into()], T0, T0 + 10_000).await.unwrap();
    assert!(shares[0].is_some_and(|s| s > 0.0 && s <= 1.0), "{shares:?}");
    assert_eq!(shares[1], None);

    // At most MAX_LOGGED a device, open ones included; a connection that began before the
    // latest MAX_LOGGED and ends now is not logged again.
    let e0 = T0 + 100_000;
    store.ingest(&[msg("e", e0, &[("t", 1.0)])]).await.unwrap();
    let many: Vec<Report> =
        (0..MAX_LOGGED as i64 + 5).map(|i| connection("e", e0 + i, e0 + i, connected())).collect();
    store.commit_reports(&many).await.unwrap();
    store.commit_reports(&[connection("e", e0, e0 + 200_000, ended(Ended::Clean))]).await.unwrap();
    let e = store.device_log("e").await.unwrap().connections;
    assert_eq!(e.len(), MAX_LOGGED);
    assert_eq!(e.last().map(|c| c.connected_at), Some(e0 + 5));
    assert!(e.iter().all(|c| c.ended_at.is_none()));
    assert_eq!(store.end_connections(Some(e0 + 300_000)).await.unwrap(), MAX_LOGGED as u64);

    let admin = PgBlocking::open(&PgSettings::new(&pg.url)).unwrap();
    let deleted = tokio::task::spawn_blocking(move || admin.delete_device("x").unwrap()).await.unwrap();
    assert!(deleted);
    assert!(store.device_log("x").await.unwrap().connections.is_empty());
    assert_eq!(store.device_log("e").await.unwrap().connections.len(), MAX_LOGGED, "another device's own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_reporting_on_one_device_at_once_lose_nothing() {
    let pg = Postgres::start();
    let (a, b) = (std::sync::Arc::new(open(&pg).await), std::sync::Arc::new(open(&pg).await));
    a.ingest(&[msg("d", T0, &[("t", 1.0)])]).await.unwrap();
    const EACH: i64 = 30;
    let node = |store: std::sync::Arc<PgStore>, name: &'static str| {
        tokio::spawn(async move {
            for i in 0..EACH {
                let value = i.to_string();
                let at = T0 + 1_000 + i;
                // Each node sets its own attribute and a connection of its own, and both
                // send statuses with growing sessions.
                let reports = [
                    attrs("d", at, &[(name, value.as_str())]),
                    connection("d", T0 + 10_000 + i * 2 + i64::from(name == "b"), at, connected()),
                    status("d", i % 2 == 0, at, Some(i as u64)),
                ];
                store.commit_reports(&reports).await.unwrap();
                store
                    .ingest(&[msg("d", T0 + 100_000 + i * 2 + i64::from(name == "b"), &[(name, i as f64)])])
                    .await
                    .unwrap();
            }
        })
    };
    let (ta, tb) = (node(a.clone(), "a"), node(b.clone(), "b"));
    ta.await.unwrap();
    tb.await.unwrap();
    let d = a.device("d").await.unwrap().value.unwrap();
    let attributes: Vec<(String, String)> =
        d.attributes.iter().map(|x| (x.name.clone(), x.value.to_string())).collect();
    let last = (EACH - 1).to_string();
    assert_eq!(
        attributes,
        [("a".to_owned(), last.clone()), ("b".to_owned(), last)],
        "neither node's update lost"
    );
    assert_eq!(d.metric("a").map(|m| m.value), Some((EACH - 1) as f64));
    assert_eq!(d.metric("b").map(|m| m.value), Some((EACH - 1) as f64));
    assert_eq!(d.message_count, 1 + 2 * EACH as u64);
    assert_eq!(d.status.and_then(|s| s.session), Some((EACH - 1) as u64));
    assert_eq!(a.device_log("d").await.unwrap().connections.len(), MAX_LOGGED.min(2 * EACH as usize));
    // The change log is whole and in order.
    let last_seq = a.last_seq().await.unwrap();
    let seqs: Vec<u64> = a.changes_after(0, 10_000).await.unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(seqs, (1..=last_seq).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_statuses_and_attributes_survive_kill_9_of_postgres() {
    let mut pg = Postgres::start();
    let store = std::sync::Arc::new(open(&pg).await);
    let devices: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
    store.ingest(&devices.iter().map(|d| msg(d, T0, &[("t", 1.0)])).collect::<Vec<_>>()).await.unwrap();
    // (device, round) of every commit acknowledged.
    let acked: std::sync::Arc<std::sync::Mutex<Vec<(String, i64)>>> = Default::default();
    let writer = {
        let (store, acked, devices) = (store.clone(), acked.clone(), devices.clone());
        tokio::spawn(async move {
            let mut failures = 0;
            for round in 0..100_000i64 {
                let device = &devices[(round % 5) as usize];
                let value = round.to_string();
                let reports = [
                    status(device, round % 2 == 0, T0 + round, Some(round as u64)),
                    attrs(device, T0 + round, &[("fw", value.as_str())]),
                ];
                match store.commit_reports(&reports).await {
                    Ok(_) => acked.lock().unwrap().push((device.clone(), round)),
                    Err(_) => {
                        failures += 1;
                        if failures == 3 {
                            return;
                        }
                    }
                }
            }
            panic!("the writer never saw the database go");
        })
    };
    while acked.lock().unwrap().len() < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let pg = tokio::task::spawn_blocking(move || {
        pg.kill9();
        pg.restart();
        pg
    })
    .await
    .unwrap();
    writer.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    let store = open(&pg).await;
    for device in &devices {
        // Each device's last acknowledged round (or a later one, committed as the database
        // died before it could say so) is what the device shows.
        let Some(last) = acked.iter().filter(|(d, _)| d == device).map(|(_, r)| *r).max() else { continue };
        let d = store.device(device).await.unwrap().value.unwrap();
        let status = d.status.unwrap();
        let session = status.session.unwrap() as i64;
        assert!(session >= last, "{device}: round {last} was acknowledged, the store shows {session}");
        assert_eq!(status.at, T0 + session);
        let fw = d.attributes.iter().find(|a| a.name == "fw").map(|a| a.value.to_string());
        assert_eq!(fw, Some(session.to_string()), "{device}: its attributes and status were one commit");
        let events = store.device_log(device).await.unwrap().events;
        let rounds = acked.iter().filter(|(d, _)| d == device).count();
        assert!(rounds < 2 || !events.is_empty(), "{device}: its firmware changes are events");
    }
    println!("{} report commits acknowledged before kill -9", acked.len());
}
