//! Server configuration: built-in defaults (`config.default.toml`), then an optional TOML file,
//! then `IOT_*` environment variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::alarms::AlarmsConfig;
pub use crate::auth::AuthConfig;
pub use crate::commands::bulk::CommandsConfig;
pub use crate::ingest::LimitsConfig;
pub use crate::notify::sender::NotifyConfig;
pub use crate::secret::Secret;
pub use crate::tls::TlsConfig;

const DEFAULTS: &str = include_str!("config.default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub web: WebConfig,
    pub storage: StorageConfig,
    pub mqtt: MqttConfig,
    pub live: LiveConfig,
    pub limits: LimitsConfig,
    pub auth: AuthConfig,
    pub tls: TlsConfig,
    pub notify: NotifyConfig,
    pub alarms: AlarmsConfig,
    pub commands: CommandsConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    pub listen: SocketAddr,
    pub site_root: PathBuf,
    pub max_body_bytes: usize,
    pub allowed_origins: Vec<String>,
    /// Host names the dashboard answers to besides IP addresses, loopback names and the
    /// machine's own name.
    pub hosts: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for throttling sign-ins).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// A bearer token that reads `/metrics` without signing in; empty: none.
    pub metrics_token: Secret,
    /// Where browsers load the hashed scripts, stylesheets and WASM from (a CDN), e.g.
    /// `https://cdn.example.com/iot`; empty: this server.
    pub assets_url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub path: PathBuf,
    pub commit_max_readings: usize,
    pub commit_linger_ms: u64,
    /// Days raw readings (and the change log) are kept; 0 keeps everything.
    pub retention_days: u64,
    /// Days minute and hour rollups are kept (0: forever), never less than a finer level.
    pub minute_rollup_days: u64,
    pub hour_rollup_days: u64,
    pub cache_mb: usize,
    pub prune_interval_secs: u64,
    pub seal_interval_secs: u64,
    pub change_log: u64,
    /// PostgreSQL instead of the redb file (cluster mode: every node on one database): a
    /// libpq-style URL, or empty for the redb file at `path`. A secret: it may hold a password.
    #[serde(default)]
    pub postgres_url: Secret,
    /// Connections a node keeps to PostgreSQL at most.
    #[serde(default = "default_postgres_pool")]
    pub postgres_pool: usize,
    /// The certificate authorities (PEM) PostgreSQL's certificate is checked against when the
    /// connection uses TLS (`sslmode` in the URL); empty: the system's.
    #[serde(default)]
    pub postgres_ca_file: PathBuf,
}

impl StorageConfig {
    /// The PostgreSQL settings, when `postgres_url` is set.
    pub fn postgres(&self) -> Option<crate::store::postgres::PgSettings> {
        (!self.postgres_url.is_empty()).then(|| crate::store::postgres::PgSettings {
            url: self.postgres_url.expose().to_owned(),
            ca_file: self.postgres_ca_file.clone(),
            pool_size: self.postgres_pool,
            span: crate::store::postgres::Span::DAY,
        })
    }
}

fn default_postgres_pool() -> usize {
    16
}

impl StorageConfig {
    /// How long each level of storage is kept.
    pub fn retention(&self) -> crate::store::Retention {
        crate::store::Retention {
            readings_days: self.retention_days,
            minute_rollup_days: self.minute_rollup_days,
            hour_rollup_days: self.hour_rollup_days,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MqttMode {
    Embedded,
    External,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    pub mode: MqttMode,
    pub listen: SocketAddr,
    /// Whether the embedded broker listens for plain MQTT on `listen` (with `[tls]` set it
    /// may take MQTT over TLS only).
    pub plain: bool,
    /// MQTT over TLS, when `[tls]` is set.
    pub tls_listen: SocketAddr,
    /// Embedded broker: connections at once, CONNECTs being handled at once, the time a
    /// CONNECT may take, the shortest keepalive (0 also allows none), the longest client id
    /// and the largest packet.
    pub max_connections: usize,
    pub max_handshakes: usize,
    pub handshake_timeout_secs: u64,
    pub min_keepalive_secs: u16,
    pub max_client_id: usize,
    pub max_packet_bytes: u32,
    pub host: String,
    pub port: u16,
    pub client_id: String,
    /// External broker: the shared-subscription group several nodes take devices' messages
    /// through (`$share/<group>/…`), each message to one of them; empty for a plain
    /// subscription (one node).
    #[serde(default)]
    pub share_group: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    pub keep_alive_secs: u64,
    /// External broker: connect over TLS, trusting `ca_file` (PEM) or, when empty, the
    /// system's certificate authorities.
    pub tls: bool,
    pub ca_file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    pub client_queue: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid configuration{}: {message}", origin.as_deref().map(|o| format!(" in {o}")).unwrap_or_default())]
    Invalid { origin: Option<String>, message: String },
}

/// Environment variables and the setting each one overrides, applied in this order.
pub const ENV_VARS: &[(&str, &str)] = &[
    // Set by `cargo leptos watch`/`serve`; the IOT_ names win when both are set.
    ("LEPTOS_SITE_ADDR", "web.listen"),
    ("LEPTOS_SITE_ROOT", "web.site_root"),
    ("IOT_WEB_LISTEN", "web.listen"),
    ("IOT_SITE_ROOT", "web.site_root"),
    ("IOT_ALLOWED_ORIGINS", "web.allowed_origins"),
    ("IOT_WEB_HOSTS", "web.hosts"),
    ("IOT_TRUSTED_PROXIES", "web.trusted_proxies"),
    ("IOT_METRICS_TOKEN", "web.metrics_token"),
    ("IOT_WEB_ASSETS_URL", "web.assets_url"),
    ("IOT_STORAGE_PATH", "storage.path"),
    ("IOT_COMMIT_MAX_READINGS", "storage.commit_max_readings"),
    ("IOT_COMMIT_LINGER_MS", "storage.commit_linger_ms"),
    ("IOT_RETENTION_DAYS", "storage.retention_days"),
    ("IOT_MINUTE_ROLLUP_DAYS", "storage.minute_rollup_days"),
    ("IOT_HOUR_ROLLUP_DAYS", "storage.hour_rollup_days"),
    ("IOT_CACHE_MB", "storage.cache_mb"),
    ("IOT_PRUNE_INTERVAL_SECS", "storage.prune_interval_secs"),
    ("IOT_SEAL_INTERVAL_SECS", "storage.seal_interval_secs"),
    ("IOT_CHANGE_LOG", "storage.change_log"),
    ("IOT_POSTGRES_URL", "storage.postgres_url"),
    ("IOT_POSTGRES_POOL", "storage.postgres_pool"),
    ("IOT_POSTGRES_CA_FILE", "storage.postgres_ca_file"),
    ("IOT_MQTT_MODE", "mqtt.mode"),
    ("IOT_MQTT_LISTEN", "mqtt.listen"),
    ("IOT_MQTT_PLAIN", "mqtt.plain"),
    ("IOT_MQTT_MAX_CONNECTIONS", "mqtt.max_connections"),
    ("IOT_MQTT_TLS_LISTEN", "mqtt.tls_listen"),
    ("IOT_MQTT_HOST", "mqtt.host"),
    ("IOT_MQTT_PORT", "mqtt.port"),
    ("IOT_MQTT_CLIENT_ID", "mqtt.client_id"),
    ("IOT_MQTT_SHARE_GROUP", "mqtt.share_group"),
    ("IOT_MQTT_USERNAME", "mqtt.username"),
    ("IOT_MQTT_PASSWORD", "mqtt.password"),
    ("IOT_MQTT_TLS", "mqtt.tls"),
    ("IOT_MQTT_CA_FILE", "mqtt.ca_file"),
    ("IOT_LIVE_CLIENT_QUEUE", "live.client_queue"),
    ("IOT_DEVICE_MESSAGES_PER_SEC", "limits.device_messages_per_sec"),
    ("IOT_DEVICE_BURST", "limits.device_burst"),
    ("IOT_MAX_DEVICES", "limits.max_devices"),
    ("IOT_MAX_METRICS_PER_DEVICE", "limits.max_metrics_per_device"),
    ("IOT_MAX_RETAINED_PER_DEVICE", "limits.max_retained_per_device"),
    ("IOT_MAX_RETAINED_BYTES_PER_DEVICE", "limits.max_retained_bytes_per_device"),
    ("IOT_MAX_RETAINED", "limits.max_retained"),
    ("IOT_MAX_RETAINED_BYTES", "limits.max_retained_bytes"),
    ("IOT_AUTH_OPEN", "auth.open"),
    ("IOT_SESSION_DAYS", "auth.session_days"),
    ("IOT_SECURE_COOKIES", "auth.secure_cookies"),
    ("IOT_SETUP_TOKEN", "auth.setup_token"),
    ("IOT_TLS_CERT", "tls.cert"),
    ("IOT_TLS_KEY", "tls.key"),
    ("IOT_PUBLIC_URL", "notify.public_url"),
    ("IOT_ALARM_RETENTION_DAYS", "alarms.retention_days"),
    ("IOT_ALARM_START_GRACE_SECS", "alarms.start_grace_secs"),
    ("IOT_COMMANDS_BULK_PER_SEC", "commands.bulk_per_sec"),
    ("IOT_NOTIFY_RETRY_SECS", "notify.retry_secs"),
    ("IOT_NOTIFY_RATE_PER_10MIN", "notify.rate_per_10min"),
    ("IOT_NOTIFY_GROUP_WAIT_SECS", "notify.group_wait_secs"),
    ("IOT_SMTP_HOST", "notify.smtp_host"),
    ("IOT_SMTP_PORT", "notify.smtp_port"),
    ("IOT_SMTP_SECURITY", "notify.smtp_security"),
    ("IOT_SMTP_USERNAME", "notify.smtp_username"),
    ("IOT_SMTP_PASSWORD", "notify.smtp_password"),
    ("IOT_SMTP_FROM", "notify.smtp_from"),
    ("IOT_SMTP_CA_FILE", "notify.smtp_ca_file"),
];

impl Default for Config {
    fn default() -> Self {
        toml::from_str(DEFAULTS).expect("built-in defaults parse")
    }
}

impl Config {
    /// Defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let file_text = match file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?,
            ),
            None => None,
        };
        Config::from_parts(file_text.as_deref().map(|t| (file.unwrap().display().to_string(), t)), |k| {
            std::env::var(k).ok()
        })
    }

    /// Merges defaults, a file's text and environment lookups; the pure core of [`Config::load`].
    pub fn from_parts(
        file: Option<(String, &str)>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut merged: toml::Table = DEFAULTS.parse().expect("built-in defaults parse");
        if let Some((origin, text)) = file {
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Invalid {
                origin: Some(origin.clone()),
                message: e.to_string(),
            })?;
            merge(&mut merged, table);
        }
        for (var, key) in ENV_VARS {
            if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                let (section, field) = key.split_once('.').expect("section.field");
                let section = merged
                    .entry(section)
                    .or_insert_with(|| toml::Value::Table(Default::default()))
                    .as_table_mut()
                    .expect("sections are tables");
                let value = env_value(&value, section.get(field));
                section.insert(field.to_owned(), value);
            }
        }
        let mut config: Config = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid { origin: None, message: e.to_string() })?;
        config.validate()?;
        // A session cookie sent over HTTPS must never go out over plain HTTP.
        config.auth.secure_cookies |= config.tls.files().is_some();
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: &str| ConfigError::Invalid { origin: None, message: message.into() };
        if self.storage.commit_max_readings == 0 {
            return Err(invalid("storage.commit_max_readings must be at least 1"));
        }
        if self.storage.prune_interval_secs == 0 || self.storage.seal_interval_secs == 0 {
            return Err(invalid("storage.prune_interval_secs and seal_interval_secs must be at least 1"));
        }
        if self.storage.change_log == 0 {
            return Err(invalid("storage.change_log must be at least 1"));
        }
        if !(1..=crate::store::postgres::MAX_POOL).contains(&self.storage.postgres_pool) {
            let most = crate::store::postgres::MAX_POOL;
            return Err(invalid(&format!("storage.postgres_pool must be 1 to {most}")));
        }
        let limits = &self.limits;
        if !(limits.device_messages_per_sec >= 0.0 && limits.device_messages_per_sec.is_finite()) {
            return Err(invalid("limits.device_messages_per_sec must be a number, 0 or more (0: no limit)"));
        }
        if limits.device_burst == 0 || limits.max_devices == 0 || limits.max_metrics_per_device == 0 {
            return Err(invalid(
                "limits.device_burst, max_devices and max_metrics_per_device must be at least 1",
            ));
        }
        if self.live.client_queue == 0 {
            return Err(invalid("live.client_queue must be at least 1"));
        }
        if self.mqtt.mode == MqttMode::External && self.mqtt.client_id.is_empty() {
            return Err(invalid("mqtt.client_id is required for a persistent session"));
        }
        if let Err(why) = check_share_group(&self.mqtt) {
            return Err(invalid(&format!("mqtt.share_group (IOT_MQTT_SHARE_GROUP): {why}")));
        }
        if self.mqtt.mode == MqttMode::Embedded && !self.mqtt.plain && self.tls.files().is_none() {
            return Err(invalid("mqtt.plain = false needs [tls]: devices would have no way in"));
        }
        if self.mqtt.max_connections == 0 || self.mqtt.max_handshakes == 0 || self.mqtt.max_client_id == 0 {
            return Err(invalid("mqtt.max_connections, max_handshakes and max_client_id must be at least 1"));
        }
        if self.mqtt.max_packet_bytes < 1024 {
            return Err(invalid("mqtt.max_packet_bytes must be at least 1024"));
        }
        if !crate::commands::bulk::BULK_PER_SEC.contains(&self.commands.bulk_per_sec) {
            let (low, high) = crate::commands::bulk::BULK_PER_SEC.into_inner();
            return Err(invalid(&format!("commands.bulk_per_sec must be {low} to {high}")));
        }
        if self.web.max_body_bytes == 0 {
            return Err(invalid("web.max_body_bytes must be at least 1"));
        }
        let https = self.tls.files().is_some() || self.auth.secure_cookies;
        if let Err(why) = check_assets_url(&self.web.assets_url, https) {
            return Err(invalid(&format!("web.assets_url (IOT_WEB_ASSETS_URL): {why}")));
        }
        if self.notify.retry_secs.is_empty() || self.notify.retry_secs.len() > 20 {
            return Err(invalid("notify.retry_secs: 1 to 20 waits"));
        }
        if !matches!(self.notify.smtp_security.as_str(), "starttls" | "tls" | "none") {
            return Err(invalid("notify.smtp_security is starttls, tls or none"));
        }
        if !(self.notify.public_url.is_empty()
            || self.notify.public_url.starts_with("http://")
            || self.notify.public_url.starts_with("https://"))
        {
            return Err(invalid("notify.public_url starts with http:// or https://"));
        }
        crate::alarms::provision::parse(&self.alarms.rules, &self.notify.channels)
            .map_err(|message| ConfigError::Invalid { origin: None, message })?;
        if self.tls.half_set() {
            return Err(invalid("tls.cert and tls.key go together: set both, or neither for no TLS"));
        }
        Ok(())
    }
}

/// The longest shared-subscription group name.
pub const MAX_SHARE_GROUP: usize = 64;

/// A group name is one topic level: letters, digits, `-` and `_`, and only for an external
/// broker (the embedded one is a single node's).
fn check_share_group(mqtt: &MqttConfig) -> Result<(), &'static str> {
    let group = &mqtt.share_group;
    if group.is_empty() {
        return Ok(());
    }
    if mqtt.mode != MqttMode::External {
        return Err("only with mqtt.mode = \"external\" (nodes share a broker's subscription)");
    }
    if group.len() > MAX_SHARE_GROUP {
        return Err("at most 64 characters");
    }
    if !group.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err("letters, digits, - and _ only");
    }
    Ok(())
}

/// Whether `url` can be `web.assets_url`: empty, or an absolute http(s) URL of a host (and
/// maybe a path) with nothing else: no user, query or fragment, only characters that need no
/// escaping in HTML, a header or a script. A dashboard served over HTTPS needs an https one
/// (browsers refuse http scripts on https pages).
pub fn check_assets_url(url: &str, https: bool) -> Result<(), String> {
    if url.is_empty() {
        return Ok(());
    }
    if url.len() > 512 {
        return Err("longer than 512 characters".into());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "\"{}\" is not an absolute URL (https://host[/path])",
            telemetry::text::untrusted(url)
        ));
    };
    if scheme != "https" && scheme != "http" {
        return Err(format!(
            "starts with {}://; http:// or https:// only",
            telemetry::text::untrusted(scheme)
        ));
    }
    if https && scheme == "http" {
        return Err("an http:// URL on a dashboard served over HTTPS (browsers block its scripts)".into());
    }
    if let Some(c) = url.chars().find(|c| matches!(c, '?' | '#')) {
        return Err(format!(
            "has a {}: a base URL has no query or fragment",
            if c == '?' { "query" } else { "fragment" }
        ));
    }
    if url.contains('@') {
        return Err("has a user name (@): not allowed".into());
    }
    if let Some(c) = url.chars().find(|c| !(c.is_ascii_alphanumeric() || "-._~:/%[]".contains(*c))) {
        return Err(format!("has the character {c:?}, which a base URL has no use for"));
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err("has no host".into());
    }
    if url.parse::<axum::http::Uri>().is_err() {
        return Err("is not a valid URL".into());
    }
    Ok(())
}

/// An environment value as TOML, typed like the setting it replaces (so a password of digits
/// stays a string, and a list is comma-separated); what does not parse stays a string and is
/// reported by the type check.
fn env_value(raw: &str, current: Option<&toml::Value>) -> toml::Value {
    let text = || toml::Value::String(raw.into());
    match current {
        Some(toml::Value::Integer(_)) => raw.parse().map(toml::Value::Integer).unwrap_or_else(|_| text()),
        Some(toml::Value::Float(_)) => raw.parse().map(toml::Value::Float).unwrap_or_else(|_| text()),
        Some(toml::Value::Boolean(_)) => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
            "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
            _ => text(),
        },
        // A list of numbers stays numbers (each parsed like the setting's first), else strings.
        Some(toml::Value::Array(current)) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| match current.first() {
                    Some(first @ (toml::Value::Integer(_) | toml::Value::Float(_))) => {
                        env_value(s, Some(first))
                    }
                    _ => toml::Value::String(s.into()),
                })
                .collect(),
        ),
        _ => text(),
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_match_the_readme() {
        let c = Config::from_parts(None, no_env).unwrap();
        assert_eq!(c.web.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(c.mqtt.listen.to_string(), "127.0.0.1:1883");
        assert_eq!(c.mqtt.mode, MqttMode::Embedded);
        assert_eq!(c.storage.path, PathBuf::from("data/telemetry.redb"));
    }

    #[test]
    fn each_storage_level_has_its_own_retention() {
        let c = Config::from_parts(None, no_env).unwrap();
        let defaults =
            crate::store::Retention { readings_days: 30, minute_rollup_days: 365, hour_rollup_days: 0 };
        assert_eq!(c.storage.retention(), defaults);
        let env = |k: &str| match k {
            "IOT_RETENTION_DAYS" => Some("7".to_owned()),
            "IOT_MINUTE_ROLLUP_DAYS" => Some("90".to_owned()),
            "IOT_HOUR_ROLLUP_DAYS" => Some("730".to_owned()),
            _ => None,
        };
        let c = Config::from_parts(None, env).unwrap();
        let set = crate::store::Retention { readings_days: 7, minute_rollup_days: 90, hour_rollup_days: 730 };
        assert_eq!(c.storage.retention(), set);
    }

    #[test]
    fn file_then_env_override() {
        let file = "[mqtt]\nmode = \"external\"\nport = 1884\n[storage]\npath = \"/tmp/a.redb\"\n";
        let env = |k: &str| match k {
            "IOT_ALLOWED_ORIGINS" => Some("https://a.example, https://b.example".to_owned()),
            "IOT_MQTT_PORT" => Some("1999".to_owned()),
            "IOT_WEB_LISTEN" => Some("0.0.0.0:8080".to_owned()),
            "IOT_MQTT_PASSWORD" => Some("12345".to_owned()),
            "IOT_AUTH_OPEN" => Some("true".to_owned()),
            "IOT_DEVICE_MESSAGES_PER_SEC" => Some("2.5".to_owned()),
            "IOT_DEVICE_BURST" => Some("7".to_owned()),
            _ => None,
        };
        let c = Config::from_parts(Some(("f.toml".into(), file)), env).unwrap();
        assert_eq!(c.mqtt.mode, MqttMode::External);
        assert_eq!(c.mqtt.port, 1999);
        assert_eq!(c.web.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.storage.path, PathBuf::from("/tmp/a.redb"));
        assert_eq!(c.mqtt.host, "127.0.0.1");
        assert_eq!(c.web.allowed_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(c.mqtt.password.as_ref().map(Secret::expose), Some("12345"), "digits stay a string");
        assert!(c.auth.open);
        assert_eq!((c.limits.device_messages_per_sec, c.limits.device_burst), (2.5, 7));
    }

    #[test]
    fn the_retained_message_caps_come_from_the_environment_too() {
        let caps = |c: Config| {
            let l = c.limits;
            (l.max_retained_per_device, l.max_retained_bytes_per_device, l.max_retained, l.max_retained_bytes)
        };
        assert_eq!(caps(Config::from_parts(None, no_env).unwrap()), (16, 16_384, 100_000, 64 << 20));
        let file = "[limits]\nmax_retained_per_device = 4\nmax_retained = 50\n";
        let env = |k: &str| match k {
            "IOT_MAX_RETAINED_PER_DEVICE" => Some("8".to_owned()),
            "IOT_MAX_RETAINED_BYTES_PER_DEVICE" => Some("1024".to_owned()),
            "IOT_MAX_RETAINED" => Some("0".to_owned()),
            "IOT_MAX_RETAINED_BYTES" => Some("1048576".to_owned()),
            _ => None,
        };
        assert_eq!(
            caps(Config::from_parts(Some(("f.toml".into(), file)), env).unwrap()),
            (8, 1024, 0, 1 << 20),
            "the environment wins over the file; 0 keeps none"
        );
        for bad in ["-1", "many"] {
            let env = |k: &str| (k == "IOT_MAX_RETAINED").then(|| bad.to_owned());
            let err = Config::from_parts(None, env).unwrap_err().to_string();
            assert!(err.contains("max_retained"), "{bad}: {err}");
        }
    }

    #[test]
    fn tls_takes_both_files_and_makes_cookies_secure() {
        let c = Config::from_parts(None, no_env).unwrap();
        assert!(c.tls.files().is_none() && !c.auth.secure_cookies);
        assert_eq!(c.mqtt.tls_listen.to_string(), "127.0.0.1:8883");
        let env = |k: &str| match k {
            "IOT_TLS_CERT" => Some("/etc/iot/cert.pem".to_owned()),
            "IOT_TLS_KEY" => Some("/etc/iot/key.pem".to_owned()),
            "IOT_MQTT_TLS_LISTEN" => Some("0.0.0.0:8884".to_owned()),
            _ => None,
        };
        let c = Config::from_parts(None, env).unwrap();
        assert_eq!(c.tls.files(), Some((Path::new("/etc/iot/cert.pem"), Path::new("/etc/iot/key.pem"))));
        assert_eq!(c.mqtt.tls_listen.to_string(), "0.0.0.0:8884");
        assert!(c.auth.secure_cookies, "TLS on means Secure cookies");
        let err = Config::from_parts(Some(("my.toml".into(), "[tls]\ncert = \"c.pem\"")), no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls.key"), "{err}");
    }

    #[test]
    fn secrets_are_not_printed_and_lists_come_from_the_environment() {
        let env = |k: &str| match k {
            "IOT_MQTT_PASSWORD" => Some("hunter22".to_owned()),
            "IOT_METRICS_TOKEN" => Some("scrape-me".to_owned()),
            "IOT_SETUP_TOKEN" => Some("let-me-in".to_owned()),
            "IOT_WEB_HOSTS" => Some("dash.home, iot.lan".to_owned()),
            "IOT_TRUSTED_PROXIES" => Some("10.0.0.1".to_owned()),
            _ => None,
        };
        let c = Config::from_parts(None, env).unwrap();
        let printed = format!("{c:#?}");
        for secret in ["hunter22", "scrape-me", "let-me-in"] {
            assert!(!printed.contains(secret), "{secret} printed");
        }
        assert_eq!(c.web.hosts, ["dash.home", "iot.lan"]);
        assert_eq!(c.web.trusted_proxies, ["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
        assert_eq!(c.auth.setup_token.expose(), "let-me-in");
        let err = Config::from_parts(None, |k| (k == "IOT_MQTT_PLAIN").then(|| "false".into())).unwrap_err();
        assert!(err.to_string().contains("[tls]"), "{err}");
    }

    #[test]
    fn the_provisioning_examples_in_the_defaults_are_valid() {
        // The commented `[[notify.channels]]` and `[[alarms.rules]]` blocks, uncommented.
        let mut example = String::new();
        let mut inside = false;
        for line in DEFAULTS.lines() {
            inside = line.starts_with("# [[") || (inside && line.starts_with('#'));
            if inside {
                example.push_str(line.trim_start_matches('#').strip_prefix(' ').unwrap_or(""));
                example.push('\n');
            }
        }
        let c = Config::from_parts(Some(("example".into(), &example)), no_env).unwrap();
        let p = crate::alarms::provision::parse(&c.alarms.rules, &c.notify.channels).unwrap();
        assert_eq!((p.channels.len(), p.rules.len()), (3, 2), "{example}");
        let err = Config::from_parts(
            Some(("my.toml".into(), &example.replace("clear_for_secs", "clear_for_sec"))),
            no_env,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(r#"alarms.rules[0] (id "greenhouse-hot"): unknown setting `clear_for_sec`"#),
            "{err}"
        );
    }

    #[test]
    fn a_share_group_is_one_topic_level_for_an_external_broker() {
        let external = |group: &str| {
            let group = group.to_owned();
            Config::from_parts(None, move |k: &str| match k {
                "IOT_MQTT_MODE" => Some("external".to_owned()),
                "IOT_MQTT_SHARE_GROUP" => Some(group.clone()),
                _ => None,
            })
        };
        assert_eq!(external("dashboards-1").unwrap().mqtt.share_group, "dashboards-1");
        assert_eq!(external("").unwrap().mqtt.share_group, "", "none: a plain subscription");
        for bad in ["a/b", "+", "#", "a b", "é", &"g".repeat(MAX_SHARE_GROUP + 1)] {
            let err = external(bad).unwrap_err().to_string();
            assert!(err.contains("share_group"), "{bad:?}: {err}");
        }
        let embedded = |k: &str| (k == "IOT_MQTT_SHARE_GROUP").then(|| "g".to_owned());
        let err = Config::from_parts(None, embedded).unwrap_err().to_string();
        assert!(err.contains("external"), "the embedded broker is one node's: {err}");
    }

    #[test]
    fn mistakes_are_reported_with_their_origin() {
        let err = Config::from_parts(Some(("my.toml".into(), "[mqtt]\nmode = \"cloud\"")), no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mode"), "{err}");
        let err = Config::from_parts(Some(("my.toml".into(), "[web\n")), no_env).unwrap_err().to_string();
        assert!(err.contains("my.toml"), "{err}");
        let err = Config::from_parts(Some(("my.toml".into(), "[web]\nlisen = \"x\"")), no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("lisen"), "{err}");
        let env = |k: &str| (k == "IOT_MQTT_PORT").then(|| "not-a-port".to_owned());
        assert!(Config::from_parts(None, env).is_err());
    }
}
