//! `bench pg-ingest URL [READINGS]`: readings per second into PostgreSQL (issue 18), the
//! store's ingest path against PostgreSQL's own COPY of the same rows. URL is a database the
//! benchmark may create databases next to (`postgres://user@host:port/postgres`, as
//! scripts/pg.sh prints); READINGS (1,000,000) come from 1,000 devices × 4 metrics, one
//! message a second each.
//!
//! Each line gets a fresh database:
//! - COPY, BRIN only: one binary COPY of every row into a plain table indexed by BRIN on time
//!   alone, one transaction: what PostgreSQL takes in at best on this machine.
//! - COPY, partitioned with the primary key: the same into the store's `readings` (partitions
//!   made first), one transaction: what the (series, ts) key costs.
//! - the same in the ingest's batches, each its own transaction: what committing every 4,096
//!   readings costs; the rest of the gap to the ingest line is the staging table, the merge
//!   that skips duplicates and says what was new, the change log and the devices' rows.
//! - ingest, 1 node: `PgStore::ingest` in batches of 1,024 messages (4,096 readings, the
//!   writer's `commit_max_readings`), each its own committed transaction (the readings copied
//!   straight into `readings`, the new readings queued for their rollups, change log,
//!   devices).
//! - the same with every batch staged (`PgStore::ingest_staged`: COPY into the staging table,
//!   merge skipping duplicates and returning what was new), the path a batch takes after a
//!   redelivery: what the straight COPY saves.
//! - roll-up passes: that database's queued readings folded into their minute and hour
//!   rollups (what sealing does), a pass per 15 s of reading time; and the two together.
//! - ingest, 4 nodes: the same batches shared among four stores (pools) at once, as nodes
//!   of a cluster would.
//! - redelivery: every batch again into the 1-node database: all duplicates.
//!
//! Then the bytes on disk per reading (readings' partitions with their indexes) and per
//! change (the change log).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use server::store::Incoming;
use server::store::postgres::{PgSettings, PgStore};
use telemetry::{DeviceId, Message, Millis};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls};

const DEVICES: u64 = 1_000;
const METRICS: [&str; 4] = ["humidity", "pressure", "temperature", "voltage"];
const BATCH: usize = 1_024;
const NODES: usize = 4;
/// 2025-12-01 00:00 UTC.
const T0: Millis = 1_764_547_200_000;

pub fn run(url: &str, readings: u64) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(bench(url, readings));
}

fn messages(readings: u64) -> Vec<Incoming> {
    (0..readings / METRICS.len() as u64)
        .map(|k| {
            let device = DeviceId::try_from(format!("dev{:04}", k % DEVICES).as_str()).expect("an id");
            let ts = T0 + (k / DEVICES) as Millis * 1000;
            let x = k as f64;
            let values =
                METRICS.iter().enumerate().map(|(i, m)| (*m, (x * 0.001 + i as f64).sin() * 10.0 + 20.0));
            Incoming { message: Message::new(device, ts, values), received: ts + 40 }
        })
        .collect()
}

/// A fresh database next to `url`'s; answers its URL.
async fn database(url: &str, name: &str) -> String {
    let admin = connect(url).await;
    // One statement each: neither may run in a transaction, which a batch of two is.
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.expect("drop");
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create");
    let (base, _) = url.rsplit_once('/').expect("a URL ending in /database");
    format!("{base}/{name}")
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("PostgreSQL at the URL");
    tokio::spawn(connection);
    client
}

fn time(ms: Millis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms as u64)
}

/// Binary COPY of every reading as (series, ts, value) into `table`, in one transaction.
async fn copy_all(client: &mut Client, table: &str, batch: &[Incoming]) -> Duration {
    let started = Instant::now();
    let tx = client.transaction().await.expect("begin");
    let sink = tx
        .copy_in(&format!("COPY {table} (series, ts, value) FROM STDIN (FORMAT binary)"))
        .await
        .expect("copy");
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT4, Type::TIMESTAMPTZ, Type::FLOAT8]);
    let mut writer = std::pin::pin!(writer);
    for incoming in batch {
        let device: i32 = incoming.message.device.as_str()[3..].parse().expect("dev####");
        let at = time(incoming.message.ts);
        for (i, (_, value)) in incoming.message.values.iter().enumerate() {
            let series = device * METRICS.len() as i32 + i as i32 + 1;
            writer.as_mut().write(&[&series, &at, value]).await.expect("row");
        }
    }
    writer.finish().await.expect("copy done");
    tx.commit().await.expect("commit");
    started.elapsed()
}

async fn bench(url: &str, readings: u64) {
    let all = Arc::new(messages(readings));
    let readings = all.iter().map(|i| i.message.values.len() as u64).sum::<u64>();
    let rate = |d: Duration| readings as f64 / d.as_secs_f64();
    let mut lines: Vec<(String, Duration)> = Vec::new();

    // PostgreSQL's own COPY into a table indexed by BRIN on time alone.
    let mut client = connect(&database(url, "bench_copy_brin").await).await;
    client
        .batch_execute(
            "CREATE TABLE r (series integer NOT NULL, ts timestamptz NOT NULL, value double precision NOT NULL);
             CREATE INDEX ON r USING brin (ts);",
        )
        .await
        .expect("table");
    lines.push(("COPY, BRIN only (PostgreSQL's own)".into(), copy_all(&mut client, "r", &all).await));

    // The same into the store's partitioned readings with their primary key.
    let db = database(url, "bench_copy_pk").await;
    let store = PgStore::open(&PgSettings::new(&db)).await.expect("open");
    let last = all.iter().map(|i| i.message.ts).max().unwrap_or(T0);
    store.ensure_partitions(T0, last).await.expect("partitions");
    let mut client = connect(&db).await;
    lines.push((
        "COPY, partitioned with the (series, ts) key".into(),
        copy_all(&mut client, "readings", &all).await,
    ));

    // The same again, in the ingest's batches, each committed: what per-commit cost is.
    let db = database(url, "bench_copy_batches").await;
    let store = PgStore::open(&PgSettings::new(&db)).await.expect("open");
    store.ensure_partitions(T0, last).await.expect("partitions");
    let mut client = connect(&db).await;
    let mut took = Duration::ZERO;
    for chunk in all.chunks(BATCH) {
        took += copy_all(&mut client, "readings", chunk).await;
    }
    lines.push(("COPY, partitioned with the key, batches of 4,096 each committed".into(), took));

    let db1 = database(url, "bench_ingest_1").await;
    let one = vec![Arc::new(PgStore::open(&PgSettings::new(&db1)).await.expect("open"))];
    let ingest = ingest_with(&one, all.clone(), 1).await;
    lines.push(("ingest, 1 node, batches of 4,096".into(), ingest));
    // What sealing adds: the queued readings folded into their rollups, a pass per 15 s of
    // reading time (the server seals every few seconds).
    let started = Instant::now();
    let mut upto = T0;
    while upto <= last {
        upto += 15_000;
        one[0].roll_up(upto).await.expect("roll-up");
    }
    let passes = started.elapsed();
    lines.push(("roll-up passes of those readings (one per 15 s of them)".into(), passes));
    lines.push(("ingest and its roll-up passes, 1 node".into(), ingest + passes));

    let db = database(url, "bench_ingest_staged").await;
    let staged = PgStore::open(&PgSettings::new(&db)).await.expect("open");
    lines.push((
        "ingest, 1 node, every batch staged (the path after a redelivery)".into(),
        ingest_staged(&staged, &all).await,
    ));

    let db4 = database(url, "bench_ingest_4").await;
    let mut four = Vec::new();
    for _ in 0..NODES {
        four.push(Arc::new(PgStore::open(&PgSettings::new(&db4)).await.expect("open")));
    }
    lines.push((format!("ingest, {NODES} nodes at once"), ingest_with(&four, all.clone(), NODES).await));

    lines
        .push(("redelivery of all (1 node, all duplicates)".into(), ingest_with(&one, all.clone(), 1).await));

    let copy = rate(lines[0].1);
    println!(
        "| {readings} readings ({DEVICES} devices × {} metrics) | seconds | readings/s | of COPY |",
        METRICS.len()
    );
    println!("|---|---:|---:|---:|");
    for (name, took) in &lines {
        println!("| {name} | {:.2} | {:.0} | {:.2} |", took.as_secs_f64(), rate(*took), rate(*took) / copy);
    }
    let client = connect(&db1).await;
    let row = client
        .query_one(
            "SELECT (SELECT sum(pg_total_relation_size(inhrelid))::bigint FROM pg_inherits \
                     WHERE inhparent = 'readings'::regclass), \
                    (SELECT count(*) FROM readings), pg_total_relation_size('changes'), \
                    (SELECT count(*) FROM changes)",
            &[],
        )
        .await
        .expect("sizes");
    let (bytes, rows, change_bytes, changes): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    println!();
    println!(
        "On disk (1 node's database): {:.1} bytes a reading (partitions and their indexes), {:.0} bytes a change (the change log, one per message of 4 readings).",
        bytes as f64 / rows as f64,
        change_bytes as f64 / changes as f64
    );
}

/// Every batch through `PgStore::ingest`, dealt round-robin among `stores`, all at once.
async fn ingest_with(stores: &[Arc<PgStore>], all: Arc<Vec<Incoming>>, stride: usize) -> Duration {
    let started = Instant::now();
    let batches = all.len().div_ceil(BATCH);
    let mut tasks = Vec::new();
    for (n, store) in stores.iter().enumerate() {
        let (store, all) = (store.clone(), all.clone());
        tasks.push(tokio::spawn(async move {
            for b in (n..batches).step_by(stride) {
                let chunk = &all[b * BATCH..((b + 1) * BATCH).min(all.len())];
                store.ingest(chunk).await.expect("ingest");
            }
        }));
    }
    for task in tasks {
        task.await.expect("a writer");
    }
    started.elapsed()
}

/// Every batch through `PgStore::ingest_staged`, one after another.
async fn ingest_staged(store: &PgStore, all: &[Incoming]) -> Duration {
    let started = Instant::now();
    for chunk in all.chunks(BATCH) {
        store.ingest_staged(chunk).await.expect("ingest");
    }
    started.elapsed()
}
