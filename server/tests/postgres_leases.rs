//! Leases on a real PostgreSQL: one holder at a time, taken over once the holder stops
//! renewing (as after kill -9), and a holder that lost its lease has its work refused
//! (fencing), even when it still believes it holds it.

mod common;

use std::time::Duration;

use common::postgres::Postgres;
use futures::FutureExt;
use server::store::postgres::{Held, PgSettings, PgStore};

async fn open(pg: &Postgres) -> PgStore {
    PgStore::open(&PgSettings::new(&pg.url)).await.unwrap()
}

/// The work of a test lease: one row in `done`, only if the lease is still held.
async fn work(store: &PgStore, holder: &str, held: Held, what: &str) -> Option<()> {
    let what = what.to_owned();
    store
        .under_lease("partition/7", holder, held, move |tx| {
            async move {
                tx.execute("INSERT INTO done (what) VALUES ($1)", &[&what]).await?;
                Ok(())
            }
            .boxed()
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_holder_at_a_time_taken_over_after_it_stops_renewing_and_its_late_work_refused() {
    let pg = Postgres::start();
    let (a, b) = (open(&pg).await, open(&pg).await);
    let (client, connection) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute("CREATE TABLE done (what text NOT NULL)").await.unwrap();
    const LENGTH: i64 = 1_000;

    let held_a = a.acquire("partition/7", "node-a", LENGTH).await.unwrap().expect("free: a takes it");
    assert_eq!(b.acquire("partition/7", "node-b", LENGTH).await.unwrap(), None, "a holds it");
    // Renewing keeps it, at the same epoch, past its first length.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(a.renew("partition/7", "node-a", held_a, LENGTH).await.unwrap());
        assert_eq!(b.acquire("partition/7", "node-b", LENGTH).await.unwrap(), None);
    }
    assert_eq!(
        a.acquire("partition/7", "node-a", LENGTH).await.unwrap(),
        Some(held_a),
        "its own: same epoch"
    );
    assert_eq!(work(&a, "node-a", held_a, "a1").await, Some(()));

    // a stops renewing (a kill -9): b takes over once the lease runs out, within its length.
    let stopped = std::time::Instant::now();
    let held_b = loop {
        if let Some(held) = b.acquire("partition/7", "node-b", LENGTH).await.unwrap() {
            break held;
        }
        assert!(stopped.elapsed() < Duration::from_millis(2 * LENGTH as u64), "taken over in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(held_b.epoch > held_a.epoch, "a new holder, a new epoch");
    // a comes back believing it still holds the lease: its renewal and its work are refused.
    assert!(!a.renew("partition/7", "node-a", held_a, LENGTH).await.unwrap());
    assert_eq!(work(&a, "node-a", held_a, "a2").await, None, "fenced");
    assert_eq!(work(&b, "node-b", held_b, "b1").await, Some(()));
    let done: Vec<String> = client
        .query("SELECT what FROM done ORDER BY what", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(done, ["a1", "b1"], "nothing of the fenced work was committed");

    // A clean stop gives the lease up at once.
    assert!(b.release("partition/7", "node-b", held_b).await.unwrap());
    let held_a = a.acquire("partition/7", "node-a", LENGTH).await.unwrap().expect("free at once");
    assert!(held_a.epoch > held_b.epoch);
    assert_eq!(
        a.leases().await.unwrap(),
        [("partition/7".to_owned(), "node-a".to_owned(), true)],
        "who holds what, for the cluster page"
    );
    // Bad names and lengths are refused before the database is asked.
    assert!(a.acquire("", "node-a", LENGTH).await.is_err());
    assert!(a.acquire("x", &"n".repeat(129), LENGTH).await.is_err());
    assert!(a.acquire("x", "node-a", 10).await.is_err());
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_racing_for_a_free_lease_get_one_holder() {
    let pg = Postgres::start();
    let mut nodes = Vec::new();
    for _ in 0..4 {
        nodes.push(std::sync::Arc::new(open(&pg).await));
    }
    for round in 0..20 {
        let name = format!("race/{round}");
        let tasks: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let (node, name) = (node.clone(), name.clone());
                tokio::spawn(async move { node.acquire(&name, &format!("node-{i}"), 5_000).await.unwrap() })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            winners += task.await.unwrap().is_some() as usize;
        }
        assert_eq!(winners, 1, "round {round}");
    }
    drop(nodes);
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}

/// Two nodes keeping one lease (as two nodes' notification senders do): one holds it at a
/// time; a clean stop hands it on at once, and a node that dies (its keeper gone without a
/// word) is replaced once the lease runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepers_on_two_nodes_hold_one_at_a_time_and_hand_over_when_one_stops_or_dies() {
    use server::cluster::lease::{LENGTH, Lease};
    let pg = Postgres::start();
    let (store_a, store_b) = (std::sync::Arc::new(open(&pg).await), std::sync::Arc::new(open(&pg).await));
    let (a, b) = (Lease::new("notifications", "node-a"), Lease::new("notifications", "node-b"));
    let (stop_a_tx, stop_a) = tokio::sync::watch::channel(false);
    let (_stop_b_tx, stop_b) = tokio::sync::watch::channel(false);
    let keeping_a = tokio::spawn(a.clone().keep(store_a, stop_a));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let keeping_b = tokio::spawn(b.clone().keep(store_b, stop_b));
    for _ in 0..40 {
        assert!(a.held() && !b.held(), "a took it first and keeps it");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A clean stop: b takes over at its next try.
    stop_a_tx.send(true).unwrap();
    keeping_a.await.unwrap();
    assert!(!a.held());
    let handed = std::time::Instant::now();
    while !b.held() {
        assert!(handed.elapsed() < Duration::from_secs(5), "taken over within a renewal");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // b dies (its keeper stops without giving the lease up); a new keeper on a takes over once
    // the lease runs out, and not before.
    keeping_b.abort();
    let died = std::time::Instant::now();
    let (_stop_c_tx, stop_c) = tokio::sync::watch::channel(false);
    let c = Lease::new("notifications", "node-c");
    let keeping_c = tokio::spawn(c.clone().keep(std::sync::Arc::new(open(&pg).await), stop_c));
    while !c.held() {
        assert!(died.elapsed() < LENGTH + Duration::from_secs(5), "taken over after the lease ran out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(died.elapsed() >= LENGTH - Duration::from_secs(4), "not while b's last renewal lasted");
    keeping_c.abort();
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}

/// Partitions of one kind of work (the alarm engine's) shared out over three nodes: the first
/// takes them all, then hands back what is over its share as others join, never two holders
/// at once; a node that dies has its share taken over once its leases run out, and one that
/// stops cleanly hands its share on at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_spread_over_the_nodes_and_a_dead_nodes_share_is_taken_over() {
    use std::sync::Arc;

    use server::cluster::lease::LENGTH;
    use server::cluster::partitions::Partitions;
    use server::metrics::Metrics;

    let pg = Postgres::start();
    let mut stops = Vec::new();
    let mut start = async |node: &str| {
        let partitions = Partitions::new("work/", 8, node, Arc::new(Metrics::default()));
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        stops.push(stop_tx);
        let keeping = tokio::spawn(partitions.clone().keep(Arc::new(open(&pg).await), stop));
        (partitions, keeping)
    };

    let (a, _keeping_a) = start("node-a").await;
    until(&[&a], Duration::from_secs(5), |n| n == [8]).await;
    // b and c join: a hands one back a turn until each holds its share (3, 3, 2).
    let (b, keeping_b) = start("node-b").await;
    let (c, keeping_c) = start("node-c").await;
    let nodes = [&*a, &*b, &*c];
    until(&nodes, Duration::from_secs(30), |n| {
        n.iter().sum::<usize>() == 8 && n.iter().all(|&k| (2..=3).contains(&k))
    })
    .await;
    // c dies (its keeper gone without a word): a and b take its share once its leases run
    // out, and hold 4 each.
    keeping_c.abort();
    let took = until(&nodes, LENGTH + Duration::from_secs(8), |n| n[..2] == [4, 4]).await;
    assert!(took >= LENGTH - Duration::from_secs(4), "not while c's last renewal lasted ({took:?})");
    // b stops cleanly: a takes its share at its next turn.
    stops[1].send(true).unwrap();
    keeping_b.await.unwrap();
    until(&nodes, Duration::from_secs(5), |n| n == [8, 0, 0]).await;
    drop(stops);
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}

/// Waits up to `within` until `done` holds of how many partitions each of `nodes` holds,
/// checking at every look that no partition has two holders; answers how long it took.
async fn until(
    nodes: &[&server::cluster::partitions::Partitions],
    within: Duration,
    done: impl Fn(&[usize]) -> bool,
) -> Duration {
    use std::collections::BTreeSet;
    let from = std::time::Instant::now();
    loop {
        let held: Vec<BTreeSet<u32>> = nodes.iter().map(|p| p.holding().into_keys().collect()).collect();
        let all: BTreeSet<u32> = held.iter().flatten().copied().collect();
        assert_eq!(all.len(), held.iter().map(BTreeSet::len).sum::<usize>(), "two holders: {held:?}");
        let counts: Vec<usize> = held.iter().map(BTreeSet::len).collect();
        if done(&counts) {
            return from.elapsed();
        }
        assert!(from.elapsed() < within, "not within {within:?}: {held:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 8 partitions over 5 nodes: four hold 2 each, and when a fifth joins, one of them hands it
/// one, though none holds more than its share (8 over 5, rounded up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joining_when_the_others_hold_their_share_still_gets_a_partition() {
    use std::sync::Arc;

    use server::cluster::partitions::Partitions;
    use server::metrics::Metrics;

    let pg = Postgres::start();
    let mut keepers = Vec::new();
    let mut nodes = Vec::new();
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    for i in 0..5 {
        if i == 4 {
            let four: Vec<&Partitions> = nodes.iter().map(|p: &Arc<Partitions>| &**p).collect();
            until(&four, Duration::from_secs(40), |n| n == [2, 2, 2, 2]).await;
        }
        let partitions = Partitions::new("work/", 8, &format!("node-{i}"), Arc::new(Metrics::default()));
        keepers.push(tokio::spawn(partitions.clone().keep(Arc::new(open(&pg).await), stop.clone())));
        nodes.push(partitions);
    }
    let five: Vec<&Partitions> = nodes.iter().map(|p| &**p).collect();
    until(&five, Duration::from_secs(20), |n| {
        n.iter().sum::<usize>() == 8 && n.iter().all(|&k| (1..=2).contains(&k))
    })
    .await;
    for keeper in keepers {
        keeper.abort();
    }
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}
