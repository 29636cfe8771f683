//! External-broker ingest (Mosquitto or any MQTT 3.1.1 broker) through rumqttc, over TCP or
//! TLS (`mqtt.tls`, trusting `mqtt.ca_file` or the system's authorities).
//!
//! A persistent session (`clean_session = false`, fixed client id) keeps QoS 1 messages at
//! the broker while the server is down. Acks are manual: each publish is acknowledged only
//! after its commit, strictly in arrival order. The poll loop only polls and forwards; the
//! decide-and-submit step ([`Ingest::admit`], the one door) and the ack step run in their own
//! tasks so storage never blocks the connection. Reconnects back off from 0.5 s to 30 s;
//! every state change is logged.
//!
//! Queues between the steps are bounded: QoS 1 messages are bounded by the broker's in-flight
//! window anyway, and QoS 0 messages that find the queue full are dropped and counted
//! (`overloaded`), so a flood of them cannot grow memory.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, Publish, QoS, TlsConfiguration, Transport,
};
use telemetry::Rejection;
use telemetry::text::untrusted;
use telemetry::topic::{ATTRIBUTES_FILTER, STATUS_FILTER, TELEMETRY_FILTER};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use crate::clock::now_ms;
use crate::config::MqttConfig;
use crate::ingest::{Ack, Arrival, Ingest, IngestError, Pace, ready};
use crate::metrics::Source;

const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Largest packet accepted from the broker; bigger payloads than the contract's 64 KiB are
/// still received so they can be rejected and acknowledged rather than redelivered forever.
const MAX_PACKET: usize = 4 * 1024 * 1024;
/// Messages waiting to be decided, and decided ones waiting for their commit to be acked.
const QUEUE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ClientTlsError {
    #[error("cannot read the MQTT CA file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the MQTT CA file {0} holds no certificate")]
    Empty(String),
    #[error("MQTT TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The TLS settings for the broker connection: `ca_file`'s certificates, or the system's.
pub fn tls_config(config: &MqttConfig) -> Result<Arc<rustls::ClientConfig>, ClientTlsError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if config.ca_file.as_os_str().is_empty() {
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            let _ = roots.add(cert);
        }
    } else {
        let path = config.ca_file.display().to_string();
        let pem = std::fs::read(&config.ca_file)
            .map_err(|source| ClientTlsError::Read { path: path.clone(), source })?;
        for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
            roots.add(cert)?;
        }
    }
    if roots.is_empty() {
        return Err(ClientTlsError::Empty(config.ca_file.display().to_string()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(tls))
}

/// Runs until `shutdown` turns true.
pub async fn run(
    config: MqttConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    ingest: Ingest,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut options = MqttOptions::new(&config.client_id, &config.host, config.port);
    options
        .set_clean_session(false)
        .set_keep_alive(Duration::from_secs(config.keep_alive_secs.max(5)))
        .set_manual_acks(true)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if let Some(user) = &config.username {
        options.set_credentials(user, config.password.as_ref().map(|p| p.expose()).unwrap_or(""));
    }
    if let Some(tls) = tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    }
    let (client, mut eventloop) = AsyncClient::new(options, 1024);
    // Each PUBACK goes out as soon as its reading is stored.
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);

    let (to_submit, submit_rx) = mpsc::channel(QUEUE);
    let (to_ack, ack_rx) = mpsc::channel(QUEUE);
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
                // A session kept from before attributes existed lacks their filter: it is asked
                // for again (harmless: retained attributes that come again change nothing).
                let filters: &[&str] = if ack.session_present {
                    metrics.set_mqtt_connected(true);
                    &[ATTRIBUTES_FILTER]
                } else {
                    &[TELEMETRY_FILTER, STATUS_FILTER, ATTRIBUTES_FILTER]
                };
                let filters: Vec<_> = filters
                    .iter()
                    .map(|path| rumqttc::SubscribeFilter::new((*path).to_owned(), QoS::AtLeastOnce))
                    .collect();
                // Acks queued while the connection was down may fill the request channel: wait
                // for room (the loop keeps polling, which drains it), never give up.
                let client = client.clone();
                tokio::spawn(async move {
                    if let Err(e) = client.subscribe_many(filters).await {
                        error!(error = %e, "cannot subscribe: the MQTT client has stopped");
                    }
                });
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                metrics.set_mqtt_connected(true);
                info!(codes = ?ack.return_codes, "subscribed");
            }
            // QoS 1: the broker sends no more than its in-flight window unacknowledged, so
            // waiting for room is brief. QoS 0 has no window: what finds no room is dropped.
            Ok(Event::Incoming(Packet::Publish(p))) if p.qos == QoS::AtMostOnce => {
                if let Err(mpsc::error::TrySendError::Full(p)) = to_submit.try_send(p) {
                    let arrival = arrival(&p, now_ms());
                    ingest.refused_message(&arrival, &Rejection::Overloaded);
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if to_submit.send(p).await.is_err() {
                    break;
                }
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

/// The publish as the ingest door sees it. The broker enforces its own ACL (see
/// [`mosquitto_acl`]), so no sign-in applies here.
fn arrival(publish: &Publish, received: i64) -> Arrival<'_> {
    Arrival {
        source: Source::Mqtt,
        topic: &publish.topic,
        payload: &publish.payload,
        publisher: None,
        client: "external broker",
        received,
    }
}

/// Decides each publish and queues it for the next commit, keeping arrival order. What is
/// refused (counted and logged by the door) is acknowledged, so the broker does not resend it.
async fn submit(
    mut rx: mpsc::Receiver<Publish>,
    to_ack: mpsc::Sender<(Publish, oneshot::Receiver<Ack>)>,
    ingest: Ingest,
) {
    while let Some(publish) = rx.recv().await {
        let received = now_ms();
        let pending = match ingest.admit(&arrival(&publish, received), Pace::Unlimited) {
            Ok(admitted) => ingest.submit_admitted(admitted, received).await,
            Err(_) => ready(Ok(())),
        };
        if publish.qos == QoS::AtMostOnce {
            continue;
        }
        if to_ack.send((publish, pending)).await.is_err() {
            break;
        }
    }
}

/// Acknowledges publishes in arrival order, each once its commit is done. A failed commit
/// is not acknowledged: the connection is dropped so the broker redelivers it.
async fn acknowledge(mut rx: mpsc::Receiver<(Publish, oneshot::Receiver<Ack>)>, client: AsyncClient) {
    while let Some((publish, pending)) = rx.recv().await {
        match pending.await.unwrap_or(Err(IngestError::Closed)) {
            Ok(()) => {
                if let Err(e) = client.ack(&publish).await {
                    warn!(error = %e, "cannot send PUBACK");
                }
            }
            Err(e) => {
                error!(topic = %untrusted(&publish.topic), error = %e, "not stored; reconnecting so the broker redelivers");
                let _ = client.try_disconnect();
            }
        }
    }
}
/// Mosquitto's `acl_file` for this dashboard: a device (user name = device id) may write only
/// under `app/device/<its id>/`, and `dashboard_user` may read every device's telemetry,
/// status and attributes. Devices' passwords are their keys (`server device key <id>`), given to
/// `mosquitto_passwd`. With Mosquitto's `use_username_as_clientid true`, nobody can take the
/// dashboard's client id (and with it its queued messages) or a device's.
pub fn mosquitto_acl(dashboard_user: &str) -> String {
    format!(
        "# IoT dashboard: each device writes only its own topics; the dashboard reads them all.\n\
         pattern write {prefix}%u/#\n\n\
         user {dashboard_user}\n\
         topic read {prefix}+/telemetry\n\
         topic read {prefix}+/status\n\
         topic read {prefix}+/attributes\n",
        prefix = telemetry::topic::DEVICE_PREFIX,
    )
}
