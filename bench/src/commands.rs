//! Command figures against a running dashboard whose devices (the simulator's, `PREFIX01` …)
//! answer commands: `bench commands WEB DEVICES PREFIX COUNT`.
//!
//! 1. Round trip: COUNT `identify` commands one after another, each to the next device, timed
//!    from the moment the API is called to the moment `/ws/live` (what the browser shows)
//!    brings it SUCCEEDED; p50, p99, max.
//! 2. Bulk: one `POST /api/commands/bulk` to all DEVICES; the time until it is answered (every
//!    command stored) and until the live feed has brought each of them to an end; and the
//!    readings stored a second (the server's `iot_messages_stored_total`) while it ran,
//!    against the same length of time just before it, without commands.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use telemetry::LiveEvent;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Longest wait for any one command to finish.
const PATIENCE: Duration = Duration::from_secs(60);
/// How often the stored-messages counter is read.
const SAMPLE: Duration = Duration::from_millis(200);

pub fn run(web: &str, devices: usize, prefix: &str, count: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(measure(web, devices, prefix, count));
}

/// One HTTP/1.1 exchange: status and body.
async fn http(web: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(web).await.expect("the dashboard answers");
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {web}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("request sent");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("answer read");
    let text = String::from_utf8_lossy(&answer);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// Messages the server has stored so far.
async fn stored(web: &str) -> u64 {
    let (_, text) = http(web, "GET", "/metrics", None).await;
    text.lines()
        .find_map(|l| l.strip_prefix("iot_messages_stored_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

/// Every command event of the live feed: (device, id, status, terminal), as it arrives.
async fn follow(web: &str) -> mpsc::UnboundedReceiver<(Instant, String, String, bool)> {
    let stream = tokio::net::TcpStream::connect(web).await.expect("the dashboard answers");
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{web}/ws/live"), stream)
        .await
        .expect("websocket upgrade");
    ws.next().await.expect("hello").expect("hello");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(frame)) = ws.next().await {
            let Message::Text(text) = frame else { continue };
            // Readings are most of the feed: only commands are read.
            if !text.as_str().starts_with(r#"{"type":"command""#) {
                continue;
            }
            if let Ok(LiveEvent::Command { command, .. }) = serde_json::from_str(text.as_str()) {
                let done = command.is_terminal();
                let _ = tx.send((Instant::now(), command.device, command.id, done));
            }
        }
    });
    rx
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

async fn measure(web: &str, devices: usize, prefix: &str, count: usize) {
    let names: Vec<String> = (1..=devices).map(|i| format!("{prefix}{i:02}")).collect();
    let mut events = follow(web).await;

    // 1. Round trips, one at a time.
    let mut trips = Vec::with_capacity(count);
    for n in 0..count {
        let device = &names[n % names.len()];
        let started = Instant::now();
        let path = format!("/api/devices/{device}/commands");
        let (status, body) = http(web, "POST", &path, Some(&json!({"method": "identify"}))).await;
        assert_eq!(status, 202, "command {n} to {device}: {body}");
        let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_owned();
        loop {
            let event = tokio::time::timeout(PATIENCE, events.recv()).await;
            let (at, d, i, done) = event.expect("the command ends in time").expect("the feed is open");
            if done && d == *device && i == id {
                trips.push(at.duration_since(started).as_secs_f64() * 1000.0);
                break;
            }
        }
    }
    trips.sort_by(f64::total_cmp);
    println!(
        "| command round trip, API → device → live feed ({count} commands, {devices} devices connected) | {:.1} ms | {:.1} ms | {:.1} ms |",
        quantile(&trips, 0.5),
        quantile(&trips, 0.99),
        trips[trips.len() - 1]
    );

    // 2. One bulk to every device, the stored-messages counter sampled all along.
    let (sample_tx, mut samples) = mpsc::unbounded_channel::<(Instant, u64)>();
    let sampler = {
        let web = web.to_owned();
        tokio::spawn(async move {
            loop {
                let _ = sample_tx.send((Instant::now(), stored(&web).await));
                tokio::time::sleep(SAMPLE).await;
            }
        })
    };
    // A quiet stretch first: the rate without commands.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let started = Instant::now();
    let body = json!({"devices": names, "method": "identify"});
    let (status, answer) = http(web, "POST", "/api/commands/bulk", Some(&body)).await;
    assert_eq!(status, 202, "the bulk: {answer}");
    let answered = started.elapsed();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let mut open: HashMap<(String, String), ()> = answer["commands"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| Some(((c["device"].as_str()?.to_owned(), c["id"].as_str()?.to_owned()), ())))
        .collect();
    let made = open.len();
    // Events from before the answer wait in the channel.
    let mut last = started;
    while !open.is_empty() {
        let event = tokio::time::timeout(PATIENCE, events.recv()).await;
        let (at, d, i, done) = event.expect("the bulk's commands end in time").expect("the feed is open");
        if done && open.remove(&(d, i)).is_some() {
            last = at;
        }
    }
    let all_done = last.duration_since(started);
    // As long again after the start as before it, at least 10 s, so both windows are alike.
    let window = all_done.max(Duration::from_secs(10));
    tokio::time::sleep((started + window + SAMPLE).saturating_duration_since(Instant::now())).await;
    sampler.abort();
    let mut points = Vec::new();
    while let Ok(p) = samples.try_recv() {
        points.push(p);
    }
    // The counter's value nearest each instant.
    let at = |t: Instant| {
        points
            .iter()
            .min_by_key(|(s, _)| if *s > t { *s - t } else { t - *s })
            .map(|(s, v)| (*s, *v))
            .unwrap()
    };
    let rate = |from: Instant, to: Instant| {
        let ((a, x), (b, y)) = (at(from), at(to));
        (y - x) as f64 / b.duration_since(a).as_secs_f64()
    };
    let before = rate(started - window, started);
    let during = rate(started, started + window);
    println!(
        "| bulk of {made} commands to {devices} devices | answered (all stored) in {:.2} s | all finished in {:.2} s | |",
        answered.as_secs_f64(),
        all_done.as_secs_f64()
    );
    println!(
        "| messages stored a second over {:.1} s | without commands: {before:.0} | during the bulk: {during:.0} | {:+.1} % |",
        window.as_secs_f64(),
        (during / before - 1.0) * 100.0
    );
}
