//! Dashboards, tags, retained messages and desired state on the PostgreSQL store, through the
//! synchronous traits the server uses. Each behaviour test runs one body on the redb store and
//! on PostgreSQL (a real one, started per test), so the two answer alike; what only a shared
//! database has (two nodes writing at once, kill -9 of the database) runs on PostgreSQL with
//! two [`PgBlocking`]s on one database.

mod common;

use std::sync::{Arc, Barrier};

use common::postgres::Postgres;
use serde_json::json;
use server::store::postgres::{PgBlocking, PgSettings};
use server::store::{
    DesiredOp, DesiredRefusal, DesiredStore, Incoming, MAX_SHADOWS, RedbStore, RetainStore, RetainedCaps,
    RetainedChange, RetainedMessage, RetainedProperties, Store, TagStore,
};
use telemetry::dashboard::{Dashboard, MAX_DASHBOARDS};
use telemetry::desired::Sync;
use telemetry::tags::{Tags, parse_tags};
use telemetry::{
    DashboardStore, DeviceId, LiveEvent, Message, Millis, Rejection, SaveError, TelemetrySource,
};

/// 2025-12-06 05:46:40 UTC.
const T0: Millis = 1_765_000_000_000;

/// What the shared test bodies need of a store besides the traits under test: devices that
/// stored a reading, their tags, and the change log.
trait Node {
    fn register(&self, devices: &[&str], ts: Millis);
    fn tags_of(&self, device: &str) -> Option<Tags>;
    fn changes(&self, after: u64) -> Vec<LiveEvent>;
}

fn message(device: &str, ts: Millis) -> Incoming {
    Incoming {
        message: Message::new(DeviceId::try_from(device).unwrap(), ts, [("t", 1.0)]),
        received: ts + 10,
    }
}

impl Node for RedbStore {
    fn register(&self, devices: &[&str], ts: Millis) {
        let batch: Vec<Incoming> = devices.iter().map(|d| message(d, ts)).collect();
        self.commit(&batch, &[]).unwrap();
    }

    fn tags_of(&self, device: &str) -> Option<Tags> {
        self.device(device).unwrap().value.map(|d| d.tags)
    }

    fn changes(&self, after: u64) -> Vec<LiveEvent> {
        self.changes_since(after, 10_000).unwrap()
    }
}

/// Runs `task` on the store's runtime (where its connections live) and waits for it.
fn on<T: Send + 'static>(store: &PgBlocking, task: impl Future<Output = T> + Send + 'static) -> T {
    let handle = store.spawn(task);
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(handle).unwrap()
}

impl Node for PgBlocking {
    fn register(&self, devices: &[&str], ts: Millis) {
        let batch: Vec<Incoming> = devices.iter().map(|d| message(d, ts)).collect();
        let pg = self.store().clone();
        on(self, async move { pg.ingest(&batch).await.map(drop) }).unwrap();
    }

    fn tags_of(&self, device: &str) -> Option<Tags> {
        // As the read side answers (a device summary), checked against the row itself.
        let summary = self.device(device).unwrap().value.map(|d| d.tags);
        let (pg, device) = (self.store().clone(), device.to_owned());
        assert_eq!(on(self, async move { pg.device_tags(&device).await }).unwrap(), summary);
        summary
    }

    fn changes(&self, after: u64) -> Vec<LiveEvent> {
        let pg = self.store().clone();
        let changes = on(self, async move { pg.changes_after(after, 10_000).await }).unwrap();
        changes.iter().map(|(_, json)| serde_json::from_str(json).unwrap()).collect()
    }
}

fn pg(pg: &Postgres) -> PgBlocking {
    PgBlocking::open(&PgSettings::new(&pg.url)).unwrap()
}

/// A redb store in a temporary folder, opened again by each call (the last one dropped).
fn redb() -> (tempfile::TempDir, impl Fn() -> RedbStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    (dir, move || RedbStore::open(&path).unwrap())
}

/// Two tests running `check` with the same body: on a redb store in a temporary folder, and on
/// a real PostgreSQL.
macro_rules! on_both_stores {
    ($check:ident, $on_redb:ident, $on_postgres:ident) => {
        #[test]
        fn $on_redb() {
            let (_dir, open) = redb();
            $check(open);
        }

        #[test]
        fn $on_postgres() {
            let db = Postgres::start();
            $check(|| pg(&db));
        }
    };
}

// --- Dashboards -------------------------------------------------------------------------

fn named(name: &str) -> Dashboard {
    Dashboard { id: "ignored".into(), name: name.into(), ..Dashboard::starter() }
}

fn dashboard_names(store: &impl DashboardStore) -> Vec<String> {
    store.dashboards().unwrap().into_iter().map(|d| d.name).collect()
}

fn check_dashboards<S: DashboardStore>(open: impl Fn() -> S) {
    let store = open();
    assert_eq!(dashboard_names(&store), ["Overview"], "a new store has the starter dashboard");
    let zebra = store.create_dashboard(named("Zebra")).unwrap();
    assert!(zebra.id.starts_with("zebra-") && zebra.id != "ignored", "an id from its name: {}", zebra.id);
    assert!(zebra.updated > 0, "stamped");
    let apple = store.create_dashboard(named("apple")).unwrap();
    assert_eq!(dashboard_names(&store), ["apple", "Overview", "Zebra"], "by name, whatever the case");
    assert_eq!(store.dashboard(&zebra.id).unwrap().as_ref(), Some(&zebra));
    assert_eq!(store.dashboard("nobody").unwrap(), None);

    // Saved against the copy loaded: a second save of the same copy is refused.
    let saved = store.save_dashboard(Dashboard { name: "Zebra 2".into(), ..zebra.clone() }).unwrap();
    assert!(saved.updated > zebra.updated, "a newer stamp");
    assert_eq!(
        store.save_dashboard(Dashboard { name: "Zebra 3".into(), ..zebra.clone() }),
        Err(SaveError::Stale)
    );
    let again = store.save_dashboard(Dashboard { name: "Zebra 3".into(), ..saved.clone() }).unwrap();
    assert!(again.updated > saved.updated, "newer even within the same millisecond");
    assert_eq!(
        store.save_dashboard(Dashboard { id: "nobody".into(), ..named("x") }),
        Err(SaveError::NotFound)
    );

    assert!(store.delete_dashboard(&apple.id).unwrap());
    assert!(!store.delete_dashboard(&apple.id).unwrap(), "nothing to delete");
    assert_eq!(store.save_dashboard(apple), Err(SaveError::NotFound), "deleted meanwhile");
    assert!(store.delete_dashboard("overview").unwrap(), "the starter can be deleted");
    drop(store);

    // Opened again: what was saved, and the starter is not made again.
    let store = open();
    assert_eq!(store.dashboards().unwrap(), [again]);
    for i in 1..MAX_DASHBOARDS {
        store.create_dashboard(named(&format!("d{i}"))).unwrap();
    }
    assert_eq!(store.create_dashboard(named("one too many")), Err(SaveError::Full));
    assert_eq!(store.dashboards().unwrap().len(), MAX_DASHBOARDS);
}

on_both_stores!(
    check_dashboards,
    dashboards_are_saved_against_the_copy_loaded_and_capped_on_redb,
    dashboards_are_saved_against_the_copy_loaded_and_capped_on_postgres
);

/// Two nodes saving the same loaded copy at once: one wins, the other is told to reload.
/// Two nodes creating at once near the cap: together they stop at it.
#[test]
fn two_nodes_saving_or_creating_at_once_keep_the_rules() {
    let db = Postgres::start();
    let nodes = [Arc::new(pg(&db)), Arc::new(pg(&db))];
    for round in 0..20 {
        let loaded = nodes[0].dashboard("overview").unwrap().unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let saves: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let (node, barrier) = (node.clone(), barrier.clone());
                let copy = Dashboard { name: format!("round {round} node {i}"), ..loaded.clone() };
                std::thread::spawn(move || {
                    barrier.wait();
                    node.save_dashboard(copy)
                })
            })
            .collect();
        let results: Vec<_> = saves.into_iter().map(|t| t.join().unwrap()).collect();
        let won: Vec<&Dashboard> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "round {round}: {results:?}");
        assert!(results.contains(&Err(SaveError::Stale)), "round {round}: {results:?}");
        assert_eq!(nodes[1].dashboard("overview").unwrap().as_ref(), Some(won[0]), "what both nodes read");
    }
    // 21 held (the starter and 20 more); both nodes create until refused.
    for i in 0..20 {
        nodes[0].create_dashboard(named(&format!("d{i}"))).unwrap();
    }
    let barrier = Arc::new(Barrier::new(2));
    let creators: Vec<_> = nodes
        .iter()
        .map(|node| {
            let (node, barrier) = (node.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut made = 0;
                while node.create_dashboard(named("racer")).is_ok() {
                    made += 1;
                }
                made
            })
        })
        .collect();
    let made: usize = creators.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(made, MAX_DASHBOARDS - 21);
    assert_eq!(nodes[1].dashboards().unwrap().len(), MAX_DASHBOARDS);
}

// --- Tags ---------------------------------------------------------------------------------

fn check_tags<S: TagStore + Node>(open: impl Fn() -> S) {
    let site = parse_tags("site=greenhouse floor=2").unwrap();
    let barn = parse_tags("site=barn").unwrap();
    let store = open();
    store.register(&["a", "b"], T0);
    let out = store
        .put_tags(
            &[("a".into(), site.clone()), ("nobody".into(), site.clone()), ("a".into(), barn.clone())],
            T0 + 5,
        )
        .unwrap();
    let first = LiveEvent::Tags { seq: 3, device: "a".into(), tags: site.clone(), at: T0 + 5 };
    assert_eq!(
        out.events,
        std::slice::from_ref(&first),
        "an unknown device is left out; a device's first change wins"
    );
    assert_eq!(out.wire.len(), 1);
    assert_eq!(serde_json::from_str::<LiveEvent>(&out.wire[0]).unwrap(), first, "the wire is the event");
    assert!(store.put_tags(&[("a".into(), site.clone())], T0 + 6).unwrap().events.is_empty(), "no change");
    assert!(store.put_tags(&[], T0 + 6).unwrap().events.is_empty());
    // Unchanged first, then changed: the change counts.
    let out = store
        .put_tags(
            &[("a".into(), site.clone()), ("b".into(), barn.clone()), ("a".into(), Tags::new())],
            T0 + 7,
        )
        .unwrap();
    assert_eq!(
        out.events,
        [
            LiveEvent::Tags { seq: 4, device: "b".into(), tags: barn.clone(), at: T0 + 7 },
            LiveEvent::Tags { seq: 5, device: "a".into(), tags: Tags::new(), at: T0 + 7 },
        ]
    );
    let mut expected = vec![first];
    expected.extend(out.events);
    assert_eq!(store.changes(2), expected, "in the change log, numbered after the readings");
    drop(store);
    let store = open();
    assert_eq!(store.tags_of("a"), Some(Tags::new()));
    assert_eq!(store.tags_of("b"), Some(barn));
    assert_eq!(store.tags_of("nobody"), None);
}

on_both_stores!(check_tags, tags_are_numbered_changes_on_redb, tags_are_numbered_changes_on_postgres);

/// Tags changing while readings of the same devices come in on another node: the two take
/// their locks in the same order (no deadlock, no failure), the change log stays gapless, and
/// each device's latest change is what its row says.
#[test]
fn tags_and_readings_of_the_same_devices_from_two_nodes_at_once() {
    let db = Postgres::start();
    let devices = ["a", "b", "c", "d"];
    let reader = pg(&db);
    reader.register(&devices, T0);
    let ingest = {
        let node = pg(&db);
        std::thread::spawn(move || {
            for i in 1..=200 {
                node.register(&["d", "c", "b", "a"], T0 + i * 1000);
            }
        })
    };
    let tagger = pg(&db);
    let mut tagged = 0;
    for i in 0..200 {
        let tags = parse_tags(&format!("round={i}")).unwrap();
        let batch: Vec<(String, Tags)> = devices.iter().map(|d| ((*d).to_owned(), tags.clone())).collect();
        tagged += tagger.put_tags(&batch, T0 + i).unwrap().events.len();
    }
    ingest.join().unwrap();
    assert_eq!(tagged, 800);
    let changes = reader.changes(0);
    assert_eq!(changes.len(), 4 + 800 + 800);
    for (n, change) in changes.iter().enumerate() {
        assert_eq!(change.seq(), Some(n as u64 + 1), "gapless and in order");
    }
    for device in devices {
        assert_eq!(reader.tags_of(device).unwrap()["round"], "199");
        let last = changes.iter().rev().find(|c| c.device() == Some(device)).unwrap().seq().unwrap();
        let pg = reader.store().clone();
        let counts = on(&reader, async move { pg.device_counts(device).await }).unwrap().unwrap();
        assert_eq!(counts.last_change, last, "{device}'s latest change");
    }
}

// --- Retained messages --------------------------------------------------------------------

fn retained_message(topic: &str, owner: &str, payload: &[u8]) -> RetainedMessage {
    RetainedMessage {
        topic: topic.into(),
        owner: owner.into(),
        payload: payload.to_vec(),
        qos: 1,
        at: 5,
        expires: None,
        properties: RetainedProperties::default(),
    }
}

fn sorted(mut messages: Vec<RetainedMessage>) -> Vec<RetainedMessage> {
    messages.sort_by(|a, b| a.topic.cmp(&b.topic));
    messages
}

fn check_retained<S: RetainStore>(open: impl Fn() -> S) {
    let mut v5 = retained_message("app/device/d1/attributes", "d1", b"{\"fw\":\"1.0\"}");
    v5.expires = Some(60_005);
    v5.properties = RetainedProperties {
        utf8: true,
        content_type: Some("application/json".into()),
        response_topic: Some("reply/here".into()),
        correlation_data: Some(vec![0, 159, 255]),
        user: vec![("k".into(), "v".into()), ("k".into(), "second".into())],
    };
    let store = open();
    assert!(store.retained().unwrap().is_empty());
    store.put_retained(&[]).unwrap();
    store.put_retained(&[RetainedChange::Clear("nothing/here".into())]).unwrap();
    store
        .put_retained(&[
            RetainedChange::Set(retained_message("app/device/d1/status", "d1", b"online")),
            RetainedChange::Set(retained_message("other/topic", "c1", &[0, 1, 2, 255])),
            RetainedChange::Set(v5.clone()),
        ])
        .unwrap();
    // In order: a later change to the same topic wins.
    store
        .put_retained(&[
            RetainedChange::Set(retained_message("app/device/d1/status", "d1", b"offline")),
            RetainedChange::Clear("other/topic".into()),
            RetainedChange::Set(retained_message("other/topic", "c1", b"again")),
            RetainedChange::Clear("other/topic".into()),
            RetainedChange::Set(retained_message("last/wins", "c1", b"1")),
            RetainedChange::Set(retained_message("last/wins", "c1", b"2")),
        ])
        .unwrap();
    drop(store);
    let store = open();
    assert_eq!(
        sorted(store.retained().unwrap()),
        [
            v5,
            retained_message("app/device/d1/status", "d1", b"offline"),
            retained_message("last/wins", "c1", b"2")
        ]
    );
}

on_both_stores!(
    check_retained,
    retained_messages_are_set_replaced_and_cleared_in_order_on_redb,
    retained_messages_are_set_replaced_and_cleared_in_order_on_postgres
);

const CAPS: RetainedCaps = RetainedCaps { per_owner: 2, bytes_per_owner: 10, total: 3, total_bytes: 100 };

fn set(topic: &str, owner: &str, payload: &str) -> RetainedChange {
    RetainedChange::Set(retained_message(topic, owner, payload.as_bytes()))
}

/// The caps checked at commit count as the broker's memory does (ingest/retained.rs's
/// `caps_count_new_topics_and_bytes_per_owner_and_in_all`, the same steps and answers).
#[test]
fn the_commit_checks_the_retained_caps_against_the_database() {
    let db = Postgres::start();
    let node = pg(&db);
    let put = |changes: Vec<RetainedChange>| {
        let pg = node.store().clone();
        on(&node, async move { pg.put_retained(&changes, Some(&CAPS)).await }).unwrap()
    };
    assert_eq!(
        put(vec![
            set("app/device/a/status", "a", "online"),
            set("app/device/a/x", "a", "1234"),
            set("app/device/a/y", "a", "1"),
        ]),
        [Ok(()), Ok(()), Err(Rejection::TooManyRetained(2))]
    );
    // Replacing takes no new place, only the bytes it adds.
    assert_eq!(put(vec![set("app/device/a/x", "a", "12")]), [Ok(())]);
    assert_eq!(put(vec![set("app/device/a/x", "a", "123456")]), [Err(Rejection::RetainedTooLarge(10))]);
    assert_eq!(put(vec![set("app/device/a/x", "a", "1234")]), [Ok(())]);
    // Other owners have their own; the total is shared. A clear gives its place back, within
    // the same commit too.
    assert_eq!(
        put(vec![
            set("app/device/b/status", "b", "online"),
            set("app/device/c/status", "c", "online"),
            RetainedChange::Clear("app/device/a/x".into()),
            set("app/device/c/status", "c", "online"),
            set("other/topic", "client", "x"),
        ]),
        [Ok(()), Err(Rejection::RetainedFull), Ok(()), Ok(()), Err(Rejection::RetainedFull)]
    );
    let held: Vec<(String, Vec<u8>)> =
        sorted(node.retained().unwrap()).into_iter().map(|m| (m.topic, m.payload)).collect();
    assert_eq!(
        held,
        [
            ("app/device/a/status".to_owned(), b"online".to_vec()),
            ("app/device/b/status".to_owned(), b"online".to_vec()),
            ("app/device/c/status".to_owned(), b"online".to_vec()),
        ],
        "what was refused was not written"
    );
    // Without caps (the trait's writes, whose caller checked) nothing is refused, and the
    // counters follow: one place is free after two clears and one set.
    node.put_retained(&[
        RetainedChange::Clear("app/device/b/status".into()),
        RetainedChange::Clear("app/device/c/status".into()),
        set("x/1", "client", "1"),
    ])
    .unwrap();
    assert_eq!(
        put(vec![set("x/2", "c2", "2"), set("x/3", "c3", "3")]),
        [Ok(()), Err(Rejection::RetainedFull)]
    );
}

/// Nodes each checked a publish against their own memory; the database holds them to the
/// caps together.
#[test]
fn two_nodes_retaining_at_once_stop_at_the_caps_together() {
    let db = Postgres::start();
    let caps = RetainedCaps { per_owner: 25, bytes_per_owner: 1_000, total: 40, total_bytes: 1_000 };
    let nodes = [Arc::new(pg(&db)), Arc::new(pg(&db))];
    let barrier = Arc::new(Barrier::new(2));
    let writers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(n, node)| {
            let (node, barrier) = (node.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut kept = 0;
                for i in 0..30 {
                    // One owner from both nodes, and one owner per node.
                    let changes = vec![
                        set(&format!("shared/{n}/{i}"), "shared", "x"),
                        set(&format!("own/{n}/{i}"), &format!("own{n}"), "y"),
                    ];
                    let pg = node.store().clone();
                    let fates =
                        on(&node, async move { pg.put_retained(&changes, Some(&caps)).await }).unwrap();
                    kept += fates.iter().filter(|f| f.is_ok()).count();
                }
                kept
            })
        })
        .collect();
    let kept: usize = writers.into_iter().map(|t| t.join().unwrap()).sum();
    let held = nodes[0].retained().unwrap();
    assert_eq!((kept, held.len()), (40, 40), "the total, not 40 per node");
    assert!(held.iter().filter(|m| m.owner == "shared").count() <= 25, "the shared owner's cap");
}

// --- Desired state ------------------------------------------------------------------------

fn patch(device: &str, patch: serde_json::Value, if_match: Option<u64>) -> DesiredOp {
    DesiredOp::Patch { device: device.into(), patch, if_match, by: "ann".into() }
}

fn reported(device: &str, v: u64, state: serde_json::Value) -> DesiredOp {
    DesiredOp::Reported { device: device.into(), v, state: state.as_object().unwrap().clone() }
}

fn check_desired<S: DesiredStore + Node>(open: impl Fn() -> S) {
    let store = open();
    assert_eq!(store.shadow("d1").unwrap(), None);
    let set = store
        .apply_desired(&patch("d1", json!({"interval_s": 30, "ratio": 0.1}), Some(0)), T0 + 5_000)
        .unwrap();
    let shadow = set.answer.unwrap();
    assert_eq!(
        (shadow.v, shadow.updated_by.as_deref(), shadow.updated_at),
        (1, Some("ann"), Some(T0 + 5_000))
    );
    assert!(set.desired_changed);
    assert_eq!(store.changes(0), set.outcome.events, "in the change log");
    assert!(matches!(&set.outcome.events[..], [LiveEvent::Desired { seq: 1, at, .. }] if *at == T0 + 5_000));
    let stale = store.apply_desired(&patch("d1", json!({"relay": true}), Some(0)), T0 + 6_000).unwrap();
    assert_eq!(stale.answer, Err(DesiredRefusal::Stale { current: 1 }));
    assert!(stale.outcome.events.is_empty());
    let same = store.apply_desired(&patch("d1", json!({"interval_s": 30}), None), T0 + 6_000).unwrap();
    assert!(!same.desired_changed && same.outcome.events.is_empty(), "no change, no version");
    assert_eq!(same.answer.unwrap().v, 1);
    let report = reported("d1", 1, json!({"interval_s": 30, "ratio": 0.1}));
    let r = store.apply_desired(&report, T0 + 7_000).unwrap();
    assert_eq!(r.answer.unwrap().sync(), Sync::InSync);
    assert!(!r.desired_changed);
    assert!(store.apply_desired(&report, T0 + 8_000).unwrap().outcome.events.is_empty(), "the same report");
    let removed = store.apply_desired(&patch("d1", json!({"ratio": null}), Some(1)), T0 + 9_000).unwrap();
    assert_eq!(removed.answer.as_ref().unwrap().v, 2);
    assert_eq!(removed.answer.unwrap().sync(), Sync::Pending);
    // A report alone makes a shadow at version 0.
    let first = store.apply_desired(&reported("d2", 0, json!({"relay": false})), T0 + 9_500).unwrap();
    assert_eq!(first.answer.unwrap().v, 0);
    assert_eq!(store.changes(0).len(), 4);
    drop(store);

    let store = open();
    let shadow = store.shadow("d1").unwrap().unwrap();
    assert_eq!((shadow.v, shadow.reported.as_ref().map(|r| r.at)), (2, Some(T0 + 7_000)));
    assert_eq!(shadow.state, *json!({"interval_s": 30}).as_object().unwrap());
    assert_eq!(store.shadow("d2").unwrap().unwrap().reported.unwrap().state["relay"], false);
    let big = json!({"s": "x".repeat(5000)});
    let refused = store.apply_desired(&patch("d1", big, None), T0 + 10_000).unwrap();
    assert!(matches!(refused.answer, Err(DesiredRefusal::Invalid(_))));
    assert_eq!(store.shadow("d1").unwrap().unwrap().v, 2, "nothing stored");
    assert_eq!(store.tags_of("d1"), None, "desired state makes no device record");
}

on_both_stores!(
    check_desired,
    desired_state_is_versioned_and_numbered_on_redb,
    desired_state_is_versioned_and_numbered_on_postgres
);

/// Two nodes patching one device at once, each against the version it read: every version is
/// handed out once, each accepted patch was made against the version before it, and every
/// refused one is told a newer version. Then both make one new device's first shadow at once.
#[test]
fn two_nodes_patching_at_once_never_both_win_a_version() {
    let db = Postgres::start();
    let nodes = [Arc::new(pg(&db)), Arc::new(pg(&db))];
    let barrier = Arc::new(Barrier::new(2));
    let writers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(n, node)| {
            let (node, barrier) = (node.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let (mut won, mut stale) = (Vec::new(), 0);
                for i in 0..60 {
                    let seen = node.shadow("d1").unwrap().map_or(0, |s| s.v);
                    let op = patch("d1", json!({ format!("node{n}"): i }), Some(seen));
                    match node.apply_desired(&op, T0 + i).unwrap().answer {
                        Ok(shadow) => {
                            assert_eq!(shadow.v, seen + 1, "made against the version before");
                            won.push(shadow.v);
                        }
                        Err(DesiredRefusal::Stale { current }) => {
                            assert!(current > seen, "refused for a newer version");
                            stale += 1;
                        }
                        Err(other) => panic!("{other:?}"),
                    }
                }
                (won, stale)
            })
        })
        .collect();
    let mut versions = Vec::new();
    let mut stale = 0;
    for writer in writers {
        let (won, refused) = writer.join().unwrap();
        versions.extend(won);
        stale += refused;
    }
    versions.sort_unstable();
    let last = nodes[1].shadow("d1").unwrap().unwrap().v;
    assert_eq!(versions, (1..=last).collect::<Vec<u64>>(), "each version won once");
    assert_eq!(versions.len() + stale, 120);
    println!("{} patches accepted, {stale} refused as stale", versions.len());
    let logged: Vec<u64> = nodes[0]
        .changes(0)
        .into_iter()
        .map(|c| match c {
            LiveEvent::Desired { shadow, .. } => shadow.v,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(logged, versions, "one change per version, in order");

    let barrier = Arc::new(Barrier::new(2));
    let firsts: Vec<_> = nodes
        .iter()
        .map(|node| {
            let (node, barrier) = (node.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                node.apply_desired(&patch("d2", json!({"relay": true}), Some(0)), T0).unwrap().answer
            })
        })
        .collect();
    let answers: Vec<_> = firsts.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 1, "{answers:?}");
    assert!(answers.contains(&Err(DesiredRefusal::Stale { current: 1 })));
}

/// At the maximum, devices that have a shadow still change it; a new one is refused and
/// nothing of it is stored.
#[test]
fn at_the_maximum_only_devices_that_have_desired_state_change_it() {
    let db = Postgres::start();
    let node = pg(&db);
    node.apply_desired(&patch("d0", json!({"relay": true}), None), T0 + 1_000).unwrap().answer.unwrap();
    let max = i64::try_from(MAX_SHADOWS).unwrap();
    let sql = format!(
        "INSERT INTO shadows (device, doc) \
         SELECT 'filler-' || i, jsonb_build_object('device', 'filler-' || i, 'v', 0, 'state', '{{}}'::jsonb) \
         FROM generate_series(1, {max} - 1) AS i; \
         UPDATE counters SET value = value + {max} - 1 WHERE name = 'shadows';"
    );
    let url = db.url.clone();
    on(&node, async move {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.batch_execute(&sql).await.unwrap();
    });
    assert!(node.shadow("filler-7").unwrap().is_some(), "the fillers read as shadows");
    let report = |device: &str| reported(device, 1, json!({"relay": true}));
    let new = node.apply_desired(&report("d-new"), T0 + 2_000).unwrap();
    assert_eq!(new.answer, Err(DesiredRefusal::Full(MAX_SHADOWS)));
    assert!(new.outcome.events.is_empty() && node.shadow("d-new").unwrap().is_none(), "nothing stored");
    let known = node.apply_desired(&report("d0"), T0 + 2_000).unwrap();
    assert!(known.answer.is_ok() && known.outcome.events.len() == 1, "a known device still reports");
}

/// Desired-state changes acknowledged before a kill -9 of the database are there after it
/// restarts, each with its change.
#[test]
fn acknowledged_desired_state_survives_kill_9_of_postgres() {
    let mut db = Postgres::start();
    let node = Arc::new(pg(&db));
    let acked = Arc::new(std::sync::Mutex::new(0u64));
    let writer = {
        let (node, acked) = (node.clone(), acked.clone());
        // Until the first failure: after it, what the database holds may be one version
        // past what was acknowledged.
        std::thread::spawn(move || {
            for i in 0..100_000u64 {
                let v = *acked.lock().unwrap();
                match node.apply_desired(&patch("d1", json!({ "n": i }), Some(v)), T0) {
                    Ok(applied) => *acked.lock().unwrap() = applied.answer.unwrap().v,
                    Err(_) => return,
                }
            }
            panic!("the writer never saw the database go");
        })
    };
    while *acked.lock().unwrap() < 50 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    db.kill9();
    db.restart();
    writer.join().unwrap();
    let acked = *acked.lock().unwrap();
    drop(node);
    let node = pg(&db);
    let shadow = node.shadow("d1").unwrap().unwrap();
    // At most the one write in flight at the kill was committed without its answer.
    assert!(shadow.v == acked || shadow.v == acked + 1, "acknowledged {acked}, stored {}", shadow.v);
    assert_eq!(shadow.state["n"], shadow.v - 1, "the state of its version");
    let versions: Vec<u64> = node
        .changes(0)
        .into_iter()
        .map(|c| match c {
            LiveEvent::Desired { shadow, .. } => shadow.v,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(versions, (1..=shadow.v).collect::<Vec<u64>>(), "every version's change");
    println!("{acked} desired changes acknowledged before kill -9, {} stored after recovery", shadow.v);
}
