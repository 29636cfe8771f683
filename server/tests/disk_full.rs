//! A full disk. The server process gets a file-size limit at its database's current size (the
//! kernel then refuses to grow the file, as when the disk is full): commits fail, nothing more
//! is acknowledged, the failures are counted, the process keeps running and what was stored
//! stays intact. Once the limit is lifted, the device's resent readings are stored and
//! acknowledged, each once.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{ServerProcess, eventually, telemetry_topic};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use server::store::RedbStore;

const DEVICE: &str = "full-disk";
/// Metrics per reading: a big message fills the file sooner.
const METRICS: usize = 60;

/// Reading `i` is `i` seconds after a day ago: recent, or the retention would delete it.
fn reading(i: usize) -> String {
    static START: std::sync::LazyLock<i64> =
        std::sync::LazyLock::new(|| (chrono::Utc::now().timestamp() - 86_400) * 1_000);
    let names: Vec<String> = (0..METRICS).map(|m| format!("m{m:02}")).collect();
    let values = names.iter().enumerate().map(|(m, name)| (name.as_str(), i as f64 + m as f64 / 100.0));
    common::payload(values, *START + i as i64 * 1_000)
}

/// Publishes readings `from..to` on one connection, in order; returns how many were
/// acknowledged before the broker stopped answering (acknowledgements come in order).
async fn publish(server: &ServerProcess, from: usize, to: usize) -> usize {
    let addr = server.mqtt();
    // A new client id each time: the broker refuses one whose old session is still closing.
    static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);
    let id = format!("{DEVICE}-{}", CONNECTIONS.fetch_add(1, Ordering::Relaxed));
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_inflight(50);
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    let topic = telemetry_topic(DEVICE);
    let sender = tokio::spawn(async move {
        for i in from..to {
            if client.publish(&topic, QoS::AtLeastOnce, false, reading(i)).await.is_err() {
                break;
            }
        }
        client
    });
    let mut acked = 0;
    while from + acked < to {
        match tokio::time::timeout(Duration::from_secs(5), eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Ok(_)) => {}
            // Refused and disconnected, or silent: the rest is not acknowledged.
            Ok(Err(_)) | Err(_) => break,
        }
    }
    sender.abort();
    acked
}

fn limit_file_size(pid: u32, limit: &str) {
    let status = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--fsize={limit}:unlimited")])
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(status.success(), "prlimit --fsize={limit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_stops_acknowledging_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let server = ServerProcess::start(&db, &[("IOT_DEVICE_MESSAGES_PER_SEC", "0".into())]);
    assert_eq!(publish(&server, 0, 100).await, 100, "acknowledged while there is room");

    // No more room: the file may not grow past its size now.
    limit_file_size(server.pid(), &std::fs::metadata(&db).unwrap().len().to_string());
    let mut acked = 100;
    let mut sent = 100;
    while server.metric("iot_commit_failures_total") == 0 {
        assert!(sent < 50_000, "the database never filled up");
        acked += publish(&server, sent, sent + 500).await;
        sent += 500;
        if acked < sent {
            break;
        }
    }
    let failures = eventually("the failed commit counted", || {
        Some(server.metric("iot_commit_failures_total")).filter(|n| *n > 0)
    });
    assert!(acked < sent, "something was refused");
    // Publishes after the refused one may have been stored without a PUBACK (the broker
    // checks a connection's publishes side by side, and drops the connection at the first
    // failure): stored, never acknowledged unstored.
    let stored = server.metric("iot_messages_stored_total");
    assert!(stored >= acked as u64, "everything acknowledged is stored: {stored} of {acked}");
    // Still refused while full, and the server is still up and reading. A commit smaller than
    // the one that failed may still fit in the file's free pages, so the device resends one
    // message at a time until twice in a row nothing is acknowledged.
    let mut refused = 0;
    for _ in 0..100 {
        if publish(&server, acked, acked + 1).await == 1 {
            (acked, refused) = (acked + 1, 0);
        } else {
            refused += 1;
            if refused == 2 {
                break;
            }
        }
    }
    assert_eq!(refused, 2, "nothing acknowledged while the disk is full");
    assert!(server.metric("iot_commit_failures_total") > failures);
    assert_eq!(server.get("/healthz").0, 503, "health says storage is failing");

    // Room again: the device resends what was not acknowledged, and more.
    limit_file_size(server.pid(), "unlimited");
    let total = sent.max(acked) + 100;
    assert_eq!(publish(&server, acked, total).await, total - acked, "acknowledged once there is room");
    assert_eq!(server.get("/healthz").0, 200, "healthy again once commits succeed");
    let device = server.device(DEVICE);
    assert_eq!(device["message_count"].as_u64(), Some(total as u64), "every reading stored once: {device}");
    server.stop();

    let store = RedbStore::open(&db).unwrap();
    assert!(store.check_integrity().unwrap(), "the file needed no repair");
    assert_eq!(store.point_count().unwrap(), (total * METRICS) as u64);
}
