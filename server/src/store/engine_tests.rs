//! The time-series engine as a whole: whatever was sealed, rolled up or pruned, reads answer
//! as they would from the raw readings.

use proptest::prelude::*;
use telemetry::history::{Bucket, bucket_width, downsample};
use telemetry::{DeviceAdmin, DeviceId, Message, Millis, TelemetrySource, TimestampSource};

use super::{Incoming, RedbStore, Store};

const T0: Millis = 1_766_146_880_000;

/// One message per reading of metric "t" of device "a".
fn readings(points: &[(Millis, f64)]) -> Vec<Incoming> {
    points
        .iter()
        .map(|&(ts, v)| Incoming {
            message: Message {
                device: DeviceId::try_from("a").unwrap(),
                ts,
                ts_source: TimestampSource::Device,
                values: vec![("t".to_owned(), v)],
                dropped: vec![],
            },
            received: ts,
        })
        .collect()
}

fn all(store: &RedbStore) -> Vec<(Millis, f64)> {
    store.points("a", "t", i64::MIN, i64::MAX, None, usize::MAX).unwrap()
}

fn assert_buckets_match(got: &[Bucket], want: &[Bucket]) {
    assert_eq!(got.len(), want.len(), "bucket count");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.t, g.min, g.max, g.count, g.last), (w.t, w.min, w.max, w.count, w.last));
        assert!((g.avg - w.avg).abs() <= 1e-9 * w.avg.abs().max(1.0), "{g:?} vs {w:?}");
    }
}

/// A day at one reading every 10 s, values a random walk of two decimals.
fn day() -> Vec<(Millis, f64)> {
    let mut v = 2_000i64;
    (0..8_640)
        .map(|i| {
            v += (i * 7919 % 13) - 6;
            (T0 + i * 10_000, v as f64 / 100.0)
        })
        .collect()
}

#[test]
fn sealing_keeps_every_reading_and_every_answer() {
    let store = RedbStore::in_memory().unwrap();
    let points = day();
    store.commit(&readings(&points), &[]).unwrap();
    let before_seal: Vec<_> = [(0, 86_400_000, 1_000), (3_600_000, 7_200_000, 500), (0, 86_400_000, 50)]
        .iter()
        .map(|&(a, b, n)| store.history("a", "t", T0 + a, T0 + b, n).unwrap())
        .collect();

    let moved = store.seal(T0 + 80_000_000).unwrap();
    assert_eq!(moved, 8_000);
    assert_eq!(store.head_count(), 640);
    assert_eq!(store.point_count().unwrap(), 8_640);
    assert_eq!(all(&store), points);
    for h in &before_seal {
        let again = store.history("a", "t", h.from, h.to, 1_000.min(h.buckets.len() + 10)).unwrap();
        let want =
            downsample(points.iter().copied().filter(|p| p.0 >= h.from && p.0 <= h.to), again.bucket_ms);
        assert_buckets_match(&again.buckets, &want);
    }
    // Everything sealed, then export pages across chunk and head boundaries.
    store.seal(i64::MAX).unwrap();
    assert_eq!(store.head_count(), 0);
    let page = store.points("a", "t", T0, i64::MAX, Some(T0 + 10_230_000), 3).unwrap();
    assert_eq!(page, points[1_024..1_027]);
}

#[test]
fn sealed_readings_are_still_recognised_as_redeliveries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let points = day();
    {
        let store = RedbStore::open(&path).unwrap();
        store.commit(&readings(&points), &[]).unwrap();
        store.seal(i64::MAX).unwrap();
    }
    let store = RedbStore::open(&path).unwrap();
    let again = store.commit(&readings(&points[100..200]), &[]).unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 100));
    assert_eq!(store.point_count().unwrap(), 8_640);
    assert_eq!(store.history("a", "t", T0, T0 + 86_400_000, 1_000).unwrap().readings(), 8_640);
}

#[test]
fn late_readings_land_in_the_right_chunk() {
    let store = RedbStore::in_memory().unwrap();
    let points = day();
    let (early, late): (Vec<_>, Vec<_>) = points.iter().copied().partition(|p| (p.0 / 10_000) % 5 != 0);
    store.commit(&readings(&early), &[]).unwrap();
    store.seal(i64::MAX).unwrap();
    let out = store.commit(&readings(&late), &[]).unwrap();
    assert_eq!(out.stored, late.len() as u64);
    assert_eq!(all(&store), points, "late readings read back in order before sealing");
    assert_eq!(store.seal(i64::MAX).unwrap(), late.len() as u64);
    assert_eq!(all(&store), points, "and after");
    let h = store.history("a", "t", T0, T0 + 86_400_000, 1_000).unwrap();
    assert_buckets_match(&h.buckets, &downsample(points.iter().copied(), h.bucket_ms));
}

#[test]
fn pruning_reaches_into_chunks_and_rollups() {
    let store = RedbStore::in_memory().unwrap();
    let points = day();
    store.commit(&readings(&points), &[]).unwrap();
    store.seal(T0 + 43_200_000).unwrap();
    let cut = T0 + 21_600_005;
    let pruned = store.prune(cut).unwrap();
    let kept: Vec<_> = points.iter().copied().filter(|p| p.0 >= cut).collect();
    assert_eq!(pruned.readings, (points.len() - kept.len()) as u64);
    assert_eq!(all(&store), kept);
    let h = store.history("a", "t", cut, T0 + 86_400_000, 100).unwrap();
    assert_buckets_match(&h.buckets, &downsample(kept.iter().copied(), h.bucket_ms));
    assert!(store.delete_device("a").unwrap());
    assert_eq!(store.point_count().unwrap(), 0);
}

#[test]
fn the_change_log_keeps_its_latest_entries() {
    let store = RedbStore::in_memory().unwrap();
    store.commit(&readings(&day()[..50]), &[]).unwrap();
    store.seal(T0).unwrap();
    assert_eq!(store.trim_changes(20).unwrap(), 30);
    let left = store.changes_since(0, 100).unwrap();
    assert_eq!((left.len(), left[0].seq()), (20, Some(31)));
    assert_eq!(store.trim_changes(20).unwrap(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Rollups, chunks and head together answer exactly as a fold over the raw readings.
    #[test]
    fn any_range_reads_like_the_raw_readings(
        steps in prop::collection::vec((1i64..400_000, -1_000i64..1_000), 1..400),
        seal_at in 0usize..400,
        from_frac in 0.0f64..1.0,
        len_frac in 0.0f64..1.0,
        max_points in 2usize..1_200,
    ) {
        let mut t = T0;
        let points: Vec<(Millis, f64)> = steps
            .iter()
            .map(|&(dt, v)| {
                t += dt;
                (t, v as f64 / 10.0)
            })
            .collect();
        let store = RedbStore::in_memory().unwrap();
        store.commit(&readings(&points), &[]).unwrap();
        if let Some(p) = points.get(seal_at) {
            store.seal(p.0).unwrap();
        }
        let span = (t - T0) as f64;
        let from = T0 + (span * from_frac) as i64;
        let to = from + ((t - from) as f64 * len_frac) as i64;
        let h = store.history("a", "t", from, to, max_points).unwrap();
        prop_assert_eq!(h.bucket_ms, bucket_width(from, to, max_points));
        prop_assert!(h.buckets.len() <= max_points.max(2));
        let want = downsample(points.iter().copied().filter(|p| p.0 >= from && p.0 <= to), h.bucket_ms);
        assert_buckets_match(&h.buckets, &want);
    }
}

/// The registry is written at checkpoints; whatever happened since is replayed from the change
/// log on open, once.
#[test]
fn the_registry_survives_a_crash_between_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.redb");
    let points = day();
    let status = |online, at| super::StatusReport { device: DeviceId::try_from("a").unwrap(), online, at };
    {
        let store = RedbStore::open(&path).unwrap();
        store.commit(&readings(&points[..100]), &[]).unwrap();
        store.seal(points[50].0).unwrap(); // a checkpoint
        store.commit(&readings(&points[100..150]), &[status(false, T0 + 2_000_000)]).unwrap();
        assert!(store.set_device_meta("a", Some("Greenhouse".into()), None).unwrap());
        store.commit(&readings(&points[150..160]), &[]).unwrap();
        // Dropped without another checkpoint, as a crash would leave it.
    }
    let store = RedbStore::open(&path).unwrap();
    let a = store.device("a").unwrap().value.unwrap();
    assert_eq!(a.message_count, 160, "every message counted once");
    assert_eq!(a.metric("t").map(|m| (m.ts, m.value)), Some(points[159]));
    assert_eq!(a.name.as_deref(), Some("Greenhouse"));
    assert_eq!(a.status.map(|s| s.online), Some(false));
    assert_eq!(store.changes_since(0, 1_000).unwrap().len(), 161, "nothing trimmed that was needed");

    // Deleted stays deleted, however many of its changes the log still holds.
    assert!(store.delete_device("a").unwrap());
    drop(store);
    let store = RedbStore::open(&path).unwrap();
    assert!(store.device("a").unwrap().value.is_none());
    assert!(store.devices().unwrap().value.is_empty());
}

#[test]
fn trimming_keeps_changes_the_stored_registry_lacks() {
    let store = RedbStore::in_memory().unwrap();
    store.commit(&readings(&day()[..50]), &[]).unwrap();
    // No checkpoint yet: the log is all the registry has on disk.
    assert_eq!(store.trim_changes(10).unwrap(), 0);
    store.seal(T0).unwrap();
    assert_eq!(store.trim_changes(10).unwrap(), 40);
}
