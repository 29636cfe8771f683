//! The device side of commands and desired state, as a simulated device (and the example
//! firmwares under `simulator/firmware/`) keeps it: no MQTT here, only what arrives and what the
//! device answers, so it is tested without a broker.
//!
//! - A command arrives on `app/device/<id>/cmd/<cmd_id>` as
//!   `{"id":"<cmd_id>","method":"identify","params":{…},"exp":<unix s>}` and is answered on
//!   `app/device/<id>/res/<cmd_id>` (MQTT 5: on its response topic, with its correlation data)
//!   with `{"status":"ok","result":{…}}` or `{"status":"error","code":"…","message":"…"}`.
//! - Effectively once: the device remembers the last [`MEMORY`] ids it executed with their
//!   answers and answers a repeated id from memory without executing it again, so a command the
//!   server sends twice (it re-sends one still unanswered after a reconnect) runs once.
//! - Desired state `{"v":12,"state":{"interval_s":30}}` on `app/device/<id>/desired`: the keys
//!   the device knows are applied, and it reports `{"v":12,"state":{…}}` on
//!   `app/device/<id>/reported`, `v` being the last desired version it applied.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use rand::Rng;
use serde_json::{Map, Value, json};

/// Executed command ids (with their answers) a device remembers: as many as fit a few hundred
/// bytes of an ESP32's RTC memory.
pub const MEMORY: usize = 8;
/// `set_interval`'s and `interval_s`'s bounds, in seconds.
pub const MIN_INTERVAL_S: u64 = 1;
pub const MAX_INTERVAL_S: u64 = 86_400;
/// Larger command or desired messages are ignored unread (the server sends params ≤ 1 KiB).
pub const MAX_MESSAGE: usize = 4096;
/// Command ids and method names: `[A-Za-z0-9_.-]`, 1 to 64 characters.
pub const MAX_NAME: usize = 64;
/// Executed ids the simulator keeps to catch a command executed twice (beyond the device's own
/// memory of [`MEMORY`]), oldest forgotten first.
pub const AUDIT: usize = 10_000;

pub fn cmd_filter(device: &str) -> String {
    format!("app/device/{device}/cmd/+")
}
pub fn res_topic(device: &str, cmd_id: &str) -> String {
    format!("app/device/{device}/res/{cmd_id}")
}
pub fn desired_topic(device: &str) -> String {
    format!("app/device/{device}/desired")
}
pub fn desired_get_topic(device: &str) -> String {
    format!("app/device/{device}/desired/get")
}
pub fn reported_topic(device: &str) -> String {
    format!("app/device/{device}/reported")
}

/// The command id of a topic `app/device/<device>/cmd/<cmd_id>`, if it is one for `device`
/// with a well-formed id.
pub fn cmd_id_of<'a>(device: &str, topic: &'a str) -> Option<&'a str> {
    let id = topic.strip_prefix("app/device/")?.strip_prefix(device)?.strip_prefix("/cmd/")?;
    valid_name(id).then_some(id)
}

fn valid_name(s: &str) -> bool {
    (1..=MAX_NAME).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// How a simulated device misbehaves, for testing the server against it. The default answers
/// at once and always succeeds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Behaviour {
    /// Milliseconds before an answer or report leaves, drawn uniformly from this range.
    pub latency_ms: (u32, u32),
    /// Share of new commands that fail (`{"status":"error","code":"failed"}`) without effect.
    pub failure_rate: f64,
    /// Share of commands and desired messages received and then dropped: not executed, not
    /// remembered, never answered (a later re-delivery draws again).
    pub no_answer_rate: f64,
}

impl Behaviour {
    /// The answer's delay.
    pub fn latency(&self, rng: &mut impl Rng) -> Duration {
        let (lo, hi) = self.latency_ms;
        Duration::from_millis(u64::from(if hi > lo { rng.random_range(lo..=hi) } else { lo }))
    }
}

/// What the device does with a command.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Answer with `body` on the command's response topic.
    Answer { body: String, executed: bool },
    /// Say nothing.
    Ignore(Ignored),
}

#[derive(Debug, PartialEq)]
pub enum Ignored {
    /// Its `exp` has passed.
    Expired,
    /// Not a command of this device's (bad topic, too large, not a JSON object, …).
    Malformed,
    /// Dropped on purpose ([`Behaviour::no_answer_rate`]).
    Silent,
}

/// What happened to commands and desired state on one device, for tests and the summary.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    /// Command messages received (every delivery, repeats included).
    pub received: u64,
    /// Commands executed (answered ok or with an error after running the method).
    pub executed: u64,
    /// Deliveries of an id already executed, answered from memory without executing.
    pub repeated: u64,
    /// Commands ignored because their `exp` had passed.
    pub expired: u64,
    /// Commands and desired messages refused unread or answered `bad_command`.
    pub malformed: u64,
    /// Commands and desired messages dropped without an answer on purpose.
    pub silent: u64,
    /// Ids executed although executed before (beyond the device's memory): must stay 0.
    pub reexecuted: u64,
    /// Desired-state messages applied (wholly or in part).
    pub desired_applied: u64,
    /// Desired-state messages older than the version already applied: not applied.
    pub desired_stale: u64,
}

/// One device's commands and desired state.
pub struct Device {
    behaviour: Behaviour,
    interval_s: u64,
    /// A relay (or LED) a switch can drive: unknown until a desired state sets it.
    relay: Option<bool>,
    /// Last desired version applied; 0 before any.
    desired_v: u64,
    /// The last [`MEMORY`] executed ids with their answers, oldest first.
    memory: VecDeque<(String, String)>,
    /// How often each of the last [`AUDIT`] ids was executed, and their order.
    audit: HashMap<String, u32>,
    audit_order: VecDeque<String>,
    reexecuted_ids: Vec<String>,
    stats: Stats,
}

impl Device {
    pub fn new(behaviour: Behaviour, interval_s: u64) -> Device {
        Device {
            behaviour,
            interval_s: interval_s.clamp(MIN_INTERVAL_S, MAX_INTERVAL_S),
            relay: None,
            desired_v: 0,
            memory: VecDeque::with_capacity(MEMORY),
            audit: HashMap::new(),
            audit_order: VecDeque::new(),
            reexecuted_ids: Vec::new(),
            stats: Stats::default(),
        }
    }

    pub fn behaviour(&self) -> &Behaviour {
        &self.behaviour
    }

    /// Seconds between readings, as commands and desired state last set them.
    pub fn interval_s(&self) -> u64 {
        self.interval_s
    }

    /// The relay, once a command or desired state set it.
    pub fn relay(&self) -> Option<bool> {
        self.relay
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The command `payload` that arrived for id `cmd_id` (from its topic) at Unix second `now`.
    pub fn command(&mut self, cmd_id: &str, payload: &[u8], now: i64, rng: &mut impl Rng) -> Verdict {
        self.stats.received += 1;
        if !valid_name(cmd_id) || payload.len() > MAX_MESSAGE {
            self.stats.malformed += 1;
            return Verdict::Ignore(Ignored::Malformed);
        }
        if let Some((_, body)) = self.memory.iter().find(|(id, _)| id == cmd_id) {
            self.stats.repeated += 1;
            return Verdict::Answer { body: body.clone(), executed: false };
        }
        let cmd = match parse_command(cmd_id, payload) {
            Ok(cmd) => cmd,
            Err(message) => {
                self.stats.malformed += 1;
                let body = error("bad_command", message);
                return Verdict::Answer { body, executed: false };
            }
        };
        if cmd.exp.is_some_and(|exp| exp < now) {
            self.stats.expired += 1;
            return Verdict::Ignore(Ignored::Expired);
        }
        if self.behaviour.no_answer_rate > 0.0 && rng.random_bool(self.behaviour.no_answer_rate.min(1.0)) {
            self.stats.silent += 1;
            return Verdict::Ignore(Ignored::Silent);
        }
        let body =
            if self.behaviour.failure_rate > 0.0 && rng.random_bool(self.behaviour.failure_rate.min(1.0)) {
                error("failed", "simulated failure".into())
            } else {
                self.execute(&cmd.method, &cmd.params)
            };
        self.remember(cmd_id, &body);
        Verdict::Answer { body, executed: true }
    }

    fn execute(&mut self, method: &str, params: &Value) -> String {
        match method {
            "identify" => ok(json!({"blinked": true})),
            "set_interval" => match params.get("secs").and_then(interval) {
                Some(secs) => {
                    self.interval_s = secs;
                    ok(json!({"interval_s": secs}))
                }
                None => error(
                    "invalid_params",
                    format!("secs must be a whole number from {MIN_INTERVAL_S} to {MAX_INTERVAL_S}"),
                ),
            },
            "set_relay" => match params.get("on").and_then(Value::as_bool) {
                Some(on) => {
                    self.relay = Some(on);
                    ok(json!({"on": on}))
                }
                None => error("invalid_params", "on must be true or false".into()),
            },
            _ => error("unknown_method", format!("no method {method}")),
        }
    }

    fn remember(&mut self, cmd_id: &str, body: &str) {
        if self.memory.len() == MEMORY {
            self.memory.pop_front();
        }
        self.memory.push_back((cmd_id.to_owned(), body.to_owned()));
        self.stats.executed += 1;
        let times = self.audit.entry(cmd_id.to_owned()).or_insert(0);
        *times += 1;
        if *times > 1 {
            self.stats.reexecuted += 1;
            if self.reexecuted_ids.len() < 100 {
                self.reexecuted_ids.push(cmd_id.to_owned());
            }
        } else {
            self.audit_order.push_back(cmd_id.to_owned());
            if self.audit_order.len() > AUDIT
                && let Some(old) = self.audit_order.pop_front()
            {
                self.audit.remove(&old);
            }
        }
    }

    /// A desired-state message: the report to publish, if any.
    pub fn desired(&mut self, payload: &[u8], rng: &mut impl Rng) -> Option<String> {
        let Some((v, state)) = parse_desired(payload) else {
            self.stats.malformed += 1;
            return None;
        };
        if self.behaviour.no_answer_rate > 0.0 && rng.random_bool(self.behaviour.no_answer_rate.min(1.0)) {
            self.stats.silent += 1;
            return None;
        }
        if v < self.desired_v {
            // Delivered out of order: the newer one applied stands, and is reported again.
            self.stats.desired_stale += 1;
            return Some(self.reported());
        }
        // A key with a value the device cannot take is left as it is: the report then shows the
        // server the version applied with the value actually in force.
        if let Some(secs) = state.get("interval_s").and_then(interval) {
            self.interval_s = secs;
        }
        if let Some(on) = state.get("relay").and_then(Value::as_bool) {
            self.relay = Some(on);
        }
        self.desired_v = v;
        self.stats.desired_applied += 1;
        Some(self.reported())
    }

    /// `{"v":<last desired version applied>,"state":{…}}`: the state in force.
    pub fn reported(&self) -> String {
        let mut state = Map::new();
        state.insert("interval_s".into(), self.interval_s.into());
        if let Some(on) = self.relay {
            state.insert("relay".into(), on.into());
        }
        format!(r#"{{"v":{},"state":{}}}"#, self.desired_v, Value::Object(state))
    }

    /// This device's line in the simulator's summary.
    pub fn summary(&self, device: &str) -> Value {
        json!({
            "device": device,
            "interval_s": self.interval_s,
            "desired_v": self.desired_v,
            "stats": self.stats,
            "reexecuted_ids": self.reexecuted_ids,
        })
    }
}

struct Command {
    method: String,
    params: Value,
    exp: Option<i64>,
}

fn parse_command(cmd_id: &str, payload: &[u8]) -> Result<Command, String> {
    let Ok(Value::Object(mut o)) = serde_json::from_slice::<Value>(payload) else {
        return Err("not a JSON object".into());
    };
    if o.get("id").and_then(Value::as_str).is_some_and(|id| id != cmd_id) {
        return Err("id differs from the topic's".into());
    }
    let method = match o.remove("method") {
        Some(Value::String(m)) if valid_name(&m) => m,
        _ => return Err("method must be [A-Za-z0-9_.-], 1 to 64 characters".into()),
    };
    let params = o.remove("params").unwrap_or(Value::Object(Map::new()));
    if !params.is_object() {
        return Err("params must be an object".into());
    }
    let exp = match o.get("exp") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| "exp must be Unix seconds".to_string())?),
    };
    Ok(Command { method, params, exp })
}

fn parse_desired(payload: &[u8]) -> Option<(u64, Map<String, Value>)> {
    if payload.len() > MAX_MESSAGE {
        return None;
    }
    let Ok(Value::Object(mut o)) = serde_json::from_slice::<Value>(payload) else {
        return None;
    };
    let v = o.get("v")?.as_u64()?;
    match o.remove("state")? {
        Value::Object(state) => Some((v, state)),
        _ => None,
    }
}

/// A whole number of seconds within the bounds.
fn interval(v: &Value) -> Option<u64> {
    v.as_u64().filter(|s| (MIN_INTERVAL_S..=MAX_INTERVAL_S).contains(s))
}

// Written out by hand to keep the contract's key order (serde_json sorts keys), which small
// firmware parsers and people reading a broker's log both find easier.
fn ok(result: Value) -> String {
    format!(r#"{{"status":"ok","result":{result}}}"#)
}

fn error(code: &str, message: String) -> String {
    format!(r#"{{"status":"error","code":"{code}","message":{}}}"#, Value::String(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const NOW: i64 = 1_800_000_000;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(1)
    }

    fn answer(d: &mut Device, id: &str, payload: &str) -> (Value, bool) {
        match d.command(id, payload.as_bytes(), NOW, &mut rng()) {
            Verdict::Answer { body, executed } => (serde_json::from_str(&body).unwrap(), executed),
            other => panic!("expected an answer to {payload}, got {other:?}"),
        }
    }

    #[test]
    fn identify_answers_ok() {
        let mut d = Device::new(Behaviour::default(), 2);
        let (body, executed) =
            answer(&mut d, "c1", r#"{"id":"c1","method":"identify","params":{},"exp":1800000060}"#);
        assert_eq!(body, json!({"status": "ok", "result": {"blinked": true}}));
        assert!(executed);
        assert_eq!(d.stats().executed, 1);
    }

    #[test]
    fn set_interval_changes_the_interval_within_bounds() {
        let mut d = Device::new(Behaviour::default(), 2);
        let (body, _) = answer(&mut d, "c1", r#"{"id":"c1","method":"set_interval","params":{"secs":30}}"#);
        assert_eq!(body, json!({"status": "ok", "result": {"interval_s": 30}}));
        assert_eq!(d.interval_s(), 30);
        for (id, params) in [
            ("c2", r#"{"secs":0}"#),
            ("c3", r#"{"secs":86401}"#),
            ("c4", r#"{"secs":1.5}"#),
            ("c5", r#"{"secs":"10"}"#),
            ("c6", r#"{}"#),
        ] {
            let payload = format!(r#"{{"id":"{id}","method":"set_interval","params":{params}}}"#);
            let (body, executed) = answer(&mut d, id, &payload);
            assert_eq!(body["status"], "error", "{params}");
            assert_eq!(body["code"], "invalid_params", "{params}");
            assert!(executed, "a refusal is the method's answer, remembered like any");
            assert_eq!(d.interval_s(), 30, "{params} left the interval alone");
        }
        let (body, _) =
            answer(&mut d, "c7", r#"{"id":"c7","method":"set_interval","params":{"secs":86400}}"#);
        assert_eq!(body["status"], "ok");
        assert_eq!(d.interval_s(), 86_400);
    }

    #[test]
    fn an_unknown_method_is_refused_by_name() {
        let mut d = Device::new(Behaviour::default(), 2);
        let (body, _) = answer(&mut d, "c1", r#"{"id":"c1","method":"reboot.now"}"#);
        assert_eq!(body["status"], "error");
        assert_eq!(body["code"], "unknown_method");
        assert_eq!(body["message"], "no method reboot.now");
    }

    #[test]
    fn set_relay_switches_the_relay_and_reports_it() {
        let mut d = Device::new(Behaviour::default(), 2);
        assert_eq!(d.relay(), None);
        let (body, executed) =
            answer(&mut d, "c1", r#"{"id":"c1","method":"set_relay","params":{"on":true}}"#);
        assert_eq!((body, executed), (json!({"status": "ok", "result": {"on": true}}), true));
        assert_eq!(d.relay(), Some(true));
        assert_eq!(serde_json::from_str::<Value>(&d.reported()).unwrap()["state"]["relay"], true);
        let (body, _) = answer(&mut d, "c2", r#"{"id":"c2","method":"set_relay","params":{"on":"yes"}}"#);
        assert_eq!(body["code"], "invalid_params");
        assert_eq!(d.relay(), Some(true), "an unusable value changes nothing");
    }

    #[test]
    fn a_repeated_id_is_answered_from_memory_not_executed_again() {
        let mut d = Device::new(Behaviour::default(), 2);
        let first = answer(&mut d, "c1", r#"{"id":"c1","method":"set_interval","params":{"secs":30}}"#);
        // Changed since by another command: executing c1 again would set 30 again.
        answer(&mut d, "c2", r#"{"id":"c2","method":"set_interval","params":{"secs":60}}"#);
        let again = answer(&mut d, "c1", r#"{"id":"c1","method":"set_interval","params":{"secs":30}}"#);
        assert_eq!(again.0, first.0, "the stored answer");
        assert!(!again.1);
        assert_eq!(d.interval_s(), 60, "not executed again");
        assert_eq!((d.stats().executed, d.stats().repeated, d.stats().reexecuted), (2, 1, 0));
        // Memory holds the last 8: the ninth command after c1 pushes it out, and a delivery of
        // c1 after that runs it again, which the audit catches.
        for i in 3..=10 {
            let id = format!("c{i}");
            answer(&mut d, &id, &format!(r#"{{"id":"{id}","method":"identify"}}"#));
        }
        let late = answer(&mut d, "c1", r#"{"id":"c1","method":"set_interval","params":{"secs":30}}"#);
        assert!(late.1, "forgotten after {MEMORY} newer ids");
        assert_eq!(d.stats().reexecuted, 1);
        assert_eq!(d.summary("D")["reexecuted_ids"], json!(["c1"]));
        // The 8 newest are still remembered.
        let recent = answer(&mut d, "c10", r#"{"id":"c10","method":"identify"}"#);
        assert!(!recent.1);
    }

    #[test]
    fn an_expired_command_is_ignored_but_a_remembered_one_still_answered() {
        let mut d = Device::new(Behaviour::default(), 2);
        let stale =
            format!(r#"{{"id":"c1","method":"set_interval","params":{{"secs":30}},"exp":{}}}"#, NOW - 1);
        assert_eq!(d.command("c1", stale.as_bytes(), NOW, &mut rng()), Verdict::Ignore(Ignored::Expired));
        assert_eq!(d.interval_s(), 2);
        assert_eq!((d.stats().expired, d.stats().executed), (1, 0));
        // exp is the last second it may run in.
        let due = format!(r#"{{"id":"c2","method":"identify","exp":{NOW}}}"#);
        assert!(matches!(
            d.command("c2", due.as_bytes(), NOW, &mut rng()),
            Verdict::Answer { executed: true, .. }
        ));
        // Executed before it expired, its answer was lost: a re-delivery gets the answer.
        let v = d.command("c2", due.as_bytes(), NOW + 10, &mut rng());
        assert!(matches!(v, Verdict::Answer { executed: false, .. }), "{v:?}");
    }

    #[test]
    fn malformed_commands_are_refused_without_running() {
        let mut d = Device::new(Behaviour::default(), 2);
        for (id, payload) in [
            ("c1", "not json"),
            ("c2", "[1]"),
            ("c3", r#"{"id":"other","method":"identify"}"#),
            ("c4", r#"{"id":"c4","method":"a/b"}"#),
            ("c5", r#"{"id":"c5","method":"identify","params":[1]}"#),
            ("c6", r#"{"id":"c6","method":"identify","exp":"soon"}"#),
        ] {
            let (body, executed) = answer(&mut d, id, payload);
            assert_eq!(body["code"], "bad_command", "{payload}");
            assert!(!executed);
        }
        let long = "x".repeat(MAX_NAME + 1);
        assert_eq!(d.command(&long, b"{}", NOW, &mut rng()), Verdict::Ignore(Ignored::Malformed));
        let huge =
            format!(r#"{{"id":"c7","method":"identify","params":{{"p":"{}"}}}}"#, "x".repeat(MAX_MESSAGE));
        assert_eq!(d.command("c7", huge.as_bytes(), NOW, &mut rng()), Verdict::Ignore(Ignored::Malformed));
        assert_eq!((d.stats().malformed, d.stats().executed), (8, 0));
    }

    #[test]
    fn cmd_ids_come_from_the_devices_own_topics() {
        assert_eq!(cmd_id_of("D1", "app/device/D1/cmd/0000000001"), Some("0000000001"));
        assert_eq!(cmd_id_of("D1", "app/device/D2/cmd/0000000001"), None);
        assert_eq!(cmd_id_of("D1", "app/device/D1/cmd/a/b"), None);
        assert_eq!(cmd_id_of("D1", "app/device/D1/cmd/"), None);
        assert_eq!(cmd_id_of("D1", "app/device/D1/desired"), None);
    }

    #[test]
    fn failure_and_no_answer_rates() {
        let always_fail = Behaviour { failure_rate: 1.0, ..Behaviour::default() };
        let mut d = Device::new(always_fail, 2);
        let (body, executed) =
            answer(&mut d, "c1", r#"{"id":"c1","method":"set_interval","params":{"secs":9}}"#);
        assert_eq!(body["code"], "failed");
        assert!(executed);
        assert_eq!(d.interval_s(), 2, "a failed command has no effect");

        let mute = Behaviour { no_answer_rate: 1.0, ..Behaviour::default() };
        let mut d = Device::new(mute, 2);
        let cmd = br#"{"id":"c1","method":"identify"}"#;
        assert_eq!(d.command("c1", cmd, NOW, &mut rng()), Verdict::Ignore(Ignored::Silent));
        assert_eq!(d.command("c1", cmd, NOW, &mut rng()), Verdict::Ignore(Ignored::Silent));
        assert_eq!(d.desired(br#"{"v":1,"state":{"interval_s":5}}"#, &mut rng()), None);
        assert_eq!((d.stats().silent, d.stats().executed, d.interval_s()), (3, 0, 2));

        let half = Behaviour { no_answer_rate: 0.5, ..Behaviour::default() };
        let mut d = Device::new(half, 2);
        let mut r = rng();
        let answered = (0..200)
            .filter(|i| {
                let id = format!("c{i}");
                let cmd = format!(r#"{{"id":"{id}","method":"identify"}}"#);
                matches!(d.command(&id, cmd.as_bytes(), NOW, &mut r), Verdict::Answer { .. })
            })
            .count();
        assert!((60..=140).contains(&answered), "{answered} of 200 answered at a rate of 0.5");

        let slow = Behaviour { latency_ms: (100, 200), ..Behaviour::default() };
        let mut r = rng();
        assert!((0..50).map(|_| slow.latency(&mut r)).all(|l| (100..=200).contains(&l.as_millis())));
        assert_eq!(Behaviour::default().latency(&mut r), Duration::ZERO);
    }

    #[test]
    fn desired_is_applied_and_reported_with_its_version() {
        let mut d = Device::new(Behaviour::default(), 2);
        assert_eq!(d.reported(), r#"{"v":0,"state":{"interval_s":2}}"#);
        let report = d.desired(br#"{"v":12,"state":{"interval_s":30,"colour":"red"}}"#, &mut rng());
        let report: Value = serde_json::from_str(&report.unwrap()).unwrap();
        assert_eq!(report, json!({"v": 12, "state": {"interval_s": 30}}), "unknown keys not reported");
        assert_eq!(d.interval_s(), 30);

        // A value the device cannot take: the version is applied, the value in force reported.
        let report = d.desired(br#"{"v":13,"state":{"interval_s":0,"relay":true}}"#, &mut rng()).unwrap();
        let report: Value = serde_json::from_str(&report).unwrap();
        assert_eq!(report, json!({"v": 13, "state": {"interval_s": 30, "relay": true}}));

        // Older than what is applied: not applied, the current state reported again.
        let report = d.desired(br#"{"v":12,"state":{"interval_s":60}}"#, &mut rng()).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&report).unwrap()["v"], 13);
        assert_eq!(d.interval_s(), 30);
        // The same version again (a reconnect): applied and reported again, harmlessly.
        let report = d.desired(br#"{"v":13,"state":{"interval_s":30,"relay":true}}"#, &mut rng()).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&report).unwrap()["v"], 13);
        assert_eq!((d.stats().desired_applied, d.stats().desired_stale), (3, 1));

        for bad in [&b"nope"[..], br#"{"state":{}}"#, br#"{"v":-1,"state":{}}"#, br#"{"v":1,"state":3}"#] {
            assert_eq!(d.desired(bad, &mut rng()), None);
        }
        assert_eq!(d.stats().malformed, 4);
    }
}
