//! The time-series engine as a whole: whatever was sealed, rolled up or pruned, reads answer
//! as they would from the raw readings.

use proptest::prelude::*;
use telemetry::history::{
    Bucket, HOUR_MS, LocalDays, MINUTE_MS, bucket_width, downsample, downsample_between, in_days,
};
use telemetry::zone::Zone;
use telemetry::{DeviceAdmin, DeviceId, Message, Millis, TelemetrySource};

use super::api::{Incoming, Pruned, Store};
use super::redb_store::RedbStore;
use super::retention::DAY_MS;
use super::retention::{Horizons, Retention};

const T0: Millis = 1_766_146_880_000;

/// One message per reading of metric "t" of device "a".
fn readings(points: &[(Millis, f64)]) -> Vec<Incoming> {
    points
        .iter()
        .map(|&(ts, v)| Incoming {
            message: Message::new(DeviceId::try_from("a").unwrap(), ts, [("t", v)]),
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
    let before_seal: Vec<_> = [(0, DAY_MS, 1_000), (HOUR_MS, 2 * HOUR_MS, 500), (0, DAY_MS, 50)]
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
    assert_eq!(store.history("a", "t", T0, T0 + DAY_MS, 1_000).unwrap().readings(), 8_640);
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
    let h = store.history("a", "t", T0, T0 + DAY_MS, 1_000).unwrap();
    assert_buckets_match(&h.buckets, &downsample(points.iter().copied(), h.bucket_ms));
}

#[test]
fn pruning_reaches_into_chunks_and_rollups() {
    let store = RedbStore::in_memory().unwrap();
    let points = day();
    store.commit(&readings(&points), &[]).unwrap();
    store.seal(T0 + 12 * HOUR_MS).unwrap();
    let cut = T0 + 6 * HOUR_MS + 5;
    let pruned = store.prune(Horizons::all(cut)).unwrap();
    let kept: Vec<_> = points.iter().copied().filter(|p| p.0 >= cut).collect();
    assert_eq!(pruned.readings, (points.len() - kept.len()) as u64);
    assert_eq!(all(&store), kept);
    let h = store.history("a", "t", cut, T0 + DAY_MS, 100).unwrap();
    assert_buckets_match(&h.buckets, &downsample(kept.iter().copied(), h.bucket_ms));
    assert!(store.delete_device("a").unwrap());
    assert_eq!(store.point_count().unwrap(), 0);
}

/// Over a year, pruned with the default retention: readings older than 30 days and minute
/// rollups older than 365 days go, hour rollups stay; a chart reads whatever level is left,
/// in buckets no finer than it.
#[test]
fn each_level_is_pruned_by_its_own_age_and_long_charts_still_answer() {
    const NOW: Millis = 490_600 * HOUR_MS;
    let retention = crate::config::Config::default().storage.retention();
    assert_eq!(retention, Retention { readings_days: 30, minute_rollup_days: 365, hour_rollup_days: 0 });
    // 400 days, a reading every 10 minutes, values in 0.0..100.0.
    let mut points: Vec<(Millis, f64)> = (0..=400 * 144)
        .map(|i| (NOW - 400 * DAY_MS + i * 10 * MINUTE_MS, ((i * 7_919) % 1_000) as f64 / 10.0))
        .collect();
    let store = RedbStore::in_memory().unwrap();
    for batch in points.chunks(5_000) {
        store.commit(&readings(batch), &[]).unwrap();
    }
    store.seal(NOW - HOUR_MS).unwrap();
    // A late reading, 100 days old, still in the head when pruning comes: rolled up first.
    let late = (NOW - 100 * DAY_MS + 5 * MINUTE_MS, 123.0);
    store.commit(&readings(&[late]), &[]).unwrap();
    points.insert(points.partition_point(|p| p.0 < late.0), late);

    let horizons = retention.horizons(NOW);
    let (raw, minutes) = (NOW - 30 * DAY_MS, NOW - 365 * DAY_MS);
    assert_eq!(horizons, Horizons { readings: Some(raw), minute_rollups: Some(minutes), hour_rollups: None });
    let pruned = store.prune(horizons).unwrap();
    let kept: Vec<_> = points.iter().copied().filter(|p| p.0 >= raw).collect();
    assert_eq!(pruned.readings, (points.len() - kept.len()) as u64);
    // A minute rollup per reading (they are 10 minutes apart) whose minute ended by then.
    let old_minutes = points.iter().filter(|p| p.0 - p.0 % MINUTE_MS + MINUTE_MS <= minutes).count();
    assert_eq!((pruned.minute_rollups, pruned.hour_rollups), (old_minutes as u64, 0));
    assert_eq!(all(&store), kept, "raw readings older than 30 days are gone");

    let within = |from: Millis, to: Millis| points.iter().copied().filter(move |p| p.0 >= from && p.0 <= to);
    let chart = |from: Millis, to: Millis, max_points| {
        let h = store.history("a", "t", from, to, max_points).unwrap();
        let want = downsample(within(from, to), h.bucket_ms);
        (h, want)
    };
    // A year at 1,000 points: 9-hour buckets, from hour rollups (and the head's last hour).
    let (year, want) = chart(NOW - 365 * DAY_MS, NOW, 1_000);
    assert_eq!(year.bucket_ms, 9 * HOUR_MS);
    assert_eq!(year.readings(), within(NOW - 365 * DAY_MS, NOW).count() as u64);
    assert_buckets_match(&year.buckets, &want);
    // Hour rollups are kept for good: 400 days answer too, in whole hours.
    let (all_days, want) = chart(NOW - 400 * DAY_MS, NOW, 1_000);
    assert_eq!(all_days.readings(), points.len() as u64);
    assert_buckets_match(&all_days.buckets, &want);
    // A day 200 days ago in 2-minute buckets: from minute rollups.
    let (day, want) = chart(NOW - 200 * DAY_MS, NOW - 199 * DAY_MS - 1, 1_000);
    assert_eq!((day.bucket_ms, day.readings()), (2 * MINUTE_MS, 144));
    assert_buckets_match(&day.buckets, &want);
    // A day 380 days ago: its minute rollups are gone, so 2-minute buckets are widened to hours.
    let (old_day, want) = chart(NOW - 380 * DAY_MS, NOW - 379 * DAY_MS - 1, 1_000);
    assert_eq!((old_day.bucket_ms, old_day.readings()), (HOUR_MS, 144));
    assert_buckets_match(&old_day.buckets, &want);
    let (old_day, want) = chart(NOW - 380 * DAY_MS, NOW - 379 * DAY_MS - 1, 12);
    assert_eq!((old_day.bucket_ms, old_day.readings()), (3 * HOUR_MS, 144));
    assert_buckets_match(&old_day.buckets, &want);
    // Buckets under a minute over pruned readings: a minute wide, from the minute rollups.
    let (narrow, want) = chart(late.0 - MINUTE_MS, late.0 + MINUTE_MS, 1_000);
    assert_eq!(narrow.bucket_ms, MINUTE_MS);
    assert_eq!(narrow.buckets.iter().map(|b| (b.count, b.max)).collect::<Vec<_>>(), [(1, 123.0)]);
    assert_buckets_match(&narrow.buckets, &want);
    // The late reading reached the rollups before it went.
    let (late_hour, _) = chart(late.0 - late.0 % HOUR_MS, late.0 - late.0 % HOUR_MS + HOUR_MS - 1, 1);
    assert_eq!(late_hour.buckets.iter().map(|b| (b.count, b.max)).collect::<Vec<_>>(), [(7, 123.0)]);

    assert_eq!(store.prune(horizons).unwrap(), Pruned::default(), "nothing more to prune");
}

/// Pruned with the defaults, a day 200 days ago asked in 30-second buckets is answered in
/// minute ones, and a day 380 days ago asked in 5-minute buckets in hour ones, each with every
/// reading in it; the file remembers how far each level was pruned.
#[test]
fn buckets_finer_than_the_level_left_are_widened_to_it() {
    const NOW: Millis = 490_600 * HOUR_MS;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.redb");
    let days = [NOW - 200 * DAY_MS, NOW - 380 * DAY_MS];
    // A reading every 7 s through both days, values a random walk of two decimals.
    let (mut points, mut v) = (Vec::new(), 2_000i64);
    for start in [days[1], days[0]] {
        for i in 0..DAY_MS / 7_000 {
            v += (i * 7_919 % 13) - 6;
            points.push((start + i * 7_000, v as f64 / 100.0));
        }
    }
    {
        let store = RedbStore::open(&path).unwrap();
        for batch in points.chunks(5_000) {
            store.commit(&readings(batch), &[]).unwrap();
        }
        store.seal(NOW).unwrap();
        store.prune(crate::config::Config::default().storage.retention().horizons(NOW)).unwrap();
    }
    let store = RedbStore::open(&path).unwrap();
    let within = |from: Millis, to: Millis| points.iter().copied().filter(move |p| p.0 >= from && p.0 <= to);
    // 2,881 buckets cut a day into 30-second ones; its readings are gone, its minutes are not.
    let (from, to) = (days[0], days[0] + DAY_MS - 1);
    assert_eq!(bucket_width(from, to, 2_881), 30_000);
    let h = store.history("a", "t", from, to, 2_881).unwrap();
    assert_eq!((h.bucket_ms, h.buckets.len()), (MINUTE_MS, 1_440));
    assert_eq!(h.readings(), within(from, to).count() as u64);
    assert_buckets_match(&h.buckets, &downsample(within(from, to), MINUTE_MS));
    // 289 buckets cut a day into 5-minute ones; its minutes are gone, its hours are not.
    let (from, to) = (days[1], days[1] + DAY_MS - 1);
    assert_eq!(bucket_width(from, to, 289), 5 * MINUTE_MS);
    let h = store.history("a", "t", from, to, 289).unwrap();
    assert_eq!((h.bucket_ms, h.buckets.len()), (HOUR_MS, 24));
    assert_eq!(h.readings(), within(from, to).count() as u64);
    assert_buckets_match(&h.buckets, &downsample(within(from, to), HOUR_MS));
    // Where the readings are kept, buckets are as asked.
    assert_eq!(store.history("a", "t", NOW - DAY_MS, NOW - 1, 2_881).unwrap().bucket_ms, 30_000);
}

/// Readings that arrive late for minutes already rolled up are folded into their packed hour:
/// into a minute it holds (a new max and last), and as a minute it lacked.
#[test]
fn late_readings_are_folded_into_their_packed_hour() {
    let store = RedbStore::in_memory().unwrap();
    let mut points = day();
    let hour = T0 - T0 % HOUR_MS + 3 * HOUR_MS;
    let lacked = hour + 17 * MINUTE_MS;
    let last_of_minute = hour + 42 * MINUTE_MS + 50_000;
    let i = points.binary_search_by_key(&last_of_minute, |p| p.0).unwrap();
    points[i].1 = 99.5;
    let (late, early): (Vec<_>, Vec<_>) = points
        .iter()
        .copied()
        .partition(|p| p.0 == last_of_minute || (lacked..lacked + MINUTE_MS).contains(&p.0));
    store.commit(&readings(&early), &[]).unwrap();
    store.seal(i64::MAX).unwrap();
    let minutes = |store: &RedbStore| store.history("a", "t", hour, hour + HOUR_MS - 1, 61).unwrap();
    assert_eq!(minutes(&store).buckets.len(), 59);
    store.commit(&readings(&late), &[]).unwrap();
    assert_eq!(store.seal(i64::MAX).unwrap(), 7);
    let h = minutes(&store);
    assert_eq!((h.bucket_ms, h.buckets.len()), (MINUTE_MS, 60));
    let in_hour = points.iter().copied().filter(|p| (hour..hour + HOUR_MS).contains(&p.0));
    assert_buckets_match(&h.buckets, &downsample(in_hour, MINUTE_MS));
    assert_eq!((h.buckets[42].max, h.buckets[42].last, h.buckets[17].count), (99.5, 99.5, 6));
    // The day in hours, from the hour rollups, as from the readings.
    let (from, to) = (T0 - T0 % HOUR_MS + HOUR_MS, T0 - T0 % HOUR_MS + 23 * HOUR_MS - 1);
    let h = store.history("a", "t", from, to, 23).unwrap();
    assert_eq!(h.bucket_ms, HOUR_MS);
    let in_day = points.iter().copied().filter(|p| (from..=to).contains(&p.0));
    assert_buckets_match(&h.buckets, &downsample(in_day, HOUR_MS));
    // The day starts 21 minutes and 20 seconds into an hour.
    assert_eq!(store.rollup_sizes().unwrap().map(|l| l.summaries), [1_441, 25]);
}

/// A horizon inside a packed row: rows wholly before it go, the row it falls in keeps the
/// periods that end after it, and what was pruned is counted in summaries.
#[test]
fn pruning_inside_a_packed_row_is_exact() {
    let store = RedbStore::in_memory().unwrap();
    let points = day();
    store.commit(&readings(&points), &[]).unwrap();
    store.seal(i64::MAX).unwrap();
    let distinct = |period: Millis, keep: &dyn Fn(Millis) -> bool| {
        let mut starts: Vec<Millis> =
            points.iter().map(|p| p.0 - p.0 % period).filter(|s| keep(*s)).collect();
        starts.dedup();
        starts.len() as u64
    };
    let (minutes, hours) = (distinct(MINUTE_MS, &|_| true), distinct(HOUR_MS, &|_| true));
    assert_eq!(store.rollup_sizes().unwrap().map(|l| l.summaries), [minutes, hours]);

    // Hours kept longest, then minutes, then readings, each cut mid-row.
    let horizons = Horizons {
        readings: Some(T0 + 9 * HOUR_MS + 3_000),
        minute_rollups: Some(T0 + 5 * HOUR_MS + 17 * MINUTE_MS + 5),
        hour_rollups: Some(T0 + 2 * HOUR_MS + 5),
    };
    let ended = |period: Millis, before: Option<Millis>| distinct(period, &|s| s + period <= before.unwrap());
    let old = points.iter().filter(|p| p.0 < horizons.readings.unwrap()).count() as u64;
    let want = Pruned {
        readings: old,
        changes: old, // a message per reading, received when it was taken
        minute_rollups: ended(MINUTE_MS, horizons.minute_rollups),
        hour_rollups: ended(HOUR_MS, horizons.hour_rollups),
    };
    assert!(!want.minute_rollups.is_multiple_of(60) && want.hour_rollups > 0);
    assert_eq!(store.prune(horizons).unwrap(), want);
    assert_eq!(
        store.rollup_sizes().unwrap().map(|l| l.summaries),
        [minutes - want.minute_rollups, hours - want.hour_rollups]
    );
    assert_eq!(store.prune(horizons).unwrap(), Pruned::default(), "nothing more to prune");

    // The minutes left in the row the horizon fell in, in minute buckets from the rollups
    // (from the first minute wholly after it: a range starting before it is widened).
    let cut = horizons.minute_rollups.unwrap();
    let (from, to) = (cut - cut % MINUTE_MS + MINUTE_MS, T0 + 9 * HOUR_MS - T0 % MINUTE_MS - 1);
    let h = store.history("a", "t", from, to, ((to + 1 - from) / MINUTE_MS + 1) as usize).unwrap();
    assert_eq!(h.bucket_ms, MINUTE_MS);
    let within =
        |from: Millis, to: Millis| points.iter().copied().filter(move |p| (from..=to).contains(&p.0));
    assert_buckets_match(&h.buckets, &downsample(within(from, to), MINUTE_MS));
    // The hours left in the day row the hour horizon fell in, and on past the other horizons.
    let cut = horizons.hour_rollups.unwrap();
    let (from, to) = (cut - cut % HOUR_MS, cut - cut % HOUR_MS + 20 * HOUR_MS - 1);
    let h = store.history("a", "t", from, to, 21).unwrap();
    assert_eq!(h.bucket_ms, HOUR_MS);
    assert_buckets_match(&h.buckets, &downsample(within(from, to), HOUR_MS));
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

/// Zones whose midnights fall on whole hours, half hours and quarter hours, with DST changes of
/// an hour or half an hour, both ways, north and south.
const ZONES: [&str; 6] = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
];

/// 2026-03-20 and 2025-10-20, 00:00 UTC: weeks before Europe's spring forward and Sydney's and
/// Lord Howe's fall back, and before New York's fall back.
const DST_SEASONS: [Millis; 2] = [1_773_964_800_000, 1_760_918_400_000];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Buckets of local days, whatever was sealed, read exactly as a fold of the raw readings
    /// over the same days: the hours from hour rollups, what lies off the hour from the rest.
    #[test]
    fn local_days_read_like_the_raw_readings(
        zone in 0usize..ZONES.len(),
        season in 0usize..DST_SEASONS.len(),
        steps in prop::collection::vec((1i64..10_800_000, -1_000i64..1_000), 1..600),
        seal_at in 0usize..600,
        from_frac in 0.0f64..0.5,
        max_points in 2usize..40,
    ) {
        let zone = Zone::named(ZONES[zone]).unwrap();
        let start = DST_SEASONS[season];
        let mut t = start;
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
        let from = start + ((t - start) as f64 * from_frac) as i64;
        let h = store.history_in("a", "t", from, t, max_points, Some(&zone)).unwrap();
        prop_assert!(h.buckets.len() <= max_points.max(2));
        let within = points.iter().copied().filter(|p| p.0 >= from && p.0 <= t);
        if !in_days(t - from, max_points) {
            prop_assert!(h.edges.is_empty() && h.zone.is_none());
            assert_buckets_match(&h.buckets, &downsample(within, h.bucket_ms));
            return Ok(());
        }
        prop_assert_eq!(h.zone.as_deref(), Some(zone.name()));
        for edge in &h.edges {
            prop_assert_eq!(zone.day_start(zone.day_of(*edge).unwrap()), Some(*edge), "a local midnight");
        }
        prop_assert!(h.edges[0] <= from && *h.edges.last().unwrap() > t);
        assert_buckets_match(&h.buckets, &downsample_between(within, &h.edges));
    }
}

/// Pruned with the defaults, local days in a zone whose midnights are not on whole hours
/// (Kolkata's are at 18:30 UTC) are cut at 18:00 where only hour rollups are left, and at its
/// midnights where minute rollups still are; every reading is counted once.
#[test]
fn local_days_are_cut_at_whole_hours_where_only_hours_are_left() {
    const NOW: Millis = 490_600 * HOUR_MS;
    let kolkata = Zone::named("Asia/Kolkata").unwrap();
    // 20 days, one ending 375 days ago (only hours left) and one 200 days ago, a reading every 10 minutes.
    let points: Vec<(Millis, f64)> = [NOW - 385 * DAY_MS, NOW - 210 * DAY_MS]
        .into_iter()
        .flat_map(|start| (0..10 * 144).map(move |i| (start + i * 10 * MINUTE_MS, (i % 97) as f64)))
        .collect();
    let store = RedbStore::in_memory().unwrap();
    store.commit(&readings(&points), &[]).unwrap();
    store.seal(NOW).unwrap();
    store.prune(crate::config::Config::default().storage.retention().horizons(NOW)).unwrap();
    for start in [NOW - 385 * DAY_MS, NOW - 210 * DAY_MS] {
        let (from, to) = (start, start + 10 * DAY_MS - 1);
        let h = store.history_in("a", "t", from, to, 11, Some(&kolkata)).unwrap();
        assert_eq!(h.bucket_ms, DAY_MS);
        let off_hour = h.edges.iter().filter(|e| *e % HOUR_MS != 0).count();
        if start < NOW - 365 * DAY_MS {
            assert_eq!(off_hour, 0, "cut at whole hours");
            assert!(h.edges.iter().all(|e| e.rem_euclid(DAY_MS) == 18 * HOUR_MS));
        } else {
            assert_eq!(off_hour, h.edges.len(), "at the midnights, from minute rollups");
        }
        let within = points.iter().copied().filter(|p| p.0 >= from && p.0 <= to);
        assert_buckets_match(&h.buckets, &downsample_between(within, &h.edges));
        assert_eq!(h.readings(), 10 * 144);
    }
}

/// The registry is written at checkpoints; whatever happened since is replayed from the change
/// log on open, once.
#[test]
fn the_registry_survives_a_crash_between_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.redb");
    let points = day();
    let status = |online, at| -> super::api::Report {
        super::api::StatusReport { device: DeviceId::try_from("a").unwrap(), online, at, session: None }
            .into()
    };
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
