//! Burst mode, for benchmarks: K connections publish `total` readings at QoS 1 as fast as
//! asked (or as fast as acknowledged), and the run ends when every PUBACK is in. With the
//! embedded broker a PUBACK means the reading is stored, so the rate is the durable ingest rate.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use telemetry::topic::telemetry_topic;

use crate::Broker;
use crate::connection::options;
use crate::device::payload;
use crate::signal::Sensor;

pub struct Plan {
    pub connections: usize,
    pub total: u64,
    /// Messages per second across all connections; `None` for as fast as possible.
    pub rate: Option<f64>,
    pub prefix: String,
    pub inflight: u16,
    /// Devices to publish as, spread over the connections; `None`: one per connection.
    pub devices: Option<usize>,
}

pub struct Outcome {
    pub sent: u64,
    pub acked: u64,
    pub elapsed: Duration,
}

/// Runs the plan and reports when the last PUBACK arrived.
pub async fn run(broker: &Broker, plan: &Plan) -> anyhow::Result<Outcome> {
    let k = plan.connections.max(1) as u64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..k {
        let share = plan.total / k + u64::from(c < plan.total % k);
        let id = format!("{}{:03}", plan.prefix, c + 1);
        // The devices this connection publishes as: itself, or every k-th of the plan's.
        let devices: Vec<String> = match plan.devices {
            None => vec![id.clone()],
            Some(n) => {
                (c..n as u64).step_by(k as usize).map(|d| format!("{}{:04}", plan.prefix, d + 1)).collect()
            }
        };
        if devices.is_empty() {
            anyhow::bail!("more connections than devices");
        }
        let mut o = options(broker, &id)?;
        o.set_inflight(plan.inflight.max(1));
        let per_conn_rate = plan.rate.map(|r| r / k as f64);
        tasks.push(tokio::spawn(connection(o, id, devices, share, per_conn_rate, c)));
    }
    let mut outcome = Outcome { sent: 0, acked: 0, elapsed: Duration::ZERO };
    for t in tasks {
        let (sent, acked) = t.await??;
        outcome.sent += sent;
        outcome.acked += acked;
    }
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

async fn connection(
    options: rumqttc::MqttOptions,
    id: String,
    devices: Vec<String>,
    share: u64,
    rate: Option<f64>,
    seed: u64,
) -> anyhow::Result<(u64, u64)> {
    let (client, mut eventloop) = AsyncClient::new(options, 1000);
    // Paced publishes leave when due, not when the previous one is acknowledged.
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    // Connected before the clock starts, so a paced run's first readings are not stamped while
    // the connection is still being set up.
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => break,
            Ok(_) => {}
            Err(e) => anyhow::bail!("{id}: cannot connect: {e}"),
        }
    }
    let topics: Vec<String> = devices.iter().map(|d| telemetry_topic(d)).collect();
    // Unique, strictly increasing reading times: all in the recent past, or, when paced, the
    // time of sending (so a receiver can measure the delay).
    let base = Utc::now().timestamp_millis() - share as i64 - 1;
    let mut last = i64::MIN;
    let publisher = tokio::spawn(async move {
        let mut sensor = Sensor::new(seed);
        let started = Instant::now();
        for i in 0..share {
            if let Some(rate) = rate {
                let due = started + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
            }
            let ms = match rate {
                Some(_) => Utc::now().timestamp_millis().max(last + 1),
                None => base + i as i64,
            };
            last = ms;
            let at = Utc.timestamp_millis_opt(ms).single().expect("valid time");
            let topic = &topics[i as usize % topics.len()];
            client.publish(topic, QoS::AtLeastOnce, false, payload(sensor.read(at), at)).await?;
        }
        anyhow::Ok(share)
    });
    let mut acked = 0;
    let mut failures = 0;
    while acked < share {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
            Ok(_) => {}
            Err(e) => {
                failures += 1;
                if failures > 20 {
                    anyhow::bail!("{id}: connection keeps failing: {e}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let sent = publisher.await??;
    Ok((sent, acked))
}
