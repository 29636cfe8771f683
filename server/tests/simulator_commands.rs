//! Acceptance 4 with the simulator: the server binary and the simulator binary (one device, QoS
//! 0 as Arduino's PubSubClient, so a command it has stays SENT until it answers), kill -9 with
//! one command SENT and one QUEUED; after the restart both are listed as they were, both
//! finish, and the simulator's own audit says each ran exactly once.
//!
//! The simulator binary is found next to the server's (`cargo test --workspace` builds it;
//! `cargo build -p simulator` before running this test alone).

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::api::call;
use common::{ServerProcess, TIMEOUT, simulator_bin};
use serde_json::{Value, json};

const DEVICE: &str = "A4_01";

/// The simulator running device `A4_01` against `mqtt`, stopped with SIGTERM (it writes its
/// summary) and then killed when dropped.
struct Simulator {
    child: Child,
    summary: PathBuf,
}

impl Simulator {
    fn start(mqtt: SocketAddr, dir: &Path) -> Simulator {
        let summary = dir.join("summary.json");
        let child = Command::new(simulator_bin())
            .args(["--port", &mqtt.port().to_string(), "-n", "1", "--prefix", "A4_", "--interval", "1"])
            .args(["--command-qos", "0", "--command-latency-ms", "1500", "--summary"])
            .arg(&summary)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Simulator { child, summary }
    }

    /// The device's line of the summary.
    fn device(&self) -> Value {
        let text = std::fs::read_to_string(&self.summary).unwrap_or_default();
        serde_json::from_str::<Value>(&text).map(|v| v["devices"][0].clone()).unwrap_or(Value::Null)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        std::thread::sleep(Duration::from_millis(200));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn command(http: SocketAddr, id: &str) -> Value {
    let (status, c) = call(http, "GET", &format!("/api/devices/{DEVICE}/commands/{id}"), None, None).await;
    assert_eq!(status, 200, "{c}");
    c
}

async fn until_status(http: SocketAddr, id: &str, status: &str) -> Value {
    let start = Instant::now();
    loop {
        let c = command(http, id).await;
        if c["status"] == status {
            return c;
        }
        assert!(start.elapsed() < TIMEOUT, "command {id} never became {status}: {c}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_kill_9_with_a_sent_and_a_queued_command_runs_each_once_on_the_simulator() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    // The same MQTT port across the restart, so the simulator reconnects as a device would.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let env = [("IOT_MQTT_LISTEN", format!("127.0.0.1:{port}"))];
    let server = ServerProcess::start(&db, &env);
    let simulator = Simulator::start(server.mqtt(), dir.path());
    let http = server.http;
    let (sent, queued) = rt.block_on(async {
        let start = Instant::now();
        while call(http, "GET", &format!("/api/devices/{DEVICE}/commands"), None, None).await.0 != 200 {
            assert!(start.elapsed() < TIMEOUT, "the simulated device reported");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let path = format!("/api/devices/{DEVICE}/commands");
        let (_, first) = call(http, "POST", &path, Some(json!({"method": "identify"})), None).await;
        let first = first["id"].as_str().unwrap().to_owned();
        // SENT: the device has it (QoS 0: no PUBACK to see) and answers after 1.5 s.
        until_status(http, &first, "SENT").await;
        let body = json!({"method": "set_interval", "params": {"secs": 7}});
        let (_, second) = call(http, "POST", &path, Some(body), None).await;
        let second = second["id"].as_str().unwrap().to_owned();
        assert_eq!(command(http, &second).await["status"], "QUEUED", "behind the first");
        (first, second)
    });
    server.kill();

    let server = ServerProcess::start(&db, &env);
    let http = server.http;
    rt.block_on(async {
        let (_, list) = call(http, "GET", &format!("/api/devices/{DEVICE}/commands"), None, None).await;
        let states = common::api::id_and_status(&list);
        assert_eq!(states, [(queued.as_str(), "QUEUED"), (sent.as_str(), "SENT")], "both, as they were");
        // The simulator reconnects on its own; the SENT one reaches it again (or its first
        // answer arrives late), then the queued one.
        until_status(http, &sent, "SUCCEEDED").await;
        let done = until_status(http, &queued, "SUCCEEDED").await;
        assert_eq!(done["result"], json!({"interval_s": 7}));
    });
    // The simulator's audit: each command executed once, none again.
    let start = Instant::now();
    let device = loop {
        let device = simulator.device();
        if device["interval_s"] == 7 && device["stats"]["executed"] == 2 {
            break device;
        }
        assert!(start.elapsed() < TIMEOUT, "the summary never showed both executed: {device}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // Anything late (a repeat answered from memory) has arrived by now.
    std::thread::sleep(Duration::from_secs(2));
    let device = match simulator.device() {
        Value::Null => device,
        now => now,
    };
    assert_eq!(device["stats"]["executed"], 2, "{device}");
    assert_eq!(device["stats"]["reexecuted"], 0, "{device}");
    assert_eq!(device["reexecuted_ids"], json!([]), "{device}");
    drop(simulator);
    server.stop();
}
