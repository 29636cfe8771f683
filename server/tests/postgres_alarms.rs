//! Alarms, rules, channels and the notification outbox on the PostgreSQL store, each
//! behaviour checked on the redb store too (the same test body on both), then what only
//! several nodes or a crash can show: a stale delivery update from another node never undoes a
//! newer one, and committed alarm transitions and pending deliveries survive kill -9 of the
//! database.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::postgres::{Postgres, acknowledged_across_kill_9};
use server::alarms::engine::Changes;
use server::notify::channels::StoredChannel;
use server::store::postgres::{PgBlocking, PgSettings};
use server::store::{AlarmStore, CommitOutcome, MAX_ALARM_LOG, MAX_DONE_DELIVERIES, RedbStore, Store};
use telemetry::alarm::eval::{Phase, Track};
use telemetry::alarm::{Alarm, AlarmQuery, Rule, Severity, StatusFilter, Transition, TransitionKind};
use telemetry::notify::{ChannelKind, Delivery, DeliveryState, Notice};
use telemetry::{LiveEvent, Millis};

/// A store the test bodies run on, with the alarm share of a commit.
trait Alarms: AlarmStore {
    fn put(&self, changes: Changes) -> CommitOutcome;
}

impl Alarms for RedbStore {
    fn put(&self, changes: Changes) -> CommitOutcome {
        self.commit_with(&[], &[], &changes).unwrap()
    }
}

impl Alarms for PgBlocking {
    fn put(&self, changes: Changes) -> CommitOutcome {
        self.commit_alarm_changes(&changes).unwrap()
    }
}

fn open(pg: &Postgres) -> PgBlocking {
    PgBlocking::open(&PgSettings::new(&pg.url)).unwrap()
}

/// Runs `check` on a redb store, then on a PostgreSQL one (each new), naming which in failures.
fn on_both(check: fn(&str, &dyn Alarms)) {
    check("redb", &RedbStore::in_memory().unwrap());
    let pg = Postgres::start();
    check("postgres", &open(&pg));
}

fn alarm(id: &str, device: &str, started_at: Millis, cleared_at: Option<Millis>) -> Alarm {
    Alarm {
        active: cleared_at.is_none(),
        acked: true,
        cleared_at,
        ..Alarm::new(id.into(), "r", "hot", device, Severity::Major, None, started_at)
    }
}

fn alarms(alarms: Vec<Alarm>) -> Changes {
    Changes { alarms, ..Changes::default() }
}

fn ids(alarms: Vec<Alarm>) -> Vec<String> {
    alarms.into_iter().map(|a| a.id).collect()
}

/// The ids of `device`'s alarms active at some time in `[from, to]`.
fn between(store: &dyn Alarms, device: &str, from: Millis, to: Millis) -> Vec<String> {
    let query = AlarmQuery {
        status: StatusFilter::All,
        device: Some(device.into()),
        from: Some(from),
        to: Some(to),
        ..AlarmQuery::default()
    };
    ids(store.alarms(&query).unwrap())
}

fn transition(alarm: &str, kind: TransitionKind, at: Millis) -> Transition {
    Transition {
        alarm_id: alarm.into(),
        kind,
        at,
        severity: Severity::Major,
        value: None,
        by: None,
        text: None,
    }
}

fn delivery(id: &str, created: Millis, next_at: Millis) -> Delivery {
    Delivery {
        id: id.into(),
        channel: "ops".into(),
        notice: Notice {
            version: 1,
            event: "alarm.fired".into(),
            alarm_id: "a".into(),
            rule_id: "r".into(),
            rule_name: "hot".into(),
            device: "d".into(),
            severity: Severity::Major,
            status: "ACTIVE_UNACK".into(),
            value: Some(31.5),
            at: created,
            url: "http://localhost/alarms/a".into(),
        },
        state: DeliveryState::Pending,
        created,
        attempts: 0,
        next_at,
        last_status: None,
        last_error: None,
        done_at: None,
    }
}

fn done(mut d: Delivery, state: DeliveryState, at: Millis) -> Delivery {
    d.attempts += 1;
    d.state = state;
    d.done_at = Some(at);
    d
}

fn rule(id: &str, name: &str) -> Rule {
    serde_json::from_value(serde_json::json!({"id": id, "name": name, "kind": "offline", "after_secs": 60}))
        .unwrap()
}

fn channel(id: &str, name: &str) -> StoredChannel {
    StoredChannel {
        id: id.into(),
        name: name.into(),
        kind: ChannelKind::Webhook { url: "http://127.0.0.1:9/hook".into() },
        secret: Some("whsec_x".into()),
        created: 1,
    }
}

fn due(store: &dyn Alarms, now: Millis, limit: usize) -> Vec<String> {
    store.due_deliveries(now, limit).unwrap().into_iter().map(|d| d.id).collect()
}

#[test]
fn a_range_finds_the_alarms_active_in_it_as_they_clear_reopen_and_go() {
    on_both(|store_name, store| {
        store.put(alarms(vec![
            alarm("old", "d", 100, Some(200)),
            alarm("mid", "d", 300, Some(400)),
            alarm("open", "d", 350, None),
            alarm("other", "e", 300, None),
        ]));
        assert_eq!(between(store, "d", 0, 99), Vec::<String>::new(), "{store_name}");
        assert_eq!(between(store, "d", 150, 160), ["old"], "{store_name}");
        assert_eq!(between(store, "d", 150, 1000), ["open", "mid", "old"], "{store_name}: newest first");
        assert_eq!(between(store, "d", 401, 1000), ["open"], "{store_name}");
        assert_eq!(between(store, "e", 0, 1000), ["other"], "{store_name}");

        // It clears (its end moves from open to 500), then reopens (open again).
        store.put(alarms(vec![alarm("open", "d", 350, Some(500))]));
        assert_eq!(between(store, "d", 501, 1000), Vec::<String>::new(), "{store_name}");
        assert_eq!(between(store, "d", 450, 1000), ["open"], "{store_name}");
        store.put(alarms(vec![alarm("open", "d", 350, None)]));
        assert_eq!(between(store, "d", 10_000, 20_000), ["open"], "{store_name}: once, though it moved");
        assert_eq!(between(store, "d", 0, 1000), ["open", "mid", "old"], "{store_name}: once each");

        // Pruned with the history it belongs to.
        assert_eq!(store.prune_alarms(250).unwrap(), 1, "{store_name}");
        assert_eq!(between(store, "d", 0, 1000), ["open", "mid"], "{store_name}");

        // A limit keeps the active and latest first.
        let query = AlarmQuery {
            status: StatusFilter::All,
            device: Some("d".into()),
            from: Some(0),
            limit: Some(1),
            ..AlarmQuery::default()
        };
        assert_eq!(ids(store.alarms(&query).unwrap()), ["open"], "{store_name}");
    });
}

#[test]
fn lists_filter_by_status_severity_rule_and_device_newest_first() {
    on_both(|store_name, store| {
        let mut critical = alarm("c", "e", 300, None);
        critical.severity = Severity::Critical;
        critical.acked = false;
        let mut other_rule = alarm("x", "d", 300, Some(320));
        other_rule.rule_id = "r2".into();
        other_rule.acked = false;
        store.put(alarms(vec![
            alarm("a", "d", 100, None),
            alarm("b", "d", 200, Some(250)),
            critical,
            other_rule,
            alarm("z", "d", 300, None),
        ]));
        let list = |query: AlarmQuery| ids(store.alarms(&query).unwrap());
        assert_eq!(
            list(AlarmQuery::default()),
            ["z", "c", "a"],
            "{store_name}: active, newest first, ties by id"
        );
        let all = AlarmQuery { status: StatusFilter::All, ..AlarmQuery::default() };
        assert_eq!(list(all.clone()), ["z", "x", "c", "b", "a"], "{store_name}");
        assert_eq!(
            list(AlarmQuery { status: StatusFilter::ActiveUnack, ..all.clone() }),
            ["c"],
            "{store_name}"
        );
        assert_eq!(
            list(AlarmQuery { status: StatusFilter::Unacked, ..all.clone() }),
            ["x", "c"],
            "{store_name}"
        );
        assert_eq!(
            list(AlarmQuery { status: StatusFilter::Cleared, ..all.clone() }),
            ["x", "b"],
            "{store_name}"
        );
        assert_eq!(
            list(AlarmQuery { severity: Some(Severity::Critical), ..all.clone() }),
            ["c"],
            "{store_name}"
        );
        assert_eq!(list(AlarmQuery { rule: Some("r2".into()), ..all.clone() }), ["x"], "{store_name}");
        assert_eq!(
            list(AlarmQuery { device: Some("d".into()), ..all.clone() }),
            ["z", "x", "b", "a"],
            "{store_name}"
        );
        assert_eq!(
            list(AlarmQuery { to: Some(200), ..all.clone() }),
            ["b", "a"],
            "{store_name}: started by then"
        );
        assert_eq!(list(AlarmQuery { limit: Some(2), ..all.clone() }), ["z", "x"], "{store_name}");
        assert_eq!(
            list(AlarmQuery { device: Some("nobody".into()), ..all }),
            Vec::<String>::new(),
            "{store_name}"
        );
    });
}

#[test]
fn open_alarms_are_counted_per_device_as_they_clear() {
    on_both(|store_name, store| {
        store.put(alarms(vec![
            alarm("a", "d", 100, None),
            alarm("b", "d", 200, None),
            alarm("c", "d", 50, Some(60)),
            alarm("e1", "e", 300, None),
            alarm("f1", "f", 10, Some(20)),
        ]));
        let counts = store.open_alarm_counts().unwrap();
        assert_eq!(
            (counts.get("d"), counts.get("e"), counts.get("f"), counts.len()),
            (Some(&2), Some(&1), None, 2),
            "{store_name}"
        );
        store.put(alarms(vec![alarm("b", "d", 200, Some(400))]));
        assert_eq!(
            store.open_alarm_counts().unwrap().get("d"),
            Some(&1),
            "{store_name}: a cleared one no longer counts"
        );
    });
}

#[test]
fn open_alarms_are_counted_from_the_active_ones_alone_however_long_the_history() {
    let pg = Postgres::start();
    let store = open(&pg);
    let history: Vec<Alarm> = (0..5_000).map(|i| alarm(&format!("h{i}"), "d", i, Some(i + 1))).collect();
    store.put(alarms(history));
    store.put(alarms(vec![alarm("a", "d", 10_000, None), alarm("b", "e", 10_000, None)]));
    assert_eq!(store.open_alarm_counts().unwrap(), [("d".into(), 1), ("e".into(), 1)].into());
    // What the count's query reads: the active alarms' index, not the table's history.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let plan: Vec<String> = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.batch_execute("ANALYZE alarms").await.unwrap();
        let rows = client
            .query("EXPLAIN SELECT device, count(*) FROM alarms WHERE active GROUP BY device", &[])
            .await
            .unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    });
    let plan = plan.join("\n");
    assert!(plan.contains("alarms_active") && !plan.contains("Seq Scan"), "{plan}");
}

#[test]
fn each_change_to_an_alarm_is_numbered_and_the_alarm_keeps_its_latest() {
    on_both(|store_name, store| {
        let first = store.put(alarms(vec![alarm("a1", "d", 100, None)]));
        let mut acked = alarm("a1", "d", 100, None);
        acked.acked_by = Some("ann".into());
        // Changed twice in one commit: two changes, and the alarm as the second left it.
        let cleared = alarm("a1", "d", 100, Some(150));
        let second = store.put(alarms(vec![acked, cleared]));
        let told: Vec<(u64, Option<String>, bool)> = first
            .events
            .iter()
            .chain(&second.events)
            .filter_map(|e| match e {
                LiveEvent::Alarm { seq, alarm } => Some((*seq, alarm.acked_by.clone(), alarm.active)),
                _ => None,
            })
            .collect();
        assert_eq!(told, [(1, None, true), (2, Some("ann".into()), true), (3, None, false)], "{store_name}");
        assert_eq!(second.wire.len(), 2, "{store_name}");
        let (stored, _) = store.alarm("a1").unwrap().unwrap();
        assert_eq!((stored.seq, stored.active), (3, false), "{store_name}");
        assert_eq!(store.alarm("nope").unwrap(), None, "{store_name}");
    });
}

#[test]
fn rules_channels_and_states_are_what_the_engine_starts_from() {
    on_both(|store_name, store| {
        store.put_rule(&rule("r1", "zeta")).unwrap();
        store.put_rule(&rule("r2", "Alpha")).unwrap();
        store.put_rule(&rule("r1", "Beta")).unwrap();
        let names: Vec<String> = store.rules().unwrap().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["Alpha", "Beta"], "{store_name}: replaced, by name");
        assert_eq!(store.rule_count().unwrap(), 2, "{store_name}");
        store.put_channel(&channel("ch-b", "ops")).unwrap();
        store.put_channel(&channel("ch-a", "Pager")).unwrap();
        assert_eq!(
            store.channels().unwrap(),
            [channel("ch-b", "ops"), channel("ch-a", "Pager")],
            "{store_name}"
        );
        assert!(store.delete_channel("ch-a").unwrap(), "{store_name}");
        assert!(!store.delete_channel("ch-a").unwrap(), "{store_name}: gone already");

        let firing = Track {
            phase: Phase::Firing { severity: Severity::Major },
            alarm: Some("a1".into()),
            ..Track::default()
        };
        let remembered = Track { alarm: Some("a2".into()), cleared_at: Some(250), ..Track::default() };
        let key = |r: &str, d: &str| (r.to_owned(), d.to_owned());
        store.put(Changes {
            tracks: vec![
                (key("r1", "d1"), Some(firing.clone())),
                (key("r1", "d2"), Some(remembered.clone())),
                (key("r2", "d1"), Some(Track::default())),
                (key("r2", "d1"), None),
            ],
            alarms: vec![
                alarm("a1", "d1", 100, None),
                alarm("a2", "d2", 200, Some(250)),
                alarm("a3", "d3", 50, Some(60)),
            ],
            ..Changes::default()
        });
        let state = store.alarm_state().unwrap();
        assert_eq!(state.rules.len(), 2, "{store_name}");
        assert_eq!(state.tracks, [(key("r1", "d1"), firing), (key("r1", "d2"), remembered)], "{store_name}");
        assert_eq!(ids(state.alarms), ["a1", "a2"], "{store_name}: active, or one a state may reopen");
        assert_eq!(state.channels, ["ch-b"], "{store_name}");

        // Only history goes: a3 (a2 is referred to by a state, a1 active).
        assert_eq!(store.prune_alarms(10_000).unwrap(), 1, "{store_name}");
        assert!(store.delete_rule("r1").unwrap(), "{store_name}");
        assert!(!store.delete_rule("r1").unwrap(), "{store_name}: gone already");
        assert_eq!(store.rule_count().unwrap(), 1, "{store_name}");
        let state = store.alarm_state().unwrap();
        assert!(state.tracks.is_empty(), "{store_name}: its states went with it");
        assert_eq!(ids(state.alarms), ["a1"], "{store_name}");
        assert_eq!(store.prune_alarms(10_000).unwrap(), 1, "{store_name}: a2 is history now");
        assert_eq!(store.alarm("a2").unwrap(), None, "{store_name}");
        assert!(store.alarm("a1").unwrap().is_some(), "{store_name}: its alarms stay");
    });
}

#[test]
fn an_alarms_log_is_kept_in_order_to_its_cap_and_pruned_with_it() {
    on_both(|store_name, store| {
        let mut kept = alarm("x", "d", 100, Some(200));
        kept.acked = false;
        store.put(Changes {
            alarms: vec![kept, alarm("y", "d", 100, Some(300))],
            transitions: vec![
                transition("y", TransitionKind::Fired, 100),
                transition("y", TransitionKind::Cleared, 300),
            ],
            ..Changes::default()
        });
        // More than the cap, over several commits, with another alarm's entries between.
        let extra = 5;
        let total = MAX_ALARM_LOG as i64 + extra;
        for chunk in (0..total).collect::<Vec<_>>().chunks(101) {
            let mut transitions: Vec<Transition> =
                chunk.iter().map(|at| transition("x", TransitionKind::Reminder, *at)).collect();
            transitions.insert(1, transition("z", TransitionKind::Commented, 0));
            store.put(Changes { transitions, ..Changes::default() });
        }
        let (_, log) = store.alarm("x").unwrap().unwrap();
        let times: Vec<Millis> = log.iter().map(|t| t.at).collect();
        assert_eq!(
            times,
            (extra..total).collect::<Vec<_>>(),
            "{store_name}: the latest {MAX_ALARM_LOG}, in order"
        );
        let (_, log) = store.alarm("y").unwrap().unwrap();
        let kinds: Vec<TransitionKind> = log.iter().map(|t| t.kind).collect();
        assert_eq!(kinds, [TransitionKind::Fired, TransitionKind::Cleared], "{store_name}");

        // y is cleared and acknowledged: pruned with its log; x is unacknowledged: kept.
        assert_eq!(store.prune_alarms(1_000).unwrap(), 1, "{store_name}");
        assert_eq!(store.alarm("y").unwrap(), None, "{store_name}");
        store.put(alarms(vec![alarm("y", "d", 900, None)]));
        assert_eq!(
            store.alarm("y").unwrap().unwrap().1,
            [],
            "{store_name}: an alarm made again has no old log"
        );
    });
}

#[test]
fn the_outbox_answers_what_is_due_soonest_first_and_keeps_the_done_ones_to_its_cap() {
    on_both(|store_name, store| {
        store.put(Changes {
            deliveries: vec![delivery("d1", 10, 100), delivery("d2", 20, 50), delivery("d3", 30, 200)],
            ..Changes::default()
        });
        assert_eq!(due(store, 150, 10), ["d2", "d1"], "{store_name}");
        assert_eq!(due(store, 150, 1), ["d2"], "{store_name}: at most the limit");
        assert_eq!(due(store, 49, 10), Vec::<String>::new(), "{store_name}");
        assert_eq!(due(store, 50, 10), ["d2"], "{store_name}: due at its time");
        assert_eq!(store.next_due().unwrap(), Some(50), "{store_name}");

        let sent = done(store.delivery("d2").unwrap().unwrap(), DeliveryState::Sent, 160);
        let mut retry = store.delivery("d1").unwrap().unwrap();
        retry.attempts = 1;
        retry.next_at = 400;
        store.update_deliveries(&[sent.clone(), retry]).unwrap();
        assert_eq!(due(store, 300, 10), ["d3"], "{store_name}");
        assert_eq!(store.next_due().unwrap(), Some(200), "{store_name}");
        assert_eq!(store.delivery("d2").unwrap(), Some(sent.clone()), "{store_name}");
        let listed: Vec<String> = store.deliveries(10).unwrap().into_iter().map(|d| d.id).collect();
        assert_eq!(listed, ["d3", "d2", "d1"], "{store_name}: newest first");
        assert_eq!(store.deliveries(1).unwrap().len(), 1, "{store_name}");

        // A resend: the same delivery, pending again from now.
        let resent =
            Delivery { state: DeliveryState::Pending, created: 500, next_at: 500, done_at: None, ..sent };
        store.update_deliveries(&[resent]).unwrap();
        assert_eq!(due(store, 500, 10), ["d3", "d1", "d2"], "{store_name}");

        // Done ones beyond the cap go, oldest first; pending ones never.
        let many: Vec<Delivery> = (0..MAX_DONE_DELIVERIES as i64 + 3)
            .map(|i| {
                done(delivery(&format!("m{i:05}"), 1_000 + i, 1_000 + i), DeliveryState::Sent, 2_000_000)
            })
            .collect();
        store.update_deliveries(&many).unwrap();
        let all = store.deliveries(usize::MAX).unwrap();
        let done_count = all.iter().filter(|d| d.state != DeliveryState::Pending).count();
        assert_eq!(done_count as u64, MAX_DONE_DELIVERIES, "{store_name}");
        let gone: Vec<&str> = ["m00000", "m00001", "m00002", "m00003"]
            .into_iter()
            .filter(|id| !all.iter().any(|d| d.id == *id))
            .collect();
        assert_eq!(gone, ["m00000", "m00001", "m00002"], "{store_name}: the oldest done ones");
        assert_eq!(due(store, 500, 10), ["d3", "d1", "d2"], "{store_name}: the pending ones stay");
    });
}

#[test]
fn a_stale_delivery_update_from_another_node_never_undoes_a_newer_one() {
    let pg = Postgres::start();
    let (a, b) = (open(&pg), open(&pg));
    a.put(Changes {
        deliveries: vec![delivery("d", 1_000, 1_000), delivery("e", 1_000, 1_000)],
        ..Changes::default()
    });
    let state = |id: &str| {
        let d = b.delivery(id).unwrap().unwrap();
        (d.state, d.attempts, d.created)
    };

    // Both nodes take d as due; a sends it, b's attempt fails and it would retry: b's is stale.
    let seen_a = a.due_deliveries(1_000, 10).unwrap();
    let seen_b = b.due_deliveries(1_000, 10).unwrap();
    assert_eq!(seen_a, seen_b, "both nodes see the same due deliveries");
    let d = seen_a.iter().find(|d| d.id == "d").unwrap().clone();
    a.update_deliveries(&[done(d.clone(), DeliveryState::Sent, 1_100)]).unwrap();
    let mut retry = d.clone();
    retry.attempts = 1;
    retry.next_at = 60_000;
    b.update_deliveries(&[retry.clone()]).unwrap();
    assert_eq!(state("d"), (DeliveryState::Sent, 1, 1_000), "the sent one is not brought back");
    assert!(!a.due_deliveries(i64::MAX, 10).unwrap().iter().any(|x| x.id == "d"));

    // e: a retries twice; b's result of the first attempt comes late, and is dropped.
    let e = seen_a.iter().find(|d| d.id == "e").unwrap().clone();
    let first = Delivery { attempts: 1, next_at: 2_000, ..e.clone() };
    let second = Delivery { attempts: 2, next_at: 5_000, ..e.clone() };
    a.update_deliveries(&[first]).unwrap();
    a.update_deliveries(std::slice::from_ref(&second)).unwrap();
    b.update_deliveries(&[done(e.clone(), DeliveryState::Failed, 1_200)]).unwrap();
    assert_eq!(b.delivery("e").unwrap(), Some(second), "an earlier attempt's result is stale");

    // A resend (pending again, from its time) is taken; a's late update from before it is not.
    let sent = b.delivery("d").unwrap().unwrap();
    let resent = Delivery {
        state: DeliveryState::Pending,
        created: 9_000,
        next_at: 9_000,
        done_at: None,
        ..sent.clone()
    };
    b.update_deliveries(&[resent]).unwrap();
    assert_eq!(state("d"), (DeliveryState::Pending, 1, 9_000));
    a.update_deliveries(&[done(d, DeliveryState::Failed, 1_300)]).unwrap();
    a.update_deliveries(&[sent]).unwrap();
    assert_eq!(state("d"), (DeliveryState::Pending, 1, 9_000), "updates from before the resend are stale");
    assert_eq!(a.due_deliveries(9_000, 10).unwrap().len(), 2);
}

#[test]
fn a_delivery_one_node_sent_stays_sent_while_another_node_retries_it() {
    let pg = Postgres::start();
    let count = 100;
    let made: Vec<Delivery> = (0..count).map(|i| delivery(&format!("r{i:03}"), 1_000, 1_000)).collect();
    let sender = Arc::new(open(&pg));
    sender.put(Changes { deliveries: made, ..Changes::default() });
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // One node marks what it reads as due sent, five at a time; the other marks all it reads
    // as due for another attempt, still due: each from its own reads, so the retrier's updates
    // are often made from a state the sender has already moved past.
    let run = |node: Arc<PgBlocking>, take: usize, next: fn(Delivery) -> Delivery| {
        std::thread::spawn(move || {
            for _ in 0..2_000 {
                let due = node.due_deliveries(i64::MAX, count).unwrap();
                if due.is_empty() {
                    return;
                }
                let updates: Vec<Delivery> = due.into_iter().take(take).map(next).collect();
                node.update_deliveries(&updates).unwrap();
            }
            panic!("2,000 rounds and still deliveries due: sent ones keep coming back");
        })
    };
    let threads = [
        run(sender.clone(), 5, |d| done(d, DeliveryState::Sent, 5_000)),
        run(Arc::new(open(&pg)), count, |d| Delivery { attempts: d.attempts + 1, ..d }),
    ];
    // A third node watches: once it has seen a delivery sent, it must never see it pending.
    let watcher = {
        let (node, finished) = (Arc::new(open(&pg)), finished.clone());
        std::thread::spawn(move || {
            let mut sent = std::collections::BTreeSet::new();
            let mut looks = 0;
            while !finished.load(std::sync::atomic::Ordering::SeqCst) {
                for d in node.deliveries(count).unwrap() {
                    match d.state {
                        DeliveryState::Sent => {
                            sent.insert(d.id);
                        }
                        _ => assert!(!sent.contains(&d.id), "{} was sent, then pending again", d.id),
                    }
                }
                looks += 1;
            }
            looks
        })
    };
    for t in threads {
        t.join().unwrap();
    }
    finished.store(true, std::sync::atomic::Ordering::SeqCst);
    let looks = watcher.join().unwrap();
    let all = sender.deliveries(count).unwrap();
    assert_eq!(all.len(), count);
    assert!(all.iter().all(|d| d.state == DeliveryState::Sent), "every delivery ends sent");
    assert!(all.iter().any(|d| d.attempts > 1), "the retrier's attempts were taken in between");
    println!("the watcher looked {looks} times");
}

#[test]
fn committed_alarm_transitions_and_pending_deliveries_survive_kill_9_of_postgres() {
    let mut pg = Postgres::start();
    let store = Arc::new(open(&pg));
    let acked: Vec<u32> = {
        let store = store.clone();
        acknowledged_across_kill_9(&mut pg, 100, move |round| {
            let i = round as u32;
            let id = format!("a{i}");
            let changes = Changes {
                tracks: vec![(
                    ("r".into(), format!("d{i}")),
                    Some(Track { alarm: Some(id.clone()), ..Track::default() }),
                )],
                alarms: vec![alarm(&id, &format!("d{i}"), 1_000 + i64::from(i), None)],
                transitions: vec![transition(&id, TransitionKind::Fired, 1_000 + i64::from(i))],
                deliveries: vec![delivery(&format!("n{i}"), 1_000 + i64::from(i), 1_000 + i64::from(i))],
                work: 0,
            };
            store.commit_alarm_changes(&changes).map(|_| vec![i])
        })
    };
    let store = open(&pg);
    let state = store.alarm_state().unwrap();
    let active: BTreeMap<String, Alarm> = state.alarms.into_iter().map(|a| (a.id.clone(), a)).collect();
    let due: BTreeMap<String, Delivery> =
        store.due_deliveries(i64::MAX, usize::MAX).unwrap().into_iter().map(|d| (d.id.clone(), d)).collect();
    for i in &acked {
        let id = format!("a{i}");
        assert!(active.contains_key(&id), "{id} was acknowledged and is not active after the crash");
        let (_, log) = store.alarm(&id).unwrap().unwrap();
        assert_eq!(log, [transition(&id, TransitionKind::Fired, 1_000 + i64::from(*i))], "{id}'s log");
        assert!(due.contains_key(&format!("n{i}")), "delivery n{i} was acknowledged and is not pending");
        assert!(
            state
                .tracks
                .iter()
                .any(|((_, d), t)| *d == format!("d{i}") && t.alarm.as_deref() == Some(id.as_str()))
        );
    }
    // Nothing half-written: each commit is all there or not at all.
    assert_eq!(active.len(), due.len());
    assert_eq!(active.len(), state.tracks.len());
    let seqs: Vec<u64> = active.values().map(|a| a.seq).collect();
    assert_eq!(seqs.iter().max().copied(), Some(active.len() as u64), "one numbered change per alarm");
    println!(
        "{} alarm commits acknowledged before kill -9, {} found after recovery",
        acked.len(),
        active.len()
    );
}
