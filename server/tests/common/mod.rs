//! Test support: the real server binary on free ports with its own database, and minimal
//! HTTP, MQTT and WebSocket clients to talk to it like devices and browsers do.

#![allow(dead_code)]

pub mod api;
pub mod listener;
pub mod mosquitto;
pub mod postgres;
pub mod raw;
pub mod running;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
#[allow(unused_imports)] // not every test publishes
pub use telemetry::topic::telemetry_topic;

pub const TIMEOUT: Duration = Duration::from_secs(20);
/// The token test servers let `/metrics` be read with (`web.metrics_token`).
pub const METRICS_TOKEN: &str = "test-scrape-token";

/// The simulator binary, built next to the server: `cargo test --workspace` (CI, `make test`)
/// and `make soak` build it; a test of the server alone needs `cargo build -p simulator` first.
pub fn simulator_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/simulator");
    assert!(bin.exists(), "build the simulator first: cargo build -p simulator");
    bin
}

/// The server binary with its database at `db`, on free ports unless `env` says otherwise.
pub fn server_command(db: &Path, env: &[(&str, String)], stderr: Stdio) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_server"));
    cmd.env("IOT_WEB_LISTEN", "127.0.0.1:0")
        .env("IOT_MQTT_LISTEN", "127.0.0.1:0")
        .env("IOT_STORAGE_PATH", db)
        .env("RUST_LOG", server::LOG_FILTER)
        .env("IOT_METRICS_TOKEN", METRICS_TOKEN)
        .env_remove("IOT_CONFIG")
        .stdout(Stdio::piped())
        .stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs the server binary's command line (`user add`, `device key`) on the database at `db`:
/// what it printed, trimmed.
pub fn cli(db: &Path, args: &[&str], password: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(args)
        .env("IOT_STORAGE_PATH", db)
        .env("IOT_PASSWORD", password)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The `server` binary, running.
pub struct ServerProcess {
    child: Child,
    /// The rest of what the server prints on stdout, line by line.
    stdout: std::sync::Mutex<std::sync::mpsc::Receiver<String>>,
    setup: std::sync::OnceLock<String>,
    pub http: SocketAddr,
    pub mqtt: Option<SocketAddr>,
    /// MQTT over TLS, when the server has a certificate.
    pub mqtts: Option<SocketAddr>,
    pub db: PathBuf,
}

impl ServerProcess {
    /// Starts the server with its database at `db`, on free ports unless `env` says otherwise.
    pub fn start(db: &Path, env: &[(&str, String)]) -> ServerProcess {
        let child = server_command(db, env, Stdio::inherit()).spawn().expect("start the server binary");
        ServerProcess::from_child(child, db)
    }

    /// The setup link the server prints while no user exists (`setup http://…/setup?token=…`).
    pub fn setup_link(&self) -> String {
        self.setup
            .get_or_init(|| {
                let stdout = self.stdout.lock().unwrap();
                loop {
                    let line = stdout.recv_timeout(TIMEOUT).expect("the server printed its setup link");
                    if let Some(link) = line.strip_prefix("setup ") {
                        return link.to_owned();
                    }
                }
            })
            .clone()
    }

    /// The one-time setup token, from the setup link.
    pub fn setup_token(&self) -> String {
        let link = self.setup_link();
        link.split_once("token=").expect("a token in the link").1.to_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn mqtt(&self) -> SocketAddr {
        self.mqtt.expect("the embedded broker runs")
    }

    /// Resident memory of the server process, in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "the server exits cleanly on SIGTERM: {exit:?}");
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http(self.http, "GET", path, "", b"")
    }

    pub fn post_json(&self, path: &str, body: &[u8]) -> (u16, String) {
        http(self.http, "POST", path, "application/json", body)
    }

    /// Calls a server function (GET with query arguments, JSON result).
    pub fn server_fn(&self, name: &str, args: &[(&str, &str)]) -> Value {
        let query: Vec<String> = args.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
        let (status, body) = http(self.http, "GET", &format!("/api/{name}?{}", query.join("&")), "", b"");
        assert_eq!(status, 200, "{name}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name} returned {body}: {e}"))
    }

    /// The device as the dashboard sees it.
    pub fn device(&self, id: &str) -> Value {
        self.server_fn("device", &[("id", id)])["device"].clone()
    }

    /// Readings of one metric over the last hour.
    pub fn readings(&self, device: &str, metric: &str) -> u64 {
        let h = self.server_fn(
            "history",
            &[("device", device), ("metric", metric), ("span_secs", "3600"), ("max_points", "5000")],
        );
        h["buckets"].as_array().unwrap().iter().map(|b| b["count"].as_u64().unwrap()).sum()
    }

    /// The value of one Prometheus sample line, e.g. `iot_messages_rejected_total{reason="not_json"}`;
    /// fails when the server does not report it (a labelled counter appears once it counts).
    pub fn metric(&self, sample: &str) -> u64 {
        self.metric_opt(sample).unwrap_or_else(|| panic!("/metrics has no {sample}"))
    }

    /// The value of one Prometheus sample line, if the server reports it.
    pub fn metric_opt(&self, sample: &str) -> Option<u64> {
        let bearer = format!("Bearer {METRICS_TOKEN}");
        let (status, _, text) =
            http_full(self.http, "GET", "/metrics", "", &[("Authorization", &bearer)], b"");
        assert_eq!(status, 200, "/metrics: {text}");
        text.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.trim().parse::<f64>().ok()))
            .map(|v| v as u64)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `s` percent-encoded for a query string or a form body (letters, digits and `-_.` as they
/// are).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One HTTP/1.0 exchange signed in with HTTP Basic as `login` (`user:password`): status and body.
pub fn http_as(
    addr: SocketAddr,
    login: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    use base64::Engine;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(login));
    let (status, _, body) =
        http_full(addr, method, path, content_type, &[("Authorization", basic.as_str())], body.as_bytes());
    (status, body)
}

/// The page at `path` as a browser signed in as `login` (`user:password`) gets it; it must be 200.
pub fn page_as(addr: SocketAddr, login: &str, path: &str) -> String {
    use base64::Engine;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(login));
    let headers = [("Authorization", basic.as_str()), ("Accept", "text/html")];
    let (status, _, page) = http_full(addr, "GET", path, "", &headers, b"");
    assert_eq!(status, 200, "{path}: {page}");
    page
}

/// One HTTP/1.0 exchange (no chunking, body ends at close).
pub fn http(addr: SocketAddr, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let (status, _, body) = http_full(addr, method, path, content_type, &[], body);
    (status, body)
}

/// One HTTP/1.0 exchange with extra request headers; answers status, response headers, body.
pub fn http_full(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    exchange(s, &addr.to_string(), method, path, content_type, headers, body)
}

/// One HTTP/1.0 exchange over `s` (plain or TLS) with the server named `host`: status,
/// response headers (lower case) and body (which ends at close).
pub fn exchange(
    mut s: impl Read + Write,
    host: &str,
    method: &str,
    path: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n", body.len());
    if !content_type.is_empty() {
        req.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // A server refusing a large body (413) may answer and close before reading it all: the
    // write then fails, and the answer is still there to read.
    let wrote = s.write_all(body);
    let mut raw = Vec::new();
    let read = s.read_to_end(&mut raw);
    if raw.is_empty() {
        wrote.unwrap();
        read.unwrap();
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// Retries `f` until it returns `Some` or the timeout passes.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A device connection that counts PUBACKs.
pub struct Device {
    pub client: AsyncClient,
    acks: tokio::sync::mpsc::UnboundedReceiver<u16>,
    task: tokio::task::JoinHandle<()>,
}

impl Device {
    pub async fn connect(addr: SocketAddr, id: &str, configure: impl FnOnce(&mut MqttOptions)) -> Device {
        let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        opts.set_keep_alive(Duration::from_secs(30));
        configure(&mut opts);
        let (client, mut eventloop) = AsyncClient::new(opts, 1000);
        let (ack_tx, acks) = tokio::sync::mpsc::unbounded_channel();
        let (conn_tx, conn_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut conn_tx = Some(conn_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if let Some(tx) = conn_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        let _ = ack_tx.send(ack.pkid);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(TIMEOUT, conn_rx).await.expect("CONNACK in time").unwrap();
        Device { client, acks, task }
    }

    /// Publishes at QoS 1 and waits for the PUBACK.
    pub async fn publish(&mut self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload.into()).await.unwrap();
        tokio::time::timeout(TIMEOUT, self.acks.recv()).await.expect("PUBACK in time").unwrap();
    }

    /// Publishes several at QoS 1 (up to 100 in flight) and waits for all their PUBACKs;
    /// returns their packet ids in the order the PUBACKs came.
    pub async fn publish_all(&mut self, topic: &str, payloads: Vec<String>) -> Vec<u16> {
        let n = payloads.len();
        for p in payloads {
            self.client.publish(topic, QoS::AtLeastOnce, false, p).await.unwrap();
        }
        let mut acked = Vec::with_capacity(n);
        for _ in 0..n {
            acked.push(
                tokio::time::timeout(TIMEOUT, self.acks.recv()).await.expect("PUBACK in time").unwrap(),
            );
        }
        acked
    }

    /// Drops the TCP connection without DISCONNECT, as a device losing power does.
    pub fn vanish(self) {
        self.task.abort();
    }
}

/// A dropped device's connection ends with it. Left running, its event loop would connect
/// again under the same client id and take the session over from the test's next connection
/// (a PUBACK then never came, under load, in embedded.rs's restart test).
impl Drop for Device {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A device's message with `values`, timestamped `ms` (UTC, in the seed's naive form).
pub fn payload<'a>(values: impl IntoIterator<Item = (&'a str, f64)>, ms: i64) -> String {
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).unwrap();
    let values: serde_json::Map<String, Value> =
        values.into_iter().map(|(metric, v)| (metric.to_owned(), serde_json::json!(v))).collect();
    serde_json::json!({"telemetry": values, "timestamp": t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()})
        .to_string()
}

/// A reading as the seed's devices send it.
pub fn seed_payload(temperature: f64, humidity: f64, battery: f64, ms: i64) -> String {
    payload([("temperature", temperature), ("humidity", humidity), ("battery", battery)], ms)
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A `/ws/live` client.
pub struct LiveClient {
    ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
}

impl LiveClient {
    pub async fn connect(http: SocketAddr, query: &str) -> LiveClient {
        let stream = tokio::net::TcpStream::connect(http).await.unwrap();
        let url = format!("ws://{http}/ws/live{query}");
        let (ws, _) = tokio_tungstenite::client_async(url, stream).await.expect("websocket upgrade");
        let mut c = LiveClient { ws };
        let hello = c.next().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        c
    }

    /// The next JSON event.
    pub async fn next(&mut self) -> Value {
        use futures::StreamExt;
        loop {
            let msg = tokio::time::timeout(TIMEOUT, self.ws.next()).await.expect("live event in time");
            match msg.expect("open").expect("frame") {
                tokio_tungstenite::tungstenite::Message::Text(t) => {
                    return serde_json::from_str(t.as_str()).unwrap();
                }
                _ => continue,
            }
        }
    }
}

/// One exchange of exactly `request` (the caller writes every header, `Host` included):
/// status, response headers (lower case) and body. The answer ends when the server closes,
/// when its `Content-Length` is in, or after the headers of a `101`. The server may answer and
/// close before the whole request is sent (a body too large): what it answered counts.
pub fn http_raw(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let _ = s.write_all(request);
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let complete = |raw: &[u8]| {
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
        let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
        if head.split_whitespace().nth(1) == Some("101") {
            return true;
        }
        let length =
            head.lines().find_map(|l| l.strip_prefix("content-length:")?.trim().parse::<usize>().ok());
        length.is_some_and(|n| raw.len() >= end + 4 + n)
    };
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if complete(&raw) {
                    break;
                }
            }
            // A reset after the answer (the rest of a refused body unread) ends it too.
            Err(_) if !raw.is_empty() => break,
            Err(e) => panic!("no answer from {addr}: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// What a server started with [`ServerProcess::start_logged`] wrote on stderr, line by line.
#[derive(Clone, Default)]
pub struct ServerLog {
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerLog {
    /// Every line so far (bytes that are not UTF-8 replaced).
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until some line satisfies `f`, and answers it.
    pub fn wait_for(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        eventually(what, || self.lines().into_iter().find(|l| f(l)))
    }
}

impl ServerProcess {
    /// Like [`ServerProcess::start`], with what the server logs on stderr kept for the test.
    /// A server (its log kept) whose database at `db` has an admin, `root` ("admin password"),
    /// and a viewer, `val` ("viewer password").
    pub fn start_with_admin_and_viewer(db: &Path) -> (ServerProcess, ServerLog) {
        cli(db, &["user", "add", "root", "--role", "admin"], "admin password");
        cli(db, &["user", "add", "val", "--role", "viewer"], "viewer password");
        ServerProcess::start_logged(db, &[])
    }

    pub fn start_logged(db: &Path, env: &[(&str, String)]) -> (ServerProcess, ServerLog) {
        let mut child = server_command(db, env, Stdio::piped()).spawn().expect("start the server binary");
        let log = ServerLog::default();
        let stderr = child.stderr.take().expect("stderr");
        let lines = log.lines.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_owned();
                lines.lock().unwrap().push(text);
                line.clear();
            }
        });
        (ServerProcess::from_child(child, db), log)
    }

    /// A started server, once it printed its addresses.
    fn from_child(mut child: Child, db: &Path) -> ServerProcess {
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = lines.next().expect("the server printed its addresses").expect("utf-8");
        let (mut http, mut mqtt, mut mqtts) = (None, None, None);
        for word in line.split_whitespace() {
            if let Some(a) = word.strip_prefix("http://").or_else(|| word.strip_prefix("https://")) {
                http = a.parse().ok();
            } else if let Some(a) = word.strip_prefix("mqtt://") {
                mqtt = a.parse().ok();
            } else if let Some(a) = word.strip_prefix("mqtts://") {
                mqtts = a.parse().ok();
            }
        }
        let (tx, stdout) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let http = http.unwrap_or_else(|| panic!("no http address in {line:?}"));
        ServerProcess {
            child,
            stdout: std::sync::Mutex::new(stdout),
            setup: std::sync::OnceLock::new(),
            http,
            mqtt,
            mqtts,
            db: db.to_owned(),
        }
    }
}

/// One reading of metric `t` for `device`, stamped now, through HTTP ingest (what alarm tests
/// feed their rules).
pub fn reading(server: &ServerProcess, device: &str, t: f64) {
    let body = serde_json::json!({"device_id": device, "telemetry": {"t": t}, "timestamp": now_ms()});
    let (status, answer) = server.post_json("/api/telemetry", body.to_string().as_bytes());
    assert_eq!(status, 202, "{answer}");
}

/// [`reading`]s of `t` every half second for `secs`.
pub async fn readings(server: &ServerProcess, device: &str, t: f64, secs: f64) {
    let until = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < until {
        reading(server, device, t);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
