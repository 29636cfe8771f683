//! Bytes on disk per reading, stored the way the server stores them: group commits of
//! 10 s of readings from 100 devices, sealing and change-log trimming every minute.

use std::time::Instant;

use server::store::{RedbStore, Store};

use crate::data::{Device, START, file_size};

const DEVICES: u64 = 100;
const METRICS: usize = 3;
/// The server's default `storage.change_log`.
const CHANGE_LOG: u64 = 10_000;

/// `cache_bytes` of page cache; sealing every `seal_secs` (`storage.seal_interval_secs`) what
/// is older than one interval.
pub fn run(points: u64, cache_bytes: usize, seal_secs: u64) {
    let seal_every_ms = i64::try_from(seal_secs.max(1)).unwrap_or(i64::MAX / 1_000) * 1_000;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("storage.redb");
    let mut store = RedbStore::open_with_cache(&path, cache_bytes).expect("the store opens");
    let mut devices: Vec<Device> = (0..DEVICES).map(|n| Device::new(n, METRICS)).collect();
    let seconds = points.div_ceil(DEVICES * METRICS as u64) as i64;

    let started = Instant::now();
    let mut batch = Vec::new();
    for s in 0..seconds {
        let ts = START + s * 1_000;
        batch.extend(devices.iter_mut().map(|d| d.reading(ts)));
        if (s + 1) % 10 == 0 || s + 1 == seconds {
            store.commit(&batch, &[]).expect("commit");
            batch.clear();
        }
        if (ts - START) % seal_every_ms == 0 {
            store.seal(ts - seal_every_ms).expect("seal");
            store.trim_changes(CHANGE_LOG).expect("trim");
        }
    }
    let took = started.elapsed();
    let stored = store.point_count().expect("count");
    let head = store.head_count();
    let live = file_size(&path);
    let live_rollups = store.rollup_sizes().expect("rollup sizes");
    store.seal(i64::MAX).expect("seal");
    store.compact().expect("compact");
    let compacted = file_size(&path);
    let rollups = store.rollup_sizes().expect("rollup sizes");

    println!(
        "| storage, {stored} readings ({DEVICES} devices × {METRICS} metrics at 1 Hz), {} MB page cache, sealed every {seal_secs} s | bytes | bytes per reading |",
        cache_bytes >> 20
    );
    println!("|---|---|---|");
    println!(
        "| file as the server leaves it ({head} readings not yet sealed, change log of {CHANGE_LOG}) | {live} | {:.2} |",
        live as f64 / stored as f64
    );
    println!(
        "| the same, all sealed and compacted | {compacted} | {:.2} |",
        compacted as f64 / stored as f64
    );
    println!();
    println!(
        "| rollups | summaries | bytes of pages | bytes per summary: pages, as left | the same, all sealed and compacted | keys and values alone |"
    );
    println!("|---|---|---|---|---|---|");
    let per = |bytes: u64, summaries: u64| bytes as f64 / summaries.max(1) as f64;
    for (live, all) in live_rollups.iter().zip(&rollups) {
        println!(
            "| {} s | {} | {} | {:.2} | {:.2} | {:.2} |",
            all.period / 1_000,
            all.summaries,
            all.bytes,
            per(live.bytes, live.summaries),
            per(all.bytes, all.summaries),
            per(all.stored, all.summaries)
        );
    }
    println!();
    println!(
        "stored through the store API at {:.0} readings/s ({} durable commits of 10 s of readings)",
        stored as f64 / took.as_secs_f64(),
        (seconds + 9) / 10
    );
}
