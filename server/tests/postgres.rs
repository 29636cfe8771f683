//! The PostgreSQL store's foundation against a real PostgreSQL (started per test by
//! common::postgres): ingest, redelivery, retention by partition, the change log's trimming
//! and its tail under concurrent writers, another node hearing of changes, kill -9 of the
//! database after acknowledgements, the schema migration.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::postgres::{Postgres, acknowledged_across_kill_9};
use server::store::Incoming;
use server::store::postgres::{LATEST_VERSION, PgError, PgSettings, PgStore, Span};
use telemetry::{DeviceId, LiveEvent, Message, Millis};

/// 2025-12-06 05:46:40 UTC.
const T0: Millis = 1_765_000_000_000;
const DAY: Millis = 86_400_000;

fn message(device: &str, ts: Millis, values: &[(&str, f64)]) -> Incoming {
    Incoming {
        message: Message::new(DeviceId::try_from(device).unwrap(), ts, values.iter().copied()),
        received: ts + 250,
    }
}

async fn open(pg: &Postgres) -> PgStore {
    PgStore::open(&PgSettings::new(&pg.url)).await.unwrap()
}

/// A plain connection for looking at the tables directly.
async fn raw(pg: &Postgres) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

fn reading(json: &str) -> (String, Millis) {
    match serde_json::from_str(json).unwrap() {
        LiveEvent::Reading { device, ts, .. } => (device, ts),
        other => panic!("not a reading: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_stored_and_read_back_and_a_redelivery_is_stored_once() {
    let pg = Postgres::start();
    let store = open(&pg).await;
    let batch = vec![
        message("d1", T0, &[("t", 20.5), ("h", 40.0)]),
        message("d1", T0 + 1000, &[("t", 20.6)]),
        message("d2", T0, &[("t", 19.0)]),
        // The same reading again within the batch: the first is kept.
        message("d1", T0, &[("t", 99.0)]),
    ];
    let out = store.ingest(&batch).await.unwrap();
    assert_eq!((out.stored, out.duplicates, out.fresh_messages), (4, 1, 3));
    let seqs: Vec<Option<u64>> = out.events.iter().map(LiveEvent::seq).collect();
    assert_eq!(seqs, [Some(1), Some(2), Some(3)]);

    assert_eq!(
        store.points("d1", "t", 0, Millis::MAX, None, 100).await.unwrap(),
        [(T0, 20.5), (T0 + 1000, 20.6)]
    );
    assert_eq!(store.points("d1", "h", 0, Millis::MAX, None, 100).await.unwrap(), [(T0, 40.0)]);
    assert_eq!(store.points("d2", "t", 0, Millis::MAX, None, 100).await.unwrap(), [(T0, 19.0)]);
    assert_eq!(store.points("d1", "t", T0 + 1, T0 + 1001, None, 100).await.unwrap(), [(T0 + 1000, 20.6)]);
    assert!(store.points("d3", "t", 0, Millis::MAX, None, 100).await.unwrap().is_empty());

    let changes = store.changes_after(0, 100).await.unwrap();
    let tail: Vec<(u64, (String, Millis))> = changes.iter().map(|(s, j)| (*s, reading(j))).collect();
    assert_eq!(
        tail,
        [(1, ("d1".into(), T0)), (2, ("d1".into(), T0 + 1000)), (3, ("d2".into(), T0))],
        "the change log holds what was sent live"
    );
    assert_eq!(changes.iter().map(|(_, j)| j.as_str()).collect::<Vec<_>>(), out.wire);
    let d1 = store.device_counts("d1").await.unwrap().unwrap();
    assert_eq!((d1.message_count, d1.last_change, d1.first_seen, d1.last_seen), (2, 2, T0 + 250, T0 + 1250));

    // Redelivered whole (a broker resending after a lost acknowledgement): nothing new.
    let again = store.ingest(&batch).await.unwrap();
    assert_eq!((again.stored, again.duplicates, again.fresh_messages), (0, 5, 0));
    assert!(again.events.is_empty());
    assert_eq!(store.last_seq().await.unwrap(), 3);
    assert_eq!(store.device_counts("d1").await.unwrap().unwrap().message_count, 2);
    assert_eq!(
        store.points("d1", "t", T0, T0 + 1, None, 10).await.unwrap(),
        [(T0, 20.5)],
        "the first value stays"
    );

    // Part old, part new: only the new is stored and numbered.
    let mixed = [message("d1", T0, &[("t", 20.5)]), message("d1", T0 + 2000, &[("t", 20.7)])];
    let out = store.ingest(&mixed).await.unwrap();
    assert_eq!((out.stored, out.duplicates, out.fresh_messages), (1, 1, 1));
    assert_eq!(out.events[0].seq(), Some(4));

    // Two nodes given the same new batch at the same moment (a shared subscription moving a
    // message to another node while the first still commits): stored once between them.
    let other = open(&pg).await;
    let batch: Vec<Incoming> =
        (0..200).map(|i| message(&format!("n{}", i % 10), T0 + i, &[("t", 1.0)])).collect();
    let (a, b) = tokio::join!(store.ingest(&batch), other.ingest(&batch));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.stored + b.stored, a.duplicates + b.duplicates), (200, 200));
    assert_eq!(a.fresh_messages + b.fresh_messages, 200);
    assert_eq!(store.last_seq().await.unwrap(), 204);
    let client = raw(&pg).await;
    assert_eq!(count(&client, "SELECT count(*) FROM readings").await, 205);
    assert_eq!(count(&client, "SELECT count(*) FROM changes").await, 204);
    assert_eq!(count(&client, "SELECT sum(message_count)::bigint FROM devices").await, 204);
}

/// Ingest copies a batch straight into the readings while it expects it new, and a COPY fails
/// whole on one reading already stored: the batch is then staged and merged in a new
/// transaction. Whichever way a batch went, what it stored, its counts and its changes are
/// exact, and the numbers a failed COPY never took are not skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_meets_a_stored_reading_stores_the_rest_once_and_counts_it() {
    let pg = Postgres::start();
    let store = open(&pg).await;
    let other = open(&pg).await;
    let batch: Vec<Incoming> = (0..100)
        .map(|i| message(&format!("s{}", i % 7), T0 + i * 1000, &[("t", i as f64), ("h", 50.0)]))
        .collect();
    // Another node already stored one reading of the batch's last message.
    let out = other.ingest(&[message("s1", T0 + 99_000, &[("t", 99.0)])]).await.unwrap();
    assert_eq!((out.stored, out.duplicates, out.fresh_messages), (1, 0, 1));
    // This node's COPY writes 99 messages before it meets that reading.
    let out = store.ingest(&batch).await.unwrap();
    assert_eq!((out.stored, out.duplicates, out.fresh_messages), (199, 1, 100));
    let seqs: Vec<u64> = out.events.iter().filter_map(LiveEvent::seq).collect();
    assert_eq!(seqs, (2..=101).collect::<Vec<u64>>(), "numbered on from the other node's change");
    // Then a new batch (staged, finding nothing stored), and another (straight in again).
    for round in 1..=2 {
        let next: Vec<Incoming> = batch
            .iter()
            .map(|i| message(i.message.device.as_str(), i.message.ts + round * DAY, &[("t", 1.0)]))
            .collect();
        let out = store.ingest(&next).await.unwrap();
        assert_eq!((out.stored, out.duplicates, out.fresh_messages), (100, 0, 100), "round {round}");
    }
    // And a redelivery of the first batch: nothing new, nothing counted.
    let out = store.ingest(&batch).await.unwrap();
    assert_eq!((out.stored, out.duplicates, out.fresh_messages), (0, 200, 0));
    assert!(out.events.is_empty());

    let client = raw(&pg).await;
    assert_eq!(count(&client, "SELECT count(*) FROM readings").await, 400);
    assert_eq!(count(&client, "SELECT count(*) FROM rollup_pending").await, 400, "queued once each");
    assert_eq!(count(&client, "SELECT count(*) FROM changes").await, 301);
    assert_eq!(store.last_seq().await.unwrap(), 301);
    assert_eq!(count(&client, "SELECT sum(message_count)::bigint FROM devices").await, 301);
    assert_eq!(
        store.points("s1", "t", T0 + 99_000, T0 + 99_000, None, 10).await.unwrap(),
        [(T0 + 99_000, 99.0)],
        "the reading stored first stays"
    );
    assert_eq!(
        store.points("s1", "h", T0 + 99_000, T0 + 99_000, None, 10).await.unwrap(),
        [(T0 + 99_000, 50.0)]
    );
}

/// Two nodes given the same new readings at once, in opposite orders, three times (straight
/// COPY against straight COPY, then against the staged merge the loser falls back to): both
/// insert in key order, so neither waits for the other in a circle (in arrival order they
/// deadlocked, and PostgreSQL failed one), and every reading is stored and counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_copying_the_same_readings_in_opposite_orders_store_each_once() {
    let pg = Postgres::start();
    let (a, b) = (open(&pg).await, open(&pg).await);
    for round in 0..3 {
        let forward: Vec<Incoming> = (0..2000)
            .map(|i| message(&format!("o{}", i % 20), T0 + round * DAY + i * 1000, &[("t", i as f64)]))
            .collect();
        let backward: Vec<Incoming> = forward.iter().rev().cloned().collect();
        let (x, y) = tokio::join!(a.ingest(&forward), b.ingest(&backward));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!((x.stored + y.stored, x.duplicates + y.duplicates), (2000, 2000), "round {round}");
        assert_eq!(x.fresh_messages + y.fresh_messages, 2000, "round {round}");
    }
    let client = raw(&pg).await;
    assert_eq!(count(&client, "SELECT count(*) FROM readings").await, 6000);
    assert_eq!(count(&client, "SELECT count(*) FROM rollup_pending").await, 6000);
    assert_eq!(count(&client, "SELECT count(*) FROM changes").await, 6000);
    assert_eq!(count(&client, "SELECT max(seq) FROM changes").await, 6000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_whole_partitions_and_a_late_reading_makes_its_partition_again() {
    let pg = Postgres::start();
    let store = open(&pg).await;
    let other = open(&pg).await;
    assert_eq!(store.span(), Span::DAY);
    let day = |n: i64| Span::DAY.start_of(T0) + n * DAY;
    // Three days of readings, an hour into each.
    for n in [-3, -2, -1] {
        store.ingest(&[message("old", day(n) + 3_600_000, &[("t", n as f64)])]).await.unwrap();
    }
    // The other node writes into day -2 too (and so knows that partition).
    other.ingest(&[message("other", day(-2) + 60_000, &[("t", 2.0)])]).await.unwrap();
    // Made ahead, as upkeep would: today and the next two days.
    assert_eq!(store.ensure_partitions(day(0), day(2)).await.unwrap(), 3);
    assert_eq!(store.ensure_partitions(day(0), day(2)).await.unwrap(), 0, "known: nothing made");
    let names = store.partitions().await.unwrap();
    assert_eq!(names.len(), 6, "{names:?}");
    assert_eq!(names[0], "readings_p2025120300");

    // The horizon in the middle of day -1: days -3 and -2 end before it, day -1 does not.
    let dropped = store.drop_partitions_before(day(-1) + 12 * 3_600_000).await.unwrap();
    assert_eq!(dropped, ["readings_p2025120300", "readings_p2025120400"]);
    assert_eq!(store.partitions().await.unwrap().len(), 4);
    assert_eq!(
        store.points("old", "t", 0, Millis::MAX, None, 10).await.unwrap(),
        [(day(-1) + 3_600_000, -1.0)]
    );
    assert!(store.points("other", "t", 0, Millis::MAX, None, 10).await.unwrap().is_empty());
    let client = raw(&pg).await;
    assert_eq!(count(&client, "SELECT count(*) FROM readings").await, 1);
    assert_eq!(count(&client, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'readings_p%'").await, 4);
    assert!(
        store.drop_partitions_before(day(-1) + 12 * 3_600_000).await.unwrap().is_empty(),
        "nothing twice"
    );

    // A reading late enough to fall in a dropped day is stored (its partition made again,
    // for the next retention pass to drop), also by the node that still believed it existed.
    let late = other.ingest(&[message("other", day(-2) + 120_000, &[("t", 3.0)])]).await.unwrap();
    assert_eq!(late.stored, 1);
    assert_eq!(
        store.points("other", "t", 0, Millis::MAX, None, 10).await.unwrap(),
        [(day(-2) + 120_000, 3.0)]
    );
    assert_eq!(store.partitions().await.unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_log_is_trimmed_and_pruned_from_its_oldest_end() {
    let pg = Postgres::start();
    let store = open(&pg).await;
    // 100 messages received a second apart (at T0 + i s + 250 ms).
    for i in 0..100 {
        store.ingest(&[message("d", T0 + i * 1000, &[("t", i as f64)])]).await.unwrap();
    }
    assert_eq!(store.trim_changes(1_000).await.unwrap(), 0, "fewer than kept: none go");
    assert_eq!(store.trim_changes(90).await.unwrap(), 10);
    let left = store.changes_after(0, 1_000).await.unwrap();
    assert_eq!(left.first().map(|c| c.0), Some(11), "a client at 0 sees the log starts past 1: it reloads");
    assert_eq!(left.len(), 90);
    // Received before T0 + 30 s: changes 1 to 30, of which 11 to 30 were left.
    assert_eq!(store.prune_changes(T0 + 30_000).await.unwrap(), 20);
    let left = store.changes_after(0, 1_000).await.unwrap();
    assert_eq!((left.first().map(|c| c.0), left.last().map(|c| c.0), left.len()), (Some(31), Some(100), 70));
    // Numbering goes on from the counter, not from what is left.
    let out = store.ingest(&[message("d", T0 + 500_000, &[("t", 1.0)])]).await.unwrap();
    assert_eq!(out.events[0].seq(), Some(101));
    assert_eq!(
        store.points("d", "t", 0, Millis::MAX, None, 1_000).await.unwrap().len(),
        101,
        "readings stay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_hears_of_the_changes_another_node_commits_and_reads_them() {
    let wait = std::time::Duration::from_secs(5);
    let pg = Postgres::start();
    let writer = open(&pg).await;
    let reader = open(&pg).await;
    let mut follower = reader.follow().await.unwrap();
    assert_eq!(follower.latest(), 0);
    let mut last = 0;
    for b in 0..5i64 {
        let batch = [message("d", T0 + b * 2, &[("t", 1.0)]), message("d", T0 + b * 2 + 1, &[("t", 2.0)])];
        writer.ingest(&batch).await.unwrap();
        let expected = 2 * (b as u64 + 1);
        while follower.latest() < expected {
            let heard = tokio::time::timeout(wait, follower.changed()).await.expect("heard within 5 s");
            assert!(heard.is_some(), "the listener is open");
        }
        assert_eq!(follower.latest(), expected, "the commit's last number");
        // Heard means committed: the changes are there to read.
        let seqs: Vec<u64> = reader.changes_after(last, 100).await.unwrap().iter().map(|c| c.0).collect();
        assert_eq!(seqs, (last + 1..=expected).collect::<Vec<_>>());
        last = expected;
    }
    // A redelivery numbers nothing, so nothing is announced.
    writer.ingest(&[message("d", T0, &[("t", 1.0)])]).await.unwrap();
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(500), follower.changed()).await;
    assert!(quiet.is_err(), "nothing heard: {quiet:?}");
    // The database goes away: the follower says so instead of waiting for ever.
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
    assert_eq!(tokio::time::timeout(wait, follower.changed()).await.expect("told within 5 s"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_change_log_tail_under_four_concurrent_writers_skips_and_repeats_nothing() {
    const WRITERS: usize = 4;
    const BATCHES: i64 = 150;
    let pg = Postgres::start();
    // Each writer is a node of its own (its own pool), as in a cluster.
    let mut nodes = Vec::new();
    for _ in 0..WRITERS {
        nodes.push(Arc::new(open(&pg).await));
    }
    let tailer = open(&pg).await;
    let done = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for (w, node) in nodes.iter().enumerate() {
        let node = node.clone();
        writers.push(tokio::spawn(async move {
            let mut fresh: Vec<(String, Millis)> = Vec::new();
            for b in 0..BATCHES {
                // 1 to 7 messages, and now and then one already stored (no change for it).
                let mut batch: Vec<Incoming> = (0..(b % 7) + 1)
                    .map(|m| message(&format!("w{w}_{}", m % 3), T0 + b * 10 + m, &[("t", b as f64)]))
                    .collect();
                if b % 5 == 4 {
                    batch.push(message(&format!("w{w}_0"), T0, &[("t", 0.0)]));
                }
                let out = node.ingest(&batch).await.unwrap();
                for event in &out.events {
                    if let LiveEvent::Reading { device, ts, .. } = event {
                        fresh.push((device.clone(), *ts));
                    }
                }
            }
            fresh
        }));
    }
    let tail = {
        let done = done.clone();
        async move {
            let mut last = 0;
            let mut seen: BTreeSet<(String, Millis)> = BTreeSet::new();
            let mut polls_with_news_while_writing = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let changes = tailer.changes_after(last, 50).await.unwrap();
                if !changes.is_empty() && !finished {
                    polls_with_news_while_writing += 1;
                }
                for (seq, json) in &changes {
                    assert_eq!(*seq, last + 1, "the tail went from {last} to {seq}: a change skipped");
                    assert!(seen.insert(reading(json)), "change {seq} twice");
                    last = *seq;
                }
                if finished && changes.is_empty() {
                    break;
                }
            }
            (last, seen, polls_with_news_while_writing)
        }
    };
    let tail = tokio::spawn(tail);
    let mut written: BTreeSet<(String, Millis)> = BTreeSet::new();
    for writer in writers {
        for r in writer.await.unwrap() {
            assert!(written.insert(r.clone()), "{r:?} numbered twice");
        }
    }
    done.store(true, Ordering::SeqCst);
    let (last, seen, polls) = tail.await.unwrap();
    let expected = WRITERS as u64 * (0..BATCHES).map(|b| (b % 7 + 1) as u64).sum::<u64>();
    assert_eq!(written.len() as u64, expected);
    assert_eq!(last, expected);
    assert_eq!(seen, written, "the tail saw exactly what the writers stored");
    assert!(polls >= 10, "the tail read while the writers wrote ({polls} polls with news)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_acknowledged_survives_kill_9_of_postgres() {
    let mut pg = Postgres::start();
    let store = Arc::new(open(&pg).await);
    let acked: Vec<(String, Millis, f64)> = {
        let (store, handle) = (store.clone(), tokio::runtime::Handle::current());
        tokio::task::block_in_place(|| {
            acknowledged_across_kill_9(&mut pg, 300, move |b| {
                let batch: Vec<Incoming> = (0..10)
                    .map(|m| message(&format!("k{m}"), T0 + b * 1000, &[("t", (b * 10 + m) as f64)]))
                    .collect();
                handle.block_on(store.ingest(&batch)).map(|_| {
                    batch
                        .iter()
                        .map(|i| (i.message.device.as_str().to_owned(), i.message.ts, i.message.values[0].1))
                        .collect()
                })
            })
        })
    };
    let store = open(&pg).await;
    for device in (0..10).map(|m| format!("k{m}")) {
        let points: BTreeMap<Millis, f64> =
            store.points(&device, "t", 0, Millis::MAX, None, 1_000_000).await.unwrap().into_iter().collect();
        for (d, ts, value) in acked.iter().filter(|(d, _, _)| *d == device) {
            assert_eq!(points.get(ts), Some(value), "{d} at {ts} was acknowledged and is gone");
        }
    }
    // The change log is whole: numbers 1..=last, one per stored message.
    let client = raw(&pg).await;
    let last = store.last_seq().await.unwrap() as i64;
    assert!(last >= acked.len() as i64);
    assert_eq!(count(&client, "SELECT count(*) FROM changes").await, last);
    assert_eq!(count(&client, "SELECT max(seq) FROM changes").await, last);
    assert_eq!(count(&client, "SELECT count(*) FROM readings").await, last);
    println!("{} readings acknowledged before kill -9, {last} stored after recovery", acked.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_is_migrated_once_by_nodes_starting_together_and_a_newer_one_is_refused() {
    let pg = Postgres::start();
    let hourly = PgSettings { span: Span::from_hours(1).unwrap(), ..PgSettings::new(&pg.url) };
    let daily = PgSettings::new(&pg.url);
    let (a, b) = tokio::join!(PgStore::open(&hourly), PgStore::open(&daily));
    let (a, b) = (a.unwrap(), b.unwrap());
    // Whichever came first made the database; both use what it was made with.
    assert_eq!(a.span(), b.span());
    assert_eq!(PgStore::open(&daily).await.unwrap().span(), a.span(), "the stored span wins");
    let client = raw(&pg).await;
    let versions: Vec<i32> = client
        .query("SELECT version FROM schema_versions", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=LATEST_VERSION).collect::<Vec<_>>());

    client.execute("INSERT INTO schema_versions (version) VALUES (99)", &[]).await.unwrap();
    match PgStore::open(&daily).await {
        Err(PgError::NewerSchema { found: 99, known }) => assert_eq!(known, LATEST_VERSION),
        other => panic!("a newer schema is refused, not {:?}", other.map(|_| ())),
    }

    // Settings that cannot work are said before connecting; a database that is not there
    // is an error within the connect timeout, not a hang.
    let bad_url = PgStore::open(&PgSettings::new("postgres://host:notaport/db")).await;
    assert!(
        matches!(bad_url, Err(PgError::Setting(ref m)) if m.contains("URL")),
        "{:?}",
        bad_url.map(|_| ())
    );
    let no_pool = PgStore::open(&PgSettings { pool_size: 0, ..daily.clone() }).await;
    assert!(matches!(no_pool, Err(PgError::Setting(_))));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nobody =
        PgStore::open(&PgSettings::new(format!("postgres://postgres@127.0.0.1:{port}/postgres"))).await;
    assert!(matches!(nobody, Err(PgError::Pool(_))), "{:?}", nobody.map(|_| ()));
}
