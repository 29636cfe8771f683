//! History on the PostgreSQL store against a real PostgreSQL (common::postgres): the redb
//! engine's tests (server/src/store/engine_tests.rs) ported, "whatever was rolled up or
//! pruned, reads answer as they would from the raw readings", and where pruning widens
//! buckets, as the redb store answers the same readings. Where the redb tests seal, these
//! run a roll-up pass (`PgStore::roll_up`, what `Store::seal` calls); late and redelivered
//! readings, the pruning of each level by its own age, local days across DST changes, and a
//! kill -9 of the database during ingest and passes are tested as there. The property tests run 16 cases each (48 for redb) to keep
//! CI's time.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::postgres::Postgres;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use server::store::postgres::{LocalEdges, PgSettings, PgStore};
use server::store::{CommitOutcome, Horizons, Incoming, Pruned, RedbStore, Retention, Store};
use telemetry::history::{
    Bucket, DAY_MS, HOUR_MS, LocalDays, MINUTE_MS, bucket_width, downsample, downsample_between, in_days,
};
use telemetry::zone::Zone;
use telemetry::{DeviceId, History, LiveEvent, Message, Millis, TelemetrySource};

const T0: Millis = 1_766_146_880_000;
/// 2025-12-21 16:00 UTC: "now" for the retention tests.
const NOW: Millis = 490_600 * HOUR_MS;

/// The server's default retention: readings 30 days, minute rollups 365, hours for good.
fn defaults() -> Retention {
    let retention = server::config::Config::default().storage.retention();
    assert_eq!(retention, Retention { readings_days: 30, minute_rollup_days: 365, hour_rollup_days: 0 });
    retention
}

/// One message per reading of metric "t" of `device`, received when taken.
fn readings(device: &str, points: &[(Millis, f64)]) -> Vec<Incoming> {
    points
        .iter()
        .map(|&(ts, v)| Incoming {
            message: Message::new(DeviceId::try_from(device).unwrap(), ts, [("t", v)]),
            received: ts,
        })
        .collect()
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

/// A PostgreSQL of its own and a store on it, called from plain test code.
struct Db {
    store: PgStore,
    rt: tokio::runtime::Runtime,
    pg: Postgres,
}

impl Db {
    fn start() -> Db {
        let pg = Postgres::start();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let store = rt.block_on(PgStore::open(&PgSettings::new(&pg.url))).unwrap();
        Db { store, rt, pg }
    }

    fn run<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// A second node on the same database.
    fn node(&self) -> PgStore {
        self.run(PgStore::open(&PgSettings::new(&self.pg.url))).unwrap()
    }

    fn commit(&self, device: &str, points: &[(Millis, f64)]) -> CommitOutcome {
        let mut all = CommitOutcome::default();
        for batch in points.chunks(5_000) {
            let out = self.run(self.store.ingest(&readings(device, batch))).unwrap();
            all.stored += out.stored;
            all.duplicates += out.duplicates;
        }
        all
    }

    fn history(&self, device: &str, from: Millis, to: Millis, max_points: usize) -> History {
        self.run(self.store.history(device, "t", from, to, max_points)).unwrap()
    }

    fn history_in(&self, device: &str, from: Millis, to: Millis, max_points: usize, zone: &Zone) -> History {
        let local = LocalEdges::of(from, to, max_points, Some(zone as &dyn LocalDays));
        self.run(self.store.history_in(device, "t", from, to, max_points, local)).unwrap()
    }

    fn all(&self, device: &str) -> Vec<(Millis, f64)> {
        self.run(self.store.points(device, "t", i64::MIN, i64::MAX, None, usize::MAX)).unwrap()
    }

    /// A roll-up pass of what was taken before `before` (the redb store's seal).
    fn seal(&self, before: Millis) -> u64 {
        self.run(self.store.roll_up(before)).unwrap()
    }

    fn prune(&self, horizons: Horizons) -> Pruned {
        self.run(self.store.prune(horizons)).unwrap()
    }

    /// One number from SQL of the test's own.
    fn count(&self, sql: &str) -> i64 {
        self.run(async {
            let (client, connection) =
                tokio_postgres::connect(&self.pg.url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client.query_one(sql, &[]).await.unwrap().get(0)
        })
    }

    /// Rollup summaries kept: minutes, hours.
    fn rollups(&self) -> [i64; 2] {
        [self.count("SELECT count(*) FROM rollup_minutes"), self.count("SELECT count(*) FROM rollup_hours")]
    }
}

/// The redb store given the same readings, sealed up to `seal`, for answers to compare with.
fn redb(points: &[(Millis, f64)], seal: Millis) -> RedbStore {
    let store = RedbStore::in_memory().unwrap();
    for batch in points.chunks(5_000) {
        store.commit(&readings("a", batch), &[]).unwrap();
    }
    store.seal(seal).unwrap();
    store
}

#[test]
fn every_range_reads_like_the_raw_readings_before_and_after_roll_up_passes() {
    let db = Db::start();
    let points = day();
    let out = db.commit("a", &points);
    assert_eq!((out.stored, out.duplicates), (8_640, 0));
    assert_eq!(db.all("a"), points);
    let check = || {
        for (a, b, n) in [(0, DAY_MS, 1_000), (HOUR_MS, 2 * HOUR_MS, 500), (0, DAY_MS, 50), (0, DAY_MS, 23)] {
            let h = db.history("a", T0 + a, T0 + b, n);
            assert_eq!(h.bucket_ms, bucket_width(T0 + a, T0 + b, n));
            let want =
                downsample(points.iter().copied().filter(|p| p.0 >= h.from && p.0 <= h.to), h.bucket_ms);
            assert!(!want.is_empty());
            assert_buckets_match(&h.buckets, &want);
        }
    };
    // All queued, none rolled up yet: the queue is read as the rollups would be.
    assert_eq!(db.rollups(), [0, 0]);
    check();
    assert_eq!(db.seal(T0 + 80_000_000), 8_000);
    assert_eq!(db.count("SELECT count(*) FROM rollup_pending"), 640);
    check();
    assert_eq!(db.seal(T0 + 80_000_000), 0, "nothing twice");
    assert_eq!(db.seal(i64::MAX), 640);
    check();
    assert_eq!(db.all("a"), points);
    // Export pages, after a time, limited.
    let page = db.run(db.store.points("a", "t", T0, i64::MAX, Some(T0 + 10_230_000), 3)).unwrap();
    assert_eq!(page, points[1_024..1_027]);
    assert!(db.run(db.store.points("a", "t", T0, T0 + 5, None, 0)).unwrap().is_empty());
    assert!(db.run(db.store.points("b", "t", T0, i64::MAX, None, 10)).unwrap().is_empty(), "unknown series");
    // An unknown series has an empty history, current to the latest change.
    let none = db.history("b", T0, T0 + DAY_MS, 100);
    assert!(none.buckets.is_empty());
    assert_eq!(none.last_seq, 8_640);
    // The day's hours: a row each, summing to the readings.
    assert_eq!(db.rollups(), [1_441, 25], "the day starts 21 min 20 s into an hour");
    assert_eq!(db.count("SELECT sum(count)::bigint FROM rollup_minutes"), 8_640);
}

#[test]
fn a_redelivered_reading_is_not_counted_twice_even_by_two_nodes_at_once() {
    let db = Db::start();
    let points = day();
    db.commit("a", &points);
    db.seal(i64::MAX);
    let again = db.commit("a", &points[100..200]);
    assert_eq!((again.stored, again.duplicates), (0, 100));
    assert_eq!(db.history("a", T0, T0 + DAY_MS, 1_000).readings(), 8_640);
    assert_eq!(db.count("SELECT sum(count)::bigint FROM rollup_hours"), 8_640);

    // Two nodes given the same new readings at once: stored once, rolled up once.
    let other = db.node();
    let more: Vec<(Millis, f64)> = (0..2_000).map(|i| (T0 + DAY_MS + i * 1_000, i as f64)).collect();
    let batch = readings("a", &more);
    let (x, y) = db.run(async { tokio::join!(db.store.ingest(&batch), other.ingest(&batch)) });
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!((x.stored + y.stored, x.duplicates + y.duplicates), (2_000, 2_000));
    let h = db.history("a", T0 + DAY_MS, T0 + DAY_MS + HOUR_MS, 100);
    assert_buckets_match(&h.buckets, &downsample(more.iter().copied(), h.bucket_ms));
    assert_eq!(h.readings(), 2_000);
    // Both nodes run a pass at once, while more readings arrive: each reading rolled up once.
    let later: Vec<(Millis, f64)> =
        (0..2_000).map(|i| (T0 + DAY_MS + 3_000_000 + i * 1_000, i as f64)).collect();
    let batch = readings("a", &later);
    let (x, y, z) = db.run(async {
        tokio::join!(db.store.roll_up(i64::MAX), other.roll_up(i64::MAX), other.ingest(&batch))
    });
    let z = z.unwrap();
    assert_eq!(z.stored, 2_000);
    let rolled = x.unwrap() + y.unwrap() + db.seal(i64::MAX);
    assert_eq!(rolled, 4_000, "the two nodes' passes and the one after");
    assert_eq!(db.count("SELECT sum(count)::bigint FROM rollup_hours"), 8_640 + 4_000);
    let all: Vec<(Millis, f64)> = more.iter().chain(&later).copied().collect();
    let h = db.history("a", T0 + DAY_MS, T0 + DAY_MS + 2 * HOUR_MS, 100);
    assert_buckets_match(&h.buckets, &downsample(all, h.bucket_ms));
}

#[test]
fn late_readings_are_folded_into_the_periods_they_belong_to() {
    let db = Db::start();
    let mut points = day();
    let hour = T0 - T0 % HOUR_MS + 3 * HOUR_MS;
    let lacked = hour + 17 * MINUTE_MS;
    let last_of_minute = hour + 42 * MINUTE_MS + 50_000;
    let i = points.binary_search_by_key(&last_of_minute, |p| p.0).unwrap();
    points[i].1 = 99.5;
    // Every fifth reading comes late, and so do a whole minute and a minute's new max and last.
    let (late, early): (Vec<_>, Vec<_>) = points.iter().copied().partition(|p| {
        p.0 == last_of_minute || (lacked..lacked + MINUTE_MS).contains(&p.0) || (p.0 / 10_000) % 5 == 0
    });
    db.commit("a", &early);
    db.seal(i64::MAX);
    let minutes = |db: &Db| db.history("a", hour, hour + HOUR_MS - 1, 61);
    assert_eq!(minutes(&db).buckets.len(), 59);
    assert_eq!(db.commit("a", &late).stored, late.len() as u64);
    assert_eq!(db.all("a"), points, "late readings read back in order");
    let in_hour = points.iter().copied().filter(|p| (hour..hour + HOUR_MS).contains(&p.0));
    assert_buckets_match(&minutes(&db).buckets, &downsample(in_hour, MINUTE_MS));
    assert_eq!(db.seal(i64::MAX), late.len() as u64);
    let h = minutes(&db);
    assert_eq!((h.bucket_ms, h.buckets.len()), (MINUTE_MS, 60));
    let in_hour = points.iter().copied().filter(|p| (hour..hour + HOUR_MS).contains(&p.0));
    assert_buckets_match(&h.buckets, &downsample(in_hour, MINUTE_MS));
    assert_eq!((h.buckets[42].max, h.buckets[42].last, h.buckets[17].count), (99.5, 99.5, 6));
    // The day in hours, from the hour rollups, as from the readings.
    let (from, to) = (T0 - T0 % HOUR_MS + HOUR_MS, T0 - T0 % HOUR_MS + 23 * HOUR_MS - 1);
    let h = db.history("a", from, to, 23);
    assert_eq!(h.bucket_ms, HOUR_MS);
    let in_day = points.iter().copied().filter(|p| (from..=to).contains(&p.0));
    assert_buckets_match(&h.buckets, &downsample(in_day, HOUR_MS));
    assert_eq!(db.rollups(), [1_441, 25]);
}

#[test]
fn pruning_hides_old_readings_at_once_and_drops_their_partitions() {
    let db = Db::start();
    let points = day();
    db.commit("a", &points);
    let partitions = db.run(db.store.partitions()).unwrap().len();
    assert_eq!(partitions, 2, "the day crosses midnight UTC");
    db.seal(T0 + 12 * HOUR_MS);
    let cut = T0 + 6 * HOUR_MS + 5;
    let pruned = db.prune(Horizons::all(cut));
    let kept: Vec<_> = points.iter().copied().filter(|p| p.0 >= cut).collect();
    assert_eq!(pruned.readings, (points.len() - kept.len()) as u64);
    assert_eq!(pruned.changes, pruned.readings, "a message per reading, received when taken");
    assert_eq!(db.all("a"), kept);
    let h = db.history("a", cut, T0 + DAY_MS, 100);
    assert_buckets_match(&h.buckets, &downsample(kept.iter().copied(), h.bucket_ms));
    assert_eq!(db.prune(Horizons::all(cut)), Pruned::default(), "nothing more to prune");
    // Once the horizon passes midnight, the first day's partition goes whole.
    let midnight = T0 - T0 % DAY_MS + DAY_MS;
    db.prune(Horizons { readings: Some(midnight), ..Horizons::default() });
    assert_eq!(db.run(db.store.partitions()).unwrap().len(), 1);
    assert_eq!(
        db.count("SELECT count(*) FROM readings"),
        points.iter().filter(|p| p.0 >= midnight).count() as i64
    );
    // A second node reads what the first pruned as pruned.
    let other = db.node();
    let left = db.run(other.points("a", "t", 0, i64::MAX, None, 100_000)).unwrap();
    assert_eq!(left.first().map(|p| p.0 >= midnight), Some(true));
}

/// Over a year, pruned with the default retention: readings older than 30 days and minute
/// rollups older than 365 days go, hour rollups stay; a chart reads whatever level is left,
/// in buckets no finer than it, exactly as the redb store does.
#[test]
fn each_level_is_pruned_by_its_own_age_and_long_charts_still_answer() {
    let db = Db::start();
    // 400 days, a reading every 10 minutes, values in 0.0..100.0.
    let mut points: Vec<(Millis, f64)> = (0..=400 * 144)
        .map(|i| (NOW - 400 * DAY_MS + i * 10 * MINUTE_MS, ((i * 7_919) % 1_000) as f64 / 10.0))
        .collect();
    db.commit("a", &points);
    db.seal(NOW - HOUR_MS);
    // A late reading, 100 days old, still queued when pruning comes: rolled up first.
    let late = (NOW - 100 * DAY_MS + 5 * MINUTE_MS, 123.0);
    db.commit("a", &[late]);
    points.insert(points.partition_point(|p| p.0 < late.0), late);

    let horizons = defaults().horizons(NOW);
    let (raw, minutes) = (NOW - 30 * DAY_MS, NOW - 365 * DAY_MS);
    assert_eq!(horizons, Horizons { readings: Some(raw), minute_rollups: Some(minutes), hour_rollups: None });
    let pruned = db.prune(horizons);
    let kept: Vec<_> = points.iter().copied().filter(|p| p.0 >= raw).collect();
    assert_eq!(pruned.readings, (points.len() - kept.len()) as u64);
    let old_minutes = points.iter().filter(|p| p.0 - p.0 % MINUTE_MS + MINUTE_MS <= minutes).count();
    assert_eq!((pruned.minute_rollups, pruned.hour_rollups), (old_minutes as u64, 0));
    assert_eq!(db.all("a"), kept, "raw readings older than 30 days are gone");
    assert!(db.run(db.store.partitions()).unwrap().len() <= 32, "their partitions dropped");

    let reference = redb(&points, NOW);
    reference.prune(horizons).unwrap();
    let within = |from: Millis, to: Millis| points.iter().copied().filter(move |p| p.0 >= from && p.0 <= to);
    let chart = |from: Millis, to: Millis, max_points| {
        let h = db.history("a", from, to, max_points);
        let want = downsample(within(from, to), h.bucket_ms);
        assert_buckets_match(&h.buckets, &want);
        let r = reference.history("a", "t", from, to, max_points).unwrap();
        assert_eq!(h.bucket_ms, r.bucket_ms, "as the redb store");
        assert_buckets_match(&h.buckets, &r.buckets);
        h
    };
    let year = chart(NOW - 365 * DAY_MS, NOW, 1_000);
    assert_eq!(year.bucket_ms, 9 * HOUR_MS);
    assert_eq!(year.readings(), within(NOW - 365 * DAY_MS, NOW).count() as u64);
    assert_eq!(chart(NOW - 400 * DAY_MS, NOW, 1_000).readings(), points.len() as u64);
    let day = chart(NOW - 200 * DAY_MS, NOW - 199 * DAY_MS - 1, 1_000);
    assert_eq!((day.bucket_ms, day.readings()), (2 * MINUTE_MS, 144));
    let old_day = chart(NOW - 380 * DAY_MS, NOW - 379 * DAY_MS - 1, 1_000);
    assert_eq!((old_day.bucket_ms, old_day.readings()), (HOUR_MS, 144));
    let old_day = chart(NOW - 380 * DAY_MS, NOW - 379 * DAY_MS - 1, 12);
    assert_eq!((old_day.bucket_ms, old_day.readings()), (3 * HOUR_MS, 144));
    let narrow = chart(late.0 - MINUTE_MS, late.0 + MINUTE_MS, 1_000);
    assert_eq!(narrow.bucket_ms, MINUTE_MS);
    assert_eq!(narrow.buckets.iter().map(|b| (b.count, b.max)).collect::<Vec<_>>(), [(1, 123.0)]);
    let hour = late.0 - late.0 % HOUR_MS;
    let late_hour = chart(hour, hour + HOUR_MS - 1, 1);
    assert_eq!(late_hour.buckets.iter().map(|b| (b.count, b.max)).collect::<Vec<_>>(), [(7, 123.0)]);

    assert_eq!(db.prune(horizons), Pruned::default(), "nothing more to prune");
}

/// Pruned with the defaults, a day 200 days ago asked in 30-second buckets is answered in
/// minute ones, and a day 380 days ago asked in 5-minute buckets in hour ones, each with every
/// reading in it; the database remembers how far each level was pruned (a new node reads it).
#[test]
fn buckets_finer_than_the_level_left_are_widened_to_it() {
    let db = Db::start();
    let days = [NOW - 200 * DAY_MS, NOW - 380 * DAY_MS];
    let (mut points, mut v) = (Vec::new(), 2_000i64);
    for start in [days[1], days[0]] {
        for i in 0..DAY_MS / 7_000 {
            v += (i * 7_919 % 13) - 6;
            points.push((start + i * 7_000, v as f64 / 100.0));
        }
    }
    db.commit("a", &points);
    db.seal(NOW);
    db.prune(defaults().horizons(NOW));
    let other = db.node();
    let history = |from, to, n| db.run(other.history("a", "t", from, to, n)).unwrap();
    let within = |from: Millis, to: Millis| points.iter().copied().filter(move |p| p.0 >= from && p.0 <= to);
    let (from, to) = (days[0], days[0] + DAY_MS - 1);
    assert_eq!(bucket_width(from, to, 2_881), 30_000);
    let h = history(from, to, 2_881);
    assert_eq!((h.bucket_ms, h.buckets.len()), (MINUTE_MS, 1_440));
    assert_eq!(h.readings(), within(from, to).count() as u64);
    assert_buckets_match(&h.buckets, &downsample(within(from, to), MINUTE_MS));
    let (from, to) = (days[1], days[1] + DAY_MS - 1);
    assert_eq!(bucket_width(from, to, 289), 5 * MINUTE_MS);
    let h = history(from, to, 289);
    assert_eq!((h.bucket_ms, h.buckets.len()), (HOUR_MS, 24));
    assert_eq!(h.readings(), within(from, to).count() as u64);
    assert_buckets_match(&h.buckets, &downsample(within(from, to), HOUR_MS));
    assert_eq!(history(NOW - DAY_MS, NOW - 1, 2_881).bucket_ms, 30_000, "as asked where readings are kept");
}

/// A horizon inside an hour (or day): the periods that end after it are kept, and what was
/// pruned is counted in summaries, as the redb store counts them.
#[test]
fn pruning_inside_a_period_is_exact() {
    let db = Db::start();
    let points = day();
    db.commit("a", &points);
    db.seal(i64::MAX);
    let distinct = |period: Millis, keep: &dyn Fn(Millis) -> bool| {
        let mut starts: Vec<Millis> =
            points.iter().map(|p| p.0 - p.0 % period).filter(|s| keep(*s)).collect();
        starts.dedup();
        starts.len() as u64
    };
    let (minutes, hours) = (distinct(MINUTE_MS, &|_| true), distinct(HOUR_MS, &|_| true));
    assert_eq!(db.rollups(), [minutes as i64, hours as i64]);
    let horizons = Horizons {
        readings: Some(T0 + 9 * HOUR_MS + 3_000),
        minute_rollups: Some(T0 + 5 * HOUR_MS + 17 * MINUTE_MS + 5),
        hour_rollups: Some(T0 + 2 * HOUR_MS + 5),
    };
    let ended = |period: Millis, before: Option<Millis>| distinct(period, &|s| s + period <= before.unwrap());
    let old = points.iter().filter(|p| p.0 < horizons.readings.unwrap()).count() as u64;
    let want = Pruned {
        readings: old,
        changes: old,
        minute_rollups: ended(MINUTE_MS, horizons.minute_rollups),
        hour_rollups: ended(HOUR_MS, horizons.hour_rollups),
    };
    assert!(!want.minute_rollups.is_multiple_of(60) && want.hour_rollups > 0);
    assert_eq!(db.prune(horizons), want);
    let reference = redb(&points, i64::MAX);
    assert_eq!(reference.prune(horizons).unwrap(), want, "as the redb store counts");
    assert_eq!(db.rollups(), [(minutes - want.minute_rollups) as i64, (hours - want.hour_rollups) as i64]);
    assert_eq!(db.prune(horizons), Pruned::default(), "nothing more to prune");

    let within =
        |from: Millis, to: Millis| points.iter().copied().filter(move |p| (from..=to).contains(&p.0));
    let cut = horizons.minute_rollups.unwrap();
    let (from, to) = (cut - cut % MINUTE_MS + MINUTE_MS, T0 + 9 * HOUR_MS - T0 % MINUTE_MS - 1);
    let h = db.history("a", from, to, ((to + 1 - from) / MINUTE_MS + 1) as usize);
    assert_eq!(h.bucket_ms, MINUTE_MS);
    assert_buckets_match(&h.buckets, &downsample(within(from, to), MINUTE_MS));
    let cut = horizons.hour_rollups.unwrap();
    let (from, to) = (cut - cut % HOUR_MS, cut - cut % HOUR_MS + 20 * HOUR_MS - 1);
    let h = db.history("a", from, to, 21);
    assert_eq!(h.bucket_ms, HOUR_MS);
    assert_buckets_match(&h.buckets, &downsample(within(from, to), HOUR_MS));
    // Ranges starting where levels were pruned answer as the redb store's.
    for (from, n) in [(T0, 50), (T0 + 3 * HOUR_MS, 300), (T0 + 6 * HOUR_MS, 2_000)] {
        let (h, r) = (
            db.history("a", from, T0 + DAY_MS, n),
            reference.history("a", "t", from, T0 + DAY_MS, n).unwrap(),
        );
        assert_eq!(h.bucket_ms, r.bucket_ms);
        assert_buckets_match(&h.buckets, &r.buckets);
    }
}

#[test]
fn changes_since_reads_the_log_as_live_events() {
    let db = Db::start();
    let points = &day()[..50];
    let mut events = Vec::new();
    for batch in points.chunks(20) {
        events.extend(db.run(db.store.ingest(&readings("a", batch))).unwrap().events);
    }
    assert_eq!(db.run(db.store.last_seq()).unwrap(), 50);
    assert_eq!(db.run(db.store.changes_since(0, 1_000)).unwrap(), events);
    let page = db.run(db.store.changes_since(10, 5)).unwrap();
    assert_eq!(page.iter().map(LiveEvent::seq).collect::<Vec<_>>(), (11..=15).map(Some).collect::<Vec<_>>());
    assert!(db.run(db.store.changes_since(50, 10)).unwrap().is_empty());
    assert!(db.run(db.store.changes_since(0, 0)).unwrap().is_empty());
    assert_eq!(db.history("a", T0, T0 + HOUR_MS, 10).last_seq, 50);
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
const DST_SEASONS: [Millis; 2] = [1_773_964_800_000, 1_760_918_400_000];

/// A device name per property-test case: each case's readings are its own.
fn next_device() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("p{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Rollups and readings together answer exactly as a fold over the raw readings.
#[test]
fn any_range_reads_like_the_raw_readings() {
    let db = Db::start();
    let cases = (
        prop::collection::vec((1i64..400_000, -1_000i64..1_000), 1..400),
        0usize..400,
        0.0f64..1.0,
        0.0f64..1.0,
        2usize..1_200,
    );
    TestRunner::new(Config::with_cases(16))
        .run(&cases, |(steps, seal_at, from_frac, len_frac, max_points)| {
            let device = next_device();
            let mut t = T0;
            let points: Vec<(Millis, f64)> = steps
                .iter()
                .map(|&(dt, v)| {
                    t += dt;
                    (t, v as f64 / 10.0)
                })
                .collect();
            db.commit(&device, &points);
            if let Some(p) = points.get(seal_at) {
                db.seal(p.0);
            }
            let span = (t - T0) as f64;
            let from = T0 + (span * from_frac) as i64;
            let to = from + ((t - from) as f64 * len_frac) as i64;
            let h = db.history(&device, from, to, max_points);
            prop_assert_eq!(h.bucket_ms, bucket_width(from, to, max_points));
            prop_assert!(h.buckets.len() <= max_points.max(2));
            let want = downsample(points.iter().copied().filter(|p| p.0 >= from && p.0 <= to), h.bucket_ms);
            assert_buckets_match(&h.buckets, &want);
            Ok(())
        })
        .unwrap();
}

/// Buckets of local days read exactly as a fold of the raw readings over the same days.
#[test]
fn local_days_read_like_the_raw_readings() {
    let db = Db::start();
    let cases = (
        0usize..ZONES.len(),
        0usize..DST_SEASONS.len(),
        prop::collection::vec((1i64..10_800_000, -1_000i64..1_000), 1..600),
        0usize..600,
        0.0f64..0.5,
        2usize..40,
    );
    TestRunner::new(Config::with_cases(16))
        .run(&cases, |(zone, season, steps, seal_at, from_frac, max_points)| {
            let device = next_device();
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
            db.commit(&device, &points);
            if let Some(p) = points.get(seal_at) {
                db.seal(p.0);
            }
            let from = start + ((t - start) as f64 * from_frac) as i64;
            let h = db.history_in(&device, from, t, max_points, &zone);
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
            Ok(())
        })
        .unwrap();
}

/// Pruned with the defaults, local days in Kolkata (midnights at 18:30 UTC) are cut at 18:00
/// where only hour rollups are left, and at its midnights where minute rollups still are.
#[test]
fn local_days_are_cut_at_whole_hours_where_only_hours_are_left() {
    let db = Db::start();
    let kolkata = Zone::named("Asia/Kolkata").unwrap();
    let points: Vec<(Millis, f64)> = [NOW - 385 * DAY_MS, NOW - 210 * DAY_MS]
        .into_iter()
        .flat_map(|start| (0..10 * 144).map(move |i| (start + i * 10 * MINUTE_MS, (i % 97) as f64)))
        .collect();
    db.commit("a", &points);
    db.seal(NOW);
    db.prune(defaults().horizons(NOW));
    let reference = redb(&points, NOW);
    reference.prune(defaults().horizons(NOW)).unwrap();
    for start in [NOW - 385 * DAY_MS, NOW - 210 * DAY_MS] {
        let (from, to) = (start, start + 10 * DAY_MS - 1);
        let h = db.history_in("a", from, to, 11, &kolkata);
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
        let r = reference.history_in("a", "t", from, to, 11, Some(&kolkata)).unwrap();
        assert_eq!((&h.edges, &h.zone), (&r.edges, &r.zone), "as the redb store");
        assert_buckets_match(&h.buckets, &r.buckets);
    }
}

/// Readings are queued with their commit and moved into the rollups by passes in one
/// transaction each: after kill -9 of the database during ingest and passes, every stored
/// reading is in the queue or the rollups, once.
#[test]
fn rollups_survive_kill_9_of_postgres_with_their_readings() {
    let mut db = Db::start();
    let acked = std::sync::Arc::new(AtomicUsize::new(0));
    let store = std::sync::Arc::new(db.node());
    let writer = {
        let (store, acked) = (store.clone(), acked.clone());
        db.rt.spawn(async move {
            for b in 0..100_000i64 {
                let batch: Vec<(Millis, f64)> =
                    (0..10).map(|i| (T0 + (b * 10 + i) * 1_000, (b % 50) as f64)).collect();
                if store.ingest(&readings("k", &batch)).await.is_err() {
                    return;
                }
                acked.fetch_add(10, Ordering::SeqCst);
            }
        })
    };
    // Passes all along, each of what is 30 s of reading time behind the latest acknowledged.
    let passes = {
        let (store, acked) = (store.clone(), acked.clone());
        db.rt.spawn(async move {
            let mut rolled = 0;
            loop {
                let behind = T0 + acked.load(Ordering::SeqCst) as Millis * 1_000 - 30_000;
                match store.roll_up(behind).await {
                    Ok(n) => rolled += n,
                    Err(_) => return rolled,
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
    };
    while acked.load(Ordering::SeqCst) < 3_000 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    db.pg.kill9();
    db.run(writer).unwrap();
    let rolled = db.run(passes).unwrap();
    assert!(rolled > 0, "passes ran during the writes");
    db.pg.restart();
    let acked = acked.load(Ordering::SeqCst);
    db.store = db.node();
    let stored = db.all("k");
    assert!(stored.len() >= acked, "{} stored, {acked} acknowledged", stored.len());
    let in_rollups = db.count("SELECT coalesce(sum(count), 0)::bigint FROM rollup_minutes");
    let queued = db.count("SELECT count(*) FROM rollup_pending");
    assert_eq!(in_rollups + queued, stored.len() as i64, "each stored reading rolled up or queued, once");
    assert_eq!(db.count("SELECT coalesce(sum(count), 0)::bigint FROM rollup_hours"), in_rollups);
    let last = stored.last().unwrap().0;
    let h = db.history("k", T0, last, 100);
    assert_eq!(h.readings(), stored.len() as u64);
    assert_buckets_match(&h.buckets, &downsample(stored.iter().copied(), h.bucket_ms));
    db.seal(i64::MAX);
    assert_buckets_match(&db.history("k", T0, last, 100).buckets, &h.buckets);
}
