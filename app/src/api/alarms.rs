//! Server functions for alarms: the list (filtered), the alarms active in a chart's range, one
//! alarm with its log, acting on one or many (acknowledge, clear, shelve, unshelve, comment),
//! rules (list, save, delete, backtest), notification channels (list, create, delete, test)
//! and deliveries (list, resend).
//!
//! Everyone signed in reads; admins (and anyone while the dashboard is open) act, as with the
//! alarm API (`/api/alarms…`, `/api/alarm_rules…`) over the same desk. Their endpoints are
//! named `alarm_…`, apart from that API's paths. Actions take plain form fields, so the pages'
//! forms work without JavaScript.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};
use telemetry::alarm::{Alarm, AlarmDetail, Backtest, Rule, Severity, StatusFilter};
use telemetry::notify::{ChannelInfo, Delivery};
use telemetry::{DeviceSummary, Millis};

use super::codec::JsonText;
use super::error::ApiError;
#[cfg(feature = "ssr")]
use super::ssr;
use crate::logic::rule_form::RuleForm;

/// Alarms as asked, newest first, and the server's clock (so ages and shelves render the
/// same on the server and in the browser).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmList {
    pub server_time: Millis,
    pub alarms: Vec<Alarm>,
}

/// What the header's badge starts from: the active, unacknowledged alarms (shelved ones too:
/// a shelf runs out), whether there were more than [`telemetry::alarm::MAX_LIST`], and the
/// sequence number they are current to (at least).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BadgeSeed {
    pub server_time: Millis,
    pub last_seq: u64,
    pub alarms: Vec<Alarm>,
    pub more: bool,
}

/// One alarm's page: the alarm and its log, its rule as it is now (if it still exists), its
/// device, the server's clock and the sequence number the device is current to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmPageData {
    pub server_time: Millis,
    pub last_seq: u64,
    pub detail: AlarmDetail,
    pub rule: Option<Rule>,
    pub device: Option<DeviceSummary>,
}

/// What a bulk action did: the alarms done, and the others with why (a mixed selection works).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkOutcome {
    pub done: Vec<String>,
    pub refused: Vec<(String, String)>,
}

/// A channel just created, and a webhook's signing secret: shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedChannel {
    pub channel: ChannelInfo,
    pub secret: Option<String>,
}

/// Most alarms one bulk action takes (as the API).
pub const MAX_BULK: usize = 500;
/// Most deliveries one list shows.
pub const MAX_DELIVERIES: u32 = 200;

#[cfg(feature = "ssr")]
fn bounded(text: Option<String>, what: &str) -> Result<Option<String>, ApiError> {
    match text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) {
        Some(t) if t.len() > 64 => Err(ApiError::BadRequest(format!("{what}: at most 64 characters"))),
        t => Ok(t),
    }
}

#[server(prefix = "/api", endpoint = "alarm_list", input = GetUrl, output = JsonText)]
pub async fn list_alarms(
    status: Option<StatusFilter>,
    severity: Option<Severity>,
    device: Option<String>,
    rule: Option<String>,
) -> Result<AlarmList, ApiError> {
    let query = telemetry::alarm::AlarmQuery {
        status: status.unwrap_or_default(),
        severity,
        device: bounded(device, "device")?,
        rule: bounded(rule, "rule")?,
        ..Default::default()
    };
    let alarms = ssr::desk(move |d| d.alarms(&query)).await?;
    Ok(AlarmList { server_time: ssr::now(), alarms })
}

/// Most devices one [`alarm_spans`] call takes, and alarms it answers per device.
pub const MAX_SPAN_DEVICES: usize = 50;
pub const MAX_SPANS: usize = 100;

/// The alarms of `devices` that were active at some time in a chart's range: the last
/// `span_secs` (to now, by the server's clock), or `from` to `to`. At most [`MAX_SPANS`] per
/// device, the active and latest first; oldest first in the answer.
#[server(prefix = "/api", endpoint = "alarm_spans", input = GetUrl, output = JsonText)]
pub async fn alarm_spans(
    #[server(default)] devices: Vec<String>,
    #[server(default)] span_secs: Option<i64>,
    #[server(default)] from: Option<Millis>,
    #[server(default)] to: Option<Millis>,
) -> Result<Vec<Alarm>, ApiError> {
    use telemetry::alarm::AlarmQuery;
    if devices.len() > MAX_SPAN_DEVICES || devices.iter().any(|d| telemetry::name::valid_name(d).is_err()) {
        return Err(ApiError::BadRequest(format!("devices: at most {MAX_SPAN_DEVICES} device ids")));
    }
    let (from, to) = match (span_secs, from, to) {
        (Some(secs), None, None) if (1..=telemetry::dashboard::MAX_RANGE_SECS).contains(&secs) => {
            let now = ssr::now();
            (now - secs * 1000, now)
        }
        (None, Some(from), Some(to)) if from <= to => (from, to),
        _ => return Err(ApiError::BadRequest("a range: span_secs, or from and to".into())),
    };
    ssr::desk(move |d| {
        let mut out = Vec::new();
        for device in devices {
            let query = AlarmQuery {
                status: StatusFilter::All,
                device: Some(device),
                from: Some(from),
                to: Some(to),
                limit: Some(MAX_SPANS),
                ..AlarmQuery::default()
            };
            out.extend(d.alarms(&query)?);
        }
        out.sort_by_key(|a| a.started_at);
        Ok(out)
    })
    .await
}

/// The alarms that need someone, for the header's badge before the live feed connects. The
/// header is on the sign-in pages too, rendered for strangers: they get nothing.
#[server(prefix = "/api", endpoint = "alarm_badge", input = GetUrl, output = JsonText)]
pub async fn alarm_badge() -> Result<BadgeSeed, ApiError> {
    use telemetry::alarm::{AlarmQuery, MAX_LIST};
    ssr::signed_in()?;
    // The mark first, then the alarms: they are at least as new as it.
    let last_seq = ssr::read(|s| s.last_seq()).await?;
    let query =
        AlarmQuery { status: StatusFilter::ActiveUnack, limit: Some(MAX_LIST), ..AlarmQuery::default() };
    let alarms = ssr::desk(move |d| d.alarms(&query)).await?;
    Ok(BadgeSeed { server_time: ssr::now(), last_seq, more: alarms.len() >= MAX_LIST, alarms })
}

#[server(prefix = "/api", endpoint = "alarm_one", input = GetUrl, output = JsonText)]
pub async fn get_alarm(id: String) -> Result<AlarmPageData, ApiError> {
    let (detail, rule) = ssr::desk(move |d| {
        let detail = d.alarm(&id)?;
        let rule = d.rules()?.into_iter().find(|r| r.id == detail.alarm.rule_id);
        Ok((detail, rule))
    })
    .await?;
    let device_id = detail.alarm.device.clone();
    let current = ssr::read(move |s| s.device(&device_id)).await?;
    Ok(AlarmPageData {
        server_time: ssr::now(),
        last_seq: current.last_seq,
        detail,
        rule,
        device: current.value,
    })
}

/// Acts on one alarm: `action` is `ack`, `clear`, `unshelve`, `comment` (with `text`),
/// `shelve` (with `hours`: 1, 8 or 24) or `shelve_1`, `shelve_8`, `shelve_24`. Answers the
/// alarm as it is now.
#[server(prefix = "/api", endpoint = "alarm_act", output = JsonText)]
pub async fn act_on_alarm(
    id: String,
    action: String,
    hours: Option<u32>,
    text: Option<String>,
) -> Result<Alarm, ApiError> {
    let action = crate::logic::alarms::action_from(&action, hours, text).map_err(ApiError::BadRequest)?;
    ssr::desk_change(move |d, by| d.act(&id, action, &by)).await
}

/// One action (`ack`, `clear`, `unshelve`, `shelve_1`, `shelve_8`, `shelve_24`) on every
/// alarm in `ids`: each is done or refused on its own.
#[server(prefix = "/api", endpoint = "alarm_bulk", output = JsonText)]
pub async fn act_on_alarms(ids: Option<Vec<String>>, action: String) -> Result<BulkOutcome, ApiError> {
    use telemetry::alarm::{AlarmAction, AlarmError};
    let ids = ids.unwrap_or_default();
    if ids.is_empty() {
        ssr::alarm_actor()?;
        return Err(ApiError::BadRequest("tick the alarms to act on first".into()));
    }
    if ids.len() > MAX_BULK {
        return Err(ApiError::BadRequest(format!("at most {MAX_BULK} alarms at once")));
    }
    let action = crate::logic::alarms::action_from(&action, None, None).map_err(ApiError::BadRequest)?;
    if matches!(action, AlarmAction::Comment { .. }) {
        return Err(ApiError::BadRequest("comment on alarms one at a time".into()));
    }
    ssr::desk_change(move |d, by| {
        let mut outcome = BulkOutcome::default();
        for id in ids {
            match d.act(&id, action.clone(), &by) {
                Ok(_) => outcome.done.push(id),
                Err(AlarmError::Storage) => return Err(AlarmError::Storage),
                Err(e) => outcome.refused.push((id, e.to_string())),
            }
        }
        Ok(outcome)
    })
    .await
}

#[server(prefix = "/api", endpoint = "alarm_rule_list", input = GetUrl, output = JsonText)]
pub async fn list_rules() -> Result<Vec<Rule>, ApiError> {
    ssr::desk(|d| d.rules()).await
}

/// Creates (an empty `id`) or replaces a rule; answers it as stored.
#[server(prefix = "/api", endpoint = "alarm_rule_save", output = JsonText)]
pub async fn save_rule(rule: RuleForm) -> Result<Rule, ApiError> {
    let rule = rule.to_rule().map_err(ApiError::BadRequest)?;
    ssr::desk_change(move |d, _| d.save_rule(rule)).await
}

/// Deletes a rule, if `confirm` is "yes" (its open alarms stay, as they are).
#[server(prefix = "/api", endpoint = "alarm_rule_delete", output = JsonText)]
pub async fn delete_rule(id: String, confirm: Option<String>) -> Result<(), ApiError> {
    if confirm.as_deref() != Some("yes") {
        ssr::alarm_actor()?;
        return Err(ApiError::BadRequest("tick the box to confirm deleting the rule".into()));
    }
    ssr::desk_change(move |d, _| d.delete_rule(&id)).await
}

/// What `rule` (saved or not) would have done over the last `window_secs` of stored
/// history. Its answer is shown on the page, so a plain form post is refused.
#[server(prefix = "/api", endpoint = "alarm_backtest", output = JsonText)]
pub async fn backtest_rule(rule: RuleForm, window_secs: u64) -> Result<Backtest, ApiError> {
    use telemetry::alarm::MAX_BACKTEST_SECS;
    ssr::alarm_actor()?;
    if ssr::plain_form_post() {
        return Err(ApiError::BadRequest(
            "trying a rule needs JavaScript: its answer is shown on the page".into(),
        ));
    }
    if !(1..=MAX_BACKTEST_SECS).contains(&window_secs) {
        return Err(ApiError::BadRequest(format!("window_secs: 1 to {MAX_BACKTEST_SECS}")));
    }
    let rule = rule.to_rule().map_err(ApiError::BadRequest)?;
    ssr::desk_change(move |d, _| d.backtest(&rule, window_secs)).await
}

#[server(prefix = "/api", endpoint = "alarm_channel_list", input = GetUrl, output = JsonText)]
pub async fn list_channels() -> Result<Vec<ChannelInfo>, ApiError> {
    ssr::desk(|d| d.channels()).await
}

/// Creates a channel: `kind` `webhook` or `ntfy` (with `url`, and for ntfy an optional
/// `token`), or `email` (with `to`: addresses separated by commas or spaces). A webhook's
/// signing secret is in the answer and nowhere else, so a plain form post for a webhook is
/// refused before anything is created.
#[server(prefix = "/api", endpoint = "alarm_channel_create", output = JsonText)]
pub async fn create_channel(
    name: String,
    kind: String,
    url: Option<String>,
    token: Option<String>,
    to: Option<String>,
) -> Result<CreatedChannel, ApiError> {
    use telemetry::notify::{ChannelKind, MAX_RECIPIENTS, NewChannel};
    let url = url.unwrap_or_default().trim().to_owned();
    let kind = match kind.as_str() {
        "webhook" => {
            if ssr::plain_form_post() {
                ssr::alarm_actor()?;
                return Err(ApiError::BadRequest(
                    "creating a webhook needs JavaScript: its signing secret is shown once".into(),
                ));
            }
            ChannelKind::Webhook { url }
        }
        "ntfy" => {
            ChannelKind::Ntfy { url, token: token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) }
        }
        "email" => {
            let to = to.unwrap_or_default();
            let to: Vec<String> = to
                .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
                .filter(|a| !a.is_empty())
                .take(MAX_RECIPIENTS + 1)
                .map(str::to_owned)
                .collect();
            ChannelKind::Email { to }
        }
        _ => return Err(ApiError::BadRequest("kind: webhook, ntfy or email".into())),
    };
    let channel = NewChannel { name, kind };
    let (channel, secret) = ssr::desk_change(move |d, _| d.create_channel(channel)).await?;
    Ok(CreatedChannel { channel, secret })
}

/// Deletes a channel, if `confirm` is "yes".
#[server(prefix = "/api", endpoint = "alarm_channel_delete", output = JsonText)]
pub async fn delete_channel(id: String, confirm: Option<String>) -> Result<(), ApiError> {
    if confirm.as_deref() != Some("yes") {
        ssr::alarm_actor()?;
        return Err(ApiError::BadRequest("tick the box to confirm deleting the channel".into()));
    }
    ssr::desk_change(move |d, _| d.delete_channel(&id)).await
}

/// Sends a test notice to a channel (listed with the deliveries).
#[server(prefix = "/api", endpoint = "alarm_channel_test", output = JsonText)]
pub async fn test_channel(id: String) -> Result<(), ApiError> {
    ssr::desk_change(move |d, _| d.test_channel(&id)).await
}

/// Notifications, newest first (at most [`MAX_DELIVERIES`]).
#[server(prefix = "/api", endpoint = "alarm_delivery_list", input = GetUrl, output = JsonText)]
pub async fn list_deliveries(limit: Option<u32>) -> Result<Vec<Delivery>, ApiError> {
    let limit = limit.unwrap_or(50).clamp(1, MAX_DELIVERIES) as usize;
    ssr::desk(move |d| d.deliveries(limit)).await
}

/// Sends a failed (or suppressed) notification again, with the same id.
#[server(prefix = "/api", endpoint = "alarm_delivery_resend", output = JsonText)]
pub async fn resend_delivery(id: String) -> Result<(), ApiError> {
    ssr::desk_change(move |d, _| d.resend(&id)).await
}
