//! The outbox's sender: it takes the deliveries that are due, sends them, and stores what came
//! of each (sent, try again at…, failed), so a restart carries on where it was. Delivery is at
//! least once: a delivery sent just before a crash, and not yet marked, is sent again after it,
//! with the same id (`webhook-id`), which receivers may use to drop the repeat.
//!
//! - **Grouping**: on people's channels (ntfy, mail) the notices of one channel that fall due
//!   within [`NotifyConfig::group_wait_secs`] of each other go out as one message ("5 alarm
//!   changes"); a site-wide power cut pages once, not a hundred times.
//!   A message lists at most [`DIGEST_LINES`] changes and counts the rest, which are marked
//!   suppressed (and counted on `/metrics`).
//! - **Rate**: at most `rate_per_10min` messages per channel in any ten minutes; what is over
//!   it is marked suppressed and counted, and the channel's next message says how many.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use telemetry::Millis;
use telemetry::notify::{Delivery, DeliveryState, Notice};
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use super::channels::{DIGEST_LINES, Senders, SmtpConfig, StoredChannel};
use super::schedule::{self, Outcome};
use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::secret::Secret;
use crate::store::Store;

/// The rate window.
const RATE_WINDOW: Duration = Duration::from_secs(600);
/// Deliveries taken per round.
const BATCH: usize = 200;
/// Longest sleep between rounds when nothing is due (a delivery added wakes it sooner).
const IDLE: Duration = Duration::from_secs(30);

/// `[notify]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// The dashboard's address as people reach it, for links; empty: from `web.listen`.
    pub public_url: String,
    pub rate_per_10min: u32,
    pub group_wait_secs: u64,
    /// Waits before the 2nd, 3rd, … attempts; then the last one, until a day has passed.
    pub retry_secs: Vec<u64>,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_security: String,
    pub smtp_username: String,
    pub smtp_password: Secret,
    pub smtp_from: String,
    /// A PEM file of the CA that signed the SMTP server's certificate; empty: the system's.
    pub smtp_ca_file: String,
    /// `[[notify.channels]]`: channels provisioned from the file
    /// ([`crate::alarms::provision`]).
    #[serde(default)]
    pub channels: crate::alarms::provision::Items,
}

impl NotifyConfig {
    pub fn smtp(&self) -> SmtpConfig {
        SmtpConfig {
            host: self.smtp_host.clone(),
            port: self.smtp_port,
            security: self.smtp_security.clone(),
            username: self.smtp_username.clone(),
            password: self.smtp_password.clone(),
            from: self.smtp_from.clone(),
            ca_file: self.smtp_ca_file.clone(),
        }
    }
}

/// Per channel: when its recent messages went, and how many were suppressed since.
#[derive(Default)]
struct Rate {
    sent: Vec<Instant>,
    suppressed: u64,
}

pub struct Sender {
    store: Arc<dyn Store>,
    senders: Senders,
    config: NotifyConfig,
    metrics: Arc<Metrics>,
    rates: HashMap<String, Rate>,
    /// The lease this node sends under, with several nodes on one database.
    lease: Option<Arc<crate::cluster::lease::Lease>>,
}

impl Sender {
    pub fn new(
        store: Arc<dyn Store>,
        senders: Senders,
        config: NotifyConfig,
        metrics: Arc<Metrics>,
    ) -> Sender {
        Sender { store, senders, config, metrics, rates: HashMap::new(), lease: None }
    }

    /// Sends only while this node holds `lease` (several nodes on one database: one sends).
    pub fn under_lease(mut self, lease: Arc<crate::cluster::lease::Lease>) -> Sender {
        self.lease = Some(lease);
        self
    }

    /// Sends until `stop`; `wake` says new deliveries were queued.
    pub async fn run(mut self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        loop {
            if self.lease.as_ref().is_some_and(|lease| !lease.held()) {
                // Another node sends; this one looks again shortly.
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
            let next = self.round().await;
            let sleep = next.map_or(IDLE, |at| {
                Duration::from_millis(at.saturating_sub(now_ms()).clamp(0, IDLE.as_millis() as i64) as u64)
            });
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// Sends what is due; answers when the next one is.
    async fn round(&mut self) -> Option<Millis> {
        let now = now_ms();
        let store = self.store.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            Ok::<_, crate::store::StoreError>((
                store.due_deliveries(now, BATCH)?,
                store.channels()?,
                store.next_due()?,
            ))
        })
        .await
        .ok()?;
        let (due, channels, next) = match loaded {
            Ok(v) => v,
            Err(e) => {
                warn!(error = %e, "notifications: cannot read the outbox");
                return Some(now + 5_000);
            }
        };
        if due.is_empty() {
            return next;
        }
        let group_wait = (self.config.group_wait_secs as Millis).saturating_mul(1000);
        let mut by_channel: HashMap<String, Vec<Delivery>> = HashMap::new();
        for d in due {
            by_channel.entry(d.channel.clone()).or_default().push(d);
        }
        let mut updates = Vec::new();
        let mut later: Option<Millis> = None;
        for (id, deliveries) in by_channel {
            let Some(channel) = channels.iter().find(|c| c.id == id) else {
                // The channel was deleted: nothing to send to.
                updates.extend(
                    deliveries
                        .into_iter()
                        .map(|d| finished(d, DeliveryState::Failed, None, "the channel was deleted", now)),
                );
                continue;
            };
            if channel.groups() {
                // Wait for the rest of a group, unless these are retries.
                let newest = deliveries.iter().filter(|d| d.attempts == 0).map(|d| d.created).max();
                if let Some(newest) = newest
                    && now < newest.saturating_add(group_wait)
                    && deliveries.iter().all(|d| d.attempts == 0)
                {
                    let at = newest.saturating_add(group_wait);
                    later = Some(later.map_or(at, |l| l.min(at)));
                    continue;
                }
                updates.extend(self.send(channel, deliveries, now).await);
            } else {
                for d in deliveries {
                    updates.extend(self.send(channel, vec![d], now).await);
                }
            }
        }
        let store = self.store.clone();
        let written = tokio::task::spawn_blocking(move || store.update_deliveries(&updates)).await;
        if !matches!(written, Ok(Ok(()))) {
            warn!("notifications: cannot store what was sent; they may be sent again");
        }
        // More may be due already (a full batch, or retries).
        Some(later.map_or(now, |l| l.min(now + 1_000)))
    }

    /// Sends `deliveries` (one message) to `channel`, within its rate; answers their new states.
    async fn send(
        &mut self,
        channel: &StoredChannel,
        mut deliveries: Vec<Delivery>,
        now: Millis,
    ) -> Vec<Delivery> {
        let limit = self.config.rate_per_10min.max(1) as usize;
        let rate = self.rates.entry(channel.id.clone()).or_default();
        rate.sent.retain(|t| t.elapsed() < RATE_WINDOW);
        if rate.sent.len() >= limit {
            rate.suppressed += deliveries.len() as u64;
            self.metrics.notification("suppressed", deliveries.len() as u64);
            return deliveries
                .into_iter()
                .map(|d| finished(d, DeliveryState::Suppressed, None, "over the channel's rate", now))
                .collect();
        }
        let suppressed = std::mem::take(&mut rate.suppressed);
        rate.sent.push(Instant::now());
        let summary = (suppressed > 0).then(|| suppressed_notice(&deliveries[0].notice, suppressed));
        let mut notices: Vec<&Notice> = deliveries.iter().map(|d| &d.notice).collect();
        // The changes a message lists; the rest it only counts (suppressed). On people's
        // channels the rate's count comes first, so a digest's cut never hides it; a webhook
        // sends its one notice.
        let mut listed = DIGEST_LINES;
        if let Some(summary) = &summary {
            if channel.groups() {
                notices.insert(0, summary);
                listed -= 1;
            } else {
                notices.push(summary);
            }
        }
        let outcome = self.senders.send(channel, &deliveries[0].id, &notices).await;
        for d in &mut deliveries {
            d.attempts = d.attempts.saturating_add(1);
        }
        match outcome {
            Outcome::Sent { status } => {
                let total = deliveries.len();
                let counted = total.saturating_sub(listed);
                self.metrics.notification("sent", (total - counted) as u64);
                if counted > 0 {
                    self.metrics.notification("suppressed", counted as u64);
                }
                let why = format!("one of {counted} more counted, not listed, in a digest of {total}");
                deliveries
                    .into_iter()
                    .enumerate()
                    .map(|(i, d)| {
                        if i < listed {
                            finished(d, DeliveryState::Sent, status, "", now)
                        } else {
                            finished(d, DeliveryState::Suppressed, status, &why, now)
                        }
                    })
                    .collect()
            }
            Outcome::Failed { status, error } => {
                self.metrics.notification("failed", deliveries.len() as u64);
                warn!(channel = %channel.name, error = %telemetry::text::untrusted(&error), "notification failed for good");
                deliveries
                    .into_iter()
                    .map(|d| finished(d, DeliveryState::Failed, status, &error, now))
                    .collect()
            }
            Outcome::Retry { status, error, retry_after } => {
                self.metrics.notification("retried", deliveries.len() as u64);
                // The suppressed count was not told: tell it next time.
                if let Some(rate) = self.rates.get_mut(&channel.id) {
                    rate.suppressed += suppressed;
                }
                deliveries
                    .into_iter()
                    .map(|mut d| match schedule::next_attempt(&self.config.retry_secs, d.created, d.attempts, retry_after, now) {
                        Some(at) => {
                            d.next_at = at;
                            d.last_status = status;
                            d.last_error = Some(error.clone());
                            d
                        }
                        None => {
                            info!(channel = %channel.name, "notification given up after a day of failures");
                            finished(d, DeliveryState::Failed, status, &error, now)
                        }
                    })
                    .collect()
            }
        }
    }
}

/// A delivery in its final state.
fn finished(
    mut d: Delivery,
    state: DeliveryState,
    status: Option<u16>,
    error: &str,
    now: Millis,
) -> Delivery {
    d.state = state;
    d.last_status = status.or(d.last_status);
    d.last_error = (!error.is_empty()).then(|| error.to_owned());
    d.done_at = Some(now);
    d
}

/// "N more notifications were suppressed", riding along with the next message.
fn suppressed_notice(like: &Notice, n: u64) -> Notice {
    Notice {
        event: "notification.suppressed".into(),
        rule_name: format!("{n} more notifications suppressed (rate limit)"),
        device: "-".into(),
        value: None,
        ..like.clone()
    }
}
