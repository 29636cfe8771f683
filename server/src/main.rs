//! `server`: parses the command line and configuration, then runs the dashboard.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use server::Server;
use server::config::{Config, ENV_VARS};

/// jemalloc, not glibc's malloc: ingest allocates per message and per reading, and glibc's
/// malloc and free were a fifth of the server's CPU in a burst. With jemalloc, 200,000-message
/// bursts run 6–14% faster and RSS with 1,000 devices stays at or below glibc's (mimalloc was as
/// fast but held 79 MB where glibc held 59). Background threads give freed pages back.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "server",
    version,
    about = "Self-hosted IoT telemetry dashboard: MQTT broker, history and live dashboard in one process.",
    after_help = env_help()
)]
struct Args {
    /// TOML configuration file (keys as in server/src/config.default.toml); built-in defaults otherwise.
    #[arg(long, short, env = "IOT_CONFIG")]
    config: Option<PathBuf>,
    /// Print the effective configuration (passwords and tokens hidden) and exit.
    #[arg(long)]
    print_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Manage the users who sign in (run while the server is stopped: it holds the user database).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage the keys devices sign in to the embedded broker with (user name and client id =
    /// device id, password = key), once people must sign in. Run while the server is stopped.
    Device {
        #[command(subcommand)]
        action: DeviceAction,
    },
    /// HTTPS and MQTT over TLS.
    Tls {
        #[command(subcommand)]
        action: TlsAction,
    },
}

#[derive(clap::Subcommand)]
enum TlsAction {
    /// Write a self-signed certificate (cert.pem) and its key (key.pem, owner-only) for trying
    /// TLS out, valid for localhost, 127.0.0.1, ::1 and each --host; print the settings to use.
    SelfSigned {
        /// Folder to write cert.pem and key.pem to (created if missing; existing files are kept).
        #[arg(long)]
        out: PathBuf,
        /// Another name or IP address devices and browsers reach the server by (repeatable).
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
}

#[derive(clap::Subcommand)]
enum DeviceAction {
    /// Make a new key for a device (replacing any old one) and print it: it is shown only once.
    Key { id: String },
    /// Revoke a device's key: it can no longer connect.
    Revoke { id: String },
    /// List the devices that have a key.
    Keys,
    /// Print an ACL file for Mosquitto (its `acl_file`): each device writes only its own
    /// topics, the dashboard's login (mqtt.username) reads them all.
    MosquittoAcl,
}

#[derive(clap::Subcommand)]
enum UserAction {
    /// Add a user, or set an existing user's password and role. The password is read from
    /// IOT_PASSWORD, else from the first line of standard input.
    Add {
        name: String,
        #[arg(long, default_value = "admin", value_parser = ["admin", "viewer"])]
        role: String,
    },
    /// List users and their roles.
    List,
    /// Remove a user (and end their sessions).
    Remove { name: String },
}

/// The user database, opened by a command: the users file (while the server is stopped), or
/// PostgreSQL (any time: the nodes read it as they go); answers where it is, for messages.
fn open_auth(config: &Config) -> anyhow::Result<(server::auth::Auth, String)> {
    use server::auth::{Auth, users::UserDb, users_path};
    let storage = &config.storage;
    if let Some(settings) = storage.postgres() {
        let pg = server::store::postgres::PgBlocking::open(&server::store::postgres::PgSettings {
            pool_size: 2,
            ..settings
        })?;
        return Ok((Auth::new(pg, config.auth.clone())?, "PostgreSQL".to_owned()));
    }
    let path = users_path(&config.storage.path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let db = UserDb::open(&path).with_context(|| "is the server running? Stop it first")?;
    Ok((Auth::new(db, config.auth.clone())?, path.display().to_string()))
}

fn devices(config: &Config, action: DeviceAction) -> anyhow::Result<()> {
    // Only the key commands need the user database (and the server stopped).
    let auth = || open_auth(config).map(|(auth, _)| auth);
    match action {
        DeviceAction::Key { id } => println!("{}", auth()?.new_device_key(&id)?),
        DeviceAction::Revoke { id } => {
            if !auth()?.revoke_device_key(&id)? {
                anyhow::bail!("device {id} has no key");
            }
            println!("key of {id} revoked");
        }
        DeviceAction::Keys => auth()?.device_keys()?.iter().for_each(|id| println!("{id}")),
        DeviceAction::MosquittoAcl => {
            let Some(user) = &config.mqtt.username else {
                anyhow::bail!("set mqtt.username (IOT_MQTT_USERNAME): the dashboard's login at Mosquitto");
            };
            print!("{}", server::mqtt::client::mosquitto_acl(user));
        }
    }
    Ok(())
}

fn users(config: &Config, action: UserAction) -> anyhow::Result<()> {
    let (auth, path) = open_auth(config)?;
    match action {
        UserAction::Add { name, role } => {
            let password = match std::env::var("IOT_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    eprintln!("password for {name}:");
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            auth.add_user(&name, &password, role.parse().map_err(anyhow::Error::msg)?)?;
            println!("user {name} ({role}) saved in {path}");
        }
        UserAction::List => {
            for (name, role) in auth.users()? {
                println!("{name}\t{role}");
            }
        }
        UserAction::Remove { name } => {
            if !auth.remove_user(&name)? {
                anyhow::bail!("no user {name}");
            }
            println!("user {name} removed");
        }
    }
    Ok(())
}

fn tls(config: &Config, action: TlsAction) -> anyhow::Result<()> {
    use server::tls::self_signed::{self, LOCAL_NAMES};
    let TlsAction::SelfSigned { out, hosts } = action;
    let (cert, key) = self_signed::write(&out, &hosts)?;
    let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p).display().to_string();
    let (cert, key) = (absolute(cert), absolute(key));
    let names: Vec<&str> = hosts.iter().map(String::as_str).chain(LOCAL_NAMES).collect();
    let quoted = |s: &str| toml::Value::String(s.to_owned()).to_string();
    println!("Wrote {cert} and {key} (self-signed, for {}).", names.join(", "));
    println!();
    println!("In the configuration file:");
    println!("[tls]");
    println!("cert = {}", quoted(&cert));
    println!("key = {}", quoted(&key));
    println!();
    println!("or in the environment: IOT_TLS_CERT={cert} IOT_TLS_KEY={key}");
    println!();
    println!(
        "The dashboard is then HTTPS only; devices use MQTT over TLS on {} (mqtt.tls_listen) \
         with {cert} as their CA certificate; plain MQTT stays on {}.",
        config.mqtt.tls_listen, config.mqtt.listen
    );
    Ok(())
}

fn env_help() -> String {
    let mut help = String::from("Environment overrides (applied after the file):\n");
    for (var, key) in ENV_VARS {
        help.push_str(&format!("  {var:<34} {key}\n"));
    }
    help.push_str("  RUST_LOG                           log filter, e.g. info,server=debug");
    help
}

/// How long an idle thread of tokio's blocking pool (redb reads and commits, password checks)
/// waits for work before it ends: one second rather than tokio's ten. The pool wakes its idle
/// threads in turn, so with ten seconds every thread a burst created (1,000 devices connecting
/// at once made 40 to 110) stayed alive for good, each holding up to a few hundred KB of
/// freed memory in its allocator cache: 12 to 54 MB of the server's memory at 1,000 devices,
/// depending on the burst. With one second the pool shrinks to the threads the steady load
/// keeps busy (about 10 at 1,000 devices × 5 metrics at 1 Hz) seconds after the burst
/// (scripts/bench-memory.sh, docs/benchmarks.md); starting a thread again costs tens of µs.
const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(1);

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build()
        .context("cannot start the async runtime")?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    server::web::render_panics::install();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| server::LOG_FILTER.into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let config = Config::load(args.config.as_deref())?;
    if args.print_config {
        println!("{config:#?}");
        return Ok(());
    }
    match args.command {
        Some(Command::User { action }) => return users(&config, action),
        Some(Command::Device { action }) => return devices(&config, action),
        Some(Command::Tls { action }) => return tls(&config, action),
        None => {}
    }
    survive_file_size_limit();
    let server = Server::bind(config).await.context("cannot start")?;
    // One line naming every listener, e.g. "dashboard https://A mqtt://B mqtts://C".
    let scheme = if server.https() { "https" } else { "http" };
    let mut line = format!("dashboard {scheme}://{}", server.http_addr());
    if let Some(mqtt) = server.mqtt_addr() {
        line.push_str(&format!(" mqtt://{mqtt}"));
    }
    if let Some(mqtts) = server.mqtt_tls_addr() {
        line.push_str(&format!(" mqtts://{mqtts}"));
    }
    println!("{line}");
    // No user yet: the one link that creates the first admin (it holds the setup token).
    if let Some(link) = server.setup_link() {
        println!("setup {link}");
        tracing::info!("no user yet: anyone can use the dashboard; create the first admin at {link}");
    }
    server.run(shutdown_signal()).await.context("server failed")?;
    Ok(())
}

/// A file-size limit (`ulimit -f`) reached sends SIGXFSZ, which by default kills the process;
/// caught, the write fails instead, like a full disk: storage reports it, nothing is
/// acknowledged, and writing resumes once there is room.
fn survive_file_size_limit() {
    #[cfg(target_os = "linux")]
    {
        const SIGXFSZ: i32 = 25;
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(SIGXFSZ)) {
            Ok(mut s) => {
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        tracing::error!("file size limit reached: writes fail until it is raised");
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot catch SIGXFSZ"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
