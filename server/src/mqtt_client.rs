//! External-broker ingest (Mosquitto or any MQTT 3.1.1 broker) through rumqttc.
//!
//! A persistent session (`clean_session = false`, fixed client id) keeps QoS 1 messages at
//! the broker while the server is down. Acks are manual: each publish is acknowledged only
//! after its commit, strictly in arrival order. The poll loop only polls and forwards; the
//! parse-and-submit step and the ack step run in their own tasks so storage never blocks
//! the connection. Reconnects back off from 0.5 s to 30 s; every state change is logged.

use std::time::Duration;

use rumqttc::{AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, Publish, QoS};
use telemetry::DeviceTopic;
use telemetry::payload::parse_payload;
use telemetry::topic::{STATUS_FILTER, TELEMETRY_FILTER, TopicError};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use crate::config::MqttConfig;
use crate::ingest::{Ack, Ingest, IngestError, now_ms};
use crate::limits::Pace;
use crate::metrics::Source;
use crate::store::StatusReport;

const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Largest packet accepted from the broker; bigger payloads than the contract's 64 KiB are
/// still received so they can be rejected and acknowledged rather than redelivered forever.
const MAX_PACKET: usize = 4 * 1024 * 1024;

/// Runs until `shutdown` turns true.
pub async fn run(config: MqttConfig, ingest: Ingest, mut shutdown: watch::Receiver<bool>) {
    let mut options = MqttOptions::new(&config.client_id, &config.host, config.port);
    options
        .set_clean_session(false)
        .set_keep_alive(Duration::from_secs(config.keep_alive_secs.max(5)))
        .set_manual_acks(true)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if let Some(user) = &config.username {
        options.set_credentials(user, config.password.as_deref().unwrap_or(""));
    }
    let (client, mut eventloop) = AsyncClient::new(options, 1024);
    // Each PUBACK goes out as soon as its reading is stored.
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);

    let (to_submit, submit_rx) = mpsc::unbounded_channel();
    let (to_ack, ack_rx) = mpsc::unbounded_channel();
    let submitter = tokio::spawn(submit(submit_rx, to_ack, ingest.clone()));
    let acker = tokio::spawn(acknowledge(ack_rx, client.clone()));
    let metrics = ingest.metrics().clone();
    let broker = format!("{}:{}", config.host, config.port);
    let mut backoff = MIN_BACKOFF;
    info!(%broker, client_id = %config.client_id, "connecting to MQTT broker");

    loop {
        let event = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => {
                backoff = MIN_BACKOFF;
                info!(%broker, session_present = ack.session_present, "connected to MQTT broker");
                // Up (for /healthz) once subscribed: until then the broker drops what devices send.
                if ack.session_present {
                    metrics.set_mqtt_connected(true);
                } else {
                    // Acks queued while the connection was down may fill the request channel:
                    // wait for room (the loop keeps polling, which drains it), never give up.
                    let filters = [TELEMETRY_FILTER, STATUS_FILTER]
                        .map(|path| rumqttc::SubscribeFilter::new(path.to_owned(), QoS::AtLeastOnce));
                    let client = client.clone();
                    tokio::spawn(async move {
                        if let Err(e) = client.subscribe_many(filters).await {
                            error!(error = %e, "cannot subscribe: the MQTT client has stopped");
                        }
                    });
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                metrics.set_mqtt_connected(true);
                info!(codes = ?ack.return_codes, "subscribed to {TELEMETRY_FILTER} and {STATUS_FILTER}");
            }
            // Unbounded, yet bounded in practice: the broker sends no more than its in-flight
            // window of unacknowledged QoS 1 messages.
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let _ = to_submit.send(p);
            }
            Ok(_) => {}
            Err(e) => {
                if metrics.mqtt_connected() {
                    warn!(%broker, error = %e, "MQTT connection lost");
                }
                metrics.set_mqtt_connected(false);
                warn!(%broker, error = %e, retry_in = ?backoff, "MQTT broker unreachable; retrying");
                tokio::select! {
                    _ = shutdown.wait_for(|stop| *stop) => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    metrics.set_mqtt_connected(false);
    drop(to_submit);
    let _ = submitter.await;
    let _ = acker.await;
    let _ = client.try_disconnect();
    info!(%broker, "MQTT ingest stopped");
}

/// Parses each publish and queues it for the next commit, keeping arrival order.
async fn submit(
    mut rx: mpsc::UnboundedReceiver<Publish>,
    to_ack: mpsc::UnboundedSender<(Publish, oneshot::Receiver<Ack>)>,
    ingest: Ingest,
) {
    while let Some(publish) = rx.recv().await {
        let received = now_ms();
        let pending = match DeviceTopic::parse(&publish.topic) {
            Ok(DeviceTopic::Telemetry(device)) => {
                let parsed = parse_payload(device.clone(), &publish.payload, received);
                ingest.record_parse(Source::Mqtt, &parsed);
                match parsed {
                    Ok(mut message) => {
                        for d in &message.dropped {
                            warn!(%device, metric = %d.name, reason = d.reason.label(), "metric dropped");
                        }
                        match ingest.admit(&mut message, Pace::Unlimited) {
                            Ok(_) => ingest.submit(vec![message], received).await,
                            Err(_) => ready(Ok(())),
                        }
                    }
                    Err(reason) => {
                        warn!(%device, reason = reason.label(), "message rejected: {reason}");
                        ready(Ok(()))
                    }
                }
            }
            Ok(DeviceTopic::Status(device)) => match publish.payload.trim_ascii() {
                b"online" | b"offline" => {
                    let online = publish.payload.trim_ascii() == b"online";
                    let ingest = ingest.clone();
                    let (done, wait) = oneshot::channel();
                    let report = StatusReport { device, online, at: received };
                    tokio::spawn(async move {
                        let _ = done.send(ingest.status(report).await);
                    });
                    wait
                }
                _ => ready(Ok(())),
            },
            Err(TopicError::BadDeviceId(e)) => {
                ingest.metrics().received(Source::Mqtt);
                ingest.metrics().rejected("bad_device_id");
                warn!(topic = %publish.topic, "message rejected: invalid device id: {e}");
                ready(Ok(()))
            }
            Err(_) => ready(Ok(())),
        };
        if to_ack.send((publish, pending)).is_err() {
            break;
        }
    }
}

fn ready(ack: Ack) -> oneshot::Receiver<Ack> {
    let (done, wait) = oneshot::channel();
    let _ = done.send(ack);
    wait
}

/// Acknowledges publishes in arrival order, each once its commit is done. A failed commit
/// is not acknowledged: the connection is dropped so the broker redelivers it.
async fn acknowledge(
    mut rx: mpsc::UnboundedReceiver<(Publish, oneshot::Receiver<Ack>)>,
    client: AsyncClient,
) {
    while let Some((publish, pending)) = rx.recv().await {
        match pending.await.unwrap_or(Err(IngestError::Closed)) {
            Ok(()) => {
                if let Err(e) = client.ack(&publish).await {
                    warn!(error = %e, "cannot send PUBACK");
                }
            }
            Err(e) => {
                error!(topic = %publish.topic, error = %e, "not stored; reconnecting so the broker redelivers");
                let _ = client.try_disconnect();
            }
        }
    }
}
/// Mosquitto's `acl_file` for this dashboard: a device (user name = device id) may write only
/// under `app/device/<its id>/`, and `dashboard_user` may read every device's telemetry and
/// status. Devices' passwords are their keys (`server device key <id>`), given to
/// `mosquitto_passwd`.
pub fn mosquitto_acl(dashboard_user: &str) -> String {
    format!(
        "# IoT dashboard: each device writes only its own topics; the dashboard reads them all.\n\
         pattern write {prefix}%u/#\n\n\
         user {dashboard_user}\n\
         topic read {prefix}+/telemetry\n\
         topic read {prefix}+/status\n",
        prefix = telemetry::topic::DEVICE_PREFIX,
    )
}
