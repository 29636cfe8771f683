//! The alarm desk: what the dashboard's pages and the HTTP API do with alarms, rules and
//! channels. Reads go to the store; changes are checked here (validity, limits) and done by
//! the writer ([`AlarmJob`]), so they take their place among the readings. Blocking: call it
//! off the async runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use telemetry::Millis;
use telemetry::alarm::{
    Alarm, AlarmAction, AlarmDesk, AlarmDetail, AlarmError, AlarmQuery, Backtest, MAX_BACKTEST_SECS,
    MAX_RULES, Rule, RuleKind, Severity,
};
use telemetry::notify::{
    ChannelInfo, ChannelKind, Delivery, DeliveryState, MAX_CHANNELS, NewChannel, Notice,
};
use tokio::sync::oneshot;
use tracing::{error, info};

use super::AlarmJob;
use super::provision::Provision;
use crate::clock::now_ms;
use crate::ingest::Ingest;
use crate::notify::channels::StoredChannel;
use crate::notify::sign;
use crate::store::{Store, StoreError};

/// Backtests running at once (each takes a core while it reads and replays).
const MAX_BACKTESTS_AT_ONCE: usize = 2;

pub struct Desk {
    store: Arc<dyn Store>,
    /// Backtests running now, at most [`MAX_BACKTESTS_AT_ONCE`].
    backtests: Arc<AtomicUsize>,
    ingest: Ingest,
    /// Woken when a delivery is queued here (tests, resends).
    notifier: Arc<tokio::sync::Notify>,
    public_url: String,
}

fn storage(e: StoreError) -> AlarmError {
    error!(error = %e, "alarm storage");
    AlarmError::Storage
}

impl Desk {
    pub fn new(
        store: Arc<dyn Store>,
        ingest: Ingest,
        notifier: Arc<tokio::sync::Notify>,
        public_url: String,
    ) -> Desk {
        Desk { store, backtests: Arc::new(AtomicUsize::new(0)), ingest, notifier, public_url }
    }

    /// Hands `job` to the writer and waits for its answer.
    fn job<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, AlarmError>>) -> AlarmJob,
    ) -> Result<T, AlarmError> {
        let (reply, answer) = oneshot::channel();
        if !self.ingest.alarm_job(job(reply)) {
            return Err(AlarmError::Storage);
        }
        answer.blocking_recv().unwrap_or(Err(AlarmError::Storage))
    }
}

impl Desk {
    /// Creates or replaces the rules and channels the configuration file provisions (checked
    /// by [`super::provision::parse`]), through the writer like the API's saves; leaves those
    /// stored just so as they are. The error names the item.
    pub fn provision(&self, p: Provision) -> Result<(), String> {
        let storage = |e: StoreError| format!("provisioning: {e}");
        let stored = self.store.channels().map_err(storage)?;
        let new = p.channels.iter().filter(|c| !stored.iter().any(|s| s.id == c.id)).count();
        if stored.len() + new > MAX_CHANNELS {
            return Err(format!(
                "notify.channels: the server keeps at most {MAX_CHANNELS} channels ({} stored, {new} more provisioned)",
                stored.len()
            ));
        }
        let now = now_ms();
        for (i, spec) in p.channels.into_iter().enumerate() {
            let old = stored.iter().find(|s| s.id == spec.id);
            let channel = StoredChannel {
                id: spec.id,
                name: spec.channel.name.trim().to_owned(),
                kind: spec.channel.kind,
                secret: spec.secret,
                created: old.map_or(now, |o| o.created),
            };
            if old == Some(&channel) {
                continue;
            }
            let (id, replaced) = (channel.id.clone(), old.is_some());
            self.job(|reply| AlarmJob::SaveChannel(channel, reply))
                .map_err(|e| format!("notify.channels[{i}] (id {id:?}): {e}"))?;
            info!(channel = %id, replaced, "notification channel provisioned");
        }
        let channels = self.store.channels().map_err(storage)?;
        let existing = self.store.rules().map_err(storage)?;
        let new = p.rules.iter().filter(|r| !existing.iter().any(|e| e.id == r.id)).count();
        if existing.len() + new > MAX_RULES {
            return Err(format!(
                "alarms.rules: the server keeps at most {MAX_RULES} rules ({} stored, {new} more provisioned)",
                existing.len()
            ));
        }
        for (i, mut rule) in p.rules.into_iter().enumerate() {
            let id = rule.id.clone();
            if let Some(missing) = rule.channels.iter().find(|c| !channels.iter().any(|k| &k.id == *c)) {
                return Err(format!("alarms.rules[{i}] (id {id:?}): channels: no channel {missing}"));
            }
            let old = existing.iter().find(|r| r.id == rule.id);
            rule.version = old.map_or(0, |o| o.version);
            if old == Some(&rule) {
                continue;
            }
            rule.version = rule.version.saturating_add(1);
            self.job(|reply| AlarmJob::SaveRule(rule, reply))
                .map_err(|e| format!("alarms.rules[{i}] (id {id:?}): {e}"))?;
            info!(rule = %id, replaced = old.is_some(), "alarm rule provisioned");
        }
        Ok(())
    }
}

/// A place among the backtests running, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(running: &Arc<AtomicUsize>) -> Option<Slot> {
        running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_BACKTESTS_AT_ONCE).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(running.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A channel's public face: the URL without credentials, or its addresses.
fn info(c: &StoredChannel) -> ChannelInfo {
    let (kind, target) = match &c.kind {
        ChannelKind::Webhook { url } => ("webhook", strip_credentials(url)),
        ChannelKind::Ntfy { url, .. } => ("ntfy", strip_credentials(url)),
        ChannelKind::Email { to } => ("email", to.join(", ")),
    };
    ChannelInfo { id: c.id.clone(), name: c.name.clone(), kind: kind.into(), target, created: c.created }
}

fn strip_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host_and_path =
                rest.split_once('@').filter(|(cred, _)| !cred.contains('/')).map_or(rest, |(_, r)| r);
            format!("{scheme}://{host_and_path}")
        }
        None => url.to_owned(),
    }
}

impl AlarmDesk for Desk {
    fn alarms(&self, query: &AlarmQuery) -> Result<Vec<Alarm>, AlarmError> {
        self.store.alarms(query).map_err(storage)
    }

    fn open_counts(&self) -> Result<std::collections::HashMap<String, u32>, AlarmError> {
        self.store.open_alarm_counts().map_err(storage)
    }

    fn alarm(&self, id: &str) -> Result<AlarmDetail, AlarmError> {
        match self.store.alarm(id).map_err(storage)? {
            Some((alarm, log)) => Ok(AlarmDetail { alarm, log }),
            None => Err(AlarmError::NotFound),
        }
    }

    fn act(&self, id: &str, action: AlarmAction, by: &str) -> Result<Alarm, AlarmError> {
        action.validate().map_err(AlarmError::Invalid)?;
        let (id, by) = (id.to_owned(), by.to_owned());
        let alarm = self.job(|reply| AlarmJob::Act { id, action, by, reply })?;
        Ok(alarm)
    }

    fn rules(&self) -> Result<Vec<Rule>, AlarmError> {
        self.store.rules().map_err(storage)
    }

    fn save_rule(&self, mut rule: Rule) -> Result<Rule, AlarmError> {
        rule.name = rule.name.trim().to_owned();
        rule.scope = rule.scope.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        rule.validate().map_err(AlarmError::Invalid)?;
        if let Some(scope) = &rule.scope {
            crate::scope::check_scope(&*self.store, scope).map_err(storage)?.map_err(AlarmError::Invalid)?;
        }
        let existing = self.store.rules().map_err(storage)?;
        if rule.id.is_empty() {
            if existing.len() >= MAX_RULES {
                return Err(AlarmError::Conflict(format!("the server keeps at most {MAX_RULES} rules")));
            }
            rule.id = format!("rule-{}", crate::random::base36(8));
            rule.version = 1;
        } else {
            let Some(old) = existing.iter().find(|r| r.id == rule.id) else {
                return Err(AlarmError::NotFound);
            };
            rule.version = old.version.saturating_add(1);
        }
        let channels = self.store.channels().map_err(storage)?;
        if let Some(missing) = rule.channels.iter().find(|c| !channels.iter().any(|k| &k.id == *c)) {
            return Err(AlarmError::Invalid(format!("channels: no channel {missing}")));
        }
        let stored = rule.clone();
        self.job(|reply| AlarmJob::SaveRule(stored, reply))?;
        info!(rule = %rule.id, name = %telemetry::text::untrusted(&rule.name), version = rule.version, "alarm rule saved");
        Ok(rule)
    }

    fn delete_rule(&self, id: &str) -> Result<(), AlarmError> {
        if !self.store.rules().map_err(storage)?.iter().any(|r| r.id == id) {
            return Err(AlarmError::NotFound);
        }
        let id = id.to_owned();
        self.job(|reply| AlarmJob::DeleteRule(id, reply))
    }

    fn channels(&self) -> Result<Vec<ChannelInfo>, AlarmError> {
        Ok(self.store.channels().map_err(storage)?.iter().map(info).collect())
    }

    fn create_channel(&self, channel: NewChannel) -> Result<(ChannelInfo, Option<String>), AlarmError> {
        channel.validate().map_err(AlarmError::Invalid)?;
        if self.store.channels().map_err(storage)?.len() >= MAX_CHANNELS {
            return Err(AlarmError::Conflict(format!("the server keeps at most {MAX_CHANNELS} channels")));
        }
        let secret = matches!(channel.kind, ChannelKind::Webhook { .. }).then(sign::new_secret);
        let stored = StoredChannel {
            id: format!("ch-{}", crate::random::base36(8)),
            name: channel.name.trim().to_owned(),
            kind: channel.kind,
            secret: secret.clone(),
            created: now_ms(),
        };
        let public = info(&stored);
        self.job(|reply| AlarmJob::SaveChannel(stored, reply))?;
        info!(channel = %public.id, kind = %public.kind, "notification channel created");
        Ok((public, secret))
    }

    fn delete_channel(&self, id: &str) -> Result<(), AlarmError> {
        if !self.store.channels().map_err(storage)?.iter().any(|c| c.id == id) {
            return Err(AlarmError::NotFound);
        }
        let id = id.to_owned();
        self.job(|reply| AlarmJob::DeleteChannel(id, reply))
    }

    fn test_channel(&self, id: &str) -> Result<(), AlarmError> {
        if !self.store.channels().map_err(storage)?.iter().any(|c| c.id == id) {
            return Err(AlarmError::NotFound);
        }
        let now = now_ms();
        let notice = Notice {
            version: 1,
            event: "notification.test".into(),
            alarm_id: "test".into(),
            rule_id: "test".into(),
            rule_name: "A test notification".into(),
            device: "-".into(),
            severity: Severity::Warning,
            status: "TEST".into(),
            value: None,
            at: now,
            url: format!("{}/alarms", self.public_url),
        };
        let delivery = queued(id, notice, now);
        self.store.update_deliveries(&[delivery]).map_err(storage)?;
        self.notifier.notify_one();
        Ok(())
    }

    fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>, AlarmError> {
        self.store.deliveries(limit.clamp(1, 1000)).map_err(storage)
    }

    fn resend(&self, id: &str) -> Result<(), AlarmError> {
        let Some(mut d) = self.store.delivery(id).map_err(storage)? else { return Err(AlarmError::NotFound) };
        if d.state == DeliveryState::Pending {
            return Err(AlarmError::Conflict("it is still being sent".into()));
        }
        let now = now_ms();
        // A resend is a new try with the same id, given another day.
        d.state = DeliveryState::Pending;
        d.next_at = now;
        d.created = now;
        d.done_at = None;
        self.store.update_deliveries(&[d]).map_err(storage)?;
        self.notifier.notify_one();
        Ok(())
    }

    fn backtest(&self, rule: &Rule, window_secs: u64) -> Result<Backtest, AlarmError> {
        rule.validate().map_err(AlarmError::Invalid)?;
        if matches!(rule.kind, RuleKind::RebootLoop { .. } | RuleKind::FirmwareDrift { .. }) {
            return Err(AlarmError::Invalid(
                "a backtest replays stored readings; reboot loops and firmware differences are not \
                 replayed"
                    .into(),
            ));
        }
        if !(1..=MAX_BACKTEST_SECS).contains(&window_secs) {
            return Err(AlarmError::Invalid(format!("window_secs: 1 to {MAX_BACKTEST_SECS} (a week)")));
        }
        let Some(_slot) = Slot::take(&self.backtests) else {
            return Err(AlarmError::Conflict(format!(
                "{MAX_BACKTESTS_AT_ONCE} backtests are running; try again when one is done"
            )));
        };
        let started = std::time::Instant::now();
        let to = now_ms();
        let from = to.saturating_sub((window_secs as Millis).saturating_mul(1000));
        let answer = super::backtest::run(&*self.store, rule, from, to).map_err(|e| {
            error!(error = %e, "backtest: cannot read history");
            AlarmError::Storage
        })?;
        info!(
            rule = %telemetry::text::untrusted(&rule.name),
            devices = answer.devices,
            readings = answer.readings,
            opened = answer.opened,
            ms = started.elapsed().as_millis() as u64,
            "backtest"
        );
        Ok(answer)
    }
}

/// A new pending delivery.
fn queued(channel: &str, notice: Notice, now: Millis) -> Delivery {
    Delivery {
        id: format!("msg_{}", crate::random::base36(24)),
        channel: channel.to_owned(),
        notice,
        state: DeliveryState::Pending,
        created: now,
        attempts: 0,
        next_at: now,
        last_status: None,
        last_error: None,
        done_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_listings_hide_credentials() {
        assert_eq!(strip_credentials("https://user:pw@ntfy.example/alarms"), "https://ntfy.example/alarms");
        assert_eq!(strip_credentials("http://hooks.local/a@b"), "http://hooks.local/a@b");
    }
}
