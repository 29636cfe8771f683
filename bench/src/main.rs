//! Storage benchmarks, run by `make bench` (scripts/bench-storage.sh), each printing a
//! Markdown table:
//! - `bench history [POINTS] [CACHE_MB]`: one series of POINTS readings (1,000,000) at 1 Hz
//!   from the simulator's temperature signal, in our store (with the server's default page
//!   cache unless given) and in SQLite (indexed table, same data); 1,000-bucket min/max/avg over
//!   the full range and over the last hour, both ways.
//! - `bench storage [POINTS] [CACHE_MB] [SEAL_SECS]`: POINTS readings (10,000,000) from 100
//!   simulated devices × 3 metrics at 1 Hz, committed, sealed and trimmed as the server does,
//!   with the server's default page cache and seal interval unless given (`storage.cache_mb`,
//!   `storage.seal_interval_secs`); bytes on disk per reading, and per minute and hour summary
//!   of the rollups.
//! - `bench latency HOST:PORT COUNT`: a `/ws/live` client that takes COUNT readings and prints
//!   the delay from each reading's time to its arrival (p50, p99, max).
//! - `bench commands WEB DEVICES PREFIX COUNT`: command round trips and one bulk to every
//!   device, with the ingest rate meanwhile (see [`commands`]).
//! - `bench fill PATH MB`: a database of MB megabytes of readings, for the start-up figure.
//! - `bench login-storm WEB MQTT SECS KEY`: a device's PUBACK round trips, quiet and while many
//!   clients send wrong passwords.
//! - `bench connection-storm MQTT SECS`: a device's PUBACK round trips, quiet and while 1,000
//!   devices connect and disconnect (their connection logs written).
//! - `bench backtest [DAYS]`, `bench alarm-latency MQTT HOOK_PORT RATE SECS`: alarm figures
//!   (see [`alarms`]); `bench alarm-engine [MESSAGES]`: the alarm engine alone (see
//!   [`alarm_engine`]).
//! - `bench cluster MQTT WEB NODES DIR PG_URL RATE SECS KILL_AT`: issue 18's acceptance on a
//!   running cluster, one node killed -9 (see [`cluster`]).
//! - `bench pg-ingest URL [READINGS]`: readings per second into PostgreSQL through the
//!   store's ingest against PostgreSQL's own COPY (see [`pg_ingest`]).
//! - `bench pg-history URL [POINTS]`: the history figure on PostgreSQL against redb, and bytes
//!   per reading in each (see [`pg_history`]).
//! - `bench pg-commands URL [COMMANDS]`: commands made and moved on PostgreSQL against redb,
//!   and by several nodes at once (see [`pg_commands`]).

mod alarm_engine;
mod alarms;
mod cluster;
mod commands;
mod connection_storm;
mod data;
mod history;
mod latency;
mod login_storm;
mod pg_commands;
mod pg_history;
mod pg_ingest;
mod startup;
mod storage;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count = |default: u64| args.get(1).map_or(default, |n| n.replace('_', "").parse().expect("a count"));
    match args.first().map(String::as_str) {
        Some("history") => history::run(count(1_000_000), cache_bytes(args.get(2))),
        Some("storage") => storage::run(
            count(10_000_000),
            cache_bytes(args.get(2)),
            args.get(3).map_or(server::config::Config::default().storage.seal_interval_secs, |s| {
                s.parse().expect("seconds")
            }),
        ),
        Some("fill") => startup::run(
            std::path::Path::new(args.get(1).expect("a database path")),
            args.get(2).and_then(|n| n.parse().ok()).expect("megabytes"),
        ),
        Some("login-storm") => login_storm::run(
            args.get(1).expect("the dashboard's HOST:PORT"),
            args.get(2).expect("the broker's HOST:PORT"),
            args.get(3).and_then(|n| n.parse().ok()).expect("seconds"),
            args.get(4).expect("STORM_1's device key"),
        ),
        Some("connection-storm") => connection_storm::run(
            args.get(1).expect("the broker's HOST:PORT"),
            args.get(2).and_then(|n| n.parse().ok()).expect("seconds"),
        ),
        Some("backtest") => alarms::backtest(count(7)),
        Some("alarm-engine") => alarm_engine::run(count(100_000) as usize),
        Some("alarm-latency") => alarms::latency(
            args.get(1).and_then(|a| a.parse().ok()).expect("the broker's HOST:PORT"),
            args.get(2).and_then(|p| p.parse().ok()).expect("a port for the webhook receiver"),
            args.get(3).and_then(|n| n.parse().ok()).expect("messages per second"),
            args.get(4).and_then(|n| n.parse().ok()).expect("seconds"),
        ),
        Some("commands") => commands::run(
            args.get(1).expect("the dashboard's HOST:PORT"),
            args.get(2).and_then(|n| n.parse().ok()).expect("how many devices"),
            args.get(3).expect("the devices' id prefix"),
            args.get(4).and_then(|n| n.parse().ok()).expect("how many round trips"),
        ),
        Some("pg-ingest") => pg_ingest::run(
            args.get(1).expect("a PostgreSQL URL (scripts/pg.sh prints one)"),
            args.get(2).map_or(1_000_000, |n| n.replace('_', "").parse().expect("a count")),
        ),
        Some("pg-commands") => pg_commands::run(
            args.get(1).expect("a PostgreSQL URL (scripts/pg.sh prints one)"),
            args.get(2).map_or(10_000, |n| n.replace('_', "").parse().expect("a count")),
        ),
        Some("pg-history") => pg_history::run(
            args.get(1).expect("a PostgreSQL URL (scripts/pg.sh prints one)"),
            args.get(2).map_or(1_000_000, |n| n.replace('_', "").parse().expect("a count")),
        ),
        Some("cluster") => cluster::run(&args[1..]),
        Some("latency") => latency::run(args.get(1).expect("the dashboard's HOST:PORT"), {
            args.get(2).and_then(|n| n.parse().ok()).expect("a count")
        }),
        _ => {
            eprintln!(
                "usage: bench history [POINTS] [CACHE_MB] | bench storage [POINTS] [CACHE_MB] [SEAL_SECS] | bench latency HOST:PORT COUNT \
                 | bench login-storm WEB MQTT SECS KEY | bench connection-storm MQTT SECS \
                 | bench backtest [DAYS] | bench alarm-engine [MESSAGES] \
                 | bench alarm-latency MQTT HOOK_PORT RATE SECS | bench commands WEB DEVICES PREFIX COUNT \
                 | bench pg-commands URL [COMMANDS] \
                 | bench cluster MQTT WEB NODES DIR PG_URL RATE SECS KILL_AT \
                 | bench pg-ingest URL [READINGS] | bench pg-history URL [POINTS]"
            );
            std::process::exit(2);
        }
    }
}

/// A page cache of `megabytes` MiB, or `storage.cache_mb`'s default.
fn cache_bytes(megabytes: Option<&String>) -> usize {
    megabytes
        .map_or(server::config::Config::default().storage.cache_mb, |mb| mb.parse().expect("megabytes"))
        .checked_mul(1 << 20)
        .expect("megabytes of cache")
}
