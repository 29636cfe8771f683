//! Alarm figures:
//! - `bench backtest [DAYS]`: one rule replayed over DAYS (7) of one reading a second of one
//!   device, as the rule editor's "what would this rule have done" asks it.
//! - `bench alarm-latency MQTT HOOK_PORT RATE SECS`: devices publish RATE messages a second
//!   for SECS over MQTT, one reading in [`TRIP_EVERY`] breaching a rule that notifies a webhook
//!   received here, on HOOK_PORT; the delay from each breaching reading's publish to its
//!   `alarm.fired` webhook (the script makes the channel and the rule, see
//!   scripts/bench-alarms.sh).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use server::alarms::backtest;
use server::store::{RedbStore, Store};
use telemetry::alarm::Rule;

use crate::data::{Device, START, median_time, ms};

const RUNS: usize = 11;

pub fn backtest(days: u64) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = RedbStore::open(&dir.path().join("backtest.redb")).expect("the store opens");
    let mut device = Device::new(1, 1);
    let points = days * 86_400;
    let mut hottest = f64::MIN;
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..points as i64 {
        let reading = device.reading(START + i * 1_000);
        hottest = hottest.max(reading.message.values[0].1);
        batch.push(reading);
        if batch.len() == 10_000 {
            store.commit(&batch, &[]).expect("commit");
            batch.clear();
        }
    }
    store.commit(&batch, &[]).expect("commit");
    let last = START + (points as i64 - 1) * 1_000;
    // As the server leaves it: everything but the last minute sealed, the change log trimmed.
    store.seal(last - 60_000).expect("seal");
    store.trim_changes(10_000).expect("trim");

    // Trips on the warmest afternoons, with the noise around the threshold that makes a rule
    // flap: what a backtest is for.
    let trip = (hottest - 1.0).floor();
    let rule: Rule = serde_json::from_value(serde_json::json!({
        "name": "warm", "devices": [device.id()], "kind": "threshold", "metric": "temperature",
        "op": ">", "levels": [{"severity": "major", "value": trip}], "clear": trip - 0.5,
        "for_secs": 60, "clear_for_secs": 60,
    }))
    .expect("a rule");
    rule.validate().expect("a valid rule");
    let (took, answer) = median_time(RUNS, || backtest::run(&store, &rule, START, last).expect("backtest"));
    println!(
        "| backtest of one rule, {days} days at 1 reading/s of one device (median of {RUNS}) | ms | readings | alarms opened | notifications |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| temperature > {trip} °C for 60 s, clear below {} for 60 s | {:.1} | {} | {} | {} |",
        trip - 0.5,
        ms(took),
        answer.readings,
        answer.opened,
        answer.notifications
    );
}

/// One breaching reading in this many.
pub const TRIP_EVERY: u64 = 20;
/// Breaching readings carry this plus their number, which the webhook gives back as the value.
const TRIP_BASE: f64 = 1_000_000.0;

pub fn latency(mqtt: SocketAddr, hook_port: u16, rate: u64, secs: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let mut delays = runtime.block_on(measure(mqtt, hook_port, rate, secs));
    if delays.is_empty() {
        eprintln!("no alarm.fired webhook arrived");
        std::process::exit(1);
    }
    delays.sort_by(f64::total_cmp);
    let at = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize];
    println!(
        "alarm.fired webhooks for {} breaching readings: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        delays.len(),
        at(0.5),
        at(0.99),
        delays[delays.len() - 1]
    );
}

/// When each breaching reading was published, by number.
type Sent = Arc<Mutex<HashMap<u64, Instant>>>;

async fn measure(mqtt: SocketAddr, hook_port: u16, rate: u64, secs: u64) -> Vec<f64> {
    let sent: Sent = Arc::default();
    let delays: Arc<Mutex<Vec<f64>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", hook_port)).await.expect("the webhook port");
    {
        let (sent, delays) = (sent.clone(), delays.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(receive(stream, sent.clone(), delays.clone()));
            }
        });
    }

    // One connection (and device) per 50 msg/s, as the latency figure has it.
    let connections = rate.div_ceil(50).max(1);
    let per_connection = rate as f64 / connections as f64;
    let next_trip = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (sent, next_trip) = (sent.clone(), next_trip.clone());
        tasks.push(tokio::spawn(device(mqtt, format!("ALAT_{c:03}"), per_connection, secs, sent, next_trip)));
    }
    let mut trips = 0;
    for t in tasks {
        trips += t.await.expect("a device");
    }
    // The last webhooks: until all arrived, or nothing came for 10 s.
    let mut seen = 0;
    let mut quiet = Instant::now();
    while delays.lock().unwrap().len() < trips as usize && quiet.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = delays.lock().unwrap().len();
        if now != seen {
            (seen, quiet) = (now, Instant::now());
        }
    }
    let delays = delays.lock().unwrap().clone();
    if (delays.len() as u64) < trips {
        eprintln!("{} of {trips} alarm.fired webhooks arrived", delays.len());
    }
    delays
}

/// One webhook connection (HTTP/1.1, kept alive): each request's arrival, answered 200; an
/// `alarm.fired` for a numbered breaching reading records its delay.
async fn receive(mut stream: tokio::net::TcpStream, sent: Sent, delays: Arc<Mutex<Vec<f64>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        // A request: its head, then Content-Length bytes of body.
        let (head_end, length) = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").and_then(|n| n.trim().parse().ok()))
                    .unwrap_or(0usize);
                if buf.len() >= end + 4 + length {
                    break (end + 4, length);
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let now = Instant::now();
        let notice: serde_json::Value =
            serde_json::from_slice(&buf[head_end..head_end + length]).unwrap_or_default();
        buf.drain(..head_end + length);
        if notice["event"] == "alarm.fired"
            && let Some(value) = notice["value"].as_f64()
            && let Some(at) = sent.lock().unwrap().get(&((value - TRIP_BASE) as u64))
        {
            delays.lock().unwrap().push(now.duration_since(*at).as_secs_f64() * 1_000.0);
        }
        if stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.is_err() {
            return;
        }
    }
}

/// One device publishing `rate` readings a second for `secs`: 20, and every
/// [`TRIP_EVERY`]th a breaching reading (numbered), which the next clears. Answers how many
/// breached.
async fn device(
    mqtt: SocketAddr,
    id: String,
    rate: f64,
    secs: u64,
    sent: Sent,
    next_trip: Arc<std::sync::atomic::AtomicU64>,
) -> u64 {
    let mut options = MqttOptions::new(&id, mqtt.ip().to_string(), mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_inflight(100);
    let (client, mut eventloop) = AsyncClient::new(options, 1000);
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => break,
            Ok(_) => {}
            Err(e) => panic!("{id}: cannot connect: {e}"),
        }
    }
    let polling = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let topic = format!("app/device/{id}/telemetry");
    let total = (rate * secs as f64) as u64;
    let started = Instant::now();
    let mut last_ms = 0;
    let mut trips = 0;
    for i in 0..total {
        tokio::time::sleep_until((started + Duration::from_secs_f64(i as f64 / rate)).into()).await;
        let value = if i % TRIP_EVERY == TRIP_EVERY / 2 {
            let n = next_trip.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            sent.lock().unwrap().insert(n, Instant::now());
            trips += 1;
            TRIP_BASE + n as f64
        } else {
            20.0
        };
        // Strictly increasing reading times: a reading older than the one before is not evaluated.
        last_ms = chrono::Utc::now().timestamp_millis().max(last_ms + 1);
        let payload = serde_json::json!({"telemetry": {"t": value}, "timestamp": last_ms}).to_string();
        client.publish(&topic, QoS::AtLeastOnce, false, payload).await.expect("publish");
    }
    // Time for the last PUBACKs before the connection goes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    polling.abort();
    trips
}
