//! `bench pg-commands URL [COMMANDS]`: commands on the PostgreSQL store (issue 18) against the
//! redb store, through the same synchronous traits the server's writer calls. URL is a
//! database the benchmark may create a database next to (as scripts/pg.sh prints); COMMANDS
//! (10,000) go to 1,000 devices.
//!
//! Lines, each store:
//! - made in bulk slices of 1,000 (`add_to_bulk`, one transaction a slice: the commands, their
//!   places, their changes): commands a second.
//! - sent, one call each (`apply_commands` with one op, as a PUBACK or a dispatch alone is
//!   stored when the writer has nothing else): transitions a second, and the median and 99th
//!   percentile of a call.
//! - PostgreSQL only: delivered, one call each, spread over 4 nodes (stores with their own
//!   pools) at once; then answered by 2 nodes racing on every command (each transition made
//!   once, the loser told), a pair of calls per command.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use server::store::postgres::{PgBlocking, PgSettings};
use server::store::{Bulk, BulkStore, CommandOp, CommandStore, RedbStore};
use telemetry::command::{CommandEvent, NewCommand, Receipt, Reply};
use telemetry::{Millis, SourceError};

const DEVICES: usize = 1_000;
const SLICE: usize = 1_000;
const NODES: usize = 4;
/// 2025-12-01 00:00 UTC.
const T0: Millis = 1_764_547_200_000;

pub fn run(url: &str, commands: usize) {
    let commands = commands.clamp(DEVICES, telemetry::command::MAX_PENDING);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let redb = RedbStore::open(&dir.path().join("commands.redb")).expect("a redb store");
    let url = fresh_database(url);
    let settings = PgSettings::new(&url);
    let pg = PgBlocking::open(&settings).expect("PostgreSQL at the URL");
    println!("| {commands} commands to {DEVICES} devices | seconds | a second | call p50 ms | call p99 ms |");
    println!("|---|---:|---:|---:|---:|");
    let made_redb = make("redb", &redb, commands);
    let made_pg = make("PostgreSQL", &pg, commands);
    one_each("redb", &redb, &made_redb, CommandEvent::Sent(Receipt::Observable), "sent");
    one_each("PostgreSQL", &pg, &made_pg, CommandEvent::Sent(Receipt::Observable), "sent");
    let nodes: Vec<PgBlocking> = (0..NODES).map(|_| PgBlocking::open(&settings).expect("a node")).collect();
    spread(&nodes, &made_pg);
    race(&nodes[..2], &made_pg);
}

/// A database of its own next to `url`'s; answers its URL.
fn fresh_database(url: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let (admin, connection) =
            tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("PostgreSQL at the URL");
        tokio::spawn(connection);
        admin.batch_execute("DROP DATABASE IF EXISTS bench_commands").await.expect("drop");
        admin.batch_execute("CREATE DATABASE bench_commands").await.expect("create");
    });
    let (base, _) = url.rsplit_once('/').expect("a URL ending in /database");
    format!("{base}/bench_commands")
}

fn create(device: usize) -> CommandOp {
    let checked = NewCommand {
        method: "identify".into(),
        params: Some(serde_json::json!({"secs": 5})),
        ..Default::default()
    }
    .check()
    .expect("a valid command");
    CommandOp::Create { device: format!("dev{device:04}"), checked, by: "bench".into(), observable: true }
}

fn row(what: &str, n: usize, took: Duration, calls: &mut [Duration]) {
    let secs = took.as_secs_f64();
    let (p50, p99) = if calls.is_empty() {
        ("".to_owned(), "".to_owned())
    } else {
        calls.sort();
        let at = |q: f64| calls[((calls.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
        (format!("{:.2}", at(0.5)), format!("{:.2}", at(0.99)))
    };
    println!("| {what} | {secs:.2} | {:.0} | {p50} | {p99} |", n as f64 / secs);
}

/// Makes `commands` in bulk slices of [`SLICE`]; answers (device, id) of each.
fn make(name: &str, store: &(impl CommandStore + BulkStore), commands: usize) -> Vec<(String, String)> {
    let bulk = Bulk {
        id: String::new(),
        created_by: "bench".into(),
        created_at: T0,
        method: "identify".into(),
        query: None,
        requested: commands as u32,
        handled: 0,
    };
    let started = Instant::now();
    let bulk = store.open_bulk(&bulk, T0).expect("a bulk");
    let mut made = Vec::with_capacity(commands);
    let mut calls = Vec::new();
    for first in (0..commands).step_by(SLICE) {
        let ops: Vec<CommandOp> =
            (first..(first + SLICE).min(commands)).map(|k| create(k % DEVICES)).collect();
        let call = Instant::now();
        let applied = store.add_to_bulk(&bulk.id, &ops, T0).expect("stored").expect("the bulk");
        calls.push(call.elapsed());
        made.extend(applied.changed.into_iter().map(|c| (c.device, c.id)));
    }
    assert_eq!(made.len(), commands, "every command made");
    row(&format!("{name}: made, bulk slices of {SLICE}"), commands, started.elapsed(), &mut calls);
    made
}

/// One call per command, one op each.
fn one_each(
    name: &str,
    store: &impl CommandStore,
    made: &[(String, String)],
    event: CommandEvent,
    what: &str,
) {
    let mut calls = Vec::with_capacity(made.len());
    let started = Instant::now();
    for (device, id) in made {
        let op = CommandOp::Event { device: device.clone(), id: id.clone(), event: event.clone() };
        let call = Instant::now();
        let applied = store.apply_commands(&[op], T0 + 1_000).expect("stored");
        calls.push(call.elapsed());
        assert_eq!(applied.changed.len(), 1, "a transition");
    }
    row(&format!("{name}: {what}, one call each"), made.len(), started.elapsed(), &mut calls);
}

/// Delivered, one call each, the commands dealt among the nodes.
fn spread(nodes: &[PgBlocking], made: &[(String, String)]) {
    let barrier = Barrier::new(nodes.len());
    let started = Instant::now();
    let mut calls: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let mut calls = Vec::new();
                    for (device, id) in made.iter().skip(i).step_by(nodes.len()) {
                        let op = CommandOp::Event {
                            device: device.clone(),
                            id: id.clone(),
                            event: CommandEvent::Delivered,
                        };
                        let call = Instant::now();
                        let applied = node.apply_commands(&[op], T0 + 2_000).expect("stored");
                        calls.push(call.elapsed());
                        assert_eq!(applied.changed.len(), 1, "a transition");
                    }
                    calls
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a node")).collect()
    });
    row(
        &format!("PostgreSQL: delivered, one call each, {} nodes at once", nodes.len()),
        made.len(),
        started.elapsed(),
        &mut calls,
    );
}

/// Two nodes answer every command at once: one transition each, counted.
fn race(nodes: &[PgBlocking], made: &[(String, String)]) {
    let barrier = Barrier::new(nodes.len());
    let started = Instant::now();
    let results: Vec<(usize, Vec<Duration>)> = std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|node| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let mut won = 0;
                    let mut calls = Vec::new();
                    for (device, id) in made {
                        let event = CommandEvent::Answered(Reply::Ok(None));
                        let op = CommandOp::Event { device: device.clone(), id: id.clone(), event };
                        let call = Instant::now();
                        match node.apply_commands(&[op], T0 + 3_000) {
                            Ok(applied) => won += applied.changed.len(),
                            Err(e) => panic!("{:?}", SourceError::from(e)),
                        }
                        calls.push(call.elapsed());
                    }
                    (won, calls)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a node")).collect()
    });
    let won: usize = results.iter().map(|(w, _)| w).sum();
    assert_eq!(won, made.len(), "each command answered once");
    let mut calls: Vec<Duration> = results.into_iter().flat_map(|(_, c)| c).collect();
    row(
        &format!("PostgreSQL: answered by {} nodes racing on each (transitions)", nodes.len()),
        made.len(),
        started.elapsed(),
        &mut calls,
    );
}
