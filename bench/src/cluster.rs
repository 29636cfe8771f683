//! `bench cluster MQTT WEB NODES DIR PG_URL RATE SECS KILL_AT`: issue 18's first acceptance on
//! a running cluster (scripts/bench-cluster.sh starts one with scripts/cluster.sh).
//!
//! [`DEVICES`] devices publish `{"telemetry":{"seq":n}}` at QoS 1 to the broker at RATE
//! messages a second for SECS seconds, `n` counting each device's messages from 0. One
//! `/ws/live` client is connected straight to each node (NODES, comma separated) and one
//! through the load balancer (WEB). At KILL_AT seconds the node the load balancer's client is
//! on (haproxy names it in `X-Node`) is killed -9 (its pid in DIR/<node>.pid); that client
//! reconnects through the load balancer at once, then fetches what it missed from
//! `/api/changes?after=<last seq>` as the page does. Then the audit:
//! - PostgreSQL (PG_URL): every acknowledged message's reading stored exactly once;
//! - every surviving node's client: every reading, none twice, in change-log order;
//! - the moved client: every reading after resuming, and the time from the kill to its
//!   first live reading after it.
//!
//! Also shown: how long the killed node's partitions of once-only work (alarm evaluation,
//! command dispatch: `alarms/<n>`, `commands/<n>`) stayed without a live holder.
//!
//! Exits 1 if any audit fails.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use telemetry::LiveEvent;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// Devices publishing; each sends RATE / DEVICES messages a second.
const DEVICES: usize = 50;
/// Device id prefix (ids are `audit-00` …).
const PREFIX: &str = "audit-";
/// Longest wait, after the last acknowledgement, for the clients to catch up.
const DRAIN: Duration = Duration::from_secs(90);
/// The page's changes page size (`MAX_CHANGES_PAGE`).
const PAGE: u64 = 1000;

/// What one `/ws/live` client saw of the audit devices.
#[derive(Default)]
struct Seen {
    /// (device, n) → how many times.
    readings: HashMap<(String, u64), u32>,
    /// Live seqs already taken (a client ignores a seq it has, as the page does).
    seqs: std::collections::HashSet<u64>,
    /// Readings whose change-log seq was not above the one before (live frames only).
    out_of_order: u64,
    last_seq: u64,
    resyncs: u64,
    closed: Option<Instant>,
    /// Live frames: from the reading's publish (its timestamp) to its arrival here, in ms.
    lateness: Vec<i64>,
}

impl Seen {
    /// Takes one event; `live` is false for those fetched from `/api/changes`.
    fn take(&mut self, event: LiveEvent, live: bool) -> bool {
        match event {
            LiveEvent::Resync { .. } => self.resyncs += 1,
            LiveEvent::Reading { seq, device, values, ts, .. } if device.starts_with(PREFIX) => {
                if !self.seqs.insert(seq) {
                    return false;
                }
                if live {
                    self.lateness.push(chrono::Utc::now().timestamp_millis() - ts);
                }
                if live && seq <= self.last_seq {
                    self.out_of_order += 1;
                }
                self.last_seq = self.last_seq.max(seq);
                if let Some(n) = values.get("seq") {
                    *self.readings.entry((device, *n as u64)).or_default() += 1;
                }
                return true;
            }
            LiveEvent::Reading { seq, .. } => self.last_seq = self.last_seq.max(seq),
            _ => {}
        }
        false
    }

    /// (missing, repeated) against `acked` messages per device.
    fn audit(&self, acked: &[u64]) -> (u64, u64) {
        let mut missing = 0;
        for (d, &count) in acked.iter().enumerate() {
            for n in 0..count {
                if !self.readings.contains_key(&(device(d), n)) {
                    missing += 1;
                }
            }
        }
        let repeated = self.readings.values().map(|&c| u64::from(c.saturating_sub(1))).sum();
        (missing, repeated)
    }
}

fn device(d: usize) -> String {
    format!("{PREFIX}{d:02}")
}

pub fn run(args: &[String]) {
    let arg = |i: usize, what: &str| args.get(i).unwrap_or_else(|| panic!("{what}")).clone();
    let mqtt = arg(0, "the broker's HOST:PORT");
    let web = arg(1, "the load balancer's HOST:PORT");
    let nodes: Vec<String> =
        arg(2, "the nodes' HOST:PORT, comma separated").split(',').map(String::from).collect();
    let dir = arg(3, "the cluster's folder (node pid files)");
    let pg = arg(4, "the PostgreSQL URL");
    let rate: f64 = arg(5, "messages per second").parse().expect("a rate");
    let secs: f64 = arg(6, "seconds").parse().expect("seconds");
    let kill_at: f64 = arg(7, "when to kill, in seconds").parse().expect("seconds");
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let ok = runtime.block_on(audit(&mqtt, &web, &nodes, &dir, &pg, rate, secs, kill_at));
    if !ok {
        println!("AUDIT FAILED");
        std::process::exit(1);
    }
}

#[allow(clippy::too_many_arguments)]
async fn audit(
    mqtt: &str,
    web: &str,
    nodes: &[String],
    dir: &str,
    pg: &str,
    rate: f64,
    secs: f64,
    kill_at: f64,
) -> bool {
    // The clients first, so they see every reading.
    let direct: Vec<Arc<Mutex<Seen>>> = nodes.iter().map(|_| Arc::new(Mutex::new(Seen::default()))).collect();
    for (addr, seen) in nodes.iter().zip(&direct) {
        let (mut ws, _) = connect(addr).await.expect("a node's /ws/live");
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = ws.next().await {
                if let Message::Text(text) = frame
                    && let Ok(event) = serde_json::from_str::<LiveEvent>(text.as_str())
                {
                    seen.lock().unwrap().take(event, true);
                }
            }
            seen.lock().unwrap().closed = Some(Instant::now());
        });
    }
    let moved = Arc::new(Mutex::new(Seen::default()));
    let on = Arc::new(Mutex::new(Vec::<String>::new()));
    let first_after = Arc::new(Mutex::new(None::<Instant>));
    let (mut ws, node) = connect(web).await.expect("/ws/live through the load balancer");
    on.lock().unwrap().push(node.clone().unwrap_or_default());
    {
        let (web, moved, on, first_after) = (web.to_string(), moved.clone(), on.clone(), first_after.clone());
        tokio::spawn(async move {
            loop {
                while let Some(Ok(frame)) = ws.next().await {
                    if let Message::Text(text) = frame
                        && let Ok(event) = serde_json::from_str::<LiveEvent>(text.as_str())
                    {
                        let fresh = moved.lock().unwrap().take(event, true);
                        if fresh && on.lock().unwrap().len() > 1 && first_after.lock().unwrap().is_none() {
                            *first_after.lock().unwrap() = Some(Instant::now());
                        }
                    }
                }
                moved.lock().unwrap().closed = Some(Instant::now());
                // Reconnect at once (the page waits a jittered backoff), then resume.
                let (next, node) = loop {
                    if let Ok(pair) = connect(&web).await {
                        break pair;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                };
                ws = next;
                on.lock().unwrap().push(node.unwrap_or_default());
                loop {
                    let after = moved.lock().unwrap().last_seq;
                    let Some(page) = changes(&web, after).await else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    let more = page.len() as u64 == PAGE;
                    for event in page {
                        moved.lock().unwrap().take(event, false);
                    }
                    if !more {
                        break;
                    }
                }
            }
        });
    }

    // The devices.
    let (host, port) = mqtt.rsplit_once(':').expect("HOST:PORT");
    let port: u16 = port.parse().expect("a port");
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..DEVICES).map(|_| AtomicU64::new(0)).collect());
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..DEVICES).map(|_| AtomicU64::new(0)).collect());
    let started = Instant::now();
    let period = Duration::from_secs_f64(DEVICES as f64 / rate);
    let per_device = (secs * rate / DEVICES as f64).round() as u64;
    let mut publishers = Vec::new();
    for d in 0..DEVICES {
        let mut options = MqttOptions::new(device(d), host, port);
        options.set_keep_alive(Duration::from_secs(30)).set_inflight(200);
        let (client, mut events) = AsyncClient::new(options, 256);
        let acked = acked.clone();
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        acked[d].fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        let sent = sent.clone();
        publishers.push(tokio::spawn(async move {
            // Spread the devices over the period.
            tokio::time::sleep(period.mul_f64(d as f64 / DEVICES as f64)).await;
            let mut tick = tokio::time::interval(period);
            let topic = format!("app/device/{}/telemetry", device(d));
            let mut last_ts = 0;
            for n in 0..per_device {
                tick.tick().await;
                let now = chrono::Utc::now();
                // One reading time per message, rising.
                let ts = now.timestamp_millis().max(last_ts + 1);
                last_ts = ts;
                let at = chrono::DateTime::from_timestamp_millis(ts).expect("a time");
                let payload = serde_json::json!({
                    "telemetry": {"seq": n},
                    "timestamp": at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
                });
                client.publish(&topic, QoS::AtLeastOnce, false, payload.to_string()).await.expect("queued");
                sent[d].fetch_add(1, Ordering::Relaxed);
            }
            client
        }));
    }

    // The kill.
    tokio::time::sleep(Duration::from_secs_f64(kill_at)).await;
    let victim = on.lock().unwrap()[0].clone();
    let index =
        victim.trim_start_matches("node").parse::<usize>().ok().filter(|i| (1..=nodes.len()).contains(i));
    let Some(index) = index else {
        println!("the load balancer did not name the node (X-Node: {victim:?}); cannot kill it");
        return false;
    };
    let pid = std::fs::read_to_string(format!("{dir}/{victim}.pid")).expect("the node's pid file");
    let (leases, connection) = tokio_postgres::connect(pg, tokio_postgres::NoTls).await.expect("PostgreSQL");
    tokio::spawn(connection);
    let orphaned = partitions_of(&leases, &nodes[index - 1]).await;
    let killed = Instant::now();
    let status = std::process::Command::new("kill").args(["-9", pid.trim()]).status().expect("kill");
    assert!(status.success(), "kill -9 {}", pid.trim());
    let taken_over = tokio::spawn(async move {
        loop {
            // Each held again, by another holder (the node started again is one, under a new name).
            let held = leases
                .query_one(
                    "SELECT count(*) FROM leases WHERE name = ANY($1) AND expires_at > clock_timestamp() \
                     AND NOT holder = ANY($2)",
                    &[
                        &orphaned.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
                        &orphaned.iter().map(|(_, h)| h.clone()).collect::<Vec<_>>(),
                    ],
                )
                .await
                .map(|r| r.get::<_, i64>(0) as usize);
            match held {
                Ok(n) if n == orphaned.len() => return (n, killed.elapsed()),
                Err(_) => return (0, Duration::MAX),
                Ok(_) if killed.elapsed() > Duration::from_secs(60) => return (0, Duration::MAX),
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    let back = {
        let addr = nodes[index - 1].clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            loop {
                if let Some((200, _)) = get(&addr, "/healthz").await {
                    return killed.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let mut clients = Vec::new();
    for p in publishers {
        clients.push(p.await.expect("a publisher"));
    }
    let published = started.elapsed();
    let total_sent: u64 = sent.iter().map(|s| s.load(Ordering::Relaxed)).sum();
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.iter().map(|a| a.load(Ordering::Relaxed)).sum::<u64>() < total_sent
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let acked: Vec<u64> = acked.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    let total_acked: u64 = acked.iter().sum();
    drop(clients);
    println!(
        "published: {DEVICES} devices, {total_sent} messages in {:.1} s ({:.0} msg/s, QoS 1), {total_acked} acknowledged by the broker",
        published.as_secs_f64(),
        total_sent as f64 / published.as_secs_f64()
    );
    let back = tokio::time::timeout(Duration::from_secs(30), back).await.ok().and_then(Result::ok);
    println!(
        "kill -9 {victim} (the load balancer's client was on it) at {kill_at:.0} s; its /healthz answered again after {}",
        back.map_or("more than 30 s".into(), |t| format!("{:.1} s", t.as_secs_f64()))
    );
    match taken_over.await {
        Ok((0, took)) if took < Duration::MAX => {
            println!("the killed node held no partitions of once-only work (not shared out yet)")
        }
        Ok((n, took)) if took < Duration::MAX => println!(
            "the killed node's {n} partitions of once-only work (alarm evaluation, command dispatch) all held by live nodes again {:.1} s after the kill (leases of 10 s)",
            took.as_secs_f64()
        ),
        _ => println!("the killed node's partitions of once-only work were not all taken over within 60 s"),
    }

    // Let the clients catch up: until every surviving and the moved client has everything.
    let survivors: Vec<usize> = (0..nodes.len()).filter(|&i| i != index - 1).collect();
    let drain = Instant::now();
    loop {
        let done = survivors.iter().all(|&i| direct[i].lock().unwrap().audit(&acked).0 == 0)
            && moved.lock().unwrap().audit(&acked).0 == 0;
        if done || drain.elapsed() > DRAIN {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("clients caught up {:.1} s after the last acknowledgement", drain.elapsed().as_secs_f64());

    let mut ok = total_acked == total_sent;
    // PostgreSQL: each device's readings of `seq`.
    let (db, connection) = tokio_postgres::connect(pg, tokio_postgres::NoTls).await.expect("PostgreSQL");
    tokio::spawn(connection);
    let rows = db
        .query(
            "SELECT s.device, r.value, count(*) FROM readings r JOIN series s ON s.id = r.series \
             WHERE s.metric = 'seq' AND s.device LIKE 'audit-%' GROUP BY s.device, r.value",
            &[],
        )
        .await
        .expect("the audit query");
    let mut stored: BTreeMap<(String, u64), i64> = BTreeMap::new();
    for row in rows {
        stored.insert((row.get(0), row.get::<_, f64>(1) as u64), row.get(2));
    }
    let (mut missing, mut doubled) = (0u64, 0i64);
    for (d, &count) in acked.iter().enumerate() {
        for n in 0..count {
            match stored.get(&(device(d), n)) {
                None => missing += 1,
                Some(&c) => doubled += c - 1,
            }
        }
    }
    let rows_total: i64 = stored.values().sum();
    println!(
        "PostgreSQL: {rows_total} readings stored for {total_acked} acknowledged messages: missing {missing}, stored twice {doubled}"
    );
    ok &= missing == 0 && doubled == 0 && rows_total as u64 == total_acked;

    for (i, seen) in direct.iter().enumerate() {
        let seen = seen.lock().unwrap();
        let (missing, repeated) = seen.audit(&acked);
        let got: u64 = seen.readings.values().map(|&c| u64::from(c)).sum();
        if i == index - 1 {
            println!("node{} /ws/live (killed): {got} readings until the kill", i + 1);
            continue;
        }
        println!(
            "node{} /ws/live: {got} readings, missing {missing}, repeated {repeated}, out of change-log order {}, resyncs {}",
            i + 1,
            seen.out_of_order,
            seen.resyncs
        );
        let mut late = seen.lateness.clone();
        late.sort_unstable();
        let at = |q: f64| late.get(((late.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
        println!(
            "node{} /ws/live, publish to arrival: median {} ms, 99th percentile {} ms, longest {} ms; {} readings over 1 s late (the killed node's share, kept by the broker until it was back)",
            i + 1,
            at(0.5),
            at(0.99),
            late.last().copied().unwrap_or(0),
            late.iter().filter(|&&l| l > 1_000).count()
        );
        ok &= missing == 0
            && repeated == 0
            && seen.out_of_order == 0
            && seen.resyncs == 0
            && seen.closed.is_none();
    }
    let moved = moved.lock().unwrap();
    let (missing, repeated) = moved.audit(&acked);
    let got: u64 = moved.readings.values().map(|&c| u64::from(c)).sum();
    let path = on.lock().unwrap().join(" → ");
    let first = *first_after.lock().unwrap();
    let lost = moved.closed.map(|c| c.saturating_duration_since(killed));
    println!(
        "load balancer's /ws/live: {path}; closed {} after the kill; first live reading after it {}; after resuming by /api/changes: {got} readings, missing {missing}, repeated {repeated}",
        lost.map_or("—".into(), |t| format!("{} ms", t.as_millis())),
        first.map_or("never".into(), |t| format!("{} ms", t.saturating_duration_since(killed).as_millis())),
    );
    ok &= missing == 0 && repeated == 0 && first.is_some();
    ok
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// `/ws/live` at `addr`, after its hello; the node haproxy named (`X-Node`), if any.
async fn connect(addr: &str) -> Result<(Ws, Option<String>), String> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut ws, response) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::client_async(format!("ws://{addr}/ws/live"), stream),
    )
    .await
    .map_err(|_| "timed out".to_string())?
    .map_err(|e| e.to_string())?;
    let node = response.headers().get("x-node").and_then(|v| v.to_str().ok()).map(String::from);
    match ws.next().await {
        Some(Ok(Message::Text(_))) => Ok((ws, node)),
        _ => Err("no hello".into()),
    }
}

/// A page of changes after `after`, through `web`.
async fn changes(web: &str, after: u64) -> Option<Vec<LiveEvent>> {
    let (status, body) = get(web, &format!("/api/changes?after={after}&limit={PAGE}")).await?;
    let mut page: serde_json::Value = serde_json::from_slice(&body).ok().filter(|_| status == 200)?;
    serde_json::from_value(page.get_mut("events")?.take()).ok()
}

/// A plain HTTP/1.0 GET: (status, body).
async fn get(addr: &str, path: &str) -> Option<(u16, Vec<u8>)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await.ok()?.ok()?;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..split]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, answer[split + 4..].to_vec()))
}

/// The partitions of once-only work (`alarms/<n>`, `commands/<n>`) the node at `addr` holds,
/// with its name in the leases (`<addr>-<random>`).
async fn partitions_of(db: &tokio_postgres::Client, addr: &str) -> Vec<(String, String)> {
    let rows = db
        .query(
            "SELECT name, holder FROM leases WHERE (name LIKE 'alarms/%' OR name LIKE 'commands/%') \
             AND expires_at > clock_timestamp() AND holder LIKE $1 || '-%'",
            &[&addr],
        )
        .await
        .expect("the leases");
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}
