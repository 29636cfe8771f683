//! History on PostgreSQL (issue 18's figure "History 1M points → 1,000 buckets on PostgreSQL
//! against redb; bytes per reading on disk in each"): one series of a reading a second, stored
//! through each store's own ingest, then the full range and the last hour in 1,000 buckets,
//! median of 21 each, both answers checked equal. For scale, the same buckets computed by
//! PostgreSQL from the raw readings (`GROUP BY` over the range), which is what a store without
//! rollups would run.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use server::store::postgres::{PgSettings, PgStore};
use server::store::{RedbStore, Store};
use telemetry::history::Bucket;
use telemetry::{Millis, TelemetrySource};
use tokio_postgres::NoTls;

use crate::data::{Device, START, file_size, median_time, ms};

const RUNS: usize = 21;
const BUCKETS: usize = 1_000;

pub fn run(url: &str, points: u64) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut device = Device::new(1, 1);
    let readings: Vec<_> = (0..points as i64).map(|i| device.reading(START + i * 1_000)).collect();
    let last = START + (points as i64 - 1) * 1_000;

    let path = dir.path().join("history.redb");
    let mut redb = RedbStore::open(&path).expect("the store opens");
    for batch in readings.chunks(10_000) {
        redb.commit(batch, &[]).expect("commit");
    }
    // As the server leaves it: everything but the last minute sealed, the change log trimmed.
    redb.seal(last - 60_000).expect("seal");
    redb.trim_changes(10_000).expect("trim");

    let pg = runtime.block_on(PgStore::open(&PgSettings::new(url))).expect("PostgreSQL at the URL");
    // Rolled up as it comes, as a server's sealing does, so the queue stays small; in the end
    // all but the last minute.
    for batch in readings.chunks(10_000) {
        runtime.block_on(pg.ingest(batch)).expect("ingest");
        let upto = batch.last().expect("a reading").message.ts - 60_000;
        runtime.block_on(pg.roll_up(upto)).expect("roll-up");
    }
    let (client, connection) = runtime.block_on(tokio_postgres::connect(url, NoTls)).expect("connect");
    runtime.spawn(connection);
    runtime.block_on(client.batch_execute("VACUUM ANALYZE")).expect("vacuum");

    println!(
        "| history, {points} readings of one series, {BUCKETS} buckets (median of {RUNS}) | PostgreSQL ms | redb ms | PostgreSQL / redb | PostgreSQL from raw readings ms |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (label, from) in [("full range", START), ("last hour", last - 3_600_000)] {
        let id = device.id().to_owned();
        let (ours, history) = median_time(RUNS, || {
            runtime.block_on(pg.history(&id, "temperature", from, last, BUCKETS)).expect("history")
        });
        let (theirs, reference) = median_time(RUNS, || {
            redb.history(device.id(), "temperature", from, last, BUCKETS).expect("history")
        });
        check_same(&history.buckets, &reference.buckets);
        let (raw, rows) =
            median_time(RUNS, || runtime.block_on(raw_buckets(&client, &id, from, last, history.bucket_ms)));
        assert_eq!(rows, history.buckets.len(), "the raw GROUP BY answers the same buckets");
        println!(
            "| {label}: {} buckets of {} s over {} readings | {:.3} | {:.3} | {:.1}× | {:.3} |",
            history.buckets.len(),
            history.bucket_ms / 1_000,
            history.readings(),
            ms(ours),
            ms(theirs),
            ours.as_secs_f64() / theirs.as_secs_f64(),
            ms(raw),
        );
    }
    redb.compact().expect("compact");
    let sizes = runtime
        .block_on(client.query_one(
            "SELECT (SELECT sum(pg_total_relation_size(inhrelid))::bigint FROM pg_inherits \
                     WHERE inhparent = 'readings'::regclass), \
                    pg_total_relation_size('rollup_minutes') + pg_total_relation_size('rollup_hours'), \
                    pg_total_relation_size('changes')",
            &[],
        ))
        .expect("sizes");
    let (readings_bytes, rollup_bytes, change_bytes): (i64, i64, i64) =
        (sizes.get(0), sizes.get(1), sizes.get(2));
    let per = |b: i64| b as f64 / points as f64;
    println!();
    println!(
        "On disk, bytes per reading: PostgreSQL {:.1} (readings' partitions with their key {:.1}, minute and hour rollups {:.1}; the change log's {:.1} more until it is trimmed), redb {:.2} compacted ({} B).",
        per(readings_bytes + rollup_bytes),
        per(readings_bytes),
        per(rollup_bytes),
        per(change_bytes),
        file_size(&path) as f64 / points as f64,
        file_size(&path),
    );
}

/// The buckets PostgreSQL computes from the raw readings; answers how many.
async fn raw_buckets(
    client: &tokio_postgres::Client,
    device: &str,
    from: Millis,
    to: Millis,
    width: Millis,
) -> usize {
    let time = |ms: Millis| UNIX_EPOCH + Duration::from_millis(ms as u64);
    let (from, to): (SystemTime, SystemTime) = (time(from), time(to));
    let width = width as f64 / 1_000.0;
    client
        .query(
            "SELECT floor(extract(epoch FROM r.ts)::float8 / $4::float8) AS b, min(value), max(value), avg(value), count(*) \
             FROM readings r WHERE r.series = (SELECT id FROM series WHERE device = $1 AND metric = 'temperature') \
             AND r.ts BETWEEN $2 AND $3 GROUP BY b ORDER BY b",
            &[&device, &from, &to, &width],
        )
        .await
        .expect("raw buckets")
        .len()
}

/// Both answers must agree, or the timing compares different work.
fn check_same(ours: &[Bucket], theirs: &[Bucket]) {
    assert_eq!(ours.len(), theirs.len(), "bucket counts differ");
    for (a, b) in ours.iter().zip(theirs) {
        assert_eq!(
            (a.t, a.min, a.max, a.count, a.last),
            (b.t, b.min, b.max, b.count, b.last),
            "bucket differs"
        );
        assert!((a.avg - b.avg).abs() < 1e-6, "average differs: {} vs {}", a.avg, b.avg);
    }
}
