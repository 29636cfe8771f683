//! What a sign-in storm costs devices: PUBACK round trips of one device publishing QoS 1
//! readings one at a time, first on a quiet server, then while many clients send wrong
//! passwords from many addresses (the server trusts 127.0.0.1 as a proxy, so each request's
//! `X-Forwarded-For` counts as its own client and no throttle cuts the Argon2 work short).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Readings per second the device sends.
const RATE: u64 = 20;
/// Clients sending wrong passwords at once.
const STORM: usize = 64;

/// The device publishing, signed in with `key` (`server device key STORM_1`).
const DEVICE: &str = "STORM_1";

pub fn run(web: &str, mqtt: &str, secs: u64, key: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let quiet = pubacks(mqtt, key, secs).await;
        let stop = Arc::new(AtomicBool::new(false));
        let (checked, busy) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let mut storm = Vec::new();
        for i in 0..STORM {
            let (web, stop, checked, busy) = (web.to_owned(), stop.clone(), checked.clone(), busy.clone());
            storm.push(tokio::spawn(async move {
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    match wrong_login(&web, i, n).await {
                        Some(303) => checked.fetch_add(1, Ordering::Relaxed),
                        Some(503) => busy.fetch_add(1, Ordering::Relaxed),
                        _ => 0,
                    };
                }
            }));
        }
        // Let the storm build up first.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (checked_before, started) = (checked.load(Ordering::Relaxed), Instant::now());
        let stormy = pubacks(mqtt, key, secs).await;
        let rate = (checked.load(Ordering::Relaxed) - checked_before) as f64 / started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for task in storm {
            let _ = task.await;
        }
        println!("| device PUBACK (QoS 1, {RATE}/s, {secs} s) | p50 | p99 | max | wrong passwords checked | told busy (503) |");
        println!("|---|---|---|---|---|---|");
        println!("| quiet | {} |  |", row(quiet));
        println!(
            "| {STORM} clients sending wrong passwords | {} | {rate:.0}/s | {} |",
            row(stormy),
            busy.load(Ordering::Relaxed)
        );
    });
}

fn row(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    format!("{:.1} ms | {:.1} ms | {:.1} ms", at(0.5), at(0.99), ms[ms.len() - 1])
}

/// PUBACK round trips (ms) of [`DEVICE`] publishing at [`RATE`] for `secs`, one at a time.
async fn pubacks(mqtt: &str, key: &str, secs: u64) -> Vec<f64> {
    let (host, port) = mqtt.rsplit_once(':').expect("HOST:PORT");
    let mut options = MqttOptions::new(DEVICE, host, port.parse().expect("a port"));
    options.set_keep_alive(Duration::from_secs(30)).set_credentials(DEVICE, key);
    let (client, mut events) = AsyncClient::new(options, 16);
    let (acked, mut acks) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            if let Event::Incoming(Packet::PubAck(_)) = event {
                let _ = acked.send(Instant::now());
            }
        }
    });
    let topic = format!("app/device/{DEVICE}/telemetry");
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / RATE));
    let mut out = Vec::new();
    for i in 0..secs * RATE {
        tick.tick().await;
        let payload = format!(r#"{{"telemetry": {{"n": {i}}}}}"#);
        let sent = Instant::now();
        client.publish(&topic, QoS::AtLeastOnce, false, payload).await.expect("publish");
        let at = tokio::time::timeout(Duration::from_secs(10), acks.recv())
            .await
            .expect("PUBACK")
            .expect("PUBACK");
        out.push((at - sent).as_secs_f64() * 1000.0);
    }
    let _ = client.disconnect().await;
    out
}

/// One wrong sign-in from a client address of its own; the status answered.
async fn wrong_login(web: &str, client: usize, n: u32) -> Option<u16> {
    let mut tcp = tokio::net::TcpStream::connect(web).await.ok()?;
    let body = format!("name=user{client}x{n}&password=not+the+password");
    let forwarded = format!("10.{}.{}.{}", client, (n >> 8) & 255, n & 255);
    let request = format!(
        "POST /auth/login HTTP/1.1\r\nHost: {web}\r\nX-Forwarded-For: {forwarded}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.ok()?;
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).await.ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
