//! The read side (`TelemetrySource`) of the PostgreSQL store through the synchronous trait the
//! web routes call: what one node stored, another node's store reads back, from a plain
//! thread.

mod common;

use common::postgres::Postgres;
use server::store::Incoming;
use server::store::postgres::{PgBlocking, PgSettings};
use telemetry::{DeviceId, Message, Millis, TelemetrySource};

/// 2025-12-06 05:46:40 UTC.
const T0: Millis = 1_765_000_000_000;

#[test]
fn what_one_node_stored_another_reads_through_the_trait() {
    let pg = Postgres::start();
    let writer = PgBlocking::open(&PgSettings::new(&pg.url)).unwrap();
    let reader = PgBlocking::open(&PgSettings::new(&pg.url)).unwrap();
    let batch: Vec<Incoming> = (0..120)
        .map(|i| Incoming {
            message: Message::new(
                DeviceId::try_from("greenhouse-1").unwrap(),
                T0 + i * 1_000,
                [("t", i as f64)],
            ),
            received: T0 + i * 1_000 + 100,
        })
        .collect();
    let store = writer.store().clone();
    let stored = writer.spawn(async move { store.ingest(&batch).await.unwrap().stored });
    assert_eq!(futures::executor::block_on(stored).unwrap(), 120);

    let devices = reader.devices().unwrap();
    assert_eq!(devices.value.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["greenhouse-1"]);
    assert_eq!(devices.last_seq, 120);
    assert_eq!(reader.last_seq().unwrap(), 120);
    let device = reader.device("greenhouse-1").unwrap().value.expect("known");
    assert_eq!(device.message_count, 120);
    assert!(reader.device("nobody").unwrap().value.is_none());

    // Two minutes in two buckets: each the minute's readings.
    let history = reader.history("greenhouse-1", "t", T0, T0 + 119_999, 2).unwrap();
    let buckets: Vec<(u32, f64, f64)> = history.buckets.iter().map(|b| (b.count, b.min, b.max)).collect();
    assert_eq!(buckets.iter().map(|b| b.0).sum::<u32>(), 120, "{buckets:?}");
    let points = reader.points("greenhouse-1", "t", T0, T0 + 119_000, Some(T0 + 117_000), 10).unwrap();
    assert_eq!(points, [(T0 + 118_000, 118.0), (T0 + 119_000, 119.0)], "a page after a time");
    let changes = reader.changes_since(118, 10).unwrap();
    assert_eq!(changes.iter().map(|c| c.seq()).collect::<Vec<_>>(), [Some(119), Some(120)]);
    assert!(reader.device_log("greenhouse-1").unwrap().events.is_empty());
    assert_eq!(
        reader.availability(&["greenhouse-1".into()], T0, T0 + 120_000).unwrap(),
        [None],
        "no connection log"
    );
}
