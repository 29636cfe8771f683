//! The simulator's devices obey commands and desired state over a real broker (Mosquitto on a
//! free port), as the README's device contract says: the simulator binary runs one device, and
//! an operator's client sends it commands and desired states and reads what it answers.

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::mqttbytes::v5::{Packet as Packet5, PublishProperties};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const TIMEOUT: Duration = Duration::from_secs(15);
const DEVICE: &str = "T_01";

/// Mosquitto on a free loopback port, stopped by its PID when dropped.
struct Mosquitto {
    child: Child,
    port: u16,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    fn start() -> Mosquitto {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        // Mosquitto started as root drops to its own user, which must be able to read here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\n")).unwrap();
        let child = Mosquitto::launch(&conf, port);
        Mosquitto { child, port, conf, _dir: dir }
    }

    fn launch(conf: &Path, port: u16) -> Child {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed (apt-get install mosquitto)");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < TIMEOUT, "mosquitto did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    /// Killed and started again on the same port, keeping nothing (no persistence).
    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Mosquitto::launch(&self.conf, self.port);
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The simulator binary running device `T_01`, stopped with SIGTERM when dropped (so it writes
/// its summary) and then killed.
struct Simulator {
    child: Child,
    summary: PathBuf,
}

impl Simulator {
    fn start(port: u16, dir: &Path, extra: &[&str]) -> Simulator {
        let summary = dir.join("summary.json");
        let child = Command::new(env!("CARGO_BIN_EXE_simulator"))
            .args(["--port", &port.to_string(), "-n", "1", "--prefix", "T_", "--summary"])
            .arg(&summary)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Simulator { child, summary }
    }

    /// The device's counts once they say what `done` looks for (waiting without blocking the
    /// test's runtime, which carries the operator's connection).
    async fn stats_when(&self, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.summary).unwrap_or_default();
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                let device = v["devices"][0].clone();
                if done(&device) {
                    return device;
                }
                assert!(started.elapsed() < TIMEOUT, "summary never matched: {device}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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

/// A received message: topic, payload, QoS (0 or 1) and, over MQTT 5, its correlation data.
#[derive(Debug)]
struct Got {
    topic: String,
    payload: Vec<u8>,
    qos: u8,
    correlation: Option<Vec<u8>>,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|_| panic!("JSON on {}", self.topic))
    }
}

/// The operator's side: a 3.1.1 client subscribed to everything the device sends, once its
/// subscription is acknowledged (so nothing the device sends after this is missed).
async fn operator_v4(port: u16) -> (AsyncClient, mpsc::UnboundedReceiver<Got>) {
    let (client, mut eventloop) = AsyncClient::new(MqttOptions::new("operator", "127.0.0.1", port), 100);
    client.subscribe(format!("app/device/{DEVICE}/#"), QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed, acked) = tokio::sync::oneshot::channel();
    let mut subscribed = Some(subscribed);
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            match event {
                Event::Incoming(Packet::SubAck(_)) => {
                    subscribed.take().map(|s| s.send(()));
                }
                Event::Incoming(Packet::Publish(p)) => {
                    let got = Got {
                        topic: p.topic,
                        payload: p.payload.to_vec(),
                        qos: p.qos as u8,
                        correlation: None,
                    };
                    if tx.send(got).is_err() {
                        break;
                    }
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(TIMEOUT, acked).await.expect("subscribed in time").expect("operator connected");
    (client, rx)
}

/// The same over MQTT 5, also subscribed to `replies/#`, keeping correlation data.
async fn operator_v5(port: u16) -> (rumqttc::v5::AsyncClient, mpsc::UnboundedReceiver<Got>) {
    let options = rumqttc::v5::MqttOptions::new("operator5", "127.0.0.1", port);
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 100);
    client.subscribe("replies/#", QoS5::AtLeastOnce).await.unwrap();
    client.subscribe(format!("app/device/{DEVICE}/#"), QoS5::AtLeastOnce).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed, acked) = tokio::sync::oneshot::channel();
    let mut subscribed = Some(subscribed);
    let mut subacks = 0;
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            match event {
                rumqttc::v5::Event::Incoming(Packet5::SubAck(_)) => {
                    subacks += 1;
                    if subacks == 2 {
                        subscribed.take().map(|s| s.send(()));
                    }
                }
                rumqttc::v5::Event::Incoming(Packet5::Publish(p)) => {
                    let got = Got {
                        topic: String::from_utf8_lossy(&p.topic).into_owned(),
                        payload: p.payload.to_vec(),
                        qos: p.qos as u8,
                        correlation: p
                            .properties
                            .and_then(|props| props.correlation_data)
                            .map(|c| c.to_vec()),
                    };
                    if tx.send(got).is_err() {
                        break;
                    }
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(TIMEOUT, acked).await.expect("subscribed in time").expect("operator connected");
    (client, rx)
}

/// The next message on `topic`, skipping others.
async fn next_on(rx: &mut mpsc::UnboundedReceiver<Got>, topic: &str) -> Got {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let got = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("nothing on {topic}"))
            .expect("operator connected");
        if got.topic == topic {
            return got;
        }
    }
}

fn cmd(id: &str, method: &str, params: Value, exp: i64) -> String {
    json!({"id": id, "method": method, "params": params, "exp": exp}).to_string()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn topic(kind: &str) -> String {
    format!("app/device/{DEVICE}/{kind}")
}

#[tokio::test]
async fn a_device_executes_each_command_once_and_reports_its_desired_state() {
    let broker = Mosquitto::start();
    let (operator, mut rx) = operator_v4(broker.port).await;
    let dir = tempfile::tempdir().unwrap();
    // One reading at start, then none for an hour unless told otherwise.
    let sim = Simulator::start(broker.port, dir.path(), &["--interval", "3600"]);
    // It asks for its desired state once subscribed.
    let get = next_on(&mut rx, &topic("desired/get")).await;
    assert!(get.payload.is_empty());
    let send = |id: &str, body: String| {
        let operator = operator.clone();
        let t = topic(&format!("cmd/{id}"));
        async move { operator.publish(t, QoS::AtLeastOnce, false, body).await.unwrap() }
    };
    let exp = now() + 3600;

    send("c1", cmd("c1", "identify", json!({}), exp)).await;
    let res = next_on(&mut rx, &topic("res/c1")).await;
    assert_eq!(res.json(), json!({"status": "ok", "result": {"blinked": true}}));
    assert_eq!(res.qos, 1);
    // The same id again (a re-sent command): the same answer, not executed again.
    send("c1", cmd("c1", "identify", json!({}), exp)).await;
    assert_eq!(next_on(&mut rx, &topic("res/c1")).await.payload, res.payload);

    send("c2", cmd("c2", "self_destruct", json!({}), exp)).await;
    let res = next_on(&mut rx, &topic("res/c2")).await.json();
    assert_eq!((res["status"].as_str(), res["code"].as_str()), (Some("error"), Some("unknown_method")));

    send("c3", cmd("c3", "set_interval", json!({"secs": 0}), exp)).await;
    assert_eq!(next_on(&mut rx, &topic("res/c3")).await.json()["code"], "invalid_params");

    // Expired: ignored, so the next answer is c5's.
    send("c4", cmd("c4", "identify", json!({}), now() - 5)).await;
    send("c5", cmd("c5", "set_interval", json!({"secs": 1}), exp)).await;
    let next_res = loop {
        let got = rx.recv().await.unwrap();
        if got.topic.contains("/res/") {
            break got;
        }
    };
    assert_eq!(next_res.topic, topic("res/c5"), "c4 was not answered");
    assert_eq!(next_res.json(), json!({"status": "ok", "result": {"interval_s": 1}}));
    // The new interval is reported, and readings now come every second (not every hour).
    assert_eq!(
        next_on(&mut rx, &topic("reported")).await.json(),
        json!({"v": 0, "state": {"interval_s": 1}})
    );
    for _ in 0..2 {
        next_on(&mut rx, &topic("telemetry")).await;
    }

    operator
        .publish(topic("desired"), QoS::AtLeastOnce, false, r#"{"v":12,"state":{"interval_s":30}}"#)
        .await
        .unwrap();
    let reported = next_on(&mut rx, &topic("reported")).await;
    assert_eq!(reported.json(), json!({"v": 12, "state": {"interval_s": 30}}));

    let device = sim.stats_when(|d| d["desired_v"] == 12).await;
    assert_eq!(device["interval_s"], 30);
    let stats = &device["stats"];
    assert_eq!(stats["received"], 6);
    assert_eq!(stats["executed"], 4, "c1, c2, c3, c5: {device}");
    assert_eq!(stats["repeated"], 1);
    assert_eq!(stats["expired"], 1);
    assert_eq!(stats["reexecuted"], 0);
    assert_eq!(stats["desired_applied"], 1);
}

#[tokio::test]
async fn set_relay_is_reported_and_published_as_the_relay_metric_at_once() {
    let broker = Mosquitto::start();
    let (operator, mut rx) = operator_v4(broker.port).await;
    let dir = tempfile::tempdir().unwrap();
    // One reading at start, then none for an hour unless something changes.
    let _sim = Simulator::start(broker.port, dir.path(), &["--interval", "3600"]);
    // Subscribed (it asks for its desired state once it is), and its first reading, in
    // whatever order they come.
    let (mut asked, mut first) = (false, None);
    while !asked || first.is_none() {
        let m = tokio::time::timeout(TIMEOUT, rx.recv()).await.expect("in time").expect("connected");
        asked |= m.topic == topic("desired/get");
        if m.topic == topic("telemetry") {
            first = Some(m.json());
        }
    }
    let first = first.unwrap();
    assert!(first["telemetry"].get("relay").is_none(), "no relay before it is set: {first}");
    for (id, on, metric) in [("s1", true, 1), ("s2", false, 0)] {
        let body = cmd(id, "set_relay", json!({"on": on}), now() + 60);
        operator.publish(topic(&format!("cmd/{id}")), QoS::AtLeastOnce, false, body).await.unwrap();
        // The three come in whatever order: gather them.
        let mut got = std::collections::HashMap::new();
        let wanted = [topic("telemetry"), topic(&format!("res/{id}")), topic("reported")];
        while got.len() < wanted.len() {
            let m = tokio::time::timeout(TIMEOUT, rx.recv()).await.expect("in time").expect("connected");
            if wanted.contains(&m.topic) {
                got.entry(m.topic.clone()).or_insert_with(|| m.json());
            }
        }
        let reading = &got[&wanted[0]];
        assert_eq!(reading["telemetry"]["relay"], metric, "published at once, not in an hour: {reading}");
        assert_eq!(got[&wanted[1]], json!({"status": "ok", "result": {"on": on}}));
        assert_eq!(
            got[&wanted[2]],
            json!({"v": 0, "state": {"interval_s": 3600, "relay": on}}),
            "a command changed a reported key: reported"
        );
    }
}

#[tokio::test]
async fn qos0_devices_answer_at_qos0_and_a_silent_device_never_answers() {
    let broker = Mosquitto::start();
    let (operator, mut rx) = operator_v4(broker.port).await;
    let dir = tempfile::tempdir().unwrap();
    let sim =
        Simulator::start(broker.port, dir.path(), &["--command-qos", "0", "--command-latency-ms", "50..100"]);
    next_on(&mut rx, &topic("desired/get")).await;
    operator
        .publish(topic("cmd/q1"), QoS::AtLeastOnce, false, cmd("q1", "identify", json!({}), now() + 60))
        .await
        .unwrap();
    let sent = Instant::now();
    let res = next_on(&mut rx, &topic("res/q1")).await;
    assert!(sent.elapsed() >= Duration::from_millis(50), "answered after its latency");
    assert_eq!((res.qos, res.json()["status"].as_str()), (0, Some("ok")));
    drop(sim);

    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(broker.port, dir.path(), &["--command-no-answer-rate", "1"]);
    next_on(&mut rx, &topic("desired/get")).await;
    operator
        .publish(topic("cmd/s1"), QoS::AtLeastOnce, false, cmd("s1", "identify", json!({}), now() + 60))
        .await
        .unwrap();
    let device = sim.stats_when(|d| d["stats"]["silent"] == 1).await;
    assert_eq!(device["stats"]["executed"], 0);
    // Nothing comes back (an answer would leave at once).
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(got) = rx.try_recv() {
        assert!(!got.topic.contains("/res/"), "a silent device answered: {got:?}");
    }
}

#[tokio::test]
async fn mqtt5_devices_answer_on_the_response_topic_with_its_correlation_data() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let (operator, mut rx) = operator_v5(broker.port).await;
    let _sim = Simulator::start(broker.port, dir.path(), &["--mqtt5"]);
    next_on(&mut rx, &topic("desired/get")).await;
    let properties = PublishProperties {
        response_topic: Some("replies/ops/m1".into()),
        correlation_data: Some(b"m1-corr".to_vec().into()),
        message_expiry_interval: Some(60),
        ..PublishProperties::default()
    };
    let body = cmd("m1", "identify", json!({}), now() + 60);
    operator
        .publish_with_properties(topic("cmd/m1"), QoS5::AtLeastOnce, false, body, properties)
        .await
        .unwrap();
    let res = next_on(&mut rx, "replies/ops/m1").await;
    assert_eq!(res.json(), json!({"status": "ok", "result": {"blinked": true}}));
    assert_eq!(res.correlation.as_deref(), Some(&b"m1-corr"[..]));
    assert_eq!(res.qos, 1);

    // Without a response topic, the topic rule.
    let body = cmd("m2", "set_interval", json!({"secs": 99_999}), now() + 60);
    operator.publish(topic("cmd/m2"), QoS5::AtLeastOnce, false, body).await.unwrap();
    let res = next_on(&mut rx, &topic("res/m2")).await;
    assert_eq!(res.json()["code"], "invalid_params");
    assert_eq!(res.correlation, None);

    operator
        .publish(
            topic("desired"),
            QoS5::AtLeastOnce,
            false,
            r#"{"v":3,"state":{"interval_s":5,"relay":true}}"#,
        )
        .await
        .unwrap();
    let reported = next_on(&mut rx, &topic("reported")).await;
    assert_eq!(reported.json(), json!({"v": 3, "state": {"interval_s": 5, "relay": true}}));
}

#[tokio::test]
async fn after_a_reconnect_a_device_subscribes_again_and_still_remembers_what_it_ran() {
    let mut broker = Mosquitto::start();
    let (operator, mut rx) = operator_v4(broker.port).await;
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(broker.port, dir.path(), &["--interval", "3600"]);
    next_on(&mut rx, &topic("desired/get")).await;
    let r1 = cmd("r1", "set_interval", json!({"secs": 7}), now() + 3600);
    operator.publish(topic("cmd/r1"), QoS::AtLeastOnce, false, r1.clone()).await.unwrap();
    let first = next_on(&mut rx, &topic("res/r1")).await;
    assert_eq!(first.json()["status"], "ok");

    // The broker restarts knowing nothing: the device's subscriptions are gone with it.
    broker.restart();
    let (operator, mut rx) = operator_v4(broker.port).await;
    // It reconnects (2 s later), subscribes again and asks for its desired state again.
    next_on(&mut rx, &topic("desired/get")).await;
    // The server sends r1 again, its answer having been lost: answered, not run again.
    operator.publish(topic("cmd/r1"), QoS::AtLeastOnce, false, r1).await.unwrap();
    assert_eq!(next_on(&mut rx, &topic("res/r1")).await.payload, first.payload);
    let r2 = cmd("r2", "identify", json!({}), now() + 3600);
    operator.publish(topic("cmd/r2"), QoS::AtLeastOnce, false, r2).await.unwrap();
    assert_eq!(next_on(&mut rx, &topic("res/r2")).await.json()["status"], "ok");

    let device = sim.stats_when(|d| d["stats"]["received"] == 3).await;
    let stats = &device["stats"];
    assert_eq!((stats["executed"].as_u64(), stats["repeated"].as_u64()), (Some(2), Some(1)), "{device}");
    assert_eq!(stats["reexecuted"], 0);
    assert_eq!(device["interval_s"], 7);
}
