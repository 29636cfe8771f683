//! Commands and bulk commands on the PostgreSQL store against a real PostgreSQL (started per
//! test by common::postgres): the same behaviour bodies run on the redb store and on
//! PostgreSQL (states, refusals, ids, caps, history kept, paging, bulks and their places),
//! then what only several nodes can do: two nodes moving the same commands at once (one
//! transition wins), making commands and opening bulks at once (caps and ids hold), and
//! kill -9 of the database after acknowledgements.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier, Mutex};

use common::postgres::Postgres;
use serde_json::json;
use server::store::postgres::{MAX_TAIL, PgBlocking, PgSettings};
use server::store::{
    Bulk, BulkStore, CommandOp, CommandRefusal, CommandStore, CommandsApplied, MAX_BULKS,
    MAX_HISTORY_PER_DEVICE, RedbStore,
};
use telemetry::command::{
    Command, CommandEvent, CommandStatus, MAX_PENDING_PER_DEVICE, NewCommand, Receipt, Reply, command_id,
    id_counter,
};
use telemetry::{LiveEvent, Millis};

fn create(device: &str) -> CommandOp {
    let checked = NewCommand {
        method: "identify".into(),
        params: Some(json!({"n": 1, "a": [1, 2]})),
        timeout_secs: Some(10),
        ..Default::default()
    }
    .check()
    .unwrap();
    CommandOp::Create { device: device.into(), checked, by: "ann".into(), observable: true }
}

fn event(device: &str, id: &str, event: CommandEvent) -> CommandOp {
    CommandOp::Event { device: device.into(), id: id.into(), event }
}

fn ids(applied: &CommandsApplied) -> Vec<String> {
    applied.changed.iter().map(|c| c.id.clone()).collect()
}

fn asked(requested: u32) -> Bulk {
    Bulk {
        id: String::new(),
        created_by: "ann".into(),
        created_at: 1_000,
        method: "identify".into(),
        query: None,
        requested,
        handled: 0,
    }
}

fn node(pg: &Postgres) -> PgBlocking {
    PgBlocking::open(&PgSettings::new(&pg.url)).unwrap()
}

/// Every change in the PostgreSQL store's change log, as live events.
fn changes(store: &PgBlocking) -> Vec<LiveEvent> {
    let pg = store.store().clone();
    let task = store.spawn(async move { pg.changes_after(0, MAX_TAIL).await });
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let rows = runtime.block_on(task).unwrap().unwrap();
    rows.into_iter().map(|(_, json)| serde_json::from_str(&json).unwrap()).collect()
}

/// The commands' changes in the log: (id, status) each, in order.
fn command_changes(store: &PgBlocking) -> Vec<(String, CommandStatus)> {
    changes(store)
        .into_iter()
        .filter_map(|e| match e {
            LiveEvent::Command { command, .. } => Some((command.id, command.status)),
            _ => None,
        })
        .collect()
}

// ---- The same behaviour on both stores ----

/// A command's way through its states: ids from the time then counted, numbered changes, a
/// late PUBACK taken without a change, refusals, listing newest first and paging.
fn lifecycle(store: &impl CommandStore) {
    assert!(store.open_commands().unwrap().is_empty());
    let made = store.apply_commands(&[create("d1"), create("d1")], 5_000).unwrap();
    let made_ids = ids(&made);
    assert_eq!(made_ids, [command_id(5_000), command_id(5_001)], "ids from the time, then counted");
    assert_eq!(made.outcome.events.len(), 2, "a change each for the live feed");
    let (first, second) = (made_ids[0].clone(), made_ids[1].clone());
    let sent =
        store.apply_commands(&[event("d1", &first, CommandEvent::Sent(Receipt::Observable))], 6_000).unwrap();
    assert_eq!(sent.changed[0].status, CommandStatus::Sent);
    let seqs: Vec<u64> =
        made.outcome.events.iter().chain(&sent.outcome.events).filter_map(LiveEvent::seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "numbered in order: {seqs:?}");
    let again =
        store.apply_commands(&[event("d1", &first, CommandEvent::Sent(Receipt::Observable))], 6_500).unwrap();
    assert!(again.changed.is_empty() && again.outcome.events.is_empty(), "a send again is no change");
    assert_eq!(again.answers[0].as_ref().unwrap().sends, 2, "but it is counted");
    assert_eq!(store.command("d1", &first).unwrap().unwrap().sends, 2, "and kept");

    let open = store.open_commands().unwrap();
    let states: Vec<(&str, CommandStatus)> = open.iter().map(|c| (c.id.as_str(), c.status)).collect();
    assert_eq!(states, [(first.as_str(), CommandStatus::Sent), (second.as_str(), CommandStatus::Queued)]);

    let done = store
        .apply_commands(
            &[
                event("d1", &first, CommandEvent::Answered(Reply::Ok(Some(json!(7))))),
                event("d1", &first, CommandEvent::Delivered),
                event("d1", &second, CommandEvent::Delivered),
                event("d1", "zz", CommandEvent::Due),
                event("d2", &first, CommandEvent::Due),
                event("d1", "Bad!", CommandEvent::Due),
                create("d2"),
                // Made and moved in the same call.
                create("d3"),
                event("d3", &command_id(7_000), CommandEvent::Sent(Receipt::Unobservable)),
                event("d3", &command_id(7_000), CommandEvent::Sent(Receipt::Unobservable)),
            ],
            7_000,
        )
        .unwrap();
    let d3 = store.command("d3", &command_id(7_000)).unwrap().unwrap();
    assert_eq!((d3.status, d3.sends, d3.delivery_observable), (CommandStatus::Sent, 2, false));
    assert_eq!(d3.respond_by, Some(17_000), "due within its timeout of the send");
    assert_eq!(done.answers[9].as_ref().unwrap().sends, 2);
    assert_eq!(done.answers[0].as_ref().unwrap().status, CommandStatus::Succeeded);
    assert_eq!(
        done.answers[1].as_ref().unwrap().status,
        CommandStatus::Succeeded,
        "a late PUBACK: no change"
    );
    let Err(CommandRefusal::Illegal(why)) = &done.answers[2] else {
        panic!("never sent: {:?}", done.answers[2])
    };
    assert_eq!(why.to_string(), "a QUEUED command cannot be delivered");
    assert_eq!(done.answers[3], Err(CommandRefusal::NotFound));
    assert_eq!(done.answers[4], Err(CommandRefusal::NotFound), "ids are per device");
    assert_eq!(done.answers[5], Err(CommandRefusal::NotFound));
    assert_eq!(done.answers[6].as_ref().unwrap().id, command_id(7_000), "a new device starts at the time");
    assert_eq!(done.changed.len(), 4, "the answer, two made, one sent");
    let open: Vec<(String, String)> =
        store.open_commands().unwrap().into_iter().map(|c| (c.device, c.id)).collect();
    let expected = [("d1", second.as_str()), ("d2", &command_id(7_000)), ("d3", &command_id(7_000))];
    assert_eq!(open, expected.map(|(d, i)| (d.to_owned(), i.to_owned())), "by device, the finished one gone");

    let late = store
        .apply_commands(&[event("d1", &first, CommandEvent::Cancel { by: "bob".into() })], 8_000)
        .unwrap();
    let Err(CommandRefusal::Illegal(why)) = &late.answers[0] else { panic!("{:?}", late.answers) };
    assert_eq!(why.to_string(), "the command is already SUCCEEDED");

    let listed: Vec<String> = store.commands_of("d1", None, 10).unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(listed, [second.clone(), first.clone()], "newest first");
    assert_eq!(store.commands_of("d1", None, 1).unwrap().len(), 1, "at most the limit");
    let paged: Vec<String> =
        store.commands_of("d1", Some(&second), 10).unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(paged, [first.as_str()], "paged");
    assert!(store.commands_of("d1", Some("0"), 10).unwrap().is_empty());
    assert!(store.commands_of("d1", Some("Bad!"), 10).unwrap().is_empty());
    assert!(store.commands_of("nobody", None, 10).unwrap().is_empty());
    let stored = store.command("d1", &first).unwrap().unwrap();
    assert_eq!(stored.result, Some(json!(7)));
    assert_eq!(stored.params, *json!({"n": 1, "a": [1, 2]}).as_object().unwrap());
    assert_eq!((stored.sent_at, stored.finished_at), (Some(6_000), Some(7_000)));
    assert!(store.command("d1", "Bad!").unwrap().is_none());
    assert!(store.command("d2", &first).unwrap().is_none());
}

/// A device's and the server's caps on unfinished commands.
fn caps(store: &impl CommandStore) {
    let ops: Vec<CommandOp> = (0..MAX_PENDING_PER_DEVICE + 1).map(|_| create("d1")).collect();
    let made = store.apply_commands(&ops, 1_000).unwrap();
    assert_eq!(made.changed.len(), MAX_PENDING_PER_DEVICE);
    assert_eq!(made.answers.last().unwrap(), &Err(CommandRefusal::TooMany(MAX_PENDING_PER_DEVICE)));
    assert_eq!(
        made.answers.last().unwrap().as_ref().unwrap_err().to_string(),
        "the device already has 100 unfinished commands"
    );
    assert!(store.apply_commands(&[create("d2")], 1_000).unwrap().answers[0].is_ok(), "per device");
    let first = made.changed[0].id.clone();
    // Cancelled and a new one in the same call: the place freed is taken at once.
    let again = store
        .apply_commands(
            &[create("d1"), event("d1", &first, CommandEvent::Cancel { by: "ann".into() }), create("d1")],
            2_000,
        )
        .unwrap();
    assert_eq!(again.answers[0], Err(CommandRefusal::TooMany(MAX_PENDING_PER_DEVICE)));
    assert!(again.answers[2].is_ok(), "a place freed");
    assert_eq!(
        store.open_commands().unwrap().iter().filter(|c| c.device == "d1").count(),
        MAX_PENDING_PER_DEVICE
    );
}

/// The history kept per device: the oldest finished commands go as new ones come, an
/// unfinished one stays however old. Answers the device's listing.
fn history(store: &impl CommandStore) -> Vec<Command> {
    let first = store.apply_commands(&[create("d1")], 1_000).unwrap().changed[0].id.clone();
    let mut made = 1;
    while made <= MAX_HISTORY_PER_DEVICE + 60 {
        let ops: Vec<CommandOp> = (0..MAX_PENDING_PER_DEVICE - 1).map(|_| create("d1")).collect();
        let batch = store.apply_commands(&ops, 2_000).unwrap();
        assert_eq!(batch.changed.len(), ops.len());
        let cancel: Vec<CommandOp> =
            ids(&batch).iter().map(|id| event("d1", id, CommandEvent::Cancel { by: "ann".into() })).collect();
        assert_eq!(store.apply_commands(&cancel, 3_000).unwrap().changed.len(), cancel.len());
        made += ops.len() as u64;
    }
    let listed = store.commands_of("d1", None, 5_000).unwrap();
    assert_eq!(listed.len() as u64, MAX_HISTORY_PER_DEVICE + 1, "the history kept and the unfinished one");
    assert_eq!(listed.last().unwrap().id, first, "the unfinished one stays");
    let newest = id_counter(&listed[0].id).unwrap();
    assert_eq!(id_counter(&listed[listed.len() - 2].id), Some(newest + 1 - MAX_HISTORY_PER_DEVICE));
    assert!(
        store.command("d1", &command_id(id_counter(&first).unwrap() + 1)).unwrap().is_none(),
        "the oldest went"
    );
    // More than the history made and finished in one call: trimmed as it goes.
    let ops: Vec<CommandOp> = (1..=MAX_HISTORY_PER_DEVICE + 100)
        .flat_map(|k| {
            [create("d1"), event("d1", &command_id(newest + k), CommandEvent::Cancel { by: "bob".into() })]
        })
        .collect();
    let applied = store.apply_commands(&ops, 4_000).unwrap();
    assert_eq!(applied.changed.len(), ops.len(), "each made and cancelled");
    let listed = store.commands_of("d1", None, 5_000).unwrap();
    assert_eq!(listed.len() as u64, MAX_HISTORY_PER_DEVICE + 1);
    assert_eq!(listed.last().unwrap().id, first);
    assert_eq!(listed[0].id, command_id(newest + MAX_HISTORY_PER_DEVICE + 100));
    assert!(listed[..listed.len() - 1].iter().all(|c| c.status == CommandStatus::Canceled));
    listed
}

/// A bulk's commands and their places, a refusal recorded with why, an unknown bulk, the
/// oldest bulks dropped.
fn bulks(store: &(impl CommandStore + BulkStore)) {
    assert!(store.bulk("1").unwrap().is_none());
    assert!(store.bulk("Bad!").unwrap().is_none());
    let full: Vec<CommandOp> = (0..MAX_PENDING_PER_DEVICE).map(|_| create("busy")).collect();
    store.apply_commands(&full, 1_000).unwrap();
    let bulk = store.open_bulk(&asked(3), 5_000).unwrap();
    assert_eq!(bulk.id, command_id(5_000), "ids from the time");
    assert_eq!(bulk.handled, 0);
    let made = store.add_to_bulk(&bulk.id, &[create("busy"), create("idle")], 6_000).unwrap().unwrap();
    assert!(matches!(made.answers[0], Err(CommandRefusal::TooMany(_))));
    assert_eq!(made.changed.len(), 1);
    assert_eq!(made.outcome.events.len(), 1, "its change for the live feed");
    assert!(store.add_to_bulk("zz", &[create("d3")], 6_000).unwrap().is_none(), "no such bulk");
    assert!(store.add_to_bulk("Bad!", &[create("d3")], 6_000).unwrap().is_none());
    assert!(store.open_commands().unwrap().iter().all(|c| c.device != "d3"), "nothing made");
    let (stored, members) = store.bulk(&bulk.id).unwrap().unwrap();
    assert_eq!((stored.requested, stored.handled), (3, 2), "the third not made yet");
    assert_eq!(stored.method, "identify");
    assert_eq!(members[0].device, "busy");
    assert_eq!(members[0].id, None);
    assert_eq!(members[0].error.as_deref(), Some("the device already has 100 unfinished commands"));
    assert_eq!(members[1].device, "idle");
    assert_eq!(members[1].id.as_ref(), Some(&made.changed[0].id));
    assert!(
        store.command("idle", members[1].id.as_ref().unwrap()).unwrap().is_some(),
        "names a command made"
    );
    store.add_to_bulk(&bulk.id, &[create("third")], 7_000).unwrap().unwrap();
    let (stored, members) = store.bulk(&bulk.id).unwrap().unwrap();
    assert_eq!(stored.handled, 3);
    assert_eq!(members.iter().map(|m| m.device.as_str()).collect::<Vec<_>>(), ["busy", "idle", "third"]);

    let mut kept = vec![bulk.id.clone()];
    for _ in 0..MAX_BULKS {
        kept.push(store.open_bulk(&asked(1), 4_000).unwrap().id);
    }
    assert!(store.bulk(&kept[0]).unwrap().is_none(), "the oldest went");
    assert!(store.command("idle", members[1].id.as_ref().unwrap()).unwrap().is_some(), "its commands stay");
    assert!(store.bulk(&kept[1]).unwrap().is_some());
    assert!(store.bulk(&kept[MAX_BULKS]).unwrap().is_some());
    assert!(id_counter(&kept[MAX_BULKS]) > id_counter(&kept[MAX_BULKS - 1]), "ids keep growing");
}

#[test]
fn commands_move_through_their_states_alike_on_redb_and_postgres() {
    lifecycle(&RedbStore::in_memory().unwrap());
    let pg = Postgres::start();
    let store = node(&pg);
    lifecycle(&store);
    // The changes are in the log in the order the store answered them.
    let logged = command_changes(&store);
    assert_eq!(logged.len(), 7, "two made, a send, an answer, two new devices', a send: {logged:?}");
    assert_eq!(logged[2].1, CommandStatus::Sent);
    assert_eq!(logged[3], (command_id(5_000), CommandStatus::Succeeded));
}

#[test]
fn the_caps_on_unfinished_commands_hold_alike_on_redb_and_postgres() {
    caps(&RedbStore::in_memory().unwrap());
    let pg = Postgres::start();
    caps(&node(&pg));
}

#[test]
fn the_history_kept_is_the_same_on_redb_and_postgres() {
    let redb = history(&RedbStore::in_memory().unwrap());
    let pg = Postgres::start();
    let postgres = history(&node(&pg));
    assert_eq!(postgres, redb, "the same commands, field for field");
}

#[test]
fn bulks_and_their_places_are_kept_alike_on_redb_and_postgres() {
    bulks(&RedbStore::in_memory().unwrap());
    let pg = Postgres::start();
    let store = node(&pg);
    bulks(&store);
    // Opened again (another node), the bulk and its commands read the same.
    let other = node(&pg);
    let newest = other.open_bulk(&asked(1), 9_000).unwrap();
    assert!(id_counter(&newest.id).unwrap() > id_counter(&command_id(5_000)).unwrap());
    assert_eq!(other.open_commands().unwrap(), store.open_commands().unwrap());
}

// ---- Several nodes at once ----

/// Commands `count` on `device` made, sent and (if `delivered`) delivered on `store`.
fn sent(store: &PgBlocking, device: &str, count: usize, delivered: bool) -> Vec<String> {
    let ops: Vec<CommandOp> = (0..count).map(|_| create(device)).collect();
    let made = ids(&store.apply_commands(&ops, 1_000).unwrap());
    let send: Vec<CommandOp> =
        made.iter().map(|id| event(device, id, CommandEvent::Sent(Receipt::Observable))).collect();
    assert_eq!(store.apply_commands(&send, 2_000).unwrap().changed.len(), count);
    if delivered {
        let deliver: Vec<CommandOp> =
            made.iter().map(|id| event(device, id, CommandEvent::Delivered)).collect();
        assert_eq!(store.apply_commands(&deliver, 3_000).unwrap().changed.len(), count);
    }
    made
}

/// Runs `op(node, id)` for every id on both nodes at once (one call each), answering each
/// node's answers by id.
fn race(
    nodes: [&PgBlocking; 2],
    ids: &[String],
    op: impl Fn(usize, &str) -> (CommandOp, Millis) + Sync,
) -> [BTreeMap<String, CommandsApplied>; 2] {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let handles = [0, 1].map(|i| {
            let (store, barrier, op) = (nodes[i], &barrier, &op);
            s.spawn(move || {
                barrier.wait();
                let mut out = BTreeMap::new();
                for id in ids {
                    let (op, now) = op(i, id);
                    out.insert(id.clone(), store.apply_commands(&[op], now).unwrap());
                }
                out
            })
        });
        handles.map(|h| h.join().unwrap())
    })
}

#[test]
fn two_nodes_delivering_one_command_at_once_make_one_transition() {
    let pg = Postgres::start();
    let (a, b) = (node(&pg), node(&pg));
    let made = sent(&a, "d1", 60, false);
    let answers = race([&a, &b], &made, |_, id| (event("d1", id, CommandEvent::Delivered), 4_000));
    for id in &made {
        let changed: usize = answers.iter().map(|node| node[id].changed.len()).sum();
        assert_eq!(changed, 1, "{id}: delivered once, by one node");
        for node in &answers {
            assert_eq!(node[id].answers[0].as_ref().unwrap().status, CommandStatus::Delivered);
        }
    }
    let logged = command_changes(&a);
    for id in &made {
        let deliveries = logged.iter().filter(|(i, s)| i == id && *s == CommandStatus::Delivered).count();
        assert_eq!(deliveries, 1, "{id}: one change in the log");
    }
}

#[test]
fn a_late_answer_and_a_timeout_on_two_nodes_never_both_win() {
    let pg = Postgres::start();
    let (a, b) = (node(&pg), node(&pg));
    // Delivered at 3 s with a 10 s timeout: due at 13 s. At 20 s node 0 times them out while
    // node 1 hears their answers.
    let made = sent(&a, "d1", 60, true);
    let answers = race([&a, &b], &made, |i, id| {
        let happened =
            if i == 0 { CommandEvent::Due } else { CommandEvent::Answered(Reply::Ok(Some(json!("late")))) };
        (event("d1", id, happened), 20_000)
    });
    for id in &made {
        let (timeout, answer) = (&answers[0][id], &answers[1][id]);
        let winners = timeout.changed.len() + answer.changed.len();
        assert_eq!(winners, 1, "{id}: exactly one of the timeout and the answer");
        let stored = a.command("d1", id).unwrap().unwrap();
        if let Some(won) = answer.changed.first() {
            assert_eq!(won.status, CommandStatus::Succeeded);
            assert_eq!(
                timeout.answers[0].as_ref().unwrap().status,
                CommandStatus::Succeeded,
                "due: no change"
            );
            assert_eq!(stored.result, Some(json!("late")));
        } else {
            assert_eq!(timeout.changed[0].status, CommandStatus::TimedOut);
            let Err(CommandRefusal::Illegal(why)) = &answer.answers[0] else {
                panic!("{id}: the late answer is refused: {:?}", answer.answers)
            };
            assert_eq!(why.to_string(), "the command is already TIMED_OUT");
            assert_eq!(stored.result, None);
        }
        let logged = command_changes(&b).into_iter().filter(|(i, s)| i == id && s.is_terminal()).count();
        assert_eq!(logged, 1, "{id}: one finish in the log");
    }
    assert!(a.open_commands().unwrap().is_empty());
}

#[test]
fn nodes_making_commands_at_once_keep_the_caps_and_unique_ids() {
    let pg = Postgres::start();
    let (a, b) = (node(&pg), node(&pg));
    let barrier = Barrier::new(2);
    let made: Vec<Vec<Result<Command, CommandRefusal>>> = std::thread::scope(|s| {
        let handles = [&a, &b].map(|store| {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                (0..70)
                    .map(|_| store.apply_commands(&[create("hot")], 1_000).unwrap().answers.remove(0))
                    .collect()
            })
        });
        handles.map(|h| h.join().unwrap()).into()
    });
    let ok: Vec<&Command> = made.iter().flatten().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ok.len(), MAX_PENDING_PER_DEVICE, "the device's cap, counted across nodes");
    let refused =
        made.iter().flatten().filter(|r| **r == Err(CommandRefusal::TooMany(MAX_PENDING_PER_DEVICE)));
    assert_eq!(refused.count(), 140 - MAX_PENDING_PER_DEVICE);
    let unique: BTreeSet<&str> = ok.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(unique.len(), ok.len(), "no id handed out twice");
    assert_eq!(b.open_commands().unwrap().len(), MAX_PENDING_PER_DEVICE);

    // Bulks opened at once: distinct ids, and no more kept than the cap.
    let opened: Vec<String> = std::thread::scope(|s| {
        let handles = [&a, &b].map(|store| {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                (0..70).map(|_| store.open_bulk(&asked(1), 5_000).unwrap().id).collect::<Vec<_>>()
            })
        });
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let distinct: BTreeSet<u64> = opened.iter().map(|id| id_counter(id).unwrap()).collect();
    assert_eq!(distinct.len(), 140, "no bulk id handed out twice");
    let kept: Vec<u64> =
        distinct.iter().copied().filter(|n| a.bulk(&command_id(*n)).unwrap().is_some()).collect();
    assert_eq!(kept.len(), MAX_BULKS, "the newest kept");
    assert_eq!(kept, distinct.iter().rev().take(MAX_BULKS).rev().copied().collect::<Vec<_>>());
}

#[test]
fn two_slices_of_one_bulk_on_two_nodes_take_distinct_places() {
    let pg = Postgres::start();
    let (a, b) = (node(&pg), node(&pg));
    let bulk = a.open_bulk(&asked(80), 1_000).unwrap();
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        for (i, store) in [&a, &b].into_iter().enumerate() {
            let (barrier, id) = (&barrier, &bulk.id);
            s.spawn(move || {
                barrier.wait();
                for slice in 0..8 {
                    let ops: Vec<CommandOp> = (0..5).map(|k| create(&format!("n{i}-{slice}-{k}"))).collect();
                    assert!(store.add_to_bulk(id, &ops, 2_000).unwrap().is_some());
                }
            });
        }
    });
    let (stored, members) = b.bulk(&bulk.id).unwrap().unwrap();
    assert_eq!(stored.handled, 80);
    assert_eq!(members.len(), 80, "every device has its place");
    let devices: BTreeSet<&str> = members.iter().map(|m| m.device.as_str()).collect();
    assert_eq!(devices.len(), 80);
    let open = a.open_commands().unwrap();
    for member in &members {
        assert!(
            open.iter().any(|c| Some(&c.id) == member.id.as_ref() && c.device == member.device),
            "{member:?}"
        );
    }
}

// ---- Durability ----

#[test]
fn acknowledged_command_states_survive_kill_9_of_postgres() {
    let mut pg = Postgres::start();
    let store = Arc::new(node(&pg));
    // (device, id) → the state last acknowledged, and the move under way when the database
    // went.
    type Key = (String, String);
    let acked: Arc<Mutex<BTreeMap<Key, CommandStatus>>> = Arc::default();
    let pending: Arc<Mutex<Option<(Key, CommandStatus)>>> = Arc::default();
    let writer = {
        let (store, acked, pending) = (store.clone(), acked.clone(), pending.clone());
        std::thread::spawn(move || {
            let steps = [
                (CommandEvent::Sent(Receipt::Observable), CommandStatus::Sent),
                (CommandEvent::Delivered, CommandStatus::Delivered),
                (CommandEvent::Answered(Reply::Ok(Some(json!(1)))), CommandStatus::Succeeded),
            ];
            for round in 0..100_000 {
                let device = format!("k{}", round % 10);
                let Ok(made) = store.apply_commands(&[create(&device)], 1_000 + round) else { return };
                let key = (device.clone(), made.changed[0].id.clone());
                acked.lock().unwrap().insert(key.clone(), CommandStatus::Queued);
                for (happened, status) in steps.clone() {
                    *pending.lock().unwrap() = Some((key.clone(), status));
                    if store.apply_commands(&[event(&device, &key.1, happened)], 2_000 + round).is_err() {
                        return;
                    }
                    acked.lock().unwrap().insert(key.clone(), status);
                }
                *pending.lock().unwrap() = None;
            }
            panic!("the writer never saw the database go");
        })
    };
    // Killed in the middle of the writes, once some were acknowledged.
    while acked.lock().unwrap().len() < 100 {
        assert!(!writer.is_finished(), "the writer stopped before the crash: {:?}", acked.lock().unwrap());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    pg.kill9();
    writer.join().unwrap();
    pg.restart();
    let acked = acked.lock().unwrap().clone();
    let pending = pending.lock().unwrap().clone();
    let store = node(&pg);
    for ((device, id), status) in &acked {
        let stored = store
            .command(device, id)
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged {id} of {device} lost"));
        let in_flight = pending.as_ref().filter(|(key, _)| key.0 == *device && key.1 == *id).map(|(_, s)| *s);
        assert!(
            stored.status == *status || Some(stored.status) == in_flight,
            "{id} of {device}: acknowledged {status:?}, stored {:?}",
            stored.status
        );
    }
    // Every acknowledged change is in the log (ids repeat across devices: counted by pairs).
    let logged: BTreeSet<(String, String, &str)> = changes(&store)
        .into_iter()
        .filter_map(|e| match e {
            LiveEvent::Command { command, .. } => Some((command.device, command.id, command.status.label())),
            _ => None,
        })
        .collect();
    for ((device, id), status) in &acked {
        assert!(
            logged.contains(&(device.clone(), id.clone(), status.label())),
            "{id} of {device} {status:?} in the log"
        );
    }
    // The device's counter was kept: its next id is past every one it had.
    let highest = acked.keys().filter(|(d, _)| d == "k0").filter_map(|(_, id)| id_counter(id)).max().unwrap();
    let next = store.apply_commands(&[create("k0")], 1_000).unwrap();
    let next = id_counter(&next.changed[0].id).unwrap();
    // One more if the crash came as k0's next command was made, committed unacknowledged.
    assert!(next == highest + 1 || next == highest + 2, "next {next}, highest acknowledged {highest}");
}
