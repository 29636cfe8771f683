//! Commands to devices: an action with an outcome (identify, reboot, calibrate), sent to
//! `app/device/<id>/cmd/<cmd_id>` and answered on `app/device/<id>/res/<cmd_id>`, and the state
//! machine each one goes through. Pure: the server persists and dispatches, this decides.
//!
//! ```text
//! QUEUED ─▶ SENT ─▶ DELIVERED ─▶ SUCCEEDED | FAILED | REJECTED | TIMED_OUT
//!    │        │  └──(result before the PUBACK)──▶ SUCCEEDED | FAILED | REJECTED
//!    └────────┴──────────┴──▶ EXPIRED (ttl)      any of the three ──▶ CANCELED
//! ```
//!
//! Deadlines are absolute server times ([`Command::expires_at`], [`Command::respond_by`]), so a
//! restart changes no state: what was due while the server was down is due when it starts.
//! The response timeout runs from DELIVERED (the device's PUBACK), or from SENT where delivery
//! cannot be seen (a QoS 0 subscription, an external broker).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Millis;

/// Most commands a device may have that are not finished (queued, sent, delivered).
pub const MAX_PENDING_PER_DEVICE: usize = 100;
/// Most unfinished commands across the server.
pub const MAX_PENDING: usize = 100_000;
/// Longest `params`, as JSON.
pub const MAX_PARAMS_BYTES: usize = 1024;
/// Longest device answer read (the payload on `res/<cmd_id>`).
pub const MAX_REPLY_BYTES: usize = 4096;
/// Longest method name.
pub const MAX_METHOD_LEN: usize = 64;
/// Longest command id (`[0-9a-v]`, base 32 of the device's counter).
pub const MAX_ID_LEN: usize = 12;
/// Time to live when none is given, and at most.
pub const DEFAULT_TTL_SECS: u64 = 3600;
pub const MAX_TTL_SECS: u64 = 7 * 24 * 3600;
/// Response timeout when none is given, and at most.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
pub const MAX_TIMEOUT_SECS: u64 = 3600;
/// Longest error code and message kept from a device's answer.
pub const MAX_CODE_LEN: usize = 64;
pub const MAX_MESSAGE_LEN: usize = 256;

/// Where a command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandStatus {
    /// Accepted; the device is offline or busy with an earlier command.
    Queued,
    /// Written to the device's connection (with an external broker: accepted by the broker).
    Sent,
    /// The device acknowledged it (its PUBACK); waiting for its result.
    Delivered,
    Succeeded,
    /// The device tried and failed.
    Failed,
    /// The device refused it (`unknown_method`, `invalid_params`).
    Rejected,
    /// No result within the response timeout.
    TimedOut,
    /// Not delivered (or not answered) before its time to live ran out.
    Expired,
    Canceled,
}

impl CommandStatus {
    pub fn is_terminal(self) -> bool {
        !matches!(self, CommandStatus::Queued | CommandStatus::Sent | CommandStatus::Delivered)
    }

    pub fn label(self) -> &'static str {
        match self {
            CommandStatus::Queued => "QUEUED",
            CommandStatus::Sent => "SENT",
            CommandStatus::Delivered => "DELIVERED",
            CommandStatus::Succeeded => "SUCCEEDED",
            CommandStatus::Failed => "FAILED",
            CommandStatus::Rejected => "REJECTED",
            CommandStatus::TimedOut => "TIMED_OUT",
            CommandStatus::Expired => "EXPIRED",
            CommandStatus::Canceled => "CANCELED",
        }
    }
}

impl fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What a device answered with `{"status":"error",…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandError {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One command, as stored and as the API and the live feed show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Unique per device, for ever: base 32 of the device's counter ([`command_id`]).
    pub id: String,
    pub device: String,
    pub method: String,
    pub params: Map<String, Value>,
    /// Done once delivered: no result is awaited.
    #[serde(default)]
    pub oneway: bool,
    pub status: CommandStatus,
    pub created_at: Millis,
    /// Who asked for it (a user's name, or `open` while the dashboard is open).
    pub created_by: String,
    /// Its time to live ends here (absolute server time).
    pub expires_at: Millis,
    /// How long the device has to answer once it has the command.
    pub timeout_ms: i64,
    /// The answer is due by then, once the device has the command (absolute server time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respond_by: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Millis>,
    /// What a device that succeeded answered with (`result`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CommandError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled_by: Option<String>,
    /// Whether the device's receipt (DELIVERED) can be seen: not through an external broker,
    /// nor for a device that subscribed with QoS 0. When false, SENT is all that is known
    /// until the result.
    pub delivery_observable: bool,
    /// Times it was written to the device (more than one after a reconnect: the same id).
    #[serde(default)]
    pub sends: u32,
}

/// What a request asks for, before it is checked ([`NewCommand::check`]).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCommand {
    pub method: String,
    #[serde(default)]
    pub params: Option<Value>,
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    #[serde(default)]
    pub oneway: bool,
}

/// Why a request for a command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    Method,
    ParamsNotObject,
    ParamsTooLarge(usize),
    Ttl,
    Timeout,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::Method => write!(f, "method must be 1 to {MAX_METHOD_LEN} of A-Z a-z 0-9 _ . -"),
            Invalid::ParamsNotObject => f.write_str("params must be a JSON object"),
            Invalid::ParamsTooLarge(n) => write!(f, "params are {n} bytes; at most {MAX_PARAMS_BYTES}"),
            Invalid::Ttl => write!(f, "ttl_secs must be 1 to {MAX_TTL_SECS}"),
            Invalid::Timeout => write!(f, "timeout_secs must be 1 to {MAX_TIMEOUT_SECS}"),
        }
    }
}

/// A request that passed [`NewCommand::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub method: String,
    pub params: Map<String, Value>,
    pub ttl_ms: i64,
    pub timeout_ms: i64,
    pub oneway: bool,
}

impl NewCommand {
    pub fn check(self) -> Result<Checked, Invalid> {
        if crate::name::valid_name(&self.method).is_err() {
            return Err(Invalid::Method);
        }
        let params = match self.params {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => return Err(Invalid::ParamsNotObject),
        };
        let size = serde_json::to_string(&params).map_or(usize::MAX, |s| s.len());
        if size > MAX_PARAMS_BYTES {
            return Err(Invalid::ParamsTooLarge(size));
        }
        let ttl = self.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
        if !(1..=MAX_TTL_SECS).contains(&ttl) {
            return Err(Invalid::Ttl);
        }
        let timeout = self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if !(1..=MAX_TIMEOUT_SECS).contains(&timeout) {
            return Err(Invalid::Timeout);
        }
        Ok(Checked {
            method: self.method,
            params,
            ttl_ms: ttl as i64 * 1000,
            timeout_ms: timeout as i64 * 1000,
            oneway: self.oneway,
        })
    }
}

/// The id of a device's `counter`th command: base 32 (`0-9a-v`), at most [`MAX_ID_LEN`]
/// characters for counters below 2^60.
pub fn command_id(counter: u64) -> String {
    const DIGITS: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut n = counter & ((1 << 60) - 1);
    let mut out = Vec::with_capacity(MAX_ID_LEN);
    loop {
        out.push(DIGITS[(n % 32) as usize]);
        n /= 32;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// The counter a command id was made from ([`command_id`]), if it is one.
pub fn id_counter(id: &str) -> Option<u64> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return None;
    }
    id.bytes().try_fold(0u64, |n, b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'v' => b - b'a' + 10,
            _ => return None,
        };
        Some(n * 32 + u64::from(digit))
    })
}

/// Whether `id` may be a command id: 1 to [`MAX_ID_LEN`] of `0-9a-z`.
pub fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// A device's answer on `res/<cmd_id>`.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Ok(Option<Value>),
    Error(CommandError),
    /// It has the command and is working on it.
    Accepted,
}

/// Why a device's answer was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyError {
    /// The topic's command id cannot be one ([`valid_id`]).
    BadId,
    TooLarge,
    NotJson,
    /// No `status` of `ok`, `error` or `accepted`, or an error without a `code`.
    BadStatus,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::BadId => f.write_str("a command id is 1 to 12 of 0-9 a-z"),
            ReplyError::TooLarge => write!(f, "a command's answer is at most {MAX_REPLY_BYTES} bytes"),
            ReplyError::NotJson => f.write_str("a command's answer must be a JSON object"),
            ReplyError::BadStatus => f.write_str(
                r#"a command's answer is {"status":"ok","result":…}, {"status":"error","code":…} or {"status":"accepted"}"#,
            ),
        }
    }
}

fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Reads a device's answer.
pub fn parse_reply(payload: &[u8]) -> Result<Reply, ReplyError> {
    if payload.len() > MAX_REPLY_BYTES {
        return Err(ReplyError::TooLarge);
    }
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(payload) else {
        return Err(ReplyError::NotJson);
    };
    match map.get("status").and_then(Value::as_str) {
        Some("ok") => Ok(Reply::Ok(map.remove("result").filter(|v| !v.is_null()))),
        Some("accepted") => Ok(Reply::Accepted),
        Some("error") => {
            let code = map.get("code").and_then(Value::as_str).filter(|c| !c.is_empty());
            let code = code.ok_or(ReplyError::BadStatus)?;
            let message = map.get("message").and_then(Value::as_str).map(|m| cut(m, MAX_MESSAGE_LEN));
            Ok(Reply::Error(CommandError { code: cut(code, MAX_CODE_LEN), message }))
        }
        _ => Err(ReplyError::BadStatus),
    }
}

/// How a send was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// The device will PUBACK it (a QoS 1 subscription on the embedded broker): DELIVERED follows.
    Observable,
    /// Nothing more will be seen before the result (QoS 0, or an external broker).
    Unobservable,
}

/// Something that happens to a command.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandEvent {
    Sent(Receipt),
    Delivered,
    Answered(Reply),
    Cancel {
        by: String,
    },
    /// The clock: expire or time out what is due.
    Due,
}

impl CommandEvent {
    fn name(&self) -> &'static str {
        match self {
            CommandEvent::Sent(_) => "sent",
            CommandEvent::Delivered => "delivered",
            CommandEvent::Answered(_) => "answered",
            CommandEvent::Cancel { .. } => "cancel",
            CommandEvent::Due => "due",
        }
    }
}

/// An event a command in this state cannot take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Illegal {
    pub status: CommandStatus,
    pub event: &'static str,
}

impl fmt::Display for Illegal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.status.is_terminal() {
            write!(f, "the command is already {}", self.status)
        } else {
            write!(f, "a {} command cannot be {}", self.status, self.event)
        }
    }
}

impl Command {
    /// A new command, QUEUED at `now`.
    pub fn new(
        id: String,
        device: String,
        checked: Checked,
        by: String,
        now: Millis,
        observable: bool,
    ) -> Command {
        Command {
            id,
            device,
            method: checked.method,
            params: checked.params,
            oneway: checked.oneway,
            status: CommandStatus::Queued,
            created_at: now,
            created_by: by,
            expires_at: now.saturating_add(checked.ttl_ms),
            timeout_ms: checked.timeout_ms,
            respond_by: None,
            sent_at: None,
            delivered_at: None,
            finished_at: None,
            result: None,
            error: None,
            canceled_by: None,
            delivery_observable: observable,
            sends: 0,
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }

    /// When the latest change happened.
    pub fn changed_at(&self) -> Millis {
        self.finished_at.or(self.delivered_at).or(self.sent_at).unwrap_or(self.created_at)
    }

    /// The payload sent on `cmd/<id>`: `{"id","method","params","exp"}` (`exp` in Unix seconds).
    pub fn payload(&self) -> String {
        let body = serde_json::json!({
            "id": self.id,
            "method": self.method,
            "params": self.params,
            "exp": self.expires_at.div_euclid(1000),
        });
        body.to_string()
    }

    /// The next time [`CommandEvent::Due`] changes it, if any.
    pub fn next_deadline(&self) -> Option<Millis> {
        match self.status {
            CommandStatus::Queued | CommandStatus::Sent | CommandStatus::Delivered => {
                Some(self.respond_by.map_or(self.expires_at, |r| r.min(self.expires_at)))
            }
            _ => None,
        }
    }

    fn finish(&mut self, status: CommandStatus, now: Millis) {
        self.status = status;
        self.finished_at = Some(now);
    }

    /// Applies `event` at `now`: `Ok(true)` if the command changed (a transition to store and
    /// show), `Ok(false)` if it takes the event without changing (a send again after a
    /// reconnect, a PUBACK after the result, an `accepted` once delivered), `Err` if the event
    /// makes no sense in its state.
    pub fn apply(&mut self, event: CommandEvent, now: Millis) -> Result<bool, Illegal> {
        use CommandStatus as S;
        let illegal = Illegal { status: self.status, event: event.name() };
        match (self.status, event) {
            // What is due first wins; one due at the same time as the ttl times out.
            (S::Queued | S::Sent | S::Delivered, CommandEvent::Due) => {
                match (self.respond_by, self.next_deadline()) {
                    (Some(r), _) if r <= now && r <= self.expires_at => self.finish(S::TimedOut, now),
                    (_, Some(d)) if d <= now => self.finish(S::Expired, now),
                    _ => return Ok(false),
                }
                Ok(true)
            }
            (_, CommandEvent::Due) => Ok(false),
            (S::Queued | S::Sent | S::Delivered, CommandEvent::Cancel { by }) => {
                self.canceled_by = Some(by);
                self.finish(S::Canceled, now);
                Ok(true)
            }
            (S::Queued, CommandEvent::Sent(receipt)) => {
                self.sends = self.sends.saturating_add(1);
                self.sent_at = Some(now);
                self.status = S::Sent;
                if receipt == Receipt::Unobservable {
                    self.delivery_observable = false;
                    self.received(now);
                }
                Ok(true)
            }
            // Sent again (a reconnect): the same id, no new state.
            (S::Sent | S::Delivered, CommandEvent::Sent(_)) => {
                self.sends = self.sends.saturating_add(1);
                Ok(false)
            }
            (S::Sent, CommandEvent::Delivered) => {
                self.status = S::Delivered;
                self.received(now);
                Ok(true)
            }
            // A PUBACK again, or after the result came: nothing to change.
            (S::Delivered, CommandEvent::Delivered) => Ok(false),
            (s, CommandEvent::Delivered) if s.is_terminal() && self.sent_at.is_some() => Ok(false),
            (S::Sent | S::Delivered, CommandEvent::Answered(reply)) => {
                match reply {
                    Reply::Accepted if self.status == S::Delivered => return Ok(false),
                    Reply::Accepted => {
                        self.status = S::Delivered;
                        self.received(now);
                    }
                    Reply::Ok(result) => {
                        self.result = result;
                        self.finish(S::Succeeded, now);
                    }
                    Reply::Error(error) => {
                        let status = match error.code.as_str() {
                            "unknown_method" | "invalid_params" => S::Rejected,
                            _ => S::Failed,
                        };
                        self.error = Some(error);
                        self.finish(status, now);
                    }
                }
                Ok(true)
            }
            _ => Err(illegal),
        }
    }

    /// The device has it (DELIVERED, or SENT where delivery cannot be seen): a oneway command is
    /// done; otherwise its answer is due within the timeout.
    fn received(&mut self, now: Millis) {
        if self.status == CommandStatus::Delivered {
            self.delivered_at = Some(now);
        }
        if self.oneway {
            self.finish(CommandStatus::Succeeded, now);
        } else if self.respond_by.is_none() {
            self.respond_by = Some(now.saturating_add(self.timeout_ms));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CommandStatus as S;
    use serde_json::json;

    fn checked(ttl_secs: u64, timeout_secs: u64, oneway: bool) -> Checked {
        NewCommand {
            method: "identify".into(),
            params: Some(json!({"secs": 5})),
            ttl_secs: Some(ttl_secs),
            timeout_secs: Some(timeout_secs),
            oneway,
        }
        .check()
        .unwrap()
    }

    /// Queued at 1 s, ttl 100 s, timeout 10 s.
    fn queued() -> Command {
        Command::new("1".into(), "d1".into(), checked(100, 10, false), "ann".into(), 1_000, true)
    }

    fn ok(v: Value) -> CommandEvent {
        CommandEvent::Answered(Reply::Ok(Some(v)))
    }

    fn error(code: &str) -> CommandEvent {
        CommandEvent::Answered(Reply::Error(CommandError { code: code.into(), message: None }))
    }

    #[test]
    fn the_two_way_path_goes_through_every_state_once() {
        let mut c = queued();
        assert_eq!(c.next_deadline(), Some(101_000), "the ttl");
        assert_eq!(c.apply(CommandEvent::Sent(Receipt::Observable), 2_000), Ok(true));
        assert_eq!((c.status, c.sent_at, c.respond_by), (S::Sent, Some(2_000), None));
        assert_eq!(c.apply(CommandEvent::Delivered, 3_000), Ok(true));
        assert_eq!((c.status, c.respond_by), (S::Delivered, Some(13_000)), "timeout from the PUBACK");
        assert_eq!(c.next_deadline(), Some(13_000));
        assert_eq!(c.apply(ok(json!({"blinked": true})), 4_000), Ok(true));
        assert_eq!((c.status, c.finished_at), (S::Succeeded, Some(4_000)));
        assert_eq!(c.result, Some(json!({"blinked": true})));
        assert_eq!(c.next_deadline(), None);
        assert!(c.is_terminal());
    }

    #[test]
    fn a_result_before_the_puback_completes_it_and_the_late_puback_changes_nothing() {
        let mut c = queued();
        c.apply(CommandEvent::Sent(Receipt::Observable), 2_000).unwrap();
        assert_eq!(c.apply(ok(json!(1)), 2_500), Ok(true));
        assert_eq!(c.status, S::Succeeded);
        assert_eq!(c.apply(CommandEvent::Delivered, 2_600), Ok(false));
        assert_eq!(c.status, S::Succeeded);
    }

    #[test]
    fn device_errors_are_rejections_or_failures() {
        for (code, status) in
            [("unknown_method", S::Rejected), ("invalid_params", S::Rejected), ("busy", S::Failed)]
        {
            let mut c = queued();
            c.apply(CommandEvent::Sent(Receipt::Observable), 2_000).unwrap();
            c.apply(CommandEvent::Delivered, 2_000).unwrap();
            assert_eq!(c.apply(error(code), 3_000), Ok(true));
            assert_eq!(c.status, status, "{code}");
            assert_eq!(c.error.as_ref().unwrap().code, code);
        }
    }

    #[test]
    fn accepted_means_delivered_and_changes_nothing_once_delivered() {
        let mut c = queued();
        c.apply(CommandEvent::Sent(Receipt::Observable), 2_000).unwrap();
        assert_eq!(c.apply(CommandEvent::Answered(Reply::Accepted), 2_100), Ok(true));
        assert_eq!(c.status, S::Delivered);
        assert_eq!(c.apply(CommandEvent::Answered(Reply::Accepted), 2_200), Ok(false));
        assert_eq!(c.apply(CommandEvent::Delivered, 2_300), Ok(false), "the PUBACK after it");
        assert_eq!(c.respond_by, Some(12_100));
    }

    #[test]
    fn unobservable_delivery_starts_the_timeout_at_sent() {
        let mut c = queued();
        assert_eq!(c.apply(CommandEvent::Sent(Receipt::Unobservable), 2_000), Ok(true));
        assert_eq!((c.status, c.respond_by, c.delivery_observable), (S::Sent, Some(12_000), false));
        assert_eq!(c.apply(CommandEvent::Due, 11_999), Ok(false));
        assert_eq!(c.apply(CommandEvent::Due, 12_000), Ok(true));
        assert_eq!(c.status, S::TimedOut);
    }

    #[test]
    fn oneway_commands_finish_when_the_device_has_them() {
        let oneway = || Command::new("1".into(), "d".into(), checked(100, 10, true), "a".into(), 0, true);
        let mut c = oneway();
        c.apply(CommandEvent::Sent(Receipt::Observable), 1).unwrap();
        assert_eq!(c.status, S::Sent);
        c.apply(CommandEvent::Delivered, 2).unwrap();
        assert_eq!((c.status, c.finished_at), (S::Succeeded, Some(2)));
        let mut c = oneway();
        c.apply(CommandEvent::Sent(Receipt::Unobservable), 1).unwrap();
        assert_eq!(c.status, S::Succeeded);
    }

    #[test]
    fn deadlines_expire_and_time_out_whichever_comes_first() {
        let mut c = queued();
        assert_eq!(c.apply(CommandEvent::Due, 100_999), Ok(false));
        assert_eq!(c.apply(CommandEvent::Due, 101_000), Ok(true));
        assert_eq!(c.status, S::Expired, "queued past its ttl");

        let mut c = queued();
        c.apply(CommandEvent::Sent(Receipt::Observable), 2_000).unwrap();
        assert_eq!(c.apply(CommandEvent::Due, 101_000), Ok(true));
        assert_eq!(c.status, S::Expired, "sent, never acknowledged");

        let mut c = queued();
        c.apply(CommandEvent::Sent(Receipt::Observable), 2_000).unwrap();
        c.apply(CommandEvent::Delivered, 3_000).unwrap();
        assert_eq!(c.apply(CommandEvent::Due, 13_000), Ok(true));
        assert_eq!(c.status, S::TimedOut);

        // Delivered just before the ttl: the ttl comes first.
        let mut c = queued();
        c.apply(CommandEvent::Sent(Receipt::Observable), 95_000).unwrap();
        c.apply(CommandEvent::Delivered, 95_000).unwrap();
        assert_eq!(c.next_deadline(), Some(101_000));
        assert_eq!(c.apply(CommandEvent::Due, 101_000), Ok(true));
        assert_eq!(c.status, S::Expired);
        assert_eq!(c.apply(CommandEvent::Due, 200_000), Ok(false), "finished ones are never due");
    }

    #[test]
    fn any_unfinished_command_can_be_canceled_and_no_finished_one() {
        for events in [
            vec![],
            vec![CommandEvent::Sent(Receipt::Observable)],
            vec![CommandEvent::Sent(Receipt::Observable), CommandEvent::Delivered],
        ] {
            let mut c = queued();
            for e in events {
                c.apply(e, 2_000).unwrap();
            }
            assert_eq!(c.apply(CommandEvent::Cancel { by: "bob".into() }, 3_000), Ok(true));
            assert_eq!((c.status, c.canceled_by.as_deref()), (S::Canceled, Some("bob")));
            let again = c.apply(CommandEvent::Cancel { by: "bob".into() }, 4_000);
            assert_eq!(again, Err(Illegal { status: S::Canceled, event: "cancel" }));
            assert_eq!(again.unwrap_err().to_string(), "the command is already CANCELED");
        }
    }

    #[test]
    fn illegal_events_change_nothing() {
        let answered = |c: &mut Command| c.apply(ok(json!(1)), 5_000);
        let mut c = queued();
        assert!(answered(&mut c).is_err(), "an answer to a command never sent");
        assert!(c.apply(CommandEvent::Delivered, 5_000).is_err(), "a PUBACK for a command never sent");
        assert_eq!(c, queued());

        let mut done = queued();
        done.apply(CommandEvent::Sent(Receipt::Observable), 2_000).unwrap();
        done.apply(CommandEvent::Delivered, 2_000).unwrap();
        done.apply(CommandEvent::Due, 60_000).unwrap();
        assert_eq!(done.status, S::TimedOut);
        let before = done.clone();
        assert!(answered(&mut done).is_err(), "a late answer leaves TIMED_OUT");
        assert!(done.apply(CommandEvent::Sent(Receipt::Observable), 6_000).is_err());
        assert!(done.apply(CommandEvent::Answered(Reply::Accepted), 6_000).is_err());
        assert_eq!(done, before);
    }

    #[test]
    fn a_send_again_keeps_the_state() {
        let mut c = queued();
        c.apply(CommandEvent::Sent(Receipt::Observable), 2_000).unwrap();
        assert_eq!(c.apply(CommandEvent::Sent(Receipt::Observable), 9_000), Ok(false));
        assert_eq!((c.status, c.sent_at, c.sends), (S::Sent, Some(2_000), 2));
    }

    #[test]
    fn requests_are_checked() {
        let new = |method: &str, params: Value, ttl: Option<u64>, timeout: Option<u64>| {
            NewCommand {
                method: method.into(),
                params: Some(params),
                ttl_secs: ttl,
                timeout_secs: timeout,
                oneway: false,
            }
            .check()
        };
        let c = new("relay.pulse", json!({}), None, None).unwrap();
        assert_eq!((c.ttl_ms, c.timeout_ms), (3_600_000, 30_000));
        assert_eq!(new("a b", json!({}), None, None), Err(Invalid::Method));
        assert_eq!(new("", json!({}), None, None), Err(Invalid::Method));
        assert_eq!(new(&"m".repeat(65), json!({}), None, None), Err(Invalid::Method));
        assert_eq!(new("m", json!([1]), None, None), Err(Invalid::ParamsNotObject));
        let big = json!({"x": "y".repeat(MAX_PARAMS_BYTES)});
        assert!(matches!(new("m", big, None, None), Err(Invalid::ParamsTooLarge(_))));
        assert_eq!(new("m", json!({}), Some(0), None), Err(Invalid::Ttl));
        assert_eq!(new("m", json!({}), Some(MAX_TTL_SECS + 1), None), Err(Invalid::Ttl));
        assert!(new("m", json!({}), Some(MAX_TTL_SECS), Some(MAX_TIMEOUT_SECS)).is_ok());
        assert_eq!(new("m", json!({}), None, Some(MAX_TIMEOUT_SECS + 1)), Err(Invalid::Timeout));
        assert_eq!(new("m", Value::Null, None, None).unwrap().params, Map::new());
        assert!(serde_json::from_str::<NewCommand>(r#"{"method":"m","what":1}"#).is_err(), "unknown fields");
    }

    #[test]
    fn ids_are_short_base32_and_answers_are_read() {
        assert_eq!(command_id(0), "0");
        assert_eq!(command_id(32), "10");
        let now_ms = 1_800_000_000_000u64;
        assert!(command_id(now_ms).len() <= MAX_ID_LEN && valid_id(&command_id(now_ms)));
        assert_eq!(command_id(u64::MAX).len(), MAX_ID_LEN);
        for n in [0, 1, 31, 32, now_ms, (1 << 60) - 1] {
            assert_eq!(id_counter(&command_id(n)), Some(n));
        }
        assert_eq!((id_counter(""), id_counter("w"), id_counter("A")), (None, None, None));
        assert!(!valid_id("") && !valid_id("ABC") && !valid_id("a/b") && !valid_id(&"1".repeat(13)));

        assert_eq!(parse_reply(br#"{"status":"ok","result":{"a":1}}"#), Ok(Reply::Ok(Some(json!({"a":1})))));
        assert_eq!(parse_reply(br#"{"status":"ok"}"#), Ok(Reply::Ok(None)));
        assert_eq!(parse_reply(br#"{"status":"accepted"}"#), Ok(Reply::Accepted));
        let e = parse_reply(br#"{"status":"error","code":"unknown_method","message":"no such"}"#).unwrap();
        assert_eq!(
            e,
            Reply::Error(CommandError { code: "unknown_method".into(), message: Some("no such".into()) })
        );
        assert_eq!(parse_reply(br#"{"status":"error"}"#), Err(ReplyError::BadStatus));
        assert_eq!(parse_reply(br#"{"status":"done"}"#), Err(ReplyError::BadStatus));
        assert_eq!(parse_reply(b"[1]"), Err(ReplyError::NotJson));
        assert_eq!(parse_reply(&vec![b' '; MAX_REPLY_BYTES + 1]), Err(ReplyError::TooLarge));
        let long = format!(r#"{{"status":"error","code":"x","message":"{}"}}"#, "é".repeat(300));
        let Ok(Reply::Error(e)) = parse_reply(long.as_bytes()) else { panic!() };
        assert!(e.message.unwrap().len() <= MAX_MESSAGE_LEN, "cut on a character boundary");
    }

    #[test]
    fn the_payload_says_id_method_params_and_expiry_in_seconds() {
        let c = queued();
        let p: Value = serde_json::from_str(&c.payload()).unwrap();
        assert_eq!(p, json!({"id": "1", "method": "identify", "params": {"secs": 5}, "exp": 101}));
        let wire = serde_json::to_value(&c).unwrap();
        assert_eq!(wire["status"], "QUEUED");
        assert_eq!(serde_json::from_value::<Command>(wire).unwrap(), c);
    }
}
