//! The embedded MQTT broker (rmqtt, MQTT 3.1, 3.1.1 and 5). Devices connect straight to the
//! server; a QoS 1 publish to `app/device/<id>/telemetry` is answered with PUBACK only after
//! its readings are durably committed, because rmqtt awaits the publish ACL hook before it
//! acknowledges. So a device's "sent" means "stored", even across a kill -9.
//!
//! - A valid reading is stored, then acknowledged and routed to subscribers as usual.
//! - A malformed one is acknowledged (the device must not resend it forever), not routed,
//!   logged and counted; MQTT 5 devices get reason "payload format invalid".
//! - A connection's publishes are pipelined (our patched rmqtt, `vendor/README.md`): while one
//!   waits for its commit the next are read and checked, so a commit takes many readings from
//!   each connection; PUBACKs still go out in order.
//! - A device over its message rate has its PUBACK held back (up to a second), which slows
//!   it down; beyond that, and over the device or metric caps, the message is dropped and
//!   counted (see [`crate::limits`]); MQTT 5 devices get reason "quota exceeded". One
//!   connection's publishes are admitted one after another ([`crate::pacing`]).
//! - If storage fails the device is disconnected without a PUBACK, so it resends later.
//! - Status reports and last wills on `app/device/<id>/status` are recorded.
//! - A topic name holding `+` or `#` is refused whatever its namespace.
//! - Once people must sign in, so must devices: user name and client id = the device id,
//!   password = its key (`server device key <id>`); a device publishes and subscribes only
//!   under `app/device/<its id>/`. Until then the broker is open, as on a trusted network.
//! - Other topics pass through: it is an ordinary broker for everything else.
//! - With `[tls]` set it also listens for MQTT over TLS (`mqtt.tls_listen`); both listeners
//!   behave the same.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rmqtt::codec::v5::{PublishAckReason, SubscribeAckReason};
use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType, Type};
use rmqtt::net::Builder;
use rmqtt::server::MqttServer;
use rmqtt::types::{AuthResult, ConnectInfo, FromType, PublishAclResult, PublishResult, SubscribeAclResult};
use telemetry::payload::parse_payload;
use telemetry::topic::{DEVICE_PREFIX, TopicError};
use telemetry::{DeviceId, DeviceTopic};
use tracing::{debug, info, warn};

use crate::auth::Auth;
use crate::ingest::{Ingest, IngestError, now_ms};
use crate::limits::{Pace, Refusal};
use crate::metrics::Source;
use crate::pacing::Pacing;
use crate::store::StatusReport;

/// Longest a device's PUBACK is held back to keep it to its message rate.
const MAX_HOLD: Duration = Duration::from_secs(1);

/// Unacknowledged QoS 1 messages a connection may have, each way (rmqtt's default is 16):
/// how many of a device's publishes one commit can take (MQTT 5 devices are told this as
/// the receive maximum).
const IN_FLIGHT: std::num::NonZeroU16 = std::num::NonZeroU16::new(64).expect("not zero");

/// A running embedded broker; dropping it does not stop it, [`EmbeddedBroker::stop`] does.
pub struct EmbeddedBroker {
    pub addr: SocketAddr,
    /// MQTT over TLS, when configured.
    pub tls_addr: Option<SocketAddr>,
    task: tokio::task::JoinHandle<()>,
}

/// Where MQTT over TLS listens, and its certificate and key (PEM files).
pub struct TlsListen<'a> {
    pub addr: SocketAddr,
    pub cert: &'a Path,
    pub key: &'a Path,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot start the MQTT broker on {addr}: {message}")]
pub struct BrokerError {
    addr: SocketAddr,
    message: String,
}

impl EmbeddedBroker {
    /// Binds the listeners (plain, and TLS if given) and starts accepting devices.
    pub async fn start(
        listen: SocketAddr,
        tls: Option<TlsListen<'_>>,
        ingest: Ingest,
        auth: Arc<Auth>,
    ) -> Result<EmbeddedBroker, BrokerError> {
        let err = |e: rmqtt::Error| BrokerError { addr: listen, message: e.to_string() };
        let scx = ServerContext::new().build().await;
        let register = scx.extends.hook_mgr().register();
        let pacing = Arc::new(Pacing::default());
        let hook = || {
            let (ingest, auth, pacing) = (ingest.clone(), auth.clone(), pacing.clone());
            Box::new(TelemetryHook { ingest, auth, pacing }) as Box<dyn Handler>
        };
        register.add(Type::MessagePublishCheckAcl, hook()).await;
        register.add(Type::MessagePublish, hook()).await;
        register.add(Type::ClientAuthenticate, hook()).await;
        register.add(Type::ClientSubscribeCheckAcl, hook()).await;
        register.start().await;

        let builder = |name: &str, addr: SocketAddr| {
            Builder::new()
                .name(name)
                .laddr(addr)
                .reuseaddr(Some(true))
                // Every connection goes through the authenticate hook, which decides.
                .allow_anonymous(false)
                .nodelay(true)
                .max_inflight(IN_FLIGHT)
        };
        let listener = builder("mqtt", listen).bind().and_then(|l| l.tcp()).map_err(err)?;
        let addr = listener.local_addr().map_err(err)?;
        let mut server = MqttServer::new(scx).listener_by_id(listener, addr.port());
        let mut tls_addr = None;
        if let Some(tls) = tls {
            let err = |e: rmqtt::Error| BrokerError { addr: tls.addr, message: e.to_string() };
            let listener = builder("mqtts", tls.addr)
                .tls_cert(Some(tls.cert.display().to_string()))
                .tls_key(Some(tls.key.display().to_string()))
                .bind()
                .and_then(|l| l.tls())
                .map_err(err)?;
            let tls_bound = listener.local_addr().map_err(err)?;
            // rmqtt tells listeners apart by these ids: one port, one listener.
            if tls_bound.port() == addr.port() {
                let message = "plain MQTT has this port (on another address): give TLS its own".into();
                return Err(BrokerError { addr: tls.addr, message });
            }
            server = server.listener_by_id(listener, tls_bound.port());
            tls_addr = Some(tls_bound);
        }
        let server = server.build();
        let task = tokio::spawn(async move {
            if let Err(e) = server.run().await {
                tracing::error!(error = %e, "MQTT broker stopped");
            }
        });
        ingest.metrics().set_mqtt_connected(true);
        match tls_addr {
            Some(tls) => info!(%addr, %tls, "embedded MQTT broker listening, and over TLS"),
            None => info!(%addr, "embedded MQTT broker listening"),
        }
        Ok(EmbeddedBroker { addr, tls_addr, task })
    }

    /// Stops accepting connections.
    pub fn stop(self) {
        self.task.abort();
    }
}

struct TelemetryHook {
    ingest: Ingest,
    auth: Arc<Auth>,
    pacing: Arc<Pacing>,
}

fn refuse(reason: PublishAckReason, text: String, disconnect: bool) -> ReturnType {
    let result = PublishAclResult(PublishResult::reason_code(reason, Some(text.into()), disconnect));
    (false, Some(HookResult::PublishAclResult(result)))
}

impl TelemetryHook {
    /// Decides a connection: with sign-in on, a device signs in with its id as user name (and
    /// client id, so nobody takes over another's session) and its key as password.
    fn authenticate(&self, info: &ConnectInfo) -> AuthResult {
        if !self.auth.devices_must_sign_in() {
            return AuthResult::Allow(false, None);
        }
        let client = info.client_id();
        let Some(user) = info.username() else {
            warn!(%client, "MQTT connection refused: no user name");
            self.ingest.metrics().mqtt_refused();
            return AuthResult::NotAuthorized;
        };
        if user.as_ref() as &str != client.as_ref() as &str {
            warn!(%client, %user, "MQTT connection refused: the client id must be the device id");
            self.ingest.metrics().mqtt_refused();
            return AuthResult::NotAuthorized;
        }
        if !info.password().is_some_and(|p| self.auth.check_device_key(user, p)) {
            warn!(%client, "MQTT connection refused: wrong device key");
            self.ingest.metrics().mqtt_refused();
            return AuthResult::BadUsernameOrPassword;
        }
        // Never a superuser: rmqtt skips the publish hook (where readings are stored) for those.
        AuthResult::Allow(false, None)
    }

    /// With sign-in on, a device may publish and subscribe only under `app/device/<its id>/`.
    fn own_topic(&self, user: Option<&str>, topic: &str) -> bool {
        if !self.auth.devices_must_sign_in() {
            return true;
        }
        user.is_some_and(|u| {
            topic
                .strip_prefix(DEVICE_PREFIX)
                .and_then(|t| t.strip_prefix(u))
                .is_some_and(|t| t.starts_with('/'))
        })
    }

    /// Decides a client's publish: store it first when it is ours.
    async fn check(
        &self,
        client: &str,
        user: Option<&str>,
        topic: &str,
        payload: &[u8],
    ) -> Option<ReturnType> {
        let received = now_ms();
        // A refusal of the whole message for its topic: counted, logged, acknowledged, not routed.
        let refuse_topic = |label: &'static str, reason: PublishAckReason, why: String| {
            self.ingest.metrics().received(Source::Mqtt);
            self.ingest.metrics().rejected(label);
            warn!(%topic, %client, "message refused: {why}");
            Some(refuse(reason, why, false))
        };
        if !self.own_topic(user, topic) {
            let why = "a device publishes only to its own topics".into();
            return refuse_topic("not_authorized", PublishAckReason::NotAuthorized, why);
        }
        // A topic name never holds wildcards (MQTT 4.7.1); one that does must not reach
        // subscribers whose filters it would match.
        if topic.contains(['+', '#']) {
            return refuse_topic(
                "bad_topic",
                PublishAckReason::TopicNameInvalid,
                "wildcard in a topic name".into(),
            );
        }
        match DeviceTopic::parse(topic) {
            Ok(DeviceTopic::Telemetry(device)) => {
                let parsed = parse_payload(device.clone(), payload, received);
                self.ingest.record_parse(Source::Mqtt, &parsed);
                match parsed {
                    Ok(mut message) => {
                        for d in &message.dropped {
                            warn!(%device, metric = %d.name, reason = d.reason.label(), "metric dropped");
                        }
                        let mut turn = self.pacing.turn(client).await;
                        match self.ingest.admit(&mut message, Pace::Wait(MAX_HOLD)) {
                            Ok(wait) if !wait.is_zero() => {
                                turn.hold();
                                tokio::time::sleep(wait).await;
                            }
                            Ok(_) => {}
                            Err(refusal) => {
                                let reason = match refusal {
                                    Refusal::RateLimited(_) => PublishAckReason::QuotaExceeded,
                                    _ => PublishAckReason::ImplementationSpecificError,
                                };
                                return Some(refuse(reason, refusal.to_string(), false));
                            }
                        }
                        drop(turn);
                        if let Err(e) = self.ingest.store(vec![message], received).await {
                            warn!(%device, %client, error = %e, "reading not stored; disconnecting without PUBACK");
                            return Some(refuse(PublishAckReason::UnspecifiedError, e.to_string(), true));
                        }
                        None
                    }
                    Err(reason) => {
                        warn!(%device, %client, reason = reason.label(), "message rejected: {reason}");
                        Some(refuse(PublishAckReason::PayloadFormatInvalid, reason.to_string(), false))
                    }
                }
            }
            Ok(DeviceTopic::Status(device)) => {
                self.record_status(device, payload, received).await;
                None
            }
            Err(TopicError::BadDeviceId(e)) => refuse_topic(
                "bad_device_id",
                PublishAckReason::TopicNameInvalid,
                format!("invalid device id: {e}"),
            ),
            Err(TopicError::Foreign | TopicError::UnknownKind) => None,
        }
    }

    async fn record_status(&self, device: DeviceId, payload: &[u8], at: i64) {
        let online = match payload.trim_ascii() {
            b"online" => true,
            b"offline" => false,
            // An empty retained message clears the status topic; nothing to record.
            b"" => return,
            other => {
                warn!(%device, payload = %String::from_utf8_lossy(other), "status must be online or offline");
                self.ingest.metrics().rejected("bad_status");
                return;
            }
        };
        match self.ingest.status(StatusReport { device: device.clone(), online, at }).await {
            Ok(()) => {}
            // Devices dropped by the server's own shutdown: one line each would bury the log.
            Err(IngestError::Closed) => debug!(%device, "status not stored: shutting down"),
            Err(e) => warn!(%device, error = %e, "status not stored"),
        }
    }
}

#[async_trait]
impl Handler for TelemetryHook {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::ClientAuthenticate(info) => {
                (false, Some(HookResult::AuthResult(self.authenticate(info))))
            }
            Parameter::ClientSubscribeCheckAcl(session, subscribe) => {
                let user = session.id.username.as_deref();
                if self.own_topic(user, &subscribe.topic_filter) {
                    return (true, acc);
                }
                warn!(client = %session.id.client_id, filter = %subscribe.topic_filter, "subscription refused");
                let refused = SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized);
                (false, Some(HookResult::SubscribeAclResult(refused)))
            }
            Parameter::MessagePublishCheckAcl(session, publish) => {
                let user = session.id.username.as_deref();
                match self.check(&session.id.client_id, user, &publish.topic, &publish.payload).await {
                    Some(refusal) => refusal,
                    None => (true, acc),
                }
            }
            // A last will is published by the broker itself, without the ACL check.
            Parameter::MessagePublish(_, from, publish) if matches!(from.typ(), FromType::LastWill) => {
                if let Ok(DeviceTopic::Status(device)) = DeviceTopic::parse(&publish.topic) {
                    self.record_status(device, &publish.payload, now_ms()).await;
                }
                (true, acc)
            }
            _ => (true, acc),
        }
    }
}
