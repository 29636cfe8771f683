//! One simulated device: its own MQTT connection, a retained `offline` last will on its status
//! topic, `online` and its attributes (firmware, hardware, MAC, …) on every connect, and a
//! reading every interval at QoS 1, with the seed's three metrics plus its signal (`rssi`) and
//! `uptime_s`. Both statuses carry its session counter (`{"state":"offline","session":17}`),
//! one more on every connection, so the server tells a will delayed past a reconnection from a
//! real one.

use std::time::Duration;

use chrono::Utc;
use rand::{Rng, SeedableRng};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use serde_json::json;
use telemetry::decode::status_payload;
use telemetry::topic::{attributes_topic, status_topic, telemetry_topic};
use tracing::{info, warn};

use crate::Broker;
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

/// Connection options for `client_id`: its own key when the broker has per-device keys, TLS
/// when asked.
pub fn options(broker: &Broker, client_id: &str) -> anyhow::Result<MqttOptions> {
    let mut o = MqttOptions::new(client_id, &broker.host, broker.port);
    o.set_keep_alive(Duration::from_secs(30));
    if let Some(keys) = &broker.keys {
        o.set_credentials(client_id, keys.of(client_id)?);
    } else if let Some(user) = &broker.username {
        o.set_credentials(user, broker.password.as_deref().unwrap_or(""));
    }
    if let Some(tls) = &broker.tls {
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls.clone())));
    }
    Ok(o)
}

/// The last will of connection `session`: retained, so a dashboard that connects later sees it.
fn will(id: &str, session: u64) -> LastWill {
    LastWill::new(status_topic(id), status_payload(false, session), QoS::AtLeastOnce, true)
}

/// Runs one device forever.
pub async fn run(mut options: MqttOptions, id: String, seed: u64, interval: Duration) {
    // Sessions only grow, across restarts too: counted from the start's Unix second, one more a
    // connection (every 2 s at most, so never past the next start's).
    let mut session = Utc::now().timestamp().max(0) as u64;
    options.set_last_will(will(&id, session));
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let mut sensor = Sensor::new(seed);
    let topic = telemetry_topic(&id);
    let booted = std::time::Instant::now();
    // Each device sits at its own distance from the access point: -55 to -85 dBm, ±3.
    let mut radio = rand::rngs::StdRng::seed_from_u64(seed);
    let signal = -55.0 - (seed % 4) as f64 * 10.0;
    let publisher = {
        let client = client.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = Utc::now();
                let rssi = (signal + radio.random_range(-3.0..3.0_f64)).round();
                let body = payload_with_vitals(sensor.read(now), now, rssi, booted.elapsed().as_secs());
                if let Err(e) = client.publish(&topic, QoS::AtLeastOnce, false, body).await {
                    warn!(device = %id, error = %e, "publish failed");
                }
            }
        })
    };
    let mut acked: u64 = 0;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                info!(device = %id, session, "connected");
                let online = status_payload(true, session);
                let _ = client.try_publish(status_topic(&id), QoS::AtLeastOnce, true, online);
                let _ = client.try_publish(attributes_topic(&id), QoS::AtLeastOnce, true, attributes(seed));
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                acked += 1;
                if acked.is_multiple_of(100) {
                    info!(device = %id, acked, "readings acknowledged");
                }
            }
            Ok(_) => {}
            Err(e) => {
                warn!(device = %id, error = %e, "connection lost; retrying in 2 s");
                // The next connection is a new session, with its own will.
                session += 1;
                eventloop.mqtt_options.set_last_will(will(&id, session));
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        if publisher.is_finished() {
            break;
        }
    }
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
        let m = parse_payload(id, body.as_bytes(), at.timestamp_millis() + 1000).unwrap();
        assert_eq!(m.ts, at.timestamp_millis());
        assert_eq!(m.ts_source, TimestampSource::Device);
        assert_eq!(
            m.values,
            vec![("battery".into(), 3.8), ("humidity".into(), 60.2), ("temperature".into(), 25.5)]
        );
    }
}
