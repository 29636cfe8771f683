//! Long-running durability checks, run by `make soak` (they are `#[ignore]`d in `make test`):
//! the server is killed with SIGKILL at random moments while devices publish, and (with an
//! external Mosquitto) the broker is restarted under load. Every reading a device got a PUBACK
//! for must be stored, none twice, and the database must pass redb's integrity check after
//! every kill. Each test prints its counts.
//!
//! `SOAK_KILLS` (default 20), `SOAK_BROKER_RESTARTS` (10), `SOAK_MINUTES` (30) and
//! `SOAK_DEVICES` (200) set the rounds.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::mosquitto::{Mosquitto, external_env, subscribed};
use common::raw::{Answer, Raw};
use common::*;
use server::store::RedbStore;
use telemetry::TelemetrySource;

const DEVICES: usize = 5;

fn rounds(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A small, seedable source of "random moments".
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        println!("jitter seed {seed}");
        Jitter(seed | 1)
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(from + self.0 % (to - from))
    }
}

/// What one device sent and had acknowledged, by reading timestamp.
#[derive(Default)]
struct Sent {
    published: BTreeSet<i64>,
    acked: BTreeSet<i64>,
}

/// A device as firmware does it: publish one reading at QoS 1 until it is acknowledged,
/// reconnecting (to wherever `broker` points now) whenever the connection breaks.
fn device(id: String, broker: Arc<Mutex<SocketAddr>>, start: i64, stop: Arc<AtomicBool>) -> Sent {
    let topic = telemetry_topic(&id);
    let mut sent = Sent::default();
    let mut conn: Option<Raw> = None;
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = conn.as_mut() else {
            let addr = *broker.lock().unwrap();
            match Raw::try_connect(addr, &id) {
                Ok(c) => conn = Some(c),
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
            continue;
        };
        let ts = start + i;
        sent.published.insert(ts);
        match c.publish(topic.as_bytes(), seed_payload(i as f64, 50.0, 3.7, ts).as_bytes()) {
            Answer::PubAck => {
                sent.acked.insert(ts);
                i += 1;
            }
            // Resend the same reading on the next connection.
            Answer::Disconnected | Answer::Silence => conn = None,
        }
    }
    sent
}

struct Fleet {
    broker: Arc<Mutex<SocketAddr>>,
    stop: Arc<AtomicBool>,
    devices: Vec<(String, thread::JoinHandle<Sent>)>,
    start: i64,
}

impl Fleet {
    fn start(prefix: &str, broker: SocketAddr) -> Fleet {
        let broker = Arc::new(Mutex::new(broker));
        let stop = Arc::new(AtomicBool::new(false));
        let start = now_ms() - 1_800_000;
        let devices = (0..DEVICES)
            .map(|d| {
                let id = format!("{prefix}_{d}");
                let (b, s, name) = (broker.clone(), stop.clone(), id.clone());
                (id, thread::spawn(move || device(name, b, start, s)))
            })
            .collect();
        Fleet { broker, stop, devices, start }
    }

    fn point_to(&self, addr: SocketAddr) {
        *self.broker.lock().unwrap() = addr;
    }

    fn finish(self) -> Vec<(String, Sent)> {
        self.stop.store(true, Ordering::Relaxed);
        self.devices.into_iter().map(|(id, t)| (id, t.join().unwrap())).collect()
    }
}

/// Opens the database as redb itself and runs its integrity check.
fn check_integrity(db: &Path) {
    let mut raw = redb::Database::open(db).expect("the database opens after a kill");
    assert!(
        raw.check_integrity().expect("integrity check runs"),
        "redb repaired the file: it was not consistent"
    );
}

/// Compares what devices had acknowledged with what is stored; prints and returns the counts.
fn audit(db: &Path, sent: &[(String, Sent)], start: i64, label: &str) -> (usize, usize, usize) {
    let store = RedbStore::open(db).unwrap();
    let (mut published, mut acked, mut stored) = (0, 0, 0);
    for (id, s) in sent {
        let points = store.points(id, "temperature", start, start + 10_000_000, None, 10_000_000).unwrap();
        let times: BTreeSet<i64> = points.iter().map(|p| p.0).collect();
        assert_eq!(times.len(), points.len(), "{id}: a reading stored twice");
        let lost: Vec<_> = s.acked.difference(&times).collect();
        assert!(lost.is_empty(), "{id}: acknowledged but not stored: {lost:?}");
        assert!(times.is_subset(&s.published), "{id}: stored something never sent");
        published += s.published.len();
        acked += s.acked.len();
        stored += times.len();
    }
    println!("{label}: published {published}, acknowledged {acked}, stored {stored}, duplicated 0, lost 0");
    (published, acked, stored)
}

#[test]
#[ignore = "soak: run with make soak"]
fn embedded_broker_kill_9_loses_no_acknowledged_reading() {
    let kills = rounds("SOAK_KILLS", 20);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    // Devices publish flat out, not held to a rate: as many readings in flight as can be.
    let env = [("IOT_DEVICE_MESSAGES_PER_SEC", "0".to_owned())];
    let mut server = ServerProcess::start(&db, &env);
    let fleet = Fleet::start("SOAK_E", server.mqtt());
    let mut jitter = Jitter::new();
    let mut startups = Vec::new();
    for _ in 0..kills {
        thread::sleep(jitter.millis(300, 1_500));
        server.kill();
        check_integrity(&db);
        let t = Instant::now();
        server = ServerProcess::start(&db, &env);
        startups.push(t.elapsed());
        fleet.point_to(server.mqtt());
    }
    thread::sleep(Duration::from_secs(1));
    let start = fleet.start;
    let sent = fleet.finish();
    server.kill();
    check_integrity(&db);
    let (_, acked, _) = audit(&db, &sent, start, &format!("embedded broker, {kills} × kill -9"));
    assert!(acked > kills * DEVICES, "devices made progress between kills");
    startups.sort();
    println!(
        "restart after kill: median {:?}, max {:?}",
        startups[startups.len() / 2],
        startups.last().unwrap()
    );
}

/// Waits until every reading the broker acknowledged to a device is stored (the server's
/// persistent session gets what was queued while it was down, as fast as it can commit), as
/// long as the backlog keeps shrinking.
fn wait_until_stored(server: &ServerProcess, sent: &[(String, Sent)]) {
    let acked: u64 = sent.iter().map(|(_, s)| s.acked.len() as u64).sum();
    let (mut last, mut progress) = (0, Instant::now());
    loop {
        let stored: u64 = sent.iter().map(|(id, _)| server.readings(id, "temperature")).sum();
        if stored >= acked {
            return;
        }
        if stored > last {
            (last, progress) = (stored, Instant::now());
        }
        let stalled = progress.elapsed();
        assert!(stalled < Duration::from_secs(20), "stuck at {stored} of {acked} acknowledged readings");
        thread::sleep(Duration::from_millis(500));
    }
}

#[test]
#[ignore = "soak: run with make soak"]
fn external_broker_kill_9_and_broker_restarts_lose_nothing() {
    let kills = rounds("SOAK_KILLS", 20);
    let restarts = rounds("SOAK_BROKER_RESTARTS", 10);
    let mut mosquitto = Mosquitto::start_persistent();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let env = external_env(mosquitto.addr, "soak-server");
    let mut server = ServerProcess::start(&db, &env);
    // Until the server has subscribed, the broker would drop what devices publish.
    eventually("the server to subscribe", || subscribed(&server));
    let mut jitter = Jitter::new();

    // Round one: the server is killed under load; Mosquitto keeps its session's messages.
    let fleet = Fleet::start("SOAK_X", mosquitto.addr);
    for _ in 0..kills {
        thread::sleep(jitter.millis(300, 1_500));
        server.kill();
        check_integrity(&db);
        server = ServerProcess::start(&db, &env);
    }
    let start = fleet.start;
    let sent = fleet.finish();
    wait_until_stored(&server, &sent);
    server.stop();
    audit(&db, &sent, start, &format!("external Mosquitto, {kills} × kill -9 of the server"));

    // Round two: the broker restarts under load.
    let server = ServerProcess::start(&db, &env);
    eventually("the server to resume its session", || subscribed(&server));
    let fleet = Fleet::start("SOAK_B", mosquitto.addr);
    for _ in 0..restarts {
        thread::sleep(jitter.millis(300, 1_500));
        mosquitto.restart();
    }
    thread::sleep(Duration::from_secs(1));
    let start = fleet.start;
    let sent = fleet.finish();
    wait_until_stored(&server, &sent);
    server.stop();
    audit(&db, &sent, start, &format!("external Mosquitto, {restarts} broker restarts"));
}

/// One live client that reads everything, noting each reading's delay from the server's
/// receive time.
async fn reader(http: SocketAddr, want: usize) -> (Vec<i64>, u64) {
    let mut client = LiveClient::connect(http, "").await;
    let (mut delays, mut resyncs) = (Vec::with_capacity(want), 0);
    while delays.len() < want {
        let event = client.next().await;
        match event["type"].as_str() {
            Some("reading") => delays.push(now_ms() - event["received"].as_i64().unwrap()),
            Some("resync") => resyncs += 1,
            _ => {}
        }
    }
    (delays, resyncs)
}

/// A live client that completes the upgrade and then never reads, with a small receive buffer
/// so the server's sends back up quickly.
async fn stuck(http: SocketAddr) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(http).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{http}/ws/live"), stream).await.unwrap();
    ws
}

/// Posts `n` readings of 40 metrics each at about `rate` per second through HTTP ingest.
async fn post_readings(server: &ServerProcess, device: &str, n: usize, rate: usize) {
    let start = now_ms() - 600_000;
    let metrics: serde_json::Map<_, _> =
        (0..40).map(|m| (format!("m{m:02}"), serde_json::json!(m as f64 + 0.5))).collect();
    let per_batch = (rate / 20).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut sent = 0;
    while sent < n {
        tick.tick().await;
        let batch: Vec<_> = (sent..(sent + per_batch).min(n))
            .map(|i| {
                let ts = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(start + i as i64)
                    .unwrap()
                    .to_rfc3339();
                serde_json::json!({"device_id": device, "telemetry": metrics, "timestamp": ts})
            })
            .collect();
        sent += batch.len();
        let (status, body) =
            server.post_json("/api/telemetry", serde_json::to_vec(&batch).unwrap().as_slice());
        assert_eq!(status, 202, "{body}");
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: run with make soak"]
async fn stuck_live_clients_do_not_slow_the_others() {
    const READERS: usize = 180;
    const STUCK: usize = 20;
    const READINGS: usize = 3_000;
    const RATE: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let rss_start = server.rss_kib();
    for (phase, stuck_clients) in [("without stuck clients", 0), ("with 20 stuck clients", STUCK)] {
        let mut blocked = Vec::new();
        for _ in 0..stuck_clients {
            blocked.push(stuck(server.http).await);
        }
        let readers: Vec<_> = (0..READERS).map(|_| tokio::spawn(reader(server.http, READINGS))).collect();
        eventually("every client to connect", || {
            (server.metric("iot_live_clients") == (READERS + stuck_clients) as u64).then_some(())
        });
        let started = Instant::now();
        post_readings(&server, &format!("WS_{stuck_clients}"), READINGS, RATE).await;
        let ingest_secs = started.elapsed().as_secs_f64();
        let mut delays = Vec::new();
        let mut resyncs = 0;
        for r in readers {
            let (d, n) =
                tokio::time::timeout(Duration::from_secs(60), r).await.expect("readers finish").unwrap();
            delays.extend(d);
            resyncs += n;
        }
        delays.sort_unstable();
        assert_eq!(delays.len(), READERS * READINGS, "every reader got every reading");
        assert_eq!(resyncs, 0, "no reader fell behind");
        let line = format!(
            "{phase}: {READINGS} readings at {:.0}/s to {READERS} readers: delay p50 {} ms, p99 {} ms, max {} ms",
            READINGS as f64 / ingest_secs,
            percentile(&delays, 0.5),
            percentile(&delays, 0.99),
            delays.last().unwrap()
        );
        println!("{line}");
        if stuck_clients > 0 {
            // Keep readings coming until the stuck clients' buffers are full and a send has
            // waited 10 s: then the server drops them (the readers are gone already).
            let since = Instant::now();
            let mut more = 0;
            while server.metric("iot_live_clients") > 0 {
                assert!(since.elapsed() < Duration::from_secs(120), "stuck clients still connected");
                post_readings(&server, &format!("WS_MORE_{more}"), 300, 600).await;
                more += 300;
            }
            println!(
                "stuck clients dropped after {more} more readings, {:.0} s",
                since.elapsed().as_secs_f64()
            );
        }
        drop(blocked);
    }
    let rss_end = server.rss_kib();
    println!("server memory: {} MiB at start, {} MiB at the end", rss_start / 1024, rss_end / 1024);
    assert!(rss_end < rss_start + 200 * 1024, "memory stays bounded: {rss_start} KiB → {rss_end} KiB");
}

#[test]
#[ignore = "soak: run with make soak"]
fn memory_and_disk_stay_flat_under_hours_of_devices() {
    let minutes = rounds("SOAK_MINUTES", 30) as u64;
    let devices = rounds("SOAK_DEVICES", 200);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let server = ServerProcess::start(&db, &[]);
    let mut sim = Command::new(simulator_bin())
        .args(["--port", &server.mqtt().port().to_string(), "-n", &devices.to_string(), "--interval", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Let every device connect and register before the first sample.
    thread::sleep(Duration::from_secs(30));
    let (rss_start, stored_start) = (server.rss_kib(), server.metric("iot_readings_stored_total"));
    let mut samples = vec![rss_start];
    for _ in 0..minutes {
        thread::sleep(Duration::from_secs(60));
        samples.push(server.rss_kib());
    }
    let stored = server.metric("iot_readings_stored_total") - stored_start;
    let _ = sim.kill();
    let _ = sim.wait();
    let rss_end = *samples.last().unwrap();
    let disk = std::fs::metadata(&db).unwrap().len();
    println!(
        "{devices} devices at 1 Hz for {minutes} min: {stored} readings stored; server memory {} MiB at start, \
         {} MiB at the end (max {} MiB); database {} MiB",
        rss_start / 1024,
        rss_end / 1024,
        samples.iter().max().unwrap() / 1024,
        disk / (1 << 20)
    );
    assert!(stored > 0, "the devices' readings were stored");
    assert!(rss_end < rss_start + 64 * 1024, "memory stays flat: {rss_start} KiB → {rss_end} KiB");
}
