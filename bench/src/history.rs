//! History queries: our store against SQLite on the same readings.

use rusqlite::{Connection, params};
use server::store::{RedbStore, Store};
use telemetry::history::Bucket;
use telemetry::{Millis, TelemetrySource};

use crate::data::{Device, START, file_size, median_time, ms};

const RUNS: usize = 21;
const BUCKETS: usize = 1_000;

/// `cache_bytes`: our store's page cache (`storage.cache_mb`).
pub fn run(points: u64, cache_bytes: usize) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut device = Device::new(1, 1);
    let readings: Vec<_> = (0..points as i64).map(|i| device.reading(START + i * 1_000)).collect();
    let last = START + (points as i64 - 1) * 1_000;

    let path = dir.path().join("history.redb");
    let mut store = RedbStore::open_with_cache(&path, cache_bytes).expect("the store opens");
    for batch in readings.chunks(10_000) {
        store.commit(batch, &[]).expect("commit");
    }
    // As the server leaves it: everything but the last minute sealed, the change log trimmed.
    store.seal(last - 60_000).expect("seal");
    store.trim_changes(10_000).expect("trim");

    let sqlite_path = dir.path().join("history.sqlite");
    let db = Connection::open(&sqlite_path).expect("sqlite opens");
    db.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE points (series INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
                              PRIMARY KEY (series, ts)) WITHOUT ROWID;",
    )
    .expect("schema");
    {
        let tx = db.unchecked_transaction().expect("transaction");
        let mut insert = tx.prepare("INSERT INTO points VALUES (1, ?1, ?2)").expect("insert");
        for r in &readings {
            insert.execute(params![r.message.ts, r.message.values[0].1]).expect("row");
        }
        drop(insert);
        tx.commit().expect("commit");
    }

    println!(
        "| history, {points} readings of one series, {BUCKETS} buckets (median of {RUNS}), our page cache {} MB | ours ms | SQLite ms | SQLite / ours |",
        cache_bytes >> 20
    );
    println!("|---|---|---|---|");
    for (label, from) in [("full range", START), ("last hour", last - 3_600_000)] {
        let (ours, history) = median_time(RUNS, || {
            store.history(device.id(), "temperature", from, last, BUCKETS).expect("history")
        });
        let (theirs, rows) = median_time(RUNS, || sqlite_buckets(&db, from, last, history.bucket_ms));
        check_same(&history.buckets, &rows);
        println!(
            "| {label}: {} buckets of {} s over {} readings | {:.3} | {:.3} | {:.1}× |",
            history.buckets.len(),
            history.bucket_ms / 1_000,
            history.readings(),
            ms(ours),
            ms(theirs),
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
    store.compact().expect("compact");
    println!();
    println!(
        "on disk, compacted: ours {:.2} bytes per reading ({} B), SQLite {:.2} ({} B)",
        file_size(&path) as f64 / points as f64,
        file_size(&path),
        file_size(&sqlite_path) as f64 / points as f64,
        file_size(&sqlite_path),
    );
}

/// (bucket start, min, max, avg, count) per bucket, as SQL computes it.
fn sqlite_buckets(
    db: &Connection,
    from: Millis,
    to: Millis,
    width: Millis,
) -> Vec<(Millis, f64, f64, f64, u32)> {
    let mut q = db
        .prepare_cached(
            "SELECT ts / ?3 * ?3 AS b, MIN(value), MAX(value), AVG(value), COUNT(*) FROM points
             WHERE series = 1 AND ts BETWEEN ?1 AND ?2 GROUP BY b ORDER BY b",
        )
        .expect("query");
    q.query_map(params![from, to, width], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Both answers must agree, or the timing compares different work.
fn check_same(ours: &[Bucket], theirs: &[(Millis, f64, f64, f64, u32)]) {
    assert_eq!(ours.len(), theirs.len(), "bucket counts differ");
    for (b, (t, min, max, avg, count)) in ours.iter().zip(theirs) {
        assert_eq!((b.t, b.min, b.max, b.count), (*t, *min, *max, *count), "bucket differs");
        assert!((b.avg - avg).abs() < 1e-6, "average differs: {} vs {avg}", b.avg);
    }
}
