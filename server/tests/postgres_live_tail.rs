//! Cluster mode's live fan-out on a real PostgreSQL: three nodes store batches at once, and a
//! fourth node's hub, fed from the change log, passes on every change exactly once and in
//! order, over 100 rounds of concurrent writes; a tail whose database goes away and comes back
//! picks up where it stopped.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::postgres::Postgres;
use server::cluster::tail;
use server::hub::Hub;
use server::store::Incoming;
use server::store::postgres::{PgSettings, PgStore};
use telemetry::{DeviceId, LiveEvent, Message, Millis};

/// 2025-12-06 05:46:40 UTC.
const T0: Millis = 1_765_000_000_000;

fn message(device: &str, ts: Millis) -> Incoming {
    Incoming { message: Message::new(DeviceId::try_from(device).unwrap(), ts, [("t", 1.0)]), received: ts }
}

async fn open(pg: &Postgres) -> Arc<PgStore> {
    Arc::new(PgStore::open(&PgSettings::new(&pg.url)).await.unwrap())
}

/// The numbers of the next `count` events the hub passes on (waiting up to 10 s for each).
async fn next_seqs(
    rx: &mut tokio::sync::broadcast::Receiver<Arc<server::hub::HubEvent>>,
    count: u64,
) -> Vec<u64> {
    let mut seqs = Vec::new();
    for _ in 0..count {
        let event = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the hub passes the change on within 10 s")
            .expect("the hub's window was not overrun");
        let event: LiveEvent = serde_json::from_str(&event.json).unwrap();
        seqs.push(event.seq().expect("a numbered change"));
    }
    seqs
}

/// The tail's outputs: `hub`, and a command feed nobody reads here.
fn feeds(hub: &Hub) -> tail::Feeds {
    tail::Feeds {
        hub: hub.clone(),
        commands: tokio::sync::broadcast::channel(16).0,
        notifier: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nodes_live_clients_see_every_nodes_changes_once_and_in_order_over_100_rounds() {
    let pg = Postgres::start();
    let writers = [open(&pg).await, open(&pg).await, open(&pg).await];
    let reader = open(&pg).await;
    let hub = Hub::new(100_000);
    let mut rx = hub.subscribe();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let tailing = tokio::spawn(tail::run(reader.clone(), feeds(&hub), 0, stop));

    let mut expected = 0u64;
    for round in 0..100i64 {
        // Three nodes commit at once, each a batch of 1 to 3 messages, a redelivery now and
        // then (which numbers nothing).
        let tasks: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(w, node)| {
                let node = node.clone();
                tokio::spawn(async move {
                    let n = 1 + (round + w as i64) % 3;
                    let mut batch: Vec<Incoming> =
                        (0..n).map(|m| message(&format!("node{w}"), T0 + round * 10 + m)).collect();
                    if round % 7 == 3 && round > 0 {
                        batch.push(message(&format!("node{w}"), T0 + (round - 1) * 10));
                    }
                    node.ingest(&batch).await.unwrap().events.len() as u64
                })
            })
            .collect();
        let mut numbered = 0;
        for task in tasks {
            numbered += task.await.unwrap();
        }
        let seqs = next_seqs(&mut rx, numbered).await;
        assert_eq!(seqs, (expected + 1..=expected + numbered).collect::<Vec<_>>(), "round {round}");
        expected += numbered;
    }
    assert_eq!(reader.last_seq().await.unwrap(), expected);
    // Nothing more than what was committed.
    assert!(tokio::time::timeout(Duration::from_millis(300), rx.recv()).await.is_err(), "no repeats");
    stop_tx.send(true).unwrap();
    tailing.await.unwrap();
    drop((writers, reader));
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tail_picks_up_after_the_database_restarts() {
    let mut pg = Postgres::start();
    let writer = open(&pg).await;
    let reader = open(&pg).await;
    let hub = Hub::new(1_000);
    let mut rx = hub.subscribe();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let tailing = tokio::spawn(tail::run(reader.clone(), feeds(&hub), 0, stop));
    writer.ingest(&[message("a", T0)]).await.unwrap();
    assert_eq!(next_seqs(&mut rx, 1).await, [1]);

    // Killed -9 and started again: the listener's connection and the pool's are gone.
    let pg = tokio::task::spawn_blocking(move || {
        pg.kill9();
        pg.restart();
        pg
    })
    .await
    .unwrap();
    // The writer's pooled connections died with the server: the pool makes new ones.
    let mut stored = false;
    for _ in 0..50 {
        if writer.ingest(&[message("a", T0 + 1), message("a", T0 + 2)]).await.is_ok() {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stored, "the database is back");
    assert_eq!(next_seqs(&mut rx, 2).await, [2, 3], "read from the log once the tail listens again");
    stop_tx.send(true).unwrap();
    tailing.await.unwrap();
    drop((writer, reader));
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}
