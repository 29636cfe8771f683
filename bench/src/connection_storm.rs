//! What a connection storm costs ingest: PUBACK round trips of one device publishing QoS 1
//! readings one at a time, first on a quiet server, then while 1,000 client ids the server has
//! never seen connect and disconnect over and over (no log: the broker's own work), then while
//! 1,000 known devices do (each connection made and ended is an entry in its device's
//! connection log, committed by the writer with the readings): the last two apart are what the
//! log costs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Readings per second the measured device sends.
const RATE: u64 = 20;
/// Devices in the storm, and connections in flight at once.
const DEVICES: usize = 1_000;
const WORKERS: usize = 50;

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut n = body.len();
    loop {
        let byte = (n % 128) as u8;
        n /= 128;
        out.push(if n > 0 { byte | 0x80 } else { byte });
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// An MQTT 3.1.1 connection as `id` (clean session, keepalive 60 s), or `None` if refused
/// (the broker may still be letting go of the device's last session).
async fn connect(mqtt: &str, id: &str) -> Option<TcpStream> {
    let mut tcp = TcpStream::connect(mqtt).await.ok()?;
    tcp.set_nodelay(true).ok()?;
    let mut body = Vec::new();
    string(b"MQTT", &mut body);
    body.extend_from_slice(&[4, 0x02, 0, 60]);
    string(id.as_bytes(), &mut body);
    tcp.write_all(&packet(0x10, &body)).await.ok()?;
    let mut ack = [0u8; 4];
    tcp.read_exact(&mut ack).await.ok()?;
    (ack == [0x20, 2, 0, 0]).then_some(tcp)
}

/// DISCONNECT, then the socket closed both ways.
async fn disconnect(mut tcp: TcpStream) {
    let _ = tcp.write_all(&[0xE0, 0]).await;
    let _ = tcp.shutdown().await;
    let mut rest = [0u8; 64];
    while matches!(tcp.read(&mut rest).await, Ok(n) if n > 0) {}
}

/// One reading from `id` at QoS 1, answered (so the device is known and its connections logged).
async fn introduce(mqtt: &str, id: &str) {
    let mut tcp = loop {
        if let Some(tcp) = connect(mqtt, id).await {
            break tcp;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let mut body = Vec::new();
    string(format!("app/device/{id}/telemetry").as_bytes(), &mut body);
    body.extend_from_slice(&1u16.to_be_bytes());
    body.extend_from_slice(br#"{"telemetry": {"t": 1}}"#);
    tcp.write_all(&packet(0x32, &body)).await.expect("publish");
    let mut ack = [0u8; 4];
    tcp.read_exact(&mut ack).await.expect("PUBACK");
    disconnect(tcp).await;
}

pub fn run(mqtt: &str, secs: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let ids = |prefix: &str| -> Arc<Vec<String>> {
            Arc::new((0..DEVICES).map(|i| format!("{prefix}{i:04}")).collect())
        };
        let (known, strangers) = (ids("CONNSTORM_"), ids("STRANGER_"));
        for chunk in known.chunks(WORKERS) {
            let tasks: Vec<_> = chunk
                .iter()
                .map(|id| {
                    let (mqtt, id) = (mqtt.to_owned(), id.clone());
                    tokio::spawn(async move { introduce(&mqtt, &id).await })
                })
                .collect();
            for task in tasks {
                task.await.expect("introduced");
            }
        }
        let quiet = pubacks(mqtt, secs).await;
        // Client ids that never sent anything: the same connection work, no log (the server
        // logs devices it knows).
        let (unlogged, unlogged_rate, unlogged_refused) = storm(mqtt, strangers, secs).await;
        let (logged, rate, refused) = storm(mqtt, known, secs).await;
        println!(
            "| device PUBACK (QoS 1, {RATE}/s, {secs} s) | p50 | p99 | max | connections made and ended | refused (busy) |"
        );
        println!("|---|---|---|---|---|---|");
        println!("| quiet | {} |  |  |", row(quiet));
        println!(
            "| {DEVICES} client ids never seen connecting and disconnecting ({WORKERS} at a time; not logged) | {} | {unlogged_rate:.0}/s | {unlogged_refused} |",
            row(unlogged)
        );
        println!(
            "| {DEVICES} known devices connecting and disconnecting ({WORKERS} at a time; each connection logged) | {} | {rate:.0}/s | {refused} |",
            row(logged)
        );
    });
}

/// The measured device's PUBACKs while `ids` connect and disconnect over and over; the rate of
/// connections made and ended meanwhile, and how many were refused.
async fn storm(mqtt: &str, ids: Arc<Vec<String>>, secs: u64) -> (Vec<f64>, f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let (cycles, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let (mqtt, ids, stop) = (mqtt.to_owned(), ids.clone(), stop.clone());
        let (cycles, refused) = (cycles.clone(), refused.clone());
        workers.push(tokio::spawn(async move {
            // Each worker goes round its own ids, so no two connect as one at once.
            let mine: Vec<&String> = ids.iter().skip(worker).step_by(WORKERS).collect();
            for id in mine.iter().cycle() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match connect(&mqtt, id).await {
                    Some(tcp) => {
                        disconnect(tcp).await;
                        cycles.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    // Let the storm build up first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (before, started) = (cycles.load(Ordering::Relaxed), Instant::now());
    let acks = pubacks(mqtt, secs).await;
    let rate = (cycles.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for task in workers {
        let _ = task.await;
    }
    // The measured device's next connection under the same id should find its session gone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    (acks, rate, refused.load(Ordering::Relaxed))
}

fn row(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    format!("{:.1} ms | {:.1} ms | {:.1} ms", at(0.5), at(0.99), ms[ms.len() - 1])
}

/// PUBACK round trips (ms) of one device publishing at [`RATE`] for `secs`, one at a time.
async fn pubacks(mqtt: &str, secs: u64) -> Vec<f64> {
    let (host, port) = mqtt.rsplit_once(':').expect("HOST:PORT");
    let mut options = MqttOptions::new("CONNSTORM_STEADY", host, port.parse().expect("a port"));
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 16);
    let (acked, mut acks) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            if let Event::Incoming(Packet::PubAck(_)) = event {
                let _ = acked.send(Instant::now());
            }
        }
    });
    let topic = "app/device/CONNSTORM_STEADY/telemetry";
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / RATE));
    let mut out = Vec::new();
    for i in 0..secs * RATE {
        tick.tick().await;
        let payload = format!(r#"{{"telemetry": {{"n": {i}}}}}"#);
        let sent = Instant::now();
        client.publish(topic, QoS::AtLeastOnce, false, payload).await.expect("publish");
        let at = tokio::time::timeout(Duration::from_secs(10), acks.recv())
            .await
            .expect("PUBACK")
            .expect("PUBACK");
        out.push((at - sent).as_secs_f64() * 1000.0);
    }
    let _ = client.disconnect().await;
    out
}
