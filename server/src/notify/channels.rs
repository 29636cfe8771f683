//! Sending to a channel: a signed webhook `POST` per notice, an ntfy message, or a mail, each
//! with a time limit; what came of it is an [`Outcome`] for the retry schedule.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Deserialize;
use telemetry::alarm::Severity;
use telemetry::notify::{ChannelKind, Notice};

use super::schedule::{self, Outcome};
use super::sign;
use crate::secret::Secret;

/// The longest any one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// A channel as the server keeps it: with its webhook secret or ntfy token.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct StoredChannel {
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub kind: ChannelKind,
    /// A webhook's signing secret (`whsec_…`).
    #[serde(default)]
    pub secret: Option<String>,
    pub created: i64,
}

impl StoredChannel {
    /// Whether notices are grouped into one message (people's channels) or sent one by one
    /// (machines').
    pub fn groups(&self) -> bool {
        !matches!(self.kind, ChannelKind::Webhook { .. })
    }
}

/// How mail leaves: `[notify.smtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Empty: no mail.
    pub host: String,
    pub port: u16,
    /// `starttls` (required, port 587), `tls` (port 465) or `none` (a relay on this machine).
    pub security: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Secret,
    pub from: String,
    /// A PEM file of the certificate authority to trust for the server's TLS certificate (a
    /// relay with a private CA); empty: the system's authorities.
    #[serde(default)]
    pub ca_file: String,
}

/// The channels' senders: one HTTP client and, when configured, an SMTP transport.
pub struct Senders {
    http: reqwest::Client,
    smtp: Option<(AsyncSmtpTransport<Tokio1Executor>, lettre::message::Mailbox)>,
}

#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("notifications: HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("notify.smtp: {0}")]
    Smtp(String),
}

impl Senders {
    pub fn new(smtp: &SmtpConfig) -> Result<Senders, SenderError> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SenderError::Smtp(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("iot-dashboard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Senders { http, smtp: smtp_transport(smtp)? })
    }

    /// Sends `notices` to `channel`: a webhook takes one at a time; ntfy and mail one message
    /// for all of them. `id` is the delivery's id (the first notice's, for a group).
    pub async fn send(&self, channel: &StoredChannel, id: &str, notices: &[&Notice]) -> Outcome {
        match &channel.kind {
            ChannelKind::Webhook { url } => {
                self.webhook(url, channel.secret.as_deref(), id, notices[0]).await
            }
            ChannelKind::Ntfy { url, token } => self.ntfy(url, token.as_deref(), notices).await,
            ChannelKind::Email { to } => self.email(to, notices).await,
        }
    }

    async fn webhook(&self, url: &str, secret: Option<&str>, id: &str, notice: &Notice) -> Outcome {
        let body = serde_json::to_vec(notice).expect("notices serialise");
        let timestamp = chrono::Utc::now().timestamp();
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(signature) = secret.and_then(|s| sign::signature(s, id, timestamp, &body)) {
            request = request.header("webhook-signature", signature);
        }
        answer(request.body(body).send().await)
    }

    async fn ntfy(&self, url: &str, token: Option<&str>, notices: &[&Notice]) -> Outcome {
        let top = notices.iter().map(|n| n.severity).max().unwrap_or(Severity::Warning);
        let (title, body) = summary(notices);
        let mut request = self
            .http
            .post(url)
            .header("Title", ascii(&title))
            .header("Priority", priority(top))
            .header("Tags", if top >= Severity::Major { "rotating_light" } else { "warning" })
            .header("Click", notices[0].url.as_str());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request.body(body).send().await)
    }

    async fn email(&self, to: &[String], notices: &[&Notice]) -> Outcome {
        let Some((transport, from)) = &self.smtp else {
            return Outcome::Failed {
                status: None,
                error: "no SMTP server is configured ([notify.smtp])".into(),
            };
        };
        let (subject, body) = summary(notices);
        let mut message = lettre::Message::builder().from(from.clone()).subject(subject);
        for address in to {
            match address.parse() {
                Ok(mailbox) => message = message.to(mailbox),
                Err(e) => return Outcome::Failed { status: None, error: format!("{address}: {e}") },
            }
        }
        let message = match message.header(ContentType::TEXT_PLAIN).body(body) {
            Ok(m) => m,
            Err(e) => return Outcome::Failed { status: None, error: e.to_string() },
        };
        match transport.send(message).await {
            Ok(response) => Outcome::Sent { status: Some(u16::from(response.code())) },
            // 5xx from the mail server is final; anything else (4xx, a network failure) retries.
            Err(e) if e.is_permanent() => {
                Outcome::Failed { status: e.status().map(u16::from), error: e.to_string() }
            }
            Err(e) => {
                Outcome::Retry { status: e.status().map(u16::from), error: e.to_string(), retry_after: None }
            }
        }
    }
}

fn smtp_transport(
    smtp: &SmtpConfig,
) -> Result<Option<(AsyncSmtpTransport<Tokio1Executor>, lettre::message::Mailbox)>, SenderError> {
    if smtp.host.is_empty() {
        return Ok(None);
    }
    let bad = |e: &dyn std::fmt::Display| SenderError::Smtp(e.to_string());
    let from = smtp.from.parse().map_err(|e| bad(&e))?;
    let ca = match smtp.ca_file.as_str() {
        "" => None,
        path => {
            let pem = std::fs::read(path).map_err(|e| SenderError::Smtp(format!("ca_file {path}: {e}")))?;
            Some(Certificate::from_pem(&pem).map_err(|e| SenderError::Smtp(format!("ca_file {path}: {e}")))?)
        }
    };
    let params = || {
        let builder = TlsParameters::builder(smtp.host.clone());
        let builder = match &ca {
            Some(ca) => builder.certificate_store(CertificateStore::None).add_root_certificate(ca.clone()),
            None => builder,
        };
        builder.build_rustls().map_err(|e| bad(&e))
    };
    let tls = match smtp.security.as_str() {
        "starttls" => Tls::Required(params()?),
        "tls" => Tls::Wrapper(params()?),
        "none" => Tls::None,
        other => return Err(SenderError::Smtp(format!("security = {other:?}: starttls, tls or none"))),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(ATTEMPT_TIMEOUT));
    if !smtp.username.is_empty() {
        builder =
            builder.credentials(Credentials::new(smtp.username.clone(), smtp.password.expose().to_owned()));
    }
    Ok(Some((builder.build(), from)))
}

/// What an HTTP attempt came to.
fn answer(result: Result<reqwest::Response, reqwest::Error>) -> Outcome {
    match result {
        Ok(response) => {
            let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok());
            schedule::http(response.status().as_u16(), retry_after)
        }
        Err(e) => Outcome::Retry { status: None, error: error_text(&e), retry_after: None },
    }
}

/// An HTTP error with its causes, which say what went wrong ("connection refused").
fn error_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Most changes one message to people lists; it counts the rest and links the alarm list. A
/// digest of 200 changes stays readable, and within ntfy's 4,096 bytes (over which ntfy turns
/// a message into an attachment, or refuses it).
pub const DIGEST_LINES: usize = 10;

/// A title and a body for people: one notice as its line; several as a count and their lines
/// (the first [`DIGEST_LINES`], then how many more).
fn summary(notices: &[&Notice]) -> (String, String) {
    let mut lines: Vec<String> =
        notices.iter().take(DIGEST_LINES).map(|n| format!("{}\n{}", n.line(), n.url)).collect();
    if notices.len() > DIGEST_LINES {
        let url = &notices[0].url;
        let list = url.find("/alarms").map_or(url.as_str(), |at| &url[..at + "/alarms".len()]);
        lines.push(format!("… and {} more: {list}", notices.len() - DIGEST_LINES));
    }
    let title = match notices {
        [one] => one.line(),
        many => format!("{} alarm changes", many.len()),
    };
    (title, lines.join("\n\n"))
}

/// ntfy's priority (1–5) for a severity.
fn priority(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "5",
        Severity::Major => "4",
        Severity::Minor | Severity::Warning => "3",
    }
}

/// A header value: ASCII only (device and rule names are, titles may not be).
fn ascii(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' }).collect()
}
