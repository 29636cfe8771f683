//! The device registry on the PostgreSQL store, against a real PostgreSQL: summaries with
//! latest values, statuses and the session rule for delayed last wills, attributes and the
//! device events they and falling uptimes make, learned and set intervals, names, notes and
//! deletion, the connection log (bounded, ended at the next start). Each behaviour is the same
//! test body on the redb store and on PostgreSQL (the redb store's tests' assertions, with times
//! of this century: the change log keeps real times). Then what only PostgreSQL shows: another
//! node reading the same, two nodes reporting on one device at once, and acknowledged statuses
//! and attributes surviving kill -9 of the database.

mod common;

use std::future::Future;
use std::sync::Arc;

use common::postgres::{Postgres, acknowledged_across_kill_9};
use server::store::postgres::{PgBlocking, PgSettings, PgStore};
use server::store::{
    AttributesReport, CommitOutcome, ConnectionChange, ConnectionReport, Incoming, RedbStore, Report,
    StatusReport, Store,
};
use telemetry::attributes::{AttrValue, EventKind, MAX_DEVICE_EVENTS};
use telemetry::connections::{Ended, MAX_ADDRESS, MAX_LOGGED};
use telemetry::device::{Health, Interval};
use telemetry::source::DeviceLog;
use telemetry::{
    DeviceAdmin, DeviceId, DeviceStatus, DeviceSummary, LiveEvent, Message, Millis, TelemetrySource,
};

/// 2025-12-06 05:46:40 UTC.
const T0: Millis = 1_765_000_000_000;
const MIN: Millis = 60_000;

/// A store the test bodies run on: what the registry answers, through each store's own calls.
trait Registry: DeviceAdmin {
    /// Readings, then reports (on PostgreSQL each in a transaction of its own until the
    /// combined commit carries both).
    fn commit(&self, messages: &[Incoming], reports: &[Report]) -> CommitOutcome;
    fn summaries(&self) -> Vec<DeviceSummary>;
    fn summary(&self, id: &str) -> Option<DeviceSummary>;
    /// The ids of every device the registry holds, sorted.
    fn known(&self) -> Vec<String>;
    fn log(&self, id: &str) -> DeviceLog;
    fn end(&self, at: Option<Millis>) -> u64;
    fn changes(&self) -> Vec<LiveEvent>;
    fn last(&self) -> u64;
    fn shares(&self, ids: &[String], from: Millis, to: Millis) -> Vec<Option<f64>>;
    /// How many readings of metric `t` `device` has.
    fn readings(&self, device: &str) -> usize;
    /// How many of `device`'s minute buckets of metric `t` in the hours after T0 hold readings
    /// (read from the rollups).
    fn buckets(&self, device: &str) -> usize;
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

impl Registry for RedbStore {
    fn commit(&self, messages: &[Incoming], reports: &[Report]) -> CommitOutcome {
        Store::commit(self, messages, reports).unwrap()
    }
    fn summaries(&self) -> Vec<DeviceSummary> {
        self.devices().unwrap().value
    }
    fn summary(&self, id: &str) -> Option<DeviceSummary> {
        self.device(id).unwrap().value
    }
    fn known(&self) -> Vec<String> {
        sorted(self.known_devices().into_iter().map(|d| d.id).collect())
    }
    fn log(&self, id: &str) -> DeviceLog {
        self.device_log(id).unwrap()
    }
    fn end(&self, at: Option<Millis>) -> u64 {
        self.end_connections(at).unwrap()
    }
    fn changes(&self) -> Vec<LiveEvent> {
        self.changes_since(0, 10_000).unwrap()
    }
    fn last(&self) -> u64 {
        self.last_seq().unwrap()
    }
    fn shares(&self, ids: &[String], from: Millis, to: Millis) -> Vec<Option<f64>> {
        self.availability(ids, from, to).unwrap()
    }
    fn readings(&self, device: &str) -> usize {
        self.points(device, "t", 0, Millis::MAX, None, 10_000).unwrap().len()
    }
    fn buckets(&self, device: &str) -> usize {
        self.history(device, "t", T0, T0 + 3 * 3_600_000, 180).unwrap().buckets.len()
    }
}

/// A PostgreSQL node: its async calls run on the store's own runtime.
struct Node(PgBlocking);

impl Node {
    fn open(pg: &Postgres) -> Node {
        Node(PgBlocking::open(&PgSettings::new(&pg.url)).unwrap())
    }

    fn run<T: Send + 'static, F: Future<Output = T> + Send + 'static>(
        &self,
        query: impl FnOnce(Arc<PgStore>) -> F,
    ) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        let task = query(self.0.store().clone());
        self.0.spawn(async move {
            let _ = tx.send(task.await);
        });
        rx.recv().expect("the query ran")
    }
}

impl DeviceAdmin for Node {
    fn set_device_meta(
        &self,
        id: &str,
        name: Option<String>,
        note: Option<String>,
    ) -> Result<bool, telemetry::SourceError> {
        self.0.set_device_meta(id, name, note)
    }
    fn delete_device(&self, id: &str) -> Result<bool, telemetry::SourceError> {
        self.0.delete_device(id)
    }
    fn set_expected_interval(
        &self,
        id: &str,
        interval: Option<Millis>,
    ) -> Result<bool, telemetry::SourceError> {
        self.0.set_expected_interval(id, interval)
    }
}

impl Registry for Node {
    fn commit(&self, messages: &[Incoming], reports: &[Report]) -> CommitOutcome {
        let (messages, reports) = (messages.to_vec(), reports.to_vec());
        self.run(|pg| async move {
            let mut out = pg.ingest(&messages).await.unwrap();
            let more = pg.commit_reports(&reports).await.unwrap();
            out.events.extend(more.events);
            out.wire.extend(more.wire);
            out.stale_wills += more.stale_wills;
            out.connections.extend(more.connections);
            out
        })
    }
    fn summaries(&self) -> Vec<DeviceSummary> {
        self.run(|pg| async move { pg.devices().await.unwrap().value })
    }
    fn summary(&self, id: &str) -> Option<DeviceSummary> {
        let id = id.to_owned();
        self.run(|pg| async move { pg.device(&id).await.unwrap().value })
    }
    fn known(&self) -> Vec<String> {
        sorted(
            self.run(|pg| async move { pg.known_devices().await.unwrap() })
                .into_iter()
                .map(|d| d.id)
                .collect(),
        )
    }
    fn log(&self, id: &str) -> DeviceLog {
        let id = id.to_owned();
        self.run(|pg| async move { pg.device_log(&id).await.unwrap() })
    }
    fn end(&self, at: Option<Millis>) -> u64 {
        self.run(move |pg| async move { pg.end_connections(at).await.unwrap() })
    }
    fn changes(&self) -> Vec<LiveEvent> {
        self.run(|pg| async move { pg.changes_since(0, 10_000).await.unwrap() })
    }
    fn last(&self) -> u64 {
        self.run(|pg| async move { pg.last_seq().await.unwrap() })
    }
    fn shares(&self, ids: &[String], from: Millis, to: Millis) -> Vec<Option<f64>> {
        let ids = ids.to_vec();
        self.run(move |pg| async move { pg.availability(&ids, from, to).await.unwrap() })
    }
    fn readings(&self, device: &str) -> usize {
        let device = device.to_owned();
        self.run(move |pg| async move {
            pg.points(&device, "t", 0, Millis::MAX, None, 10_000).await.unwrap().len()
        })
    }
    fn buckets(&self, device: &str) -> usize {
        let device = device.to_owned();
        self.run(move |pg| async move {
            pg.history(&device, "t", T0, T0 + 3 * 3_600_000, 180).await.unwrap().buckets.len()
        })
    }
}

/// Runs `check` on a redb store, then on a PostgreSQL one (each new), naming which in failures.
fn on_both(check: fn(&str, &dyn Registry)) {
    check("redb", &RedbStore::in_memory().unwrap());
    let pg = Postgres::start();
    check("postgres", &Node::open(&pg));
}

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

async fn open(pg: &Postgres) -> PgStore {
    PgStore::open(&PgSettings::new(&pg.url)).await.unwrap()
}

fn status_of(store: &dyn Registry, device: &str) -> DeviceStatus {
    store.summary(device).unwrap().status.unwrap()
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

#[test]
fn devices_are_listed_with_their_latest_values_and_a_status_alone_does_not_register() {
    on_both(|name, store| {
        let out = store.commit(
            &[
                msg("b", T0 + 500, &[("temperature", 30.0)]),
                msg("a", T0, &[("temperature", 20.0), ("humidity", 50.0)]),
            ],
            &[],
        );
        assert_eq!(out.events.len(), 2, "{name}");
        store.commit(&[msg("a", T0 + 1_000, &[("temperature", 21.0)])], &[]);
        // A late reading does not replace the latest value.
        store.commit(&[msg("a", T0 - 5_000, &[("temperature", 1.0)])], &[]);
        // A status alone makes a record the device cap counts, but does not register.
        store.commit(&[], &[status("x", true, T0, None)]);
        let devices = store.summaries();
        assert_eq!(devices.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["a", "b"], "{name}");
        let a = &devices[0];
        assert_eq!((a.first_seen, a.last_seen, a.message_count), (T0 + 10, T0 + 1_010, 3), "{name}");
        assert_eq!(a.metric("temperature").map(|m| (m.value, m.ts)), Some((21.0, T0 + 1_000)), "{name}");
        assert_eq!(a.metric("humidity").map(|m| (m.value, m.ts)), Some((50.0, T0)), "{name}");
        assert!(store.summary("x").is_none(), "{name}");
        assert!(store.summary("nobody").is_none(), "{name}");
        assert_eq!(store.known(), ["a", "b", "x"], "{name}");
        // Its first reading registers it, its status kept; a later status replaces it.
        store.commit(&[msg("x", T0 + 2_000, &[("t", 1.0)])], &[]);
        assert_eq!(status_of(store, "x"), DeviceStatus { online: true, at: T0, session: None }, "{name}");
        store.commit(&[], &[status("x", false, T0 + 3_000, None)]);
        assert_eq!(
            status_of(store, "x"),
            DeviceStatus { online: false, at: T0 + 3_000, session: None },
            "{name}"
        );
        // A redelivery changes nothing.
        let again = store.commit(&[msg("a", T0 + 1_000, &[("temperature", 21.0)])], &[]);
        assert!(again.events.is_empty(), "{name}");
        assert_eq!(store.summary("a").unwrap().message_count, 3, "{name}");
    });
}

#[test]
fn a_will_from_an_older_session_is_ignored() {
    on_both(|name, store| {
        let s = |online, at, session| [status("x", online, T0 + at, session)];
        store.commit(&[msg("x", T0 + 100, &[("t", 1.0)])], &s(true, 200, Some(16)));
        store.commit(&[], &s(true, 300, Some(17)));
        // Session 16's will, delayed past session 17's connection: no change, no event.
        let out = store.commit(&[], &s(false, 400, Some(16)));
        assert_eq!((out.stale_wills, out.events.len()), (1, 0), "{name}");
        assert_eq!(
            status_of(store, "x"),
            DeviceStatus { online: true, at: T0 + 300, session: Some(17) },
            "{name}"
        );
        // A plain status keeps the known session; session 17's own will is taken.
        store.commit(&[], &s(true, 450, None));
        assert_eq!(status_of(store, "x").session, Some(17), "{name}");
        store.commit(&[], &s(false, 500, Some(15)));
        let out = store.commit(&[], &s(false, 600, Some(17)));
        assert_eq!((out.stale_wills, out.events.len()), (0, 1), "{name}");
        assert_eq!(
            status_of(store, "x"),
            DeviceStatus { online: false, at: T0 + 600, session: Some(17) },
            "{name}"
        );
        // A device that lost its counter starts over from what it announces.
        store.commit(&[], &s(true, 700, Some(1)));
        store.commit(&[], &s(false, 800, Some(16)));
        store.commit(&[], &s(true, 900, Some(2)));
        store.commit(&[], &s(false, 950, Some(1)));
        assert_eq!(
            status_of(store, "x"),
            DeviceStatus { online: true, at: T0 + 900, session: Some(2) },
            "{name}"
        );
        // A session counter past i64 is kept as it is.
        store.commit(&[], &[status("y", true, T0, Some(u64::MAX - 1))]);
        assert_eq!(
            store.commit(&[], &[status("y", false, T0 + 1, Some(u64::MAX - 2))]).stale_wills,
            1,
            "{name}"
        );
        let wills: Vec<_> = store
            .changes()
            .into_iter()
            .filter_map(|e| match e {
                LiveEvent::Status { online: false, session, device, .. } if device == "x" => Some(session),
                _ => None,
            })
            .collect();
        assert_eq!(wills, [Some(17), Some(16)], "{name}: only the wills taken are changes");
    });
}

#[test]
fn attributes_keep_when_they_changed_and_firmware_changes_and_reboots_are_events() {
    on_both(|name, store| {
        let shown = |x: DeviceSummary| -> Vec<(String, String, Millis)> {
            x.attributes.into_iter().map(|a| (a.name, a.value.to_string(), a.changed_at)).collect()
        };
        let first = [attrs("x", T0 + 10, &[("fw", "1.4.1"), ("ip", "10.0.0.7")])];
        let out = store.commit(&[msg("x", T0, &[("uptime_s", 3_600.0)])], &first);
        assert_eq!(kinds(&out.events), ["reading", "attributes"], "{name}");
        assert!(store.commit(&[], &[attrs("x", T0 + 1_010, &[("fw", "1.4.1")])]).events.is_empty(), "{name}");
        // Rebooted onto new firmware: the reading, its reboot, then the attributes and their
        // event, numbered in order.
        let next = [attrs("x", T0 + 60_010, &[("fw", "1.4.2")])];
        let out = store.commit(&[msg("x", T0 + 60_000, &[("uptime_s", 5.0)])], &next);
        assert_eq!(kinds(&out.events), ["reading", "reboot", "attributes", "fw"], "{name}");
        let seqs: Vec<u64> = out.events.iter().filter_map(LiveEvent::seq).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{name}: numbered in order: {seqs:?}");
        assert_eq!(seqs.last().copied(), Some(store.last()), "{name}");
        // The change log holds what was sent live.
        let logged: Vec<LiveEvent> =
            store.changes().into_iter().skip_while(|e| e.seq() < Some(seqs[0])).collect();
        assert_eq!(logged, out.events, "{name}");
        let expected = vec![
            ("fw".to_owned(), "1.4.2".to_owned(), T0 + 60_010),
            ("ip".to_owned(), "10.0.0.7".to_owned(), T0 + 10),
        ];
        assert_eq!(shown(store.summary("x").unwrap()), expected, "{name}");
        let log = store.log("x");
        let texts: Vec<String> = log.events.iter().map(|e| e.text()).collect();
        assert_eq!(texts, ["fw 1.4.1 → 1.4.2", "rebooted (uptime 3600 s → 5 s)"], "{name}: newest first");
        assert_eq!(log.events[0].at, T0 + 60_010, "{name}");
        assert_eq!(log.last_seq, store.last(), "{name}");
        assert!(store.log("nobody").events.is_empty(), "{name}");
        // At most MAX_DEVICE_EVENTS a device, the latest.
        for i in 0..MAX_DEVICE_EVENTS as i64 + 5 {
            let fw = format!("2.0.{i}");
            store.commit(&[], &[attrs("x", T0 + 100_000 + i, &[("fw", fw.as_str())])]);
        }
        let log = store.log("x");
        assert_eq!(log.events.len(), MAX_DEVICE_EVENTS, "{name}");
        let newest = format!("fw 2.0.{} → 2.0.{}", MAX_DEVICE_EVENTS + 3, MAX_DEVICE_EVENTS + 4);
        assert_eq!(log.events[0].text(), newest, "{name}");
        assert!(store.delete_device("x").unwrap(), "{name}");
        assert!(store.log("x").events.is_empty(), "{name}: deleted with the device");
    });
}

#[test]
fn intervals_are_learned_and_set_and_devices_get_names_notes_and_are_deleted_with_their_history() {
    on_both(|name, store| {
        let arrived = |device: &str, at: Millis| Incoming {
            message: Message::new(DeviceId::try_from(device).unwrap(), at, [("t", 1.0)]),
            received: at,
        };
        for i in 0..6 {
            store.commit(&[arrived("slow", T0 + i * 5 * MIN), arrived("fast", T0 + i * 10_000)], &[]);
            store.commit(&[arrived("set", T0 + i * 10_000)], &[]);
        }
        // A redelivery is no arrival.
        store.commit(&[arrived("slow", T0 + 25 * MIN)], &[]);
        assert!(store.set_expected_interval("set", Some(60 * MIN)).unwrap(), "{name}");
        assert!(!store.set_expected_interval("nobody", Some(60 * MIN)).unwrap(), "{name}");
        let learned = |ms| Interval { learned: Some(ms), set: None };
        let intervals: Vec<(String, Interval)> =
            store.summaries().into_iter().map(|d| (d.id, d.interval)).collect();
        assert_eq!(
            intervals,
            [
                ("fast".to_owned(), learned(10_000)),
                ("set".to_owned(), Interval { learned: Some(10_000), set: Some(60 * MIN) }),
                ("slow".to_owned(), learned(5 * MIN)),
            ],
            "{name}"
        );
        let slow = store.summary("slow").unwrap();
        assert_eq!(slow.health(slow.last_seen + 6 * MIN), Health::Online, "{name}");
        assert_eq!(slow.health(slow.last_seen + 15 * MIN), Health::Stale, "{name}");
        assert!(store.set_expected_interval("set", None).unwrap(), "{name}");
        assert_eq!(store.summary("set").unwrap().interval, learned(10_000), "{name}: back to learning");

        // Names and notes, for registered devices only; a new reading keeps them.
        assert!(
            store
                .set_device_meta("fast", Some("Greenhouse".into()), Some("<b>north</b> wall".into()))
                .unwrap()
        );
        assert!(!store.set_device_meta("zzz", None, None).unwrap(), "{name}");
        store.commit(&[arrived("fast", T0 + 3_600_000)], &[status("statusonly", true, T0, None)]);
        assert!(
            !store.set_device_meta("statusonly", Some("n".into()), None).unwrap(),
            "{name}: not registered"
        );
        let fast = store.summary("fast").unwrap();
        assert_eq!((fast.label(), fast.note.as_deref()), ("Greenhouse", Some("<b>north</b> wall")), "{name}");

        // Deleted with its history; the id can be used again from scratch.
        assert!(store.delete_device("fast").unwrap(), "{name}");
        assert!(!store.delete_device("fast").unwrap(), "{name}");
        assert!(store.delete_device("statusonly").unwrap(), "{name}: a record alone is a device to delete");
        assert_eq!(store.known(), ["set", "slow"], "{name}");
        assert_eq!((store.readings("fast"), store.readings("slow")), (0, 6), "{name}");
        assert_eq!((store.buckets("fast"), store.buckets("slow")), (0, 6), "{name}: no history left");
        store.commit(&[arrived("fast", T0 + 7_200_000)], &[]);
        let again = store.summary("fast").unwrap();
        assert_eq!(
            (again.message_count, again.name, again.interval),
            (1, None, Interval::default()),
            "{name}"
        );
        assert_eq!(store.readings("fast"), 1, "{name}");
    });
}

#[test]
fn connections_are_logged_for_known_devices_bounded_and_ended_at_the_next_start() {
    on_both(|name, store| {
        // A client id the store does not know (anyone may connect to an open broker).
        assert!(store.commit(&[], &[connection("stranger", T0, T0, connected())]).connections.is_empty());
        // A device's first connection, committed with its first reading: logged, not numbered.
        let out = store.commit(
            &[msg("x", T0 + 2_000, &[("t", 1.0)])],
            &[connection("x", T0 + 1_500, T0 + 1_500, connected())],
        );
        assert_eq!((out.connections.len(), out.events.len()), (1, 1), "{name}: only the reading is a change");
        let out = store.commit(&[], &[connection("x", T0 + 1_500, T0 + 5_000, ended(Ended::Clean))]);
        assert_eq!(out.connections[0].1.reason, Some(Ended::Clean), "{name}");
        // Ended twice (a late report): the first reason stands, and nothing changed.
        let out = store.commit(&[], &[connection("x", T0 + 1_500, T0 + 5_500, ended(Ended::Other))]);
        assert!(out.connections.is_empty(), "{name}");
        // Logged only when it ended (its beginning, told late, changes nothing); a refused sign-in.
        store.commit(&[], &[connection("x", T0 + 5_600, T0 + 5_700, ended(Ended::RemoteClose))]);
        assert!(
            store.commit(&[], &[connection("x", T0 + 5_600, T0 + 5_600, connected())]).connections.is_empty()
        );
        let refused = ConnectionChange::Refused { address: Some("x".repeat(500)), protocol: 4 };
        store.commit(&[], &[connection("x", T0 + 5_800, T0 + 5_800, refused)]);
        // A status makes a device known to the reports after it in the same commit.
        let out = store.commit(
            &[],
            &[
                connection("y", T0, T0, connected()),
                status("y", true, T0, None),
                connection("y", T0 + 1, T0 + 1, connected()),
            ],
        );
        assert_eq!(
            out.connections.iter().map(|(_, c)| c.connected_at).collect::<Vec<_>>(),
            [T0 + 1],
            "{name}"
        );
        // Made and ended within one commit: written once, ended, as its end tells it.
        let gone = ConnectionChange::Ended {
            address: Some("10.0.0.9:6000".into()),
            protocol: 5,
            reason: Ended::KeepaliveTimeout,
        };
        let out = store.commit(
            &[],
            &[
                connection("x", T0 + 5_900, T0 + 5_900, connected()),
                connection("x", T0 + 5_900, T0 + 5_950, gone),
            ],
        );
        assert_eq!(out.connections.len(), 1, "{name}");
        assert_eq!(out.connections[0].1.address.as_deref(), Some("10.0.0.9:6000"), "{name}");
        store.commit(
            &[msg("x", T0 + 8_000, &[("t", 2.0)])],
            &[connection("x", T0 + 6_000, T0 + 6_000, connected())],
        );
        // A crash leaves it open; the next start ends it at the last reading, once.
        assert_eq!(store.end(None), 2, "{name}: x's and y's");
        assert_eq!(store.end(None), 0, "{name}");
        let log = store.log("x").connections;
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
            ],
            "{name}"
        );
        assert_eq!(log[2].address.as_ref().map(String::len), Some(MAX_ADDRESS), "{name}");
        assert_eq!(log[4].address.as_deref(), Some("10.0.0.7:5100"), "{name}: kept from when it began");
        // y, known by its status only, ended when it was made (no reading to end it at).
        assert_eq!(store.log("y").connections[0].ended_at, Some(T0 + 1), "{name}");
        assert!(store.log("stranger").connections.is_empty(), "{name}");
        // A stop ends them at the time given.
        store.commit(&[], &[connection("x", T0 + 9_000, T0 + 9_000, connected())]);
        assert_eq!(store.end(Some(T0 + 20_000)), 1, "{name}");
        assert_eq!(store.log("x").connections[0].ended_at, Some(T0 + 20_000), "{name}");
        let shares = store.shares(&["x".into(), "stranger".into()], T0, T0 + 10_000);
        assert!(shares[0].is_some_and(|s| s > 0.0 && s < 1.0), "{name}: {shares:?}");
        assert_eq!(shares[1], None, "{name}");

        // At most MAX_LOGGED a device, open ones included; a connection that began before the
        // latest MAX_LOGGED and ends now is not logged again.
        let e0 = T0 + 100_000;
        let many: Vec<Report> =
            (0..MAX_LOGGED as i64 + 5).map(|i| connection("e", e0 + i, e0 + i, connected())).collect();
        store.commit(&[msg("e", e0, &[("t", 1.0)])], &many);
        store.commit(&[], &[connection("e", e0, e0 + 200_000, ended(Ended::Clean))]);
        let e = store.log("e").connections;
        assert_eq!(e.len(), MAX_LOGGED, "{name}");
        assert_eq!(e.last().map(|c| c.connected_at), Some(e0 + 5), "{name}");
        assert!(e.iter().all(|c| c.ended_at.is_none()), "{name}");
        assert_eq!(store.end(Some(e0 + 300_000)), MAX_LOGGED as u64, "{name}");
        assert!(store.delete_device("x").unwrap(), "{name}");
        assert!(store.log("x").connections.is_empty(), "{name}");
        assert_eq!(store.log("e").connections.len(), MAX_LOGGED, "{name}: another device's own");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_reads_what_one_wrote_and_counts_the_same_devices() {
    let pg = Postgres::start();
    let (a, b) = (open(&pg).await, open(&pg).await);
    a.ingest(&[msg("d", T0, &[("t", 1.0)])]).await.unwrap();
    a.commit_reports(&[
        status("d", true, T0, Some(3)),
        attrs("d", T0, &[("fw", "1")]),
        status("s", true, T0, None),
    ])
    .await
    .unwrap();
    assert!(b.set_device_meta("d", Some("Door"), None).await.unwrap());
    let d = b.device("d").await.unwrap();
    assert_eq!(d.last_seq, a.last_seq().await.unwrap(), "current to the latest change");
    let d = d.value.unwrap();
    assert_eq!((d.status.map(|s| s.session), d.attributes.len()), (Some(Some(3)), 1));
    assert_eq!(a.device("d").await.unwrap().value.unwrap().name.as_deref(), Some("Door"));
    assert_eq!((a.known_device_count().await.unwrap(), b.known_devices().await.unwrap().len()), (2, 2));
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
    let acked: Vec<(String, i64)> = {
        let (store, devices, handle) = (store.clone(), devices.clone(), tokio::runtime::Handle::current());
        tokio::task::block_in_place(|| {
            acknowledged_across_kill_9(&mut pg, 100, move |round| {
                let device = &devices[(round % 5) as usize];
                let value = round.to_string();
                let reports = [
                    status(device, round % 2 == 0, T0 + round, Some(round as u64)),
                    attrs(device, T0 + round, &[("fw", value.as_str())]),
                ];
                handle.block_on(store.commit_reports(&reports)).map(|_| vec![(device.clone(), round)])
            })
        })
    };
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
