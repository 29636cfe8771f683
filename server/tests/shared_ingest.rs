//! Several nodes taking devices' messages from one Mosquitto through a shared subscription
//! (`mqtt.share_group`, cluster mode's ingest): each message is stored by one node only, and
//! a node killed -9 loses nothing: the broker keeps its share for its persistent session and
//! hands it over when the node is back (Mosquitto 2.0 does not pass it to the other members).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::mosquitto::{Mosquitto, external_env, subscribed};
use common::*;

const DEVICE: &str = "ESP32_SHARED_01";

fn node(broker: std::net::SocketAddr, db: &Path, client_id: &str) -> ServerProcess {
    let mut env = external_env(broker, client_id);
    env.push(("IOT_MQTT_SHARE_GROUP", "dashboards".into()));
    let server = ServerProcess::start(db, &env);
    eventually("the node to subscribe", || subscribed(&server));
    server
}

/// Each `seq` reading the node stored, by its time (from the CSV export).
fn stored(server: &ServerProcess, from: i64) -> BTreeMap<i64, u64> {
    let to = now_ms() + 60_000;
    let (status, csv) =
        server.get(&format!("/api/export.csv?device={DEVICE}&metric=seq&from={from}&to={to}"));
    assert_eq!(status, 200, "{csv}");
    csv.lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.split(',').collect();
            let t = chrono::DateTime::parse_from_rfc3339(cols[0]).unwrap().timestamp_millis();
            (t, cols[4].parse::<f64>().unwrap() as u64)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_is_stored_by_one_node_and_a_killed_nodes_share_waits_for_it() {
    let broker = Mosquitto::start_persistent();
    // Each node its own folder (its users file sits beside its database).
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (db_a, db_b) = (dir_a.path().join("t.redb"), dir_b.path().join("t.redb"));
    let a = node(broker.addr, &db_a, "node-a");
    let b = node(broker.addr, &db_b, "node-b");
    // The SUBACK follows the health check's first yes by a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut device = Device::connect(broker.addr, DEVICE, |_| {}).await;
    let topic = format!("app/device/{DEVICE}/telemetry");
    let start = now_ms() - 3_600_000;
    let message = |seq: u64| payload([("seq", seq as f64)], start + seq as i64 * 1_000);
    device.publish_all(&topic, (1..=200).map(message).collect()).await;
    let (on_a, on_b) = eventually("the first 200 stored", || {
        let (on_a, on_b) = (stored(&a, start), stored(&b, start));
        (on_a.len() + on_b.len() >= 200).then_some((on_a, on_b))
    });
    assert!(on_a.keys().all(|t| !on_b.contains_key(t)), "no message stored by both nodes");
    assert_eq!(on_a.len() + on_b.len(), 200);
    // Mosquitto rotates strictly between the members.
    assert!(
        on_a.len() >= 80 && on_b.len() >= 80,
        "both nodes took a share: {} and {}",
        on_a.len(),
        on_b.len()
    );

    // Node b dies without a word; the device goes on publishing, and the broker acknowledges.
    b.kill();
    device.publish_all(&topic, (201..=300).map(message).collect()).await;
    let took = on_a.len();
    eventually("node a's share of the next 100", || (stored(&a, start).len() >= took + 40).then_some(()));
    // Until a's count stands still for a second.
    let mut settled = stored(&a, start).len();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = stored(&a, start).len();
        if now == settled {
            break;
        }
        settled = now;
    }
    assert!(settled < took + 100, "b's share was kept for b, not handed to a ({} of 100)", settled - took);
    let b = node(broker.addr, &db_b, "node-b");
    let (on_a, on_b) = eventually("all 300 stored", || {
        let (on_a, on_b) = (stored(&a, start), stored(&b, start));
        (on_a.len() + on_b.len() >= 300).then_some((on_a, on_b))
    });
    let mut all: Vec<u64> = on_a.values().chain(on_b.values()).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (1..=300).collect::<Vec<_>>(), "every acknowledged message stored exactly once");
    // A message b stored but had not acknowledged when it died comes again to b: stored once.
    assert_eq!(a.metric("iot_readings_duplicate_total"), 0, "a never saw b's messages");
}
