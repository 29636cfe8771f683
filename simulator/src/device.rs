//! One simulated device: its own MQTT connection, a retained `offline` last will on its status
//! topic, `online` and its attributes (firmware, hardware, MAC, …) on every connect, and a
//! reading every interval at QoS 1, with the seed's three metrics plus its signal (`rssi`) and
//! `uptime_s`. Both statuses carry its session counter (`{"state":"offline","session":17}`),
//! one more on every connection, so the server tells a will delayed past a reconnection from a
//! real one. It obeys commands and desired state (see `simulator::commands`): subscribed to
//! `cmd/+` and `desired` on every connection, it asks for its desired state on `desired/get`,
//! answers commands on `res/<cmd_id>` (MQTT 5: on their response topic) and reports on
//! `reported`, and a new interval changes how often it publishes. Once a command (`set_relay`)
//! or desired state set its relay, each reading carries it as the metric `relay` (1 or 0), and
//! a change of it is published at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use rand::{Rng, SeedableRng};
use rumqttc::QoS;
use serde_json::json;
use simulator::commands::{self, Verdict};
use telemetry::decode::status_payload;
use telemetry::topic::{attributes_topic, status_topic, telemetry_topic};
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use crate::Broker;
use crate::connection::{self, Client, Event, EventLoop, Message};
use crate::signal::{Reading, Sensor};

/// The seed's payload, timestamp in its naive UTC form (with milliseconds).
pub fn payload(reading: Reading, at: chrono::DateTime<Utc>) -> String {
    json!({
        "telemetry": {
            "temperature": reading.temperature,
            "humidity": reading.humidity,
            "battery": reading.battery,
        },
        "timestamp": at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
    })
    .to_string()
}

/// A device's reading as `run` sends it: the seed's payload with its signal strength (dBm) and
/// seconds since it started.
pub fn payload_with_vitals(reading: Reading, at: chrono::DateTime<Utc>, rssi: f64, uptime_s: u64) -> String {
    json!({
        "telemetry": {
            "temperature": reading.temperature,
            "humidity": reading.humidity,
            "battery": reading.battery,
            "rssi": rssi,
            "uptime_s": uptime_s,
        },
        "timestamp": at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
    })
    .to_string()
}

/// A reading with the relay's state as the metric `relay` (1 on, 0 off) once it is known.
pub fn with_relay(body: String, relay: Option<bool>) -> String {
    let Some(on) = relay else { return body };
    match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(mut v) => {
            v["telemetry"]["relay"] = json!(u8::from(on));
            v.to_string()
        }
        Err(_) => body,
    }
}

/// What device `seed` says about itself on connecting.
pub fn attributes(seed: u64) -> String {
    json!({
        "fw": "1.4.2",
        "hw": "esp32-c3",
        "model": "sim-th",
        "sdk": "esp-idf 5.2",
        "mac": format!("24:6f:28:{:02x}:{:02x}:{:02x}", (seed >> 16) & 0xff, (seed >> 8) & 0xff, seed & 0xff),
        "reset_reason": "poweron",
    })
    .to_string()
}

/// How every simulated device runs.
#[derive(Clone)]
pub struct Setup {
    /// Between readings, until a command or desired state changes it.
    pub interval: Duration,
    pub mqtt5: bool,
    /// Of the `cmd/+` and `desired` subscriptions, answers, reports and `desired/get`.
    pub command_qos: QoS,
}

/// Device `id`, ready to run forever (connecting on its first poll), or why it cannot run.
pub fn start(
    broker: &Broker,
    id: String,
    seed: u64,
    setup: Setup,
    commands: Arc<Mutex<commands::Device>>,
) -> anyhow::Result<impl Future<Output = ()> + use<>> {
    // Sessions only grow, across restarts too: counted from the start's Unix second, one more a
    // connection (every 2 s at most, so never past the next start's).
    let session = Utc::now().timestamp().max(0) as u64;
    let (client, eventloop) = connection::connect(broker, &id, setup.mqtt5, session)?;
    Ok(run(client, eventloop, id, seed, session, setup, commands))
}

async fn run(
    client: Client,
    mut eventloop: EventLoop,
    id: String,
    seed: u64,
    mut session: u64,
    setup: Setup,
    commands: Arc<Mutex<commands::Device>>,
) {
    let (interval_tx, interval_rx) = watch::channel(setup.interval);
    let poke = Arc::new(Notify::new());
    let publisher = tokio::spawn(publish_readings(
        client.clone(),
        id.clone(),
        seed,
        interval_rx,
        commands.clone(),
        poke.clone(),
    ));
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut interval_s = commands.lock().expect("not poisoned").interval_s();
    let mut acked: u64 = 0;
    loop {
        match eventloop.poll().await {
            Ok(Event::Connected) => {
                info!(device = %id, session, "connected");
                let online = status_payload(true, session).into_bytes();
                client.try_publish(status_topic(&id), QoS::AtLeastOnce, true, online);
                client.try_publish(attributes_topic(&id), QoS::AtLeastOnce, true, attributes(seed).into());
                // Sessions are clean: subscribe on every connection, then ask for the desired
                // state (the broker handles the SUBSCRIBE first, so the answer finds it).
                client.try_subscribe(commands::cmd_filter(&id), setup.command_qos);
                client.try_subscribe(commands::desired_topic(&id), setup.command_qos);
                client.try_publish(commands::desired_get_topic(&id), setup.command_qos, false, Vec::new());
            }
            Ok(Event::PubAck) => {
                acked += 1;
                if acked.is_multiple_of(100) {
                    info!(device = %id, acked, "readings acknowledged");
                }
            }
            Ok(Event::Message(m)) => {
                let relay = commands.lock().expect("not poisoned").relay();
                let changed = obey(&client, &id, *m, &commands, &mut rng, setup.command_qos, interval_s);
                if commands.lock().expect("not poisoned").relay() != relay {
                    poke.notify_one();
                }
                if let Some(secs) = changed {
                    interval_s = secs;
                    let _ = interval_tx.send(Duration::from_secs(secs));
                }
            }
            Ok(Event::Other) => {}
            Err(e) => {
                warn!(device = %id, error = %e, "connection lost; retrying in 2 s");
                // The next connection is a new session, with its own will.
                session += 1;
                eventloop.set_session(&id, session);
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        if publisher.is_finished() {
            break;
        }
    }
}

/// A reading every interval at QoS 1, the interval following `interval` as it changes (the
/// next reading one new interval after the change), and one more at once when `poke` is
/// notified (the relay changed).
async fn publish_readings(
    client: Client,
    id: String,
    seed: u64,
    mut interval: watch::Receiver<Duration>,
    commands: Arc<Mutex<commands::Device>>,
    poke: Arc<Notify>,
) {
    let mut sensor = Sensor::new(seed);
    let topic = telemetry_topic(&id);
    let booted = std::time::Instant::now();
    // Each device sits at its own distance from the access point: -55 to -85 dBm, ±3.
    let mut radio = rand::rngs::StdRng::seed_from_u64(seed);
    let signal = -55.0 - (seed % 4) as f64 * 10.0;
    let every = |d: Duration| {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + d, d);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick
    };
    let mut tick = every(*interval.borrow());
    tick.reset_immediately();
    loop {
        tokio::select! {
            _ = async { tokio::select! { _ = tick.tick() => {}, _ = poke.notified() => {} } } => {
                let now = Utc::now();
                let rssi = (signal + radio.random_range(-3.0..3.0_f64)).round();
                let body = payload_with_vitals(sensor.read(now), now, rssi, booted.elapsed().as_secs());
                let body = with_relay(body, commands.lock().expect("not poisoned").relay());
                if let Err(e) = client.publish(topic.clone(), QoS::AtLeastOnce, false, body.into()).await {
                    warn!(device = %id, error = %e, "publish failed");
                }
            }
            changed = interval.changed() => {
                if changed.is_err() {
                    return;
                }
                tick = every(*interval.borrow_and_update());
            }
        }
    }
}

/// Acts on a message for device `id`: executes or answers a command, applies and reports a
/// desired state. Answers leave after the device's latency, from their own task. Returns the
/// new interval in seconds when it changed from `interval_s`.
fn obey(
    client: &Client,
    id: &str,
    m: Message,
    commands: &Mutex<commands::Device>,
    rng: &mut rand::rngs::StdRng,
    qos: QoS,
    interval_s: u64,
) -> Option<u64> {
    let mut device = commands.lock().expect("not poisoned");
    let relay = device.relay();
    let latency = device.behaviour().latency(rng);
    let mut outgoing = Vec::new();
    if let Some(cmd_id) = commands::cmd_id_of(id, &m.topic) {
        let repeated_before = device.stats().repeated;
        match device.command(cmd_id, &m.payload, Utc::now().timestamp(), rng) {
            Verdict::Answer { body, executed } => {
                let repeats = device.stats().repeated;
                if executed {
                    info!(device = %id, cmd = %cmd_id, answer = %body, "command executed");
                } else if repeats > repeated_before {
                    info!(device = %id, cmd = %cmd_id, answer = %body, "command repeated; answered from memory");
                } else {
                    info!(device = %id, cmd = %cmd_id, answer = %body, "command unreadable; refused");
                }
                outgoing.push((commands::res_topic(id, cmd_id), m.reply, body));
            }
            Verdict::Ignore(why) => info!(device = %id, cmd = %cmd_id, ?why, "command ignored"),
        }
    } else if m.topic == commands::desired_topic(id) {
        match device.desired(&m.payload, rng) {
            Some(report) => outgoing.push((commands::reported_topic(id), None, report)),
            None => info!(device = %id, "desired state ignored"),
        }
    }
    let now = device.interval_s();
    let changed = (now != interval_s).then_some(now);
    let reported_changed = changed.is_some() || device.relay() != relay;
    if reported_changed && !outgoing.iter().any(|(topic, ..)| topic.ends_with("/reported")) {
        // A command changed what the device reports: say so.
        outgoing.push((commands::reported_topic(id), None, device.reported()));
    }
    drop(device);
    if !outgoing.is_empty() {
        let client = client.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(latency).await;
            for (topic, reply, body) in outgoing {
                if let Err(e) = client.answer(topic, reply, qos, body.into_bytes()).await {
                    warn!(device = %id, error = %e, "answer not sent");
                }
            }
        });
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use telemetry::payload::parse_payload;
    use telemetry::{DeviceId, TimestampSource};

    #[test]
    fn vitals_and_attributes_meet_their_contracts() {
        let at = Utc.with_ymd_and_hms(2025, 12, 19, 12, 21, 20).unwrap();
        let body = payload_with_vitals(
            Reading { temperature: 25.5, humidity: 60.2, battery: 3.8 },
            at,
            -67.0,
            3_600,
        );
        let id = DeviceId::try_from("ESP32_SIM_01").unwrap();
        let m = parse_payload(id, body.as_bytes(), at.timestamp_millis()).unwrap();
        let names: Vec<&str> = m.values.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["battery", "humidity", "rssi", "temperature", "uptime_s"]);
        let attributes = telemetry::attributes::parse_attributes(attributes(1).as_bytes()).unwrap();
        let fw = attributes.iter().find(|(n, _)| n == "fw").map(|(_, v)| v.to_string());
        assert_eq!(fw.as_deref(), Some("1.4.2"));
        assert!(attributes.iter().any(|(n, v)| n == "mac" && v.to_string() == "24:6f:28:00:00:01"));
    }

    #[test]
    fn payload_meets_the_contract() {
        let at = Utc.with_ymd_and_hms(2025, 12, 19, 12, 21, 20).unwrap();
        let body = payload(Reading { temperature: 25.5, humidity: 60.2, battery: 3.8 }, at);
        let id = DeviceId::try_from("ESP32_SIM_01").unwrap();
        let m = parse_payload(id.clone(), body.as_bytes(), at.timestamp_millis() + 1000).unwrap();
        assert_eq!(m.ts, at.timestamp_millis());
        assert_eq!(m.ts_source, TimestampSource::Device);
        assert_eq!(
            m.values,
            vec![("battery".into(), 3.8), ("humidity".into(), 60.2), ("temperature".into(), 25.5)]
        );
        let relayed = with_relay(body.clone(), Some(true));
        let m = parse_payload(id, relayed.as_bytes(), at.timestamp_millis() + 1000).unwrap();
        assert!(m.values.contains(&("relay".into(), 1.0)), "{:?}", m.values);
        assert_eq!(with_relay(body.clone(), None), body, "no relay metric before it is set");
    }
}
