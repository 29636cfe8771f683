//! The embedded MQTT broker (rmqtt, MQTT 3.1, 3.1.1 and 5). Devices connect straight to the
//! server; a QoS 1 publish to `app/device/<id>/telemetry` is answered with PUBACK only after
//! its readings are durably committed, because rmqtt awaits the publish ACL hook before it
//! acknowledges. So a device's "sent" means "stored", even across a kill -9.
//!
//! The hook only translates: each publish (and each last will) goes through the ingest door,
//! [`Ingest::admit`], and its answer becomes a PUBACK reason:
//! - stored, then acknowledged and routed to subscribers as usual;
//! - malformed: acknowledged (the device must not resend it forever), not routed; MQTT 5
//!   devices get "payload format invalid";
//! - over its rate: the PUBACK is held back (up to a second), which slows the device down;
//!   beyond that, or over the device or metric caps, dropped; MQTT 5 devices get "quota
//!   exceeded". One connection's publishes are admitted one after another ([`super::pacing`]);
//! - storage failed: the device is disconnected without a PUBACK, so it resends later.
//!
//! A connection's publishes are pipelined (our patched rmqtt, `vendor/README.md`): while one
//! waits for its commit the next are read and checked, so a commit takes many readings from
//! each connection; PUBACKs still go out in order.
//!
//! Sign-in: once people must sign in, so must devices: user name and client id = the device
//! id, password = its key, and a last will only on its own status topic. Rights are checked
//! on every publish and subscription ([`super::sessions`]), and a connection ends when its key
//! is replaced or revoked, or, if it came in without a key while the dashboard was open, when
//! sign-in becomes required. Until then the broker is open, as on a trusted network.
//!
//! A last will is checked again when it fires (the rights it was left with may have ended). One
//! that fails is neither recorded nor delivered: rmqtt routes whatever the publish hook hands
//! back, so the hook marks it ([`WITHHELD`]) and the delivery check drops it for every
//! subscriber. That check also holds every delivery to the subscriber's rights of the moment,
//! so a subscription outlives neither its rights nor a kick that failed (which is retried).
//!
//! With `[tls]` set it also listens for MQTT over TLS (`mqtt.tls_listen`; `mqtt.plain = false`
//! leaves that one only). Connections, CONNECTs in progress, client ids, packets and keepalives
//! are bounded (`mqtt.*`).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rmqtt::codec::v5::{PublishAckReason, SubscribeAckReason};
use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType, Type};
use rmqtt::net::Builder;
use rmqtt::server::MqttServer;
use rmqtt::types::{
    AuthResult, ClientId, ConnectInfo, FromType, Id, LastWill, Publish, PublishAclResult, PublishResult,
    SubscribeAclResult,
};
use telemetry::text::untrusted;
use telemetry::topic::status_topic;
use telemetry::{Rejection, own_topic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, info, warn};

use super::connections::ConnectionLog;
use super::pacing::Pacing;
use super::sessions::{Sessions, SignedIn};
use crate::auth::{Auth, AuthEvent};
use crate::clock::now_ms;
use crate::commands::{Commands, Link};
use crate::config::MqttConfig;
use crate::ingest::{Admitted, Arrival, Ingest, IngestError, Pace};
use crate::log_limit::LogLimit;
use crate::metrics::Source;

/// Longest a device's PUBACK is held back to keep it to its message rate.
const MAX_HOLD: Duration = Duration::from_secs(1);

/// Unacknowledged QoS 1 messages a connection may have, each way (rmqtt's default is 16):
/// how many of a device's publishes one commit can take (MQTT 5 devices are told this as
/// the receive maximum).
const IN_FLIGHT: std::num::NonZeroU16 = std::num::NonZeroU16::new(64).expect("not zero");

/// How long the health probe waits for the broker's CONNACK.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How soon a connection whose rights ended, and which could not be ended, is tried again.
const KICK_RETRY: Duration = Duration::from_secs(1);

/// The user property that marks a last will the server refused when it fired; its value is
/// random per start, so no client's own will or message carries it.
const WITHHELD: &str = "iot-withheld";

/// A running embedded broker; dropping it does not stop it, [`EmbeddedBroker::stop`] does.
pub struct EmbeddedBroker {
    /// Plain MQTT, unless `mqtt.plain` is off.
    pub addr: Option<SocketAddr>,
    /// MQTT over TLS, when configured.
    pub tls_addr: Option<SocketAddr>,
    /// The client id the health probe connects with: refused quietly.
    probe_id: String,
    task: tokio::task::JoinHandle<()>,
    kicker: tokio::task::JoinHandle<()>,
    /// The hook rmqtt calls, let go of at the stop.
    hook: Slot,
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
    /// Binds the listeners (plain unless `config.plain` is off, and TLS if given) and starts
    /// accepting devices.
    pub async fn start(
        config: &MqttConfig,
        tls: Option<TlsListen<'_>>,
        ingest: Ingest,
        auth: Arc<Auth>,
        commands: Commands,
    ) -> Result<EmbeddedBroker, BrokerError> {
        let listen = config.listen;
        let err = |e: rmqtt::Error| BrokerError { addr: listen, message: e.to_string() };
        let scx = ServerContext::new()
            .mqtt_max_sessions(config.max_connections as isize)
            .busy_handshaking_limit(config.max_handshakes as isize)
            .build()
            .await;
        let sessions = Arc::new(Sessions::default());
        let probe_id = format!("iot-health-{}", crate::random::hex(8));
        let withheld = crate::random::hex(16);
        let retained = super::retained::RetainedStorage::new(ingest.retained().clone(), scx.node.id());
        *scx.extends.retain_mut().await = Box::new(retained);
        let register = scx.extends.hook_mgr().register();
        let pacing = Arc::new(Pacing::default());
        let connections = Arc::new(ConnectionLog::new(ingest.clone()));
        let hook: Slot = Arc::new(RwLock::new(Some(Arc::new(TelemetryHook {
            ingest: ingest.clone(),
            auth: auth.clone(),
            pacing,
            connections,
            sessions: sessions.clone(),
            commands: commands.clone(),
            probe_id: probe_id.clone(),
            withheld,
            max_client_id: config.max_client_id,
        }))));
        for typ in [
            Type::ClientAuthenticate,
            Type::ClientSubscribeCheckAcl,
            Type::MessagePublishCheckAcl,
            Type::MessagePublish,
            Type::MessageExpiryCheck,
            Type::SessionTerminated,
            Type::ClientConnected,
            Type::ClientDisconnected,
            Type::SessionSubscribed,
            Type::SessionUnsubscribed,
            Type::MessageDelivered,
            Type::MessageAcked,
        ] {
            register.add(typ, Box::new(Stoppable(hook.clone()))).await;
        }
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
                .max_connections(config.max_connections)
                .max_handshaking_limit(config.max_handshakes)
                .handshake_timeout(Duration::from_secs(config.handshake_timeout_secs.max(1)))
                // Checked in the authenticate hook instead, which logs the refusal (cut short).
                .max_clientid_len(usize::from(u16::MAX))
                .max_packet_size(config.max_packet_bytes)
                .min_keepalive(config.min_keepalive_secs)
                .allow_zero_keepalive(config.min_keepalive_secs == 0)
        };
        let mut server = MqttServer::new(scx.clone());
        let mut addr = None;
        if config.plain {
            let listener = builder("mqtt", listen).bind().and_then(|l| l.tcp()).map_err(err)?;
            let bound = listener.local_addr().map_err(err)?;
            server = server.listener_by_id(listener, bound.port());
            addr = Some(bound);
        }
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
            if addr.is_some_and(|a| a.port() == tls_bound.port()) {
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
        commands.attach(super::commands::Embedded::new(scx.clone()));
        commands.desired().attach(super::desired::Embedded::new(scx.clone()));
        let kicker = tokio::spawn(end_lost_rights(scx, auth.clone(), sessions, ingest.log().clone()));
        ingest.metrics().set_mqtt_connected(true);
        match (addr, tls_addr) {
            (Some(addr), Some(tls)) => info!(%addr, %tls, "embedded MQTT broker listening, and over TLS"),
            (Some(addr), None) => info!(%addr, "embedded MQTT broker listening"),
            (None, Some(tls)) => info!(%tls, "embedded MQTT broker listening over TLS only"),
            (None, None) => {}
        }
        Ok(EmbeddedBroker { addr, tls_addr, probe_id, task, kicker, hook })
    }

    /// Whether the broker still takes devices: a CONNECT on the plain listener (or a TCP
    /// connection to the TLS one) answered in time, and not with "server unavailable" (all
    /// `mqtt.max_connections` taken, or no handshake slot in time).
    pub async fn probe(&self) -> bool {
        if self.task.is_finished() {
            return false;
        }
        let local = |a: SocketAddr| match a.ip().is_unspecified() {
            true if a.is_ipv4() => SocketAddr::from((Ipv4Addr::LOCALHOST, a.port())),
            true => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port())),
            false => a,
        };
        let attempt = async {
            match (self.addr, self.tls_addr) {
                (Some(addr), _) => handshake(local(addr), &self.probe_id).await,
                (None, Some(tls)) => tokio::net::TcpStream::connect(local(tls)).await.is_ok(),
                (None, None) => false,
            }
        };
        tokio::time::timeout(PROBE_TIMEOUT, attempt).await.unwrap_or(false)
    }

    /// Stops accepting connections, and lets go of the ingest door and the user database
    /// (rmqtt keeps its hooks as long as anything holds its context), so the same process can
    /// open them again.
    pub fn stop(&self) {
        self.task.abort();
        self.kicker.abort();
        self.hook.write().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// The hook, until the broker stops.
type Slot = Arc<RwLock<Option<Arc<TelemetryHook>>>>;

/// What rmqtt registers: the hook while the broker runs; once it stopped, no sign-in, no
/// subscription and no publish is taken, and nothing is delivered.
struct Stoppable(Slot);

#[async_trait]
impl Handler for Stoppable {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        let hook = self.0.read().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(hook) = hook {
            return hook.hook(param, acc).await;
        }
        match param {
            Parameter::ClientAuthenticate(_) => {
                (false, Some(HookResult::AuthResult(AuthResult::NotAuthorized)))
            }
            Parameter::ClientSubscribeCheckAcl(..) => {
                let refused = SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized);
                (false, Some(HookResult::SubscribeAclResult(refused)))
            }
            Parameter::MessagePublishCheckAcl(..) => {
                refuse(PublishAckReason::UnspecifiedError, "the server is stopping".into(), true)
            }
            Parameter::MessageExpiryCheck(..) => (false, Some(HookResult::MessageExpiry)),
            _ => (true, acc),
        }
    }
}

/// An MQTT 3.1.1 CONNECT as `client`, answered by a CONNACK other than "server unavailable"
/// (the probe's own refusal, "not authorised", means the broker would take a device).
async fn handshake(addr: SocketAddr, client: &str) -> bool {
    let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await else { return false };
    let mut connect = vec![0x10, 0, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30];
    connect.extend_from_slice(&(client.len() as u16).to_be_bytes());
    connect.extend_from_slice(client.as_bytes());
    connect[1] = (connect.len() - 2) as u8;
    if tcp.write_all(&connect).await.is_err() {
        return false;
    }
    let mut ack = [0u8; 4];
    const SERVER_UNAVAILABLE: u8 = 3;
    tcp.read_exact(&mut ack).await.is_ok() && ack[0] == 0x20 && ack[3] != SERVER_UNAVAILABLE
}

/// Ends the connections whose rights ended, whenever who may do what changes. A connection
/// that cannot be ended at once (rmqtt's entry busy) is tried again [`KICK_RETRY`] later; until
/// it ends, it is refused every publish, subscription and delivery anyway ([`Sessions::rights`]).
async fn end_lost_rights(scx: ServerContext, auth: Arc<Auth>, sessions: Arc<Sessions>, log: Arc<LogLimit>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut events = auth.events();
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        let retry = async {
            match retry_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = events.recv() => match event {
                Ok(AuthEvent::Sessions) => continue,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            () = retry => {}
        }
        retry_at = None;
        for client in sessions.without_rights(&auth) {
            if !kick(&scx, &client, &log).await {
                retry_at = Some(tokio::time::Instant::now() + KICK_RETRY);
            }
        }
    }
}

/// Ends `client`'s connection; `false` if it could not be ended now.
async fn kick(scx: &ServerContext, client: &str, log: &LogLimit) -> bool {
    let id = Id::from(scx.node.id(), ClientId::from(client.to_owned()));
    let entry = scx.extends.shared().await.entry(id);
    let error = match entry.try_lock().await {
        Ok(mut entry) => match entry.kick(true, true, true).await {
            Ok(_) => {
                // Every client of an open broker may be ended at once: a few lines, then a count.
                if log.check("MQTT connection ended", client, Instant::now()).is_some() {
                    info!(client = %untrusted(client), "MQTT connection ended: its rights ended");
                }
                return true;
            }
            Err(e) => e,
        },
        Err(e) => e,
    };
    if log.check("cannot end an MQTT connection", client, Instant::now()).is_some() {
        warn!(client = %untrusted(client), error = %error, "cannot end an MQTT connection yet; trying again");
    }
    false
}

struct TelemetryHook {
    ingest: Ingest,
    auth: Arc<Auth>,
    pacing: Arc<Pacing>,
    connections: Arc<ConnectionLog>,
    sessions: Arc<Sessions>,
    /// Commands to devices: which connections take them, and what became of those sent.
    commands: Commands,
    probe_id: String,
    /// The value of a withheld will's [`WITHHELD`] property.
    withheld: String,
    max_client_id: usize,
}

fn refuse(reason: PublishAckReason, text: String, disconnect: bool) -> ReturnType {
    let result = PublishAclResult(PublishResult::reason_code(reason, Some(text.into()), disconnect));
    (false, Some(HookResult::PublishAclResult(result)))
}

/// The PUBACK reason (MQTT 5) for a refusal.
fn ack_reason(why: &Rejection) -> PublishAckReason {
    match why {
        Rejection::WildcardTopic | Rejection::BadDeviceId(_) => PublishAckReason::TopicNameInvalid,
        Rejection::Payload(_) | Rejection::BadStatus | Rejection::Attributes(_) => {
            PublishAckReason::PayloadFormatInvalid
        }
        Rejection::RateLimited(_) => PublishAckReason::QuotaExceeded,
        Rejection::NotOwnTopic
        | Rejection::NotSignedIn
        | Rejection::WrongKey
        | Rejection::ClientIdNotDevice
        | Rejection::WillNotOwnStatus
        | Rejection::ClientIdTooLong(_)
        | Rejection::RetainedCommand
        | Rejection::CommandFromClient => PublishAckReason::NotAuthorized,
        Rejection::BadCommandResult(_) | Rejection::BadReported(_) => PublishAckReason::PayloadFormatInvalid,
        Rejection::DesiredFromClient => PublishAckReason::NotAuthorized,
        Rejection::UnknownCommand => PublishAckReason::ImplementationSpecificError,
        Rejection::TooManyRetained(_) | Rejection::RetainedTooLarge(_) | Rejection::RetainedFull => {
            PublishAckReason::QuotaExceeded
        }
        Rejection::TooManyDevices(_)
        | Rejection::TooManyShadows(_)
        | Rejection::TooManyMetrics(_)
        | Rejection::TooManyAttributes(_)
        | Rejection::Overloaded => PublishAckReason::ImplementationSpecificError,
    }
}

fn will_topic<'a>(will: &'a LastWill<'_>) -> &'a str {
    match will {
        LastWill::V3(w) => &w.topic,
        LastWill::V5(w) => &w.topic,
    }
}

impl TelemetryHook {
    /// Decides a connection: with sign-in on, a device signs in with its id as user name (and
    /// client id, so nobody takes over another's session) and its key as password, and its
    /// last will, if any, goes to its own status topic only.
    fn authenticate(&self, info: &ConnectInfo) -> AuthResult {
        let client: &str = info.client_id();
        if client == self.probe_id {
            return AuthResult::NotAuthorized;
        }
        let user = info.username().map(|u| -> &str { u });
        let peer = info.id().remote_addr.map(|a| a.to_string());
        if client.len() > self.max_client_id {
            self.ingest.connection_refused(
                client,
                &Rejection::ClientIdTooLong(self.max_client_id),
                peer.as_deref(),
            );
            return AuthResult::NotAuthorized;
        }
        let will = info.last_will();
        if will.as_ref().is_some_and(|w| will_topic(w).contains(['+', '#'])) {
            self.ingest.connection_refused(client, &Rejection::WildcardTopic, peer.as_deref());
            return AuthResult::NotAuthorized;
        }
        // A right key counts whether or not sign-in is required yet: such a device keeps its
        // connection when it becomes required.
        let key = match (user, info.password()) {
            (Some(user), Some(password)) if user == client => self.auth.check_device_key(user, password),
            _ => None,
        };
        let created = info.id().create_time;
        if !self.auth.devices_must_sign_in() {
            let signed_in = key.map_or(SignedIn::Anonymous, SignedIn::Device);
            self.sessions.connected(client, created, signed_in);
            return AuthResult::Allow(false, None);
        }
        let refusal = match (user, key) {
            (None, _) => Some(Rejection::NotSignedIn),
            (Some(user), _) if user != client => Some(Rejection::ClientIdNotDevice),
            (Some(_), None) => Some(Rejection::WrongKey),
            (Some(_), Some(_)) if will.as_ref().is_some_and(|w| will_topic(w) != status_topic(client)) => {
                Some(Rejection::WillNotOwnStatus)
            }
            (Some(_), Some(_)) => None,
        };
        if let Some(why) = refusal {
            let id = user.filter(|_| why == Rejection::ClientIdNotDevice).unwrap_or(client);
            self.ingest.connection_refused(id, &why, peer.as_deref());
            return match why {
                Rejection::WrongKey => AuthResult::BadUsernameOrPassword,
                _ => AuthResult::NotAuthorized,
            };
        }
        self.sessions.connected(client, created, key.map_or(SignedIn::Anonymous, SignedIn::Device));
        // Never a superuser: rmqtt skips the publish hook (where readings are stored) for those.
        AuthResult::Allow(false, None)
    }

    /// Decides a client's publish: store it first when it is ours, and with it the retained
    /// message it sets or clears.
    async fn publish(&self, id: &Id, publish: &Publish) -> Option<ReturnType> {
        let (topic, payload): (&str, &[u8]) = (&publish.topic, &publish.payload);
        let client: &str = &id.client_id;
        let received = now_ms();
        let own = match self.sessions.rights(&self.auth, client, id.create_time) {
            Ok(own) => own,
            Err(why) => {
                let arrival = self.arrival(client, None, topic, payload, received);
                self.ingest.refused_message(&arrival, &why);
                return Some(refuse(ack_reason(&why), why.to_string(), true));
            }
        };
        let arrival = self.arrival(client, own.then_some(client), topic, payload, received);
        let mut turn = self.pacing.turn(client).await;
        let pace = Pace::Wait(MAX_HOLD);
        let admitted = match publish.retain && payload.is_empty() {
            true => self.ingest.admit_clear(&arrival, pace),
            false => self.ingest.admit(&arrival, pace),
        };
        let retaining = admitted.and_then(|admitted| match publish.retain {
            true => {
                let message = super::retained::retained_message(publish, client, received);
                self.ingest.retain(&arrival, message).map(|r| (admitted, r))
            }
            false => Ok((admitted, None)),
        });
        let (admitted, retaining) = match retaining {
            Ok(decided) => decided,
            Err(why) => return Some(refuse(ack_reason(&why), why.to_string(), false)),
        };
        let wait = admitted.wait();
        if !wait.is_zero() {
            turn.hold();
            tokio::time::sleep(wait).await;
        }
        drop(turn);
        let stored = match retaining {
            Some(retaining) => self.ingest.submit_retained(admitted, retaining, received).await,
            None if matches!(admitted, Admitted::Nothing(_)) => {
                // A device asking for its desired state again is sent it.
                if let Some((device, telemetry::desired::DesiredTopic::Get)) =
                    telemetry::desired::desired_parts(topic)
                {
                    let (desired, device) = (self.commands.desired().clone(), device.to_owned());
                    let client = client.to_owned();
                    tokio::spawn(async move { desired.send_to(&device, &client).await });
                }
                return None;
            }
            None => self.ingest.submit_admitted(admitted, received).await,
        };
        match stored.await.unwrap_or(Err(IngestError::Closed)) {
            Ok(()) => None,
            Err(e) => {
                if self.ingest.log().check("not stored", client, Instant::now()).is_some() {
                    warn!(client = %untrusted(client), error = %e, "not stored; disconnecting without PUBACK");
                }
                Some(refuse(PublishAckReason::UnspecifiedError, e.to_string(), true))
            }
        }
    }

    fn arrival<'a>(
        &self,
        client: &'a str,
        publisher: Option<&'a str>,
        topic: &'a str,
        payload: &'a [u8],
        received: i64,
    ) -> Arrival<'a> {
        Arrival { source: Source::Mqtt, topic, payload, publisher, client, received }
    }

    /// Records a last will the broker publishes for a client that went away, and answers
    /// whether it may be delivered. With sign-in on, only a signed-in device's will on its own
    /// status counts (checked at CONNECT, and here again, since rights may have ended since);
    /// like a publish, a will that is refused or not stored is not delivered either. A retained
    /// will is retained with it, unless that is refused (over the caps: counted): a will cannot
    /// be sent again, so it is still recorded and delivered.
    async fn last_will(&self, id: &Id, will: &Publish) -> bool {
        let (topic, payload): (&str, &[u8]) = (&will.topic, &will.payload);
        let client: &str = &id.client_id;
        let own = match self.sessions.rights(&self.auth, client, id.create_time) {
            Ok(own) => own,
            Err(why) => {
                debug!(client = %untrusted(client), "last will withheld: {why}");
                return false;
            }
        };
        if own && topic != status_topic(client) {
            debug!(client = %untrusted(client), "last will withheld: not its own status");
            return false;
        }
        let arrival = self.arrival(client, own.then_some(client), topic, payload, now_ms());
        let admitted = match will.retain && payload.is_empty() {
            true => self.ingest.admit_clear(&arrival, Pace::Unlimited),
            false => self.ingest.admit(&arrival, Pace::Unlimited),
        };
        let Ok(admitted) = admitted else { return false };
        let retaining = will.retain.then(|| {
            let message = super::retained::retained_message(will, client, arrival.received);
            self.ingest.retain(&arrival, message).ok().flatten()
        });
        let stored = match retaining.flatten() {
            Some(retaining) => self.ingest.submit_retained(admitted, retaining, arrival.received).await,
            None => self.ingest.submit_admitted(admitted, arrival.received).await,
        };
        match stored.await {
            Ok(Ok(())) => true,
            // Devices dropped by the server's own shutdown: one line each would bury the log.
            Ok(Err(IngestError::Closed)) | Err(_) => {
                debug!(client = %untrusted(client), "last will not stored: shutting down");
                false
            }
            Ok(Err(e)) => {
                if self.ingest.log().check("not stored", client, Instant::now()).is_some() {
                    warn!(client = %untrusted(client), error = %e, "last will not stored");
                }
                false
            }
        }
    }

    /// `will`, marked so that no subscriber gets it ([`TelemetryHook::is_withheld`]).
    fn withhold(&self, will: &Publish) -> Publish {
        let mut will = will.clone();
        will.retain = false;
        let mark = (WITHHELD.into(), self.withheld.clone().into());
        will.properties.get_or_insert_with(Default::default).user_properties.push(mark);
        will
    }

    fn is_withheld(&self, message: &Publish) -> bool {
        message.properties.as_ref().is_some_and(|p| {
            p.user_properties.iter().any(|(k, v)| k == WITHHELD && v == self.withheld.as_str())
        })
    }
}

#[async_trait]
impl Handler for TelemetryHook {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::ClientAuthenticate(info) => {
                let result = self.authenticate(info);
                if !matches!(result, AuthResult::Allow(..)) {
                    self.connections.refused(info).await;
                }
                (false, Some(HookResult::AuthResult(result)))
            }
            // Each device's connection log.
            Parameter::ClientConnected(session) => {
                self.connections.connected(session).await;
                // A persistent session keeps its subscription to its commands: rmqtt hands
                // it over just after this hook, without a SUBSCRIBE to see.
                tokio::spawn(super::commands::kept_subscription(self.commands.clone(), (*session).clone()));
                (true, acc)
            }
            Parameter::ClientDisconnected(session, reason) => {
                self.commands.unlinked(&session.id.client_id, session.id.create_time);
                self.connections.disconnected(session, reason).await;
                (true, acc)
            }
            // A device's connection that subscribed to its commands takes them from now on; one
            // that subscribed to its desired state is sent it at once.
            Parameter::SessionSubscribed(session, subscribe) => {
                if let Some(device) = telemetry::desired::desired_subscriber(&subscribe.topic_filter) {
                    let (desired, device) = (self.commands.desired().clone(), device.to_owned());
                    let client = session.id.client_id.to_string();
                    tokio::spawn(async move { desired.send_to(&device, &client).await });
                }
                if let Some(device) = super::commands::commands_subscriber(&subscribe.topic_filter) {
                    let id = &session.id;
                    let link = Link {
                        client: id.client_id.to_string(),
                        session: id.create_time,
                        qos: subscribe.opts.qos().value(),
                    };
                    self.commands.linked(device, link);
                }
                (true, acc)
            }
            Parameter::SessionUnsubscribed(session, unsubscribe) => {
                if super::commands::commands_subscriber(&unsubscribe.topic_filter).is_some() {
                    self.commands.unlinked(&session.id.client_id, session.id.create_time);
                }
                (true, acc)
            }
            Parameter::MessageDelivered(session, from, publish) => {
                super::commands::delivering(&self.commands, &session.id.client_id, from, publish).await;
                (true, acc)
            }
            Parameter::MessageAcked(session, from, publish) => {
                super::commands::acknowledged(&self.commands, &session.id.client_id, from, publish).await;
                (true, acc)
            }
            Parameter::ClientSubscribeCheckAcl(session, subscribe) => {
                let client: &str = &session.id.client_id;
                let allowed = match self.sessions.rights(&self.auth, client, session.id.create_time) {
                    Ok(true) => own_topic(client, &subscribe.topic_filter),
                    Ok(false) => true,
                    Err(_) => false,
                };
                if allowed {
                    return (true, acc);
                }
                let refusal = (client, &Rejection::NotOwnTopic);
                self.ingest.refused_subscription(refusal.0, &subscribe.topic_filter);
                let refused = SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized);
                (false, Some(HookResult::SubscribeAclResult(refused)))
            }
            Parameter::MessagePublishCheckAcl(session, publish) => {
                match self.publish(&session.id, publish).await {
                    Some(refusal) => refusal,
                    None => {
                        self.connections.published(session).await;
                        (true, acc)
                    }
                }
            }
            // A last will is published by the broker itself, without the ACL check. rmqtt
            // routes what this hook answers, so a refused one is handed back withheld.
            Parameter::MessagePublish(_, from, publish) if matches!(from.typ(), FromType::LastWill) => {
                if self.last_will(&from.id, publish).await {
                    return (true, acc);
                }
                (false, Some(HookResult::Publish(self.withhold(publish))))
            }
            // Checked before each delivery to a subscriber: a withheld will goes to nobody, and
            // a subscriber gets only what its rights allow now, whatever it subscribed to
            // before they changed (a keyed device's `#` from while the dashboard was open).
            Parameter::MessageExpiryCheck(subscriber, from, message) => {
                let withheld = matches!(from.typ(), FromType::LastWill) && self.is_withheld(message);
                let id = &subscriber.id;
                if withheld
                    || !self.sessions.may_receive(&self.auth, &id.client_id, id.create_time, &message.topic)
                {
                    return (false, Some(HookResult::MessageExpiry));
                }
                (true, acc)
            }
            Parameter::SessionTerminated(session, _) => {
                self.commands.unlinked(&session.id.client_id, session.id.create_time);
                self.sessions.ended(&session.id.client_id, session.id.create_time);
                (true, acc)
            }
            _ => (true, acc),
        }
    }
}
