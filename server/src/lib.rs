//! The IoT dashboard server: MQTT in (embedded broker or an external one), durable history in
//! redb, a live WebSocket feed, and the server-rendered Leptos dashboard, in one process.
//!
//! # Layout
//! - [`config`]: defaults, TOML file, environment ([`secret`]: values never printed).
//! - [`ingest`]: the one door every message comes in by: decode → authorise → admit (limits)
//!   → group commit → acknowledge → broadcast; who is refused and why.
//! - [`mqtt`]: the embedded broker (acknowledging only stored readings), its sign-in
//!   bookkeeping, pacing and retained messages, or the client of an external broker.
//! - [`web`]: routes, the guards, the live socket, HTTP ingest, export, health and metrics;
//!   [`state`]: what its handlers share.
//! - [`store`]: the redb store (readings, device registry, status, attributes and device
//!   events, dashboards);
//!   [`upkeep`]: sealing, pruning and expired sessions.
//! - [`auth`]: users, roles, sessions, device keys and the password gate.
//! - [`alarms`]: rules evaluated on readings and the clock; [`notify`]: where alarms are sent.
//! - [`commands`]: commands to devices, their states and their dispatch.
//! - [`fleet`]: tags and groups as the dashboard changes them; [`scope`]: which devices a
//!   query or a rule's scope holds.
//! - [`hub`]: the live fan-out; [`metrics`]: `/metrics` counters; [`log_limit`]: warnings
//!   outsiders can repeat, bounded per sender and per reason; [`files`]: owner-only files;
//!   [`random`]: tokens and ids; [`clock`]: server time; [`tcp`]: socket options.
//! - [`tls`]: HTTPS and MQTT over TLS, and the self-signed pair for trying them.
//!
//! Data flows one way: device → ingest → (store, hub) → server fn / WebSocket → UI.

// Leptos view types nest deeply; release builds (without type erasure) need the headroom.
#![recursion_limit = "512"]

pub mod alarms;
pub mod auth;
pub mod clock;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod desired;
pub mod files;
pub mod fleet;
pub mod hub;
pub mod ingest;
pub mod log_limit;
pub mod metrics;
pub mod mqtt;
pub mod notify;
pub mod random;
pub mod scope;
pub mod secret;
pub mod state;
pub mod store;
pub mod tcp;
pub mod tls;
pub mod upkeep;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use leptos::prelude::LeptosOptions;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use telemetry::alarm::AlarmDesk;

use crate::alarms::desk::Desk;
use crate::alarms::engine::Engine;
use crate::auth::Auth;
use crate::auth::users::UserDb;
use crate::config::{Config, MqttMode};
use crate::hub::Hub;
use crate::ingest::{Batching, Ingest, Limits};
use crate::metrics::Metrics;
use crate::mqtt::broker::{EmbeddedBroker, TlsListen};
use crate::state::AppState;
use crate::store::postgres::PgBlocking;
use crate::store::{RedbStore, Store};
use crate::tls::HttpsListener;
use crate::web::routes::WebSettings;

/// The name cargo-leptos gives the JS, WASM and CSS files (`[[workspace.metadata.leptos]] name`).
pub const OUTPUT_NAME: &str = "iot-dashboard";

/// The log filter unless `RUST_LOG` says otherwise. rmqtt's own warnings are about single
/// clients (a failed TLS handshake, a refused subscription filter) that anyone can repeat at
/// will, a line each: only its errors are shown. The server logs refusals itself, bounded
/// ([`log_limit`]).
pub const LOG_FILTER: &str = "info,rmqtt=error,rmqtt_net=error";

/// How long a stop waits for the writer to commit what is queued before giving up on it.
const WRITER_STOP_WAIT: Duration = Duration::from_secs(10);

/// How long a clean stop waits for the cluster's lease keepers to hand their leases on.
const KEEPERS_STOP_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Http { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Broker(#[from] mqtt::broker::BrokerError),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("MQTT broker: {0}")]
    BrokerTls(#[from] mqtt::client::ClientTlsError),
    #[error(transparent)]
    Notify(#[from] notify::channels::SenderError),
    /// A rule or channel from the configuration file was refused (the message names it).
    #[error("{0}")]
    Provision(String),
    #[error(transparent)]
    Assets(#[from] web::assets::AssetsError),
    #[error(transparent)]
    EmbeddedBroker(#[from] cluster::broker::ClaimError),
}

/// A server whose storage is open and whose listeners are bound; [`Server::run`] serves.
pub struct Server {
    config: Config,
    store: Arc<dyn Store>,
    /// The same store, when it is PostgreSQL: the live hub is then fed from its change log.
    postgres: Option<PgBlocking>,
    http: TcpListener,
    http_addr: SocketAddr,
    /// HTTPS instead of HTTP, when `[tls]` is set.
    https: Option<Arc<rustls::ServerConfig>>,
    /// The front end's hashed file names and where browsers load them from.
    assets: app::Assets,
    broker: Option<Arc<EmbeddedBroker>>,
    /// TLS to the external broker, when `mqtt.tls` is set.
    broker_tls: Option<Arc<rustls::ClientConfig>>,
    ingest: Ingest,
    writer: tokio::task::JoinHandle<()>,
    hub: Hub,
    metrics: Arc<Metrics>,
    auth: Arc<Auth>,
    /// Alarms, rules and channels, for the pages and the API.
    desk: Arc<dyn AlarmDesk>,
    /// Wakes the notification sender.
    notifier: Arc<tokio::sync::Notify>,
    /// Commands to devices.
    commands: commands::Commands,
    /// The notification senders, taken by `run`.
    senders: Option<notify::channels::Senders>,
    /// Several nodes: the alarm engine of the device partitions this node holds, started by
    /// `run`.
    alarm_work: Option<cluster::alarms::AlarmWork>,
    /// This node's name in the cluster's leases.
    node: String,
    /// The tasks keeping its leases, which give them up when it stops.
    keepers: Vec<tokio::task::JoinHandle<()>>,
    stop_tx: watch::Sender<bool>,
}

/// A lease for work only one node of a cluster does, shown in `metrics`.
fn cluster_lease(name: &str, node: &str, metrics: &Arc<Metrics>) -> Arc<cluster::lease::Lease> {
    let lease = cluster::lease::Lease::new(name, node);
    lease.report_to(metrics.clone());
    lease
}

/// The host part of a link to `addr`: `localhost` for an unspecified address.
fn link_host(addr: SocketAddr) -> String {
    match addr.ip() {
        ip if ip.is_unspecified() => format!("localhost:{}", addr.port()),
        std::net::IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
        ip => format!("{ip}:{}", addr.port()),
    }
}

/// The storage a server runs on, with sign-in's users: the redb file and the users file
/// beside it, or PostgreSQL for both (`storage.postgres_url`).
async fn open_storage(
    config: &Config,
) -> Result<(Arc<dyn Store>, Arc<Auth>, Option<PgBlocking>), StartError> {
    let storage = &config.storage;
    let auth_config = config.auth.clone();
    let Some(settings) = storage.postgres() else {
        let path = storage.path.clone();
        let cache = storage.cache_mb << 20;
        let store = tokio::task::spawn_blocking(move || RedbStore::open_with_cache(&path, cache))
            .await
            .expect("open task")?;
        info!(path = %storage.path.display(), "storage open");
        let users_path = auth::users_path(&storage.path);
        let users = tokio::task::spawn_blocking(move || UserDb::open(&users_path))
            .await
            .expect("open task")
            .map_err(auth::AuthError::from)?;
        return Ok((Arc::new(store), Arc::new(Auth::new(users, auth_config)?), None));
    };
    let (pg, auth) = tokio::task::spawn_blocking(move || {
        let pg = PgBlocking::open(&settings).map_err(store::StoreError::from)?;
        let auth = Auth::new(pg.clone(), auth_config)?;
        Ok::<_, StartError>((pg, auth))
    })
    .await
    .expect("open task")?;
    // Never the URL: it may hold a password.
    info!("storage open: PostgreSQL");
    Ok((Arc::new(pg.clone()), Arc::new(auth), Some(pg)))
}

impl Server {
    /// Reads the TLS files if set, opens the database and binds the HTTP(S) listener and (in
    /// embedded mode) the MQTT listeners. Port 0 picks a free port; see [`Server::http_addr`],
    /// [`Server::mqtt_addr`] and [`Server::mqtt_tls_addr`].
    pub async fn bind(config: Config) -> Result<Server, StartError> {
        let addr = config.web.listen;
        let http = TcpListener::bind(addr).await.map_err(|source| StartError::Http { addr, source })?;
        Server::start(config, http).await
    }

    /// As [`Server::bind`], serving HTTP on `http` (already bound, e.g. to port 0 by a test).
    pub async fn start(config: Config, http: TcpListener) -> Result<Server, StartError> {
        let broker_tls = match (config.mqtt.mode, config.mqtt.tls) {
            (MqttMode::External, true) => Some(mqtt::client::tls_config(&config.mqtt)?),
            _ => None,
        };
        let https = match config.tls.files() {
            Some((cert, key)) => Some(tls::server_config(cert, key)?),
            None => None,
        };
        let assets = web::assets::load(&config.web.site_root, &config.web.assets_url)?;
        let (store, auth, postgres) = open_storage(&config).await?;
        // Read now, so the first chart in local days does not wait for it.
        info!(database = %telemetry::zone::database(), "time zones");
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::new(config.live.client_queue);
        let batching = Batching {
            max_readings: config.storage.commit_max_readings,
            linger: Duration::from_millis(config.storage.commit_linger_ms),
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let limits = Arc::new(Limits::new(config.limits.clone(), &store.known_devices()));
        let addr = config.web.listen;
        let http_addr = http.local_addr().map_err(|source| StartError::Http { addr, source })?;
        let public_url = match config.notify.public_url.as_str() {
            "" => {
                let scheme = if https.is_some() { "https" } else { "http" };
                format!("{scheme}://{}", link_host(http_addr))
            }
            url => url.trim_end_matches('/').to_owned(),
        };
        // This node's name in the cluster's leases (its address, and a random part: a restart
        // on the same address is another holder).
        let node = format!("{http_addr}-{}", random::hex(4));
        let grace = (config.alarms.start_grace_secs as i64).saturating_mul(1000);
        let mut engine = Engine::new(clock::now_ms().saturating_add(grace), public_url.clone());
        let notifier = Arc::new(tokio::sync::Notify::new());
        // Several nodes on one database: each device partition's rules are evaluated by the
        // node holding its lease, from the change log; this node's writer evaluates nothing.
        let alarm_work = match &postgres {
            Some(pg) => Some(cluster::alarms::AlarmWork {
                pg: pg.clone(),
                partitions: cluster::partitions::Partitions::new(
                    store::postgres::ALARM_LEASE_PREFIX,
                    store::postgres::PARTITIONS,
                    &node,
                    metrics.clone(),
                ),
                quiet_until: clock::now_ms().saturating_add(grace),
                public_url: public_url.clone(),
                notifier: notifier.clone(),
            }),
            None => {
                let saved = store.alarm_state()?;
                info!(
                    rules = saved.rules.len(),
                    open = saved.alarms.iter().filter(|a| a.active).count(),
                    "alarms loaded"
                );
                engine.load(saved.rules, saved.tracks, saved.alarms, saved.channels);
                None
            }
        };
        let senders = notify::channels::Senders::new(&config.notify.smtp())?;
        let (ingest, writer) = Ingest::start(
            store.clone(),
            hub.clone(),
            postgres.is_some(),
            metrics.clone(),
            limits,
            batching,
            engine,
            postgres.clone(),
            notifier.clone(),
            stop_rx,
        );
        let desk = Arc::new(Desk::new(store.clone(), ingest.clone(), notifier.clone(), public_url));
        // Provisioned rules and channels are in place before the first device connects.
        let provision = alarms::provision::parse(&config.alarms.rules, &config.notify.channels)
            .map_err(StartError::Provision)?;
        if !provision.is_empty() {
            let d = desk.clone();
            tokio::task::spawn_blocking(move || d.provision(provision))
                .await
                .expect("provision task")
                .map_err(StartError::Provision)?;
        }
        let desk: Arc<dyn AlarmDesk> = desk;
        let embedded = config.mqtt.mode == MqttMode::Embedded;
        // Several nodes on one database: each device partition's commands are sent by one, the
        // one holding its lease.
        let cluster = postgres.as_ref().map(|pg| commands::Cluster {
            partitions: cluster::partitions::Partitions::new(
                commands::LEASE_PREFIX,
                store::postgres::PARTITIONS,
                &node,
                metrics.clone(),
            ),
            pg: pg.clone(),
        });
        let commands = commands::Commands::start(
            ingest.clone(),
            store.clone(),
            embedded,
            config.commands.bulk_per_sec,
            cluster,
            stop_tx.subscribe(),
        );
        let mut keepers = Vec::new();
        let broker = match config.mqtt.mode {
            MqttMode::Embedded => {
                // Nodes on one database share one broker: a second node with its own is refused
                // before it ends the first one's devices' connections below.
                if let Some(pg) = &postgres {
                    let lease = cluster_lease(cluster::broker::LEASE, &node, &metrics);
                    cluster::broker::claim(pg, &lease).await?;
                    keepers.push(pg.spawn(lease.keep(pg.store().clone(), stop_tx.subscribe())));
                }
                // Connections a crash left open in the log end before the broker takes any.
                let s = store.clone();
                let ended = tokio::task::spawn_blocking(move || s.end_connections(None))
                    .await
                    .expect("end connections task")?;
                if ended > 0 {
                    info!(ended, "connections left open by the last run ended as server_stopped");
                }
                let tls = config.tls.files().map(|(cert, key)| TlsListen {
                    addr: config.mqtt.tls_listen,
                    cert,
                    key,
                });
                let broker =
                    EmbeddedBroker::start(&config.mqtt, tls, ingest.clone(), auth.clone(), commands.clone())
                        .await?;
                Some(Arc::new(broker))
            }
            MqttMode::External => None,
        };
        Ok(Server {
            config,
            store,
            postgres,
            http,
            http_addr,
            https,
            assets,
            broker,
            broker_tls,
            ingest,
            writer,
            hub,
            metrics,
            auth,
            desk,
            notifier,
            commands,
            senders: Some(senders),
            alarm_work,
            node,
            keepers,
            stop_tx,
        })
    }

    /// The link that creates the first admin, while no user exists: `/setup` with the
    /// one-time setup token, on this server's address (`localhost` for an unspecified one).
    pub fn setup_link(&self) -> Option<String> {
        let token = self.auth.setup_token()?;
        let scheme = if self.https() { "https" } else { "http" };
        Some(format!("{scheme}://{}/setup?token={token}", link_host(self.http_addr)))
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Whether the dashboard is served over HTTPS.
    pub fn https(&self) -> bool {
        self.https.is_some()
    }

    /// The embedded broker's address, if it runs.
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.broker.as_ref().and_then(|b| b.addr)
    }

    /// The embedded broker's MQTT-over-TLS address, if it runs with TLS.
    pub fn mqtt_tls_addr(&self) -> Option<SocketAddr> {
        self.broker.as_ref().and_then(|b| b.tls_addr)
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The HTTP application over this server's state: what [`Server::run`] serves, and what a
    /// test may call directly (`tower::ServiceExt::oneshot`).
    pub fn router(&self) -> axum::Router {
        let config = &self.config;
        let leptos_options = LeptosOptions::builder()
            .output_name(std::env::var("LEPTOS_OUTPUT_NAME").unwrap_or_else(|_| OUTPUT_NAME.to_owned()))
            .site_root(config.web.site_root.display().to_string())
            .site_pkg_dir(std::env::var("LEPTOS_SITE_PKG_DIR").unwrap_or_else(|_| "pkg".to_owned()))
            .site_addr(self.http_addr)
            .env(leptos_env())
            .reload_port(
                std::env::var("LEPTOS_RELOAD_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3001),
            )
            .build();
        let state = AppState {
            leptos_options,
            store: self.store.clone(),
            ingest: self.ingest.clone(),
            hub: self.hub.clone(),
            metrics: self.metrics.clone(),
            auth: self.auth.clone(),
            mqtt_mode: config.mqtt.mode,
            broker: self.broker.clone(),
            desk: self.desk.clone(),
            commands: self.commands.clone(),
            shutdown: self.stop_tx.subscribe(),
        };
        let web = WebSettings {
            max_body_bytes: config.web.max_body_bytes,
            allowed_origins: config.web.allowed_origins.clone(),
            hosts: config.web.hosts.clone(),
            trusted_proxies: config.web.trusted_proxies.clone(),
            metrics_token: config.web.metrics_token.expose().to_owned(),
            https: self.https.is_some() || config.auth.secure_cookies,
            assets: self.assets.clone(),
        };
        web::routes::router(state, web)
    }

    /// Serves until `shutdown` completes, then stops taking readings, commits what is queued
    /// and closes the database.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let router = self.router();
        let sender = self.senders.take().map(|senders| {
            let mut sender = notify::sender::Sender::new(
                self.store.clone(),
                senders,
                self.config.notify.clone(),
                self.metrics.clone(),
            );
            // Several nodes on one database: one sends, the one holding the lease.
            if let Some(pg) = &self.postgres {
                let lease = cluster_lease("notifications", &self.node, &self.metrics);
                self.keepers.push(pg.spawn(lease.clone().keep(pg.store().clone(), self.stop_tx.subscribe())));
                sender = sender.under_lease(lease);
            }
            tokio::spawn(sender.run(self.notifier.clone(), self.stop_tx.subscribe()))
        });
        let Server {
            config,
            store,
            postgres,
            http,
            http_addr: _,
            https,
            assets: _,
            broker,
            broker_tls,
            ingest,
            writer,
            hub,
            metrics,
            auth,
            desk: _,
            notifier,
            commands,
            senders: _,
            alarm_work,
            node,
            mut keepers,
            stop_tx,
        } = self;
        let alarm_work = match (alarm_work, &postgres) {
            (Some(work), Some(pg)) => {
                keepers.push(pg.spawn(work.partitions.clone().keep(pg.store().clone(), stop_tx.subscribe())));
                Some(pg.spawn(work.run(stop_tx.subscribe())))
            }
            _ => None,
        };
        // On PostgreSQL, live clients get every node's changes from the change log, from the
        // newest at start (what came before, a client reads from the log itself).
        let tail = match &postgres {
            Some(pg) => {
                let s = store.clone();
                let from = tokio::task::spawn_blocking(move || s.last_seq()).await.expect("last_seq task");
                let from = from.map_err(|e| std::io::Error::other(format!("the change log: {e}")))?;
                let feeds = cluster::tail::Feeds {
                    hub: hub.clone(),
                    commands: ingest.command_feed(),
                    notifier: notifier.clone(),
                };
                let tail = pg.spawn(cluster::tail::run(pg.store().clone(), feeds, from, stop_tx.subscribe()));
                // Taken once the tail follows the log: dispatch reads from then on.
                if let Some(partitions) = commands.partitions() {
                    keepers.push(pg.spawn(partitions.keep(pg.store().clone(), stop_tx.subscribe())));
                }
                Some(tail)
            }
            None => None,
        };
        // Several nodes on one database: one does its upkeep, the one holding the lease.
        let upkeep_lease = postgres.as_ref().map(|pg| {
            let lease = cluster_lease(upkeep::LEASE, &node, &metrics);
            keepers.push(pg.spawn(lease.clone().keep(pg.store().clone(), stop_tx.subscribe())));
            lease
        });
        let pruning = tokio::spawn(upkeep::run(
            store.clone(),
            auth.clone(),
            metrics.clone(),
            config.storage.clone(),
            config.alarms.retention_days,
            upkeep_lease,
            stop_tx.subscribe(),
        ));
        let external = (config.mqtt.mode == MqttMode::External).then(|| {
            tokio::spawn(mqtt::client::run(
                config.mqtt.clone(),
                broker_tls,
                ingest.clone(),
                commands.clone(),
                stop_tx.subscribe(),
            ))
        });
        let app = router.into_make_service_with_connect_info::<web::listener::Peer>();
        let stop = stop_tx.clone();
        let graceful = async move {
            shutdown.await;
            info!("shutting down");
            let _ = stop.send(true);
        };
        let served = match https {
            Some(tls) => {
                axum::serve(HttpsListener::new(http, tls), app).with_graceful_shutdown(graceful).await
            }
            None => {
                axum::serve(web::listener::PlainListener(http), app).with_graceful_shutdown(graceful).await
            }
        };
        let _ = stop_tx.send(true);
        if let Some(broker) = broker {
            broker.stop();
        }
        if let Some(task) = external {
            let _ = task.await;
        }
        let _ = pruning.await;
        if let Some(task) = tail {
            let _ = task.await;
        }
        if let Some(task) = sender {
            let _ = task.await;
        }
        if let Some(task) = alarm_work {
            let _ = task.await;
        }
        // The stop signal closed the ingest queue: the writer commits what is queued and ends.
        let _ = tokio::time::timeout(WRITER_STOP_WAIT, writer).await;
        // Each keeper gave its leases up at the stop signal, so other nodes take the work up at
        // once: the process ends only once they have (or after a while, the database silent).
        let _ = tokio::time::timeout(KEEPERS_STOP_WAIT, futures::future::join_all(keepers)).await;
        // Devices still connected: their connections end now, as the server stops.
        if config.mqtt.mode == MqttMode::Embedded {
            let s = store.clone();
            let at = clock::now_ms();
            match tokio::task::spawn_blocking(move || s.end_connections(Some(at))).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "open connections not ended; the next start ends them")
                }
                Err(_) => {}
            }
        }
        drop(store);
        info!("stopped");
        served
    }
}

fn leptos_env() -> leptos::config::Env {
    match std::env::var("LEPTOS_ENV").as_deref() {
        Ok("DEV") | Ok("dev") | Ok("development") => leptos::config::Env::DEV,
        _ => leptos::config::Env::PROD,
    }
}
