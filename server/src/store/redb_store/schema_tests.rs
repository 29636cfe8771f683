//! Files written by older versions are converted on open; one written by a newer version is
//! refused untouched.

use std::path::Path;

use redb::{Database, ReadableDatabase};
use telemetry::history::{HOUR_MS, MINUTE_MS, ROLLUP_PERIODS, Summary};
use telemetry::{Millis, TelemetrySource};

use super::super::api::Store;
use super::super::registry::META;
use super::super::{head, rollup};
use super::RedbStore;
use super::schema::{NEXT_SERIES, POINTS_V1, SCHEMA_VERSION, SERIES, VERSION_KEY};
use super::tests::msg;

/// A file as schema `version` left it: `series` numbered from 0, and what `fill` writes.
fn old_file(path: &Path, version: u64, series: &[(&str, &str)], fill: impl FnOnce(&redb::WriteTransaction)) {
    let db = Database::create(path).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut table = tx.open_table(SERIES).unwrap();
        for (id, key) in (0u32..).zip(series) {
            table.insert(key, id).unwrap();
        }
        let mut meta = tx.open_table(META).unwrap();
        meta.insert(VERSION_KEY, version).unwrap();
        meta.insert(NEXT_SERIES, series.len() as u64).unwrap();
    }
    fill(&tx);
    tx.commit().unwrap();
}

#[test]
fn a_file_from_before_rollups_gets_them_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.redb");
    old_file(&path, 1, &[("a", "t")], |tx| {
        let mut points = tx.open_table(POINTS_V1).unwrap();
        for i in 0..7_200i64 {
            points.insert((0, i * 1_000), (i % 60) as f64).unwrap();
        }
    });
    let store = RedbStore::open(&path).unwrap();
    // Two hours in hour-wide buckets: read from the hour rollups the migration built.
    let h = store.history("a", "t", 0, 7_199_999, 3).unwrap();
    assert_eq!(h.bucket_ms, HOUR_MS);
    let summary: Vec<_> = h.buckets.iter().map(|b| (b.t, b.count, b.min, b.max, b.last)).collect();
    assert_eq!(summary, [(0, 3_600, 0.0, 59.0, 59.0), (HOUR_MS, 3_600, 0.0, 59.0, 59.0)]);
    assert_eq!(h.buckets[0].avg, 29.5);
}

#[test]
fn a_version_2_head_moves_into_batches_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.redb");
    old_file(&path, 2, &[("a", "t"), ("a", "h")], |tx| {
        let mut old = tx.open_table(head::HEAD_V2).unwrap();
        for i in 0..5_000i64 {
            old.insert((i * 1_000, 0), i as f64).unwrap();
            old.insert((i * 1_000, 1), -(i as f64)).unwrap();
        }
    });
    for _ in 0..2 {
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.head_count(), 10_000);
        let h = store.history("a", "h", 0, 4_999_999, 5).unwrap();
        let count: u32 = h.buckets.iter().map(|b| b.count).sum();
        let min = h.buckets.iter().map(|b| b.min).fold(f64::INFINITY, f64::min);
        let max = h.buckets.iter().map(|b| b.max).fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(
            (count, min, max, h.buckets.last().map(|b| b.last)),
            (5_000, -4_999.0, 0.0, Some(-4_999.0))
        );
        // A redelivery of a migrated reading is known as one.
        let again = store.commit(&[msg("a", 4_999_000, &[("t", 4_999.0)])], &[]).unwrap();
        assert_eq!((again.stored, again.duplicates), (0, 1));
    }
    let db = Database::open(&path).unwrap();
    let rx = db.begin_read().unwrap();
    assert!(rx.open_table(head::HEAD_V2).is_err(), "the version 2 head table is gone");
}

/// Readings (in time order) folded into a summary per period, as rollups hold them.
fn summaries(points: &[(Millis, f64)], period: Millis) -> Vec<(Millis, Summary)> {
    let mut out: Vec<(Millis, Summary)> = Vec::new();
    for &(t, v) in points {
        let start = t - t % period;
        match out.last_mut() {
            Some((s, summary)) if *s == start => summary.merge(&Summary::of(t, v)),
            _ => out.push((start, Summary::of(t, v))),
        }
    }
    out
}

#[test]
fn rollups_of_versions_2_and_3_are_packed_on_open() {
    const T: Millis = 490_000 * HOUR_MS;
    // Three hours: one metric every 10 s, another every 7 minutes.
    let every_10_s: Vec<_> = (0..1_080).map(|i| (T + i * 10_000, ((i * 37) % 101) as f64 / 10.0)).collect();
    let every_7_min: Vec<_> =
        (0..26).map(|i| (T + i * 7 * MINUTE_MS + 3_000, 50.0 + (i % 5) as f64 * 0.25 + 0.1)).collect();
    let series = [("t", &every_10_s), ("h", &every_7_min)];
    let dir = tempfile::tempdir().unwrap();
    for version in [2, 3] {
        let path = dir.path().join(format!("v{version}.redb"));
        old_file(&path, version, &[("a", "t"), ("a", "h")], |tx| {
            for (sid, (_, points)) in (0u32..).zip(series) {
                for (old, period) in rollup::TABLES_V3.into_iter().zip(ROLLUP_PERIODS) {
                    let mut table = tx.open_table(old).unwrap();
                    for (start, s) in summaries(points, period) {
                        let offset = u32::try_from(s.last_t - start).unwrap();
                        table
                            .insert((sid, start), (s.min, s.max, s.sum, s.count as u32, s.last, offset))
                            .unwrap();
                    }
                }
            }
        });
        for _ in 0..2 {
            let store = RedbStore::open(&path).unwrap();
            // Each bucket one summary, every field as it was: the sum is the bucket's average
            // times its count.
            for (metric, points) in series {
                for period in ROLLUP_PERIODS {
                    let (from, to) = (T, T + 3 * HOUR_MS - 1);
                    let h =
                        store.history("a", metric, from, to, (3 * HOUR_MS / period + 1) as usize).unwrap();
                    assert_eq!(h.bucket_ms, period);
                    let got: Vec<_> =
                        h.buckets.iter().map(|b| (b.t, b.min, b.max, b.count, b.last, b.avg)).collect();
                    let want: Vec<_> = summaries(points, period)
                        .into_iter()
                        .map(|(t, s)| (t, s.min, s.max, s.count as u32, s.last, s.sum / s.count as f64))
                        .collect();
                    assert_eq!(got, want, "{metric}, v{version}, {period} ms");
                }
            }
            assert_eq!(store.rollup_sizes().unwrap().map(|l| l.summaries), [180 + 26, 3 + 3]);
        }
        let db = Database::open(&path).unwrap();
        let rx = db.begin_read().unwrap();
        for old in rollup::TABLES_V3 {
            assert!(rx.open_table(old).is_err(), "the version {version} rollup tables are gone");
        }
        let meta = rx.open_table(META).unwrap();
        assert_eq!(meta.get(VERSION_KEY).unwrap().map(|v| v.value()), Some(SCHEMA_VERSION));
    }
}

#[test]
fn a_file_from_a_newer_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.redb");
    old_file(&path, SCHEMA_VERSION + 1, &[], |_| {});
    let err = RedbStore::open(&path).err().expect("refused").to_string();
    assert!(err.contains("newer version"), "{err}");
    let db = Database::open(&path).unwrap();
    let meta = db.begin_read().unwrap().open_table(META).unwrap();
    assert_eq!(meta.get(VERSION_KEY).unwrap().map(|v| v.value()), Some(SCHEMA_VERSION + 1));
}
