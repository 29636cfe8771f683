//! `simulator`: ESP32-style devices publishing the seed's telemetry over real MQTT and obeying
//! commands and desired state, or a burst of readings for benchmarks.

mod burst;
mod connection;
mod device;
mod keys;
mod summary;
mod tls;

use simulator::{commands, signal};

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "simulator",
    version,
    about = "Simulated ESP32 devices publishing telemetry over MQTT (QoS 1)."
)]
struct Args {
    /// Broker host.
    #[arg(long, default_value = "127.0.0.1", env = "SIM_MQTT_HOST")]
    host: String,
    /// Broker port [default: 1883, or 8883 with --tls-ca].
    #[arg(long, env = "SIM_MQTT_PORT")]
    port: Option<u16>,
    /// One user name and password for every connection.
    #[arg(long, env = "SIM_MQTT_USERNAME")]
    username: Option<String>,
    #[arg(long, env = "SIM_MQTT_PASSWORD")]
    password: Option<String>,
    /// Each device signs in as itself: a file of `<device id> <key>` lines (keys from
    /// `server device key <id>`).
    #[arg(long, env = "SIM_DEVICE_KEYS", conflicts_with = "username")]
    keys: Option<PathBuf>,
    /// Connect with TLS, trusting this PEM CA certificate (e.g. the server's self-signed cert.pem).
    #[arg(long, env = "SIM_MQTT_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// Number of devices (each its own connection).
    #[arg(long, short = 'n', default_value_t = 3)]
    devices: usize,
    /// Device id prefix; ids are PREFIX01, PREFIX02, ... (burst: PREFIX001, ...).
    #[arg(long)]
    prefix: Option<String>,
    /// Seconds between a device's readings.
    #[arg(long, default_value_t = 2.0)]
    interval: f64,
    /// Burst mode: publish this many readings in total, then print the rate and exit.
    #[arg(long)]
    total: Option<u64>,
    /// Burst mode: messages per second across all connections (default: as fast as acknowledged).
    #[arg(long)]
    rate: Option<f64>,
    /// Burst mode: connections publishing at once.
    #[arg(long, default_value_t = 20)]
    connections: usize,
    /// Burst mode: unacknowledged publishes allowed per connection.
    #[arg(long, default_value_t = 100)]
    inflight: u16,
    /// Burst mode: publish as this many devices (PREFIX0001, ...), spread over the connections,
    /// each connection taking its devices in turn [default: one per connection, named as it].
    #[arg(long)]
    burst_devices: Option<usize>,
    /// Devices speak MQTT 5 (answering a command on its response topic with its correlation
    /// data) instead of 3.1.1.
    #[arg(long)]
    mqtt5: bool,
    /// QoS of the cmd/+ and desired subscriptions, of answers, reports and desired/get (0: as
    /// Arduino's PubSubClient does). Readings stay QoS 1.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    command_qos: u8,
    /// Milliseconds before a device answers a command or reports its state: N, or MIN..MAX
    /// drawn uniformly (at most 60000).
    #[arg(long, default_value = "0", value_parser = latency)]
    command_latency_ms: (u32, u32),
    /// Share of commands that fail (answered with the error code "failed", without effect),
    /// 0 to 1.
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    command_failure_rate: f64,
    /// Share of commands and desired states a device receives and never answers (nor executes),
    /// 0 to 1.
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    command_no_answer_rate: f64,
    /// Keep every device's command and desired-state counts in this JSON file (for tests).
    #[arg(long)]
    summary: Option<PathBuf>,
}

fn latency(s: &str) -> Result<(u32, u32), String> {
    let ms = |t: &str| match t.trim().parse::<u32>() {
        Ok(n) if n <= 60_000 => Ok(n),
        _ => Err(format!("{t:?} is not a whole number of milliseconds from 0 to 60000")),
    };
    let (lo, hi) = match s.split_once("..") {
        Some((lo, hi)) => (ms(lo)?, ms(hi)?),
        None => (ms(s)?, ms(s)?),
    };
    if lo > hi {
        return Err(format!("{lo}..{hi}: the least first"));
    }
    Ok((lo, hi))
}

fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a number from 0 to 1")),
    }
}

/// Where, how and as whom to connect.
#[derive(Clone)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Per-device keys (user name = client id = device id), instead of `username`.
    pub keys: Option<keys::Keys>,
    /// TLS, trusting the given CA.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rumqttc=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let tls = args.tls_ca.as_deref().map(tls::client_config).transpose()?;
    let broker = Broker {
        host: args.host,
        port: args.port.unwrap_or(if tls.is_some() { 8883 } else { 1883 }),
        username: args.username,
        password: args.password,
        keys: args.keys.as_deref().map(keys::Keys::read).transpose()?,
        tls,
    };

    if let Some(total) = args.total {
        let plan = burst::Plan {
            connections: args.connections,
            total,
            rate: args.rate,
            prefix: args.prefix.unwrap_or_else(|| "BENCH_".into()),
            inflight: args.inflight,
            devices: args.burst_devices,
        };
        let out = burst::run(&broker, &plan).await?;
        let secs = out.elapsed.as_secs_f64();
        println!(
            "burst: {} messages ({} readings) over {} connections; {} acknowledged in {:.2} s = {:.0} msg/s",
            out.sent,
            out.sent * 3,
            plan.connections,
            out.acked,
            secs,
            out.acked as f64 / secs
        );
        return Ok(());
    }

    if !args.interval.is_finite() || args.interval <= 0.0 {
        anyhow::bail!("--interval must be positive");
    }
    let prefix = args.prefix.unwrap_or_else(|| "ESP32_SIM_".into());
    let interval = Duration::from_secs_f64(args.interval);
    tracing::info!(
        devices = args.devices,
        ?interval,
        "simulating devices on {}:{}{}",
        broker.host,
        broker.port,
        if broker.tls.is_some() { " (TLS)" } else { "" }
    );
    let setup = device::Setup {
        interval,
        mqtt5: args.mqtt5,
        command_qos: if args.command_qos == 0 { rumqttc::QoS::AtMostOnce } else { rumqttc::QoS::AtLeastOnce },
    };
    let behaviour = commands::Behaviour {
        latency_ms: args.command_latency_ms,
        failure_rate: args.command_failure_rate,
        no_answer_rate: args.command_no_answer_rate,
    };
    // What a device reports as its interval: the one given, in whole seconds.
    let interval_s = args.interval.ceil() as u64;
    let mut tasks = Vec::new();
    let mut devices: summary::Devices = Vec::new();
    for i in 1..=args.devices {
        let id = format!("{prefix}{i:02}");
        let commands = Arc::new(Mutex::new(commands::Device::new(behaviour.clone(), interval_s)));
        devices.push((id.clone(), commands.clone()));
        let device = device::start(&broker, id, i as u64, setup.clone(), commands)?;
        tasks.push(tokio::spawn(device));
    }
    if let Some(path) = &args.summary {
        tokio::spawn(summary::keep_written(path.clone(), devices.clone()));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = futures_all(tasks) => {},
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    if let Some(path) = &args.summary {
        summary::write(path, &devices)?;
    }
    Ok(())
}

async fn futures_all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_and_shares_are_bounded() {
        assert_eq!(latency("0"), Ok((0, 0)));
        assert_eq!(latency("250"), Ok((250, 250)));
        assert_eq!(latency("50..500"), Ok((50, 500)));
        assert_eq!(latency("60000"), Ok((60_000, 60_000)));
        for bad in ["60001", "-1", "500..50", "1..", "..5", "a", "1.5"] {
            assert!(latency(bad).is_err(), "{bad}");
        }
        assert_eq!(share("0"), Ok(0.0));
        assert_eq!(share("1"), Ok(1.0));
        assert_eq!(share("0.25"), Ok(0.25));
        for bad in ["1.01", "-0.1", "NaN", "inf", "x"] {
            assert!(share(bad).is_err(), "{bad}");
        }
    }
}
