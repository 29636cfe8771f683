//! The store's behaviour through its traits: commits, redeliveries, the registry, pruning,
//! raw points, the change log, dashboards, reopening, and what a failure tells the caller.

use telemetry::dashboard::{Dashboard, MAX_DASHBOARDS};
use telemetry::{
    DashboardStore, DeviceAdmin, DeviceId, DeviceStatus, LiveEvent, Message, Millis, SaveError, SourceError,
    TelemetrySource,
};

use super::super::api::{Incoming, Pruned, Report, StatusReport, Store};
use super::super::error::StoreError;
use super::super::retention::Horizons;
use super::RedbStore;

pub(super) fn msg(device: &str, ts: Millis, values: &[(&str, f64)]) -> Incoming {
    Incoming {
        message: Message::new(DeviceId::try_from(device).unwrap(), ts, values.iter().copied()),
        received: ts + 10,
    }
}

#[test]
fn stores_registers_and_reads_back() {
    let store = RedbStore::in_memory().unwrap();
    let out = store
        .commit(
            &[
                msg("a", 1_000, &[("temperature", 20.0), ("humidity", 50.0)]),
                msg("b", 1_500, &[("temperature", 30.0)]),
            ],
            &[],
        )
        .unwrap();
    assert_eq!((out.stored, out.duplicates, out.fresh_messages), (3, 0, 2));
    assert_eq!(out.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), [Some(1), Some(2)]);
    store.commit(&[msg("a", 2_000, &[("temperature", 21.0)])], &[]).unwrap();

    let devices = store.devices().unwrap().value;
    assert_eq!(devices.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    let a = &devices[0];
    assert_eq!((a.first_seen, a.last_seen, a.message_count), (1_010, 2_010, 2));
    assert_eq!(a.metric("temperature").map(|m| (m.value, m.ts)), Some((21.0, 2_000)));
    assert_eq!(a.metric("humidity").map(|m| (m.value, m.ts)), Some((50.0, 1_000)));

    let h = store.history("a", "temperature", 0, 10_000, 100).unwrap();
    assert_eq!(h.buckets.iter().map(|b| b.avg).collect::<Vec<_>>(), [20.0, 21.0]);
    assert!(store.history("a", "nope", 0, 10_000, 100).unwrap().buckets.is_empty());
    assert!(store.history("zzz", "temperature", 0, 10_000, 100).unwrap().buckets.is_empty());
}

#[test]
fn redelivery_is_stored_once() {
    let store = RedbStore::in_memory().unwrap();
    let m = msg("a", 1_000, &[("t", 1.0), ("h", 2.0)]);
    store.commit(std::slice::from_ref(&m), &[]).unwrap();
    let again = store.commit(&[m.clone(), m], &[]).unwrap();
    assert_eq!((again.stored, again.duplicates, again.fresh_messages), (0, 4, 0));
    assert!(again.events.is_empty(), "a redelivery is not a change");
    assert_eq!(store.last_seq().unwrap(), 1);
    assert_eq!(store.point_count().unwrap(), 2);
    assert_eq!(store.device("a").unwrap().value.unwrap().message_count, 1);
}

#[test]
fn late_readings_do_not_replace_the_latest_value() {
    let store = RedbStore::in_memory().unwrap();
    store.commit(&[msg("a", 5_000, &[("t", 5.0)])], &[]).unwrap();
    store.commit(&[msg("a", 1_000, &[("t", 1.0)])], &[]).unwrap();
    let a = store.device("a").unwrap().value.unwrap();
    assert_eq!(a.metric("t").map(|m| m.value), Some(5.0));
    assert_eq!(store.point_count().unwrap(), 2);
}

#[test]
fn status_is_recorded_but_does_not_register() {
    let store = RedbStore::in_memory().unwrap();
    let id = DeviceId::try_from("x").unwrap();
    store
        .commit(&[], &[StatusReport { device: id.clone(), online: true, at: 100, session: None }.into()])
        .unwrap();
    assert!(store.devices().unwrap().value.is_empty());
    store.commit(&[msg("x", 200, &[("t", 1.0)])], &[]).unwrap();
    store.commit(&[], &[StatusReport { device: id, online: false, at: 300, session: None }.into()]).unwrap();
    let x = store.device("x").unwrap().value.unwrap();
    assert_eq!(x.status, Some(DeviceStatus { online: false, at: 300, session: None }));
}

#[test]
fn a_will_from_an_older_session_is_ignored_and_stays_so_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let status = |online, at, session| -> Report {
        StatusReport { device: DeviceId::try_from("x").unwrap(), online, at, session }.into()
    };
    let seen = |store: &RedbStore| store.device("x").unwrap().value.unwrap().status.unwrap();
    {
        let store = RedbStore::open(&path).unwrap();
        store.commit(&[msg("x", 100, &[("t", 1.0)])], &[status(true, 200, Some(16))]).unwrap();
        store.commit(&[], &[status(true, 300, Some(17))]).unwrap();
        // Session 16's will, delayed past session 17's connection: no change, no event.
        let out = store.commit(&[], &[status(false, 400, Some(16))]).unwrap();
        assert_eq!((out.stale_wills, out.events.len()), (1, 0));
        assert_eq!(seen(&store), DeviceStatus { online: true, at: 300, session: Some(17) });
        // A plain status keeps the known session; session 17's own will is taken.
        store.commit(&[], &[status(true, 450, None)]).unwrap();
        assert_eq!(seen(&store).session, Some(17));
        store.commit(&[], &[status(false, 500, Some(15))]).unwrap();
        let out = store.commit(&[], &[status(false, 600, Some(17))]).unwrap();
        assert_eq!((out.stale_wills, out.events.len()), (0, 1));
        assert_eq!(seen(&store), DeviceStatus { online: false, at: 600, session: Some(17) });
        // A device that lost its counter starts over from what it announces (a will numbered
        // before that is no longer told apart: sessions should only grow).
        store.commit(&[], &[status(true, 700, Some(1))]).unwrap();
        store.commit(&[], &[status(false, 800, Some(16))]).unwrap();
        store.commit(&[], &[status(true, 900, Some(2))]).unwrap();
        store.commit(&[], &[status(false, 950, Some(1))]).unwrap();
        // Dropped without a checkpoint: replayed from the change log.
    }
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(seen(&store), DeviceStatus { online: true, at: 900, session: Some(2) });
    let changes = store.changes_since(0, 100).unwrap();
    let wills: Vec<_> = changes
        .iter()
        .filter_map(|e| match e {
            LiveEvent::Status { online: false, session, .. } => Some(*session),
            _ => None,
        })
        .collect();
    assert_eq!(wills, [Some(17), Some(16)], "only the wills taken are changes");
}

#[test]
fn devices_get_names_and_notes_and_can_be_deleted_with_their_history() {
    let store = RedbStore::in_memory().unwrap();
    store.commit(&[msg("a", 1_000, &[("t", 1.0), ("h", 2.0)]), msg("b", 1_000, &[("t", 3.0)])], &[]).unwrap();
    assert!(store.set_device_meta("a", Some("Greenhouse".into()), Some("<b>north</b> wall".into())).unwrap());
    assert!(!store.set_device_meta("zzz", None, None).unwrap());
    let a = store.device("a").unwrap().value.unwrap();
    assert_eq!((a.name.as_deref(), a.note.as_deref()), (Some("Greenhouse"), Some("<b>north</b> wall")));
    // A new reading keeps the name.
    store.commit(&[msg("a", 2_000, &[("t", 5.0)])], &[]).unwrap();
    assert_eq!(store.device("a").unwrap().value.unwrap().label(), "Greenhouse");

    assert!(store.delete_device("a").unwrap());
    assert!(!store.delete_device("a").unwrap());
    assert!(store.device("a").unwrap().value.is_none());
    assert!(store.history("a", "t", 0, 10_000, 10).unwrap().buckets.is_empty());
    assert_eq!(store.point_count().unwrap(), 1, "only b's reading is left");
    // The id can be used again from scratch.
    store.commit(&[msg("a", 3_000, &[("t", 7.0)])], &[]).unwrap();
    let again = store.device("a").unwrap().value.unwrap();
    assert_eq!((again.message_count, again.name), (1, None));
    assert_eq!(store.history("a", "t", 0, 10_000, 10).unwrap().buckets.len(), 1);
}

#[test]
fn pruning_drops_old_readings_and_changes_only() {
    let store = RedbStore::in_memory().unwrap();
    let msgs: Vec<_> = (0..10).map(|i| msg("a", 1_000 * i, &[("t", i as f64), ("h", 1.0)])).collect();
    store.commit(&msgs, &[]).unwrap();
    store.commit(&[msg("b", 9_500, &[("t", 9.5)])], &[]).unwrap();
    store.seal(0).unwrap(); // a registry checkpoint: changes before it may go
    let pruned = store.prune(Horizons::all(5_000)).unwrap();
    // Readings at 0..4 s of two metrics; changes received before 5 s (received = ts + 10).
    assert_eq!(pruned, Pruned { readings: 10, changes: 5, ..Pruned::default() });
    assert_eq!(store.point_count().unwrap(), 11);
    let left = store.points("a", "t", 0, 20_000, None, 100).unwrap();
    assert_eq!(left.first(), Some(&(5_000, 5.0)));
    assert_eq!(left.len(), 5);
    assert_eq!(store.changes_since(0, 100).unwrap().first().and_then(LiveEvent::seq), Some(6));
    assert_eq!(store.prune(Horizons::all(5_000)).unwrap(), Pruned::default(), "nothing left to prune");
    assert!(store.device("a").unwrap().value.is_some(), "the device stays registered");
}

#[test]
fn raw_points_page_by_time() {
    let store = RedbStore::in_memory().unwrap();
    let msgs: Vec<_> = (0..10).map(|i| msg("a", 1_000 + i * 100, &[("t", i as f64)])).collect();
    store.commit(&msgs, &[]).unwrap();
    let first = store.points("a", "t", 1_100, 1_800, None, 3).unwrap();
    assert_eq!(first, [(1_100, 1.0), (1_200, 2.0), (1_300, 3.0)]);
    let next = store.points("a", "t", 1_100, 1_800, Some(1_300), 100).unwrap();
    assert_eq!(next.iter().map(|p| p.0).collect::<Vec<_>>(), [1_400, 1_500, 1_600, 1_700, 1_800]);
    assert!(store.points("a", "nope", 0, 9_999, None, 10).unwrap().is_empty());
}

#[test]
fn attributes_keep_when_they_changed_and_firmware_changes_and_reboots_are_events() {
    use super::super::api::AttributesReport;
    use telemetry::attributes::{AttrValue, EventKind};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let text = |s: &str| AttrValue::Text(s.into());
    let attrs = |at, values: &[(&str, &str)]| {
        let values = values.iter().map(|(k, v)| ((*k).to_owned(), text(v))).collect();
        Report::Attributes(AttributesReport { device: DeviceId::try_from("x").unwrap(), values, at })
    };
    let shown = |store: &RedbStore| -> Vec<(String, String, Millis)> {
        let x = store.device("x").unwrap().value.unwrap();
        x.attributes.into_iter().map(|a| (a.name, a.value.to_string(), a.changed_at)).collect()
    };
    let kinds = |events: &[LiveEvent]| -> Vec<&'static str> {
        events
            .iter()
            .map(|e| match e {
                LiveEvent::Reading { .. } => "reading",
                LiveEvent::Attributes { .. } => "attributes",
                LiveEvent::Event { event, .. } => match event.kind {
                    EventKind::Reboot { .. } => "reboot",
                    EventKind::Attribute { .. } => "fw",
                },
                _ => "other",
            })
            .collect()
    };
    let expected =
        vec![("fw".to_owned(), "1.4.2".to_owned(), 61_010), ("ip".to_owned(), "10.0.0.7".to_owned(), 1_010)];
    {
        let store = RedbStore::open(&path).unwrap();
        let first = [attrs(1_010, &[("fw", "1.4.1"), ("ip", "10.0.0.7")])];
        let out = store.commit(&[msg("x", 1_000, &[("uptime_s", 3_600.0)])], &first).unwrap();
        assert_eq!(kinds(&out.events), ["reading", "attributes"]);
        let same = store.commit(&[], &[attrs(2_010, &[("fw", "1.4.1")])]).unwrap();
        assert!(same.events.is_empty(), "nothing changed");
        // Rebooted onto new firmware.
        let next = [attrs(61_010, &[("fw", "1.4.2")])];
        let out = store.commit(&[msg("x", 61_000, &[("uptime_s", 5.0)])], &next).unwrap();
        assert_eq!(kinds(&out.events), ["reading", "reboot", "attributes", "fw"]);
        let seqs: Vec<u64> = out.events.iter().filter_map(LiveEvent::seq).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "numbered in order: {seqs:?}");
        assert_eq!(shown(&store), expected);
        // Dropped without a checkpoint.
    }
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(shown(&store), expected, "replayed from the change log");
    let log = store.device_log("x").unwrap();
    let texts: Vec<String> = log.events.iter().map(|e| e.text()).collect();
    assert_eq!(texts, ["fw 1.4.1 → 1.4.2", "rebooted (uptime 3600 s → 5 s)"], "newest first");
    assert_eq!(log.events[0].at, 61_010);
    assert_eq!(log.last_seq, store.last_seq().unwrap());
    assert!(store.device_log("nobody").unwrap().events.is_empty());
    assert!(store.delete_device("x").unwrap());
    assert!(store.device_log("x").unwrap().events.is_empty(), "deleted with the device");
}

#[test]
fn changes_are_numbered_and_paged() {
    let store = RedbStore::in_memory().unwrap();
    for i in 0..5 {
        store.commit(&[msg("a", 1_000 + i, &[("t", i as f64)])], &[]).unwrap();
    }
    let id = DeviceId::try_from("a").unwrap();
    store
        .commit(&[], &[StatusReport { device: id, online: false, at: 9_000, session: None }.into()])
        .unwrap();
    assert_eq!(store.last_seq().unwrap(), 6);
    let page = store.changes_since(2, 2).unwrap();
    assert_eq!(page.iter().map(|e| e.seq().unwrap()).collect::<Vec<_>>(), [3, 4]);
    let rest = store.changes_since(4, 100).unwrap();
    assert_eq!(rest.len(), 2);
    assert!(matches!(rest[1], LiveEvent::Status { seq: 6, online: false, .. }));
    assert!(store.changes_since(6, 100).unwrap().is_empty());
}

#[test]
fn dashboards_are_seeded_once_saved_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.redb");
    {
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(
            store.dashboards().unwrap().iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["overview"]
        );
        let mut mine = Dashboard::starter();
        mine.id = "overview".into();
        mine.name = "Mine".into();
        let created = store.create_dashboard(mine).unwrap();
        assert!(created.id.starts_with("mine-") && created.updated > 0, "{}", created.id);
        let overview = store.dashboard("overview").unwrap().unwrap();
        assert_eq!(overview.name, "Overview", "creating never replaces another dashboard");
        let mut edit = created.clone();
        edit.name = "Mine, edited".into();
        let saved = store.save_dashboard(edit.clone()).unwrap();
        assert!(saved.updated > created.updated);
        assert_eq!(
            store.save_dashboard(edit).unwrap_err(),
            SaveError::Stale,
            "a copy older than the stored one"
        );
        let mut gone = saved.clone();
        gone.id = "nope".into();
        assert_eq!(store.save_dashboard(gone).unwrap_err(), SaveError::NotFound);
        assert!(store.delete_dashboard("overview").unwrap());
        assert!(!store.delete_dashboard("overview").unwrap());
    }
    // Reopening does not bring the deleted starter back.
    let store = RedbStore::open(&path).unwrap();
    let all = store.dashboards().unwrap();
    assert_eq!(all.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["Mine, edited"]);
    assert_eq!(store.dashboard(&all[0].id).unwrap().map(|d| d.widgets.len()), Some(3));
    assert_eq!(store.dashboard("nope").unwrap(), None);
}

#[test]
fn the_number_of_dashboards_is_capped() {
    let store = RedbStore::in_memory().unwrap();
    for _ in 1..MAX_DASHBOARDS {
        store.create_dashboard(Dashboard::starter()).unwrap();
    }
    assert_eq!(store.create_dashboard(Dashboard::starter()).unwrap_err(), SaveError::Full);
    assert!(store.delete_dashboard("overview").unwrap());
    assert!(store.create_dashboard(Dashboard::starter()).is_ok(), "a deleted one frees a place");
}

#[test]
fn a_storage_failure_reaches_the_dashboard_as_its_kind_only() {
    let store = RedbStore::in_memory().unwrap();
    // An abandoned write marks the handle; an in-memory file cannot be reopened, so writes stop.
    drop(store.begin_write().unwrap());
    assert_eq!(store.delete_dashboard("overview"), Err(SourceError::Unavailable));
    assert_eq!(
        store.create_dashboard(Dashboard::starter()).unwrap_err(),
        SaveError::Storage(SourceError::Unavailable)
    );
    assert_eq!(store.dashboards().unwrap().len(), 1, "reads go on from the open file");
    let record = serde_json::from_str::<u8>("x").unwrap_err();
    let corrupt = StoreError::CorruptRecord { device: "greenhouse-7".into(), source: record };
    let shown = SourceError::from(corrupt).to_string();
    assert!(!shown.contains("greenhouse-7") && !shown.is_empty(), "{shown}");
}

#[test]
fn a_reading_repeated_within_one_commit_is_stored_once() {
    let store = RedbStore::in_memory().unwrap();
    let out = store
        .commit(
            &[msg("a", 1_000, &[("t", 1.0)]), msg("a", 1_000, &[("t", 9.0)]), msg("a", 2_000, &[("t", 2.0)])],
            &[],
        )
        .unwrap();
    assert_eq!((out.stored, out.duplicates, out.fresh_messages), (2, 1, 2));
    let h = store.history("a", "t", 0, 10_000, 10).unwrap();
    assert_eq!(h.buckets.iter().map(|b| b.last).collect::<Vec<_>>(), [1.0, 2.0], "the first one counts");
}

#[test]
fn survives_reopen_with_series_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/t.redb");
    {
        let store = RedbStore::open(&path).unwrap();
        store.commit(&[msg("a", 1_000, &[("t", 1.0)]), msg("b", 1_000, &[("t", 2.0)])], &[]).unwrap();
    }
    let store = RedbStore::open(&path).unwrap();
    store.commit(&[msg("c", 2_000, &[("t", 3.0)])], &[]).unwrap();
    for (d, v) in [("a", 1.0), ("b", 2.0), ("c", 3.0)] {
        let h = store.history(d, "t", 0, 10_000, 10).unwrap();
        assert_eq!(h.buckets.iter().map(|b| b.last).collect::<Vec<_>>(), [v], "{d}");
    }
}

#[test]
fn expected_intervals_are_learned_set_and_survive_a_crash_and_a_checkpoint() {
    use telemetry::device::{Health, Interval};
    const MIN: Millis = 60_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let arrived = |device: &str, at: Millis| Incoming {
        message: Message::new(DeviceId::try_from(device).unwrap(), at, [("t", 1.0)]),
        received: at,
    };
    let t0 = 1_766_146_880_000;
    let intervals = |store: &RedbStore| {
        let mut all: Vec<(String, Interval)> =
            store.devices().unwrap().value.into_iter().map(|d| (d.id, d.interval)).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    };
    let learned = |ms| Interval { learned: Some(ms), set: None };
    let expected = vec![
        ("fast".to_owned(), learned(10_000)),
        ("set".to_owned(), Interval { learned: Some(10_000), set: Some(60 * MIN) }),
        ("slow".to_owned(), learned(5 * MIN)),
    ];
    {
        let store = RedbStore::open(&path).unwrap();
        for i in 0..6 {
            let batch = [arrived("slow", t0 + i * 5 * MIN), arrived("fast", t0 + i * 10_000)];
            store.commit(&batch, &[]).unwrap();
            store.commit(&[arrived("set", t0 + i * 10_000)], &[]).unwrap();
        }
        // A redelivery is no arrival.
        store.commit(&[arrived("slow", t0 + 25 * MIN)], &[]).unwrap();
        assert!(store.set_expected_interval("set", Some(60 * MIN)).unwrap());
        assert!(!store.set_expected_interval("nobody", Some(60 * MIN)).unwrap());
        assert_eq!(intervals(&store), expected);
        // Dropped without a checkpoint: what it learned is only in the change log.
    }
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(intervals(&store), expected, "replayed from the change log");
    store.seal(t0 + 3_600 * MIN).unwrap();
    drop(store);
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(intervals(&store), expected, "from the checkpointed records");
    let slow = store.device("slow").unwrap().value.unwrap();
    let last = slow.last_seen;
    assert_eq!(slow.health(last + 6 * MIN), Health::Online);
    assert_eq!(slow.health(last + 15 * MIN), Health::Stale);
    let fast = store.device("fast").unwrap().value.unwrap();
    assert_eq!(fast.health(fast.last_seen + 29_000), Health::Online);
    assert_eq!(fast.health(fast.last_seen + 30_000), Health::Stale);
    assert!(store.set_expected_interval("set", None).unwrap());
    assert_eq!(store.device("set").unwrap().value.unwrap().interval, learned(10_000), "back to learning");
}

#[test]
fn connections_are_logged_for_known_devices_ended_at_the_next_start_and_deleted_with_them() {
    use super::super::api::{ConnectionChange, ConnectionReport};
    use telemetry::connections::Ended;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let report = |device: &str, id: Millis, at: Millis, change| -> Report {
        Report::Connection(ConnectionReport { device: DeviceId::try_from(device).unwrap(), id, at, change })
    };
    let connected = || ConnectionChange::Connected { address: Some("10.0.0.7:5100".into()), protocol: 5 };
    let clean = ConnectionChange::Ended { address: None, protocol: 5, reason: Ended::Clean };
    {
        let store = RedbStore::open(&path).unwrap();
        // A client id the store does not know (anyone may connect to an open broker).
        let out = store.commit(&[], &[report("stranger", 1_000, 1_000, connected())]).unwrap();
        assert!(out.connections.is_empty());
        // A device's first connection, committed with its first reading: logged, not numbered.
        let out = store
            .commit(&[msg("x", 2_000, &[("t", 1.0)])], &[report("x", 1_500, 1_500, connected())])
            .unwrap();
        assert_eq!(out.connections.len(), 1);
        assert_eq!(out.events.len(), 1, "only the reading is a change");
        let out = store.commit(&[], &[report("x", 1_500, 5_000, clean)]).unwrap();
        assert_eq!(out.connections[0].1.reason, Some(Ended::Clean));
        store.commit(&[msg("x", 8_000, &[("t", 2.0)])], &[report("x", 6_000, 6_000, connected())]).unwrap();
        // Dropped with that connection open, as a kill -9 leaves it.
    }
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(store.end_connections(None).unwrap(), 1);
    let log = store.device_log("x").unwrap().connections;
    let seen: Vec<_> = log.iter().map(|c| (c.connected_at, c.ended_at, c.reason, c.protocol)).collect();
    assert_eq!(
        seen,
        [(6_000, Some(8_010), Some(Ended::ServerStopped), 5), (1_500, Some(5_000), Some(Ended::Clean), 5)],
        "ended at its last reading"
    );
    assert_eq!(log[1].address.as_deref(), Some("10.0.0.7:5100"), "kept from when it began");
    assert!(store.device_log("stranger").unwrap().connections.is_empty());
    assert!(store.delete_device("x").unwrap());
    assert!(store.device_log("x").unwrap().connections.is_empty());
}
