//! Admission limits, applied to every accepted message before it is queued for storage:
//! a per-device message rate (a token bucket) and caps on how many devices, and how many
//! metrics and attributes per device, the server takes on. Statuses count against both, like readings; a
//! message on a topic that is not a device's is held to its connection's rate. What is over a
//! limit is dropped and counted, never buffered: the state here is one small entry per
//! admitted device (their number is capped) and one per connection sending other topics (as
//! many, at most).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use telemetry::attributes::MAX_ATTRIBUTES;
use telemetry::payload::{DropReason, DroppedMetric};
use telemetry::{DeviceId, DeviceSummary, Message, Rejection};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Sustained messages per second one device may send; 0 means no limit.
    pub device_messages_per_sec: f64,
    /// Messages a device may send at once above its rate (after being quiet).
    pub device_burst: u32,
    /// Devices the server registers; messages from further new devices are refused.
    pub max_devices: usize,
    /// Metric names one device may have; further new names are dropped from its messages.
    pub max_metrics_per_device: usize,
    /// Topics one device (or, on topics that are not a device's, one connection) may keep a
    /// retained message on in the embedded broker, and the bytes of payload they may hold.
    pub max_retained_per_device: usize,
    pub max_retained_bytes_per_device: usize,
    /// Retained messages the embedded broker keeps in all, and their bytes of payload.
    pub max_retained: usize,
    pub max_retained_bytes: usize,
}

/// How a source deals with a device that is over its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// MQTT devices of the embedded broker: one connection's publishes are handled one after
    /// another, so holding the PUBACK back for up to this long slows the device down to its
    /// rate without dropping anything; only what would wait longer is refused.
    Wait(Duration),
    /// No rate limit. HTTP ingest is for backfills, bounded by the request size instead. An
    /// external broker replays what it queued while the server was down as fast as it can, and
    /// that must not be dropped; its in-flight window and our in-order acks bound the buffering.
    Unlimited,
}

/// A token bucket: a sender's rate.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens left; below zero while publishes are being held back.
    tokens: f64,
    refilled: Instant,
}

struct DeviceState {
    bucket: Bucket,
    metrics: HashSet<String>,
    /// Attribute names, at most [`MAX_ATTRIBUTES`].
    attributes: HashSet<String>,
}

pub struct Limits {
    config: LimitsConfig,
    devices: Mutex<HashMap<String, DeviceState>>,
    /// Connections sending messages that are not a device's, by client id.
    clients: Mutex<HashMap<String, Bucket>>,
}

impl Limits {
    /// Starts with the devices (and metrics) already stored, so caps hold across restarts.
    pub fn new(config: LimitsConfig, known: &[DeviceSummary]) -> Limits {
        let now = Instant::now();
        let devices = known
            .iter()
            .map(|d| {
                let metrics = d.metrics.iter().map(|m| m.name.clone()).collect();
                let attributes = d.attributes.iter().map(|a| a.name.clone()).collect();
                let bucket = Bucket { tokens: f64::from(config.device_burst), refilled: now };
                (d.id.clone(), DeviceState { bucket, metrics, attributes })
            })
            .collect();
        Limits { config, devices: Mutex::new(devices), clients: Mutex::default() }
    }

    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    /// Whether the server has taken `device` on.
    pub fn knows(&self, device: &str) -> bool {
        self.lock().contains_key(device)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, DeviceState>> {
        self.devices.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of `device`, taking it on if there is room.
    fn device<'a>(
        &self,
        devices: &'a mut HashMap<String, DeviceState>,
        device: &str,
        now: Instant,
    ) -> Result<&'a mut DeviceState, Rejection> {
        if !devices.contains_key(device) {
            if devices.len() >= self.config.max_devices {
                return Err(Rejection::TooManyDevices(self.config.max_devices));
            }
            let bucket = Bucket { tokens: self.burst(), refilled: now };
            let state = DeviceState { bucket, metrics: HashSet::new(), attributes: HashSet::new() };
            devices.insert(device.to_owned(), state);
        }
        Ok(devices.get_mut(device).expect("present"))
    }

    /// Admits a status (or another message about `device` with no readings): it takes one of
    /// the device's messages, and a place under the device cap if the device is new.
    pub fn admit_device(&self, device: &DeviceId, pace: Pace, now: Instant) -> Result<Duration, Rejection> {
        let mut devices = self.lock();
        let state = self.device(&mut devices, device.as_str(), now)?;
        self.take_token(&mut state.bucket, pace, now)
    }

    /// Admits an attributes message: one of the device's messages, and a place under the
    /// device cap if the device is new. A message that would give the device more than
    /// [`MAX_ATTRIBUTES`] names is refused whole.
    pub fn admit_attributes<'a>(
        &self,
        device: &DeviceId,
        names: impl IntoIterator<Item = &'a str>,
        pace: Pace,
        now: Instant,
    ) -> Result<Duration, Rejection> {
        let mut devices = self.lock();
        let state = self.device(&mut devices, device.as_str(), now)?;
        let wait = self.take_token(&mut state.bucket, pace, now)?;
        let new: Vec<&str> = names.into_iter().filter(|n| !state.attributes.contains(*n)).collect();
        if state.attributes.len() + new.len() > MAX_ATTRIBUTES {
            return Err(Rejection::TooManyAttributes(MAX_ATTRIBUTES));
        }
        state.attributes.extend(new.into_iter().map(str::to_owned));
        Ok(wait)
    }

    /// Admits a message on a topic that is not a device's, at its connection's rate.
    pub fn admit_client(&self, client: &str, pace: Pace, now: Instant) -> Result<Duration, Rejection> {
        if pace == Pace::Unlimited || self.config.device_messages_per_sec <= 0.0 {
            return Ok(Duration::ZERO);
        }
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if !clients.contains_key(client) && clients.len() >= self.config.max_devices {
            // Forget connections whose buckets have refilled: they would start full anyway.
            let refill = self.burst() / self.config.device_messages_per_sec;
            clients.retain(|_, b| now.saturating_duration_since(b.refilled).as_secs_f64() < refill);
            if clients.len() >= self.config.max_devices {
                return Err(Rejection::RateLimited(self.config.device_messages_per_sec));
            }
        }
        let bucket =
            clients.entry(client.to_owned()).or_insert(Bucket { tokens: self.burst(), refilled: now });
        self.take_token(bucket, pace, now)
    }

    /// Admits `message` or says why not. Metrics beyond the device's cap are moved to
    /// `message.dropped`. `Ok` holds how long to wait before storing it (zero unless `Pace::Wait`).
    pub fn admit(&self, message: &mut Message, pace: Pace, now: Instant) -> Result<Duration, Rejection> {
        let mut devices = self.lock();
        let state = self.device(&mut devices, message.device.as_str(), now)?;
        let wait = self.take_token(&mut state.bucket, pace, now)?;
        let cap = self.config.max_metrics_per_device;
        let known = &mut state.metrics;
        let over = message.values.extract_if(.., |(name, _)| {
            !(known.contains(name) || (known.len() < cap && known.insert(name.clone())))
        });
        let over: Vec<_> =
            over.map(|(name, _)| DroppedMetric { name, reason: DropReason::TooManyMetrics }).collect();
        message.dropped.extend(over);
        if message.values.is_empty() {
            return Err(Rejection::TooManyMetrics(cap));
        }
        Ok(wait)
    }

    fn burst(&self) -> f64 {
        f64::from(self.config.device_burst.max(1))
    }

    fn take_token(&self, state: &mut Bucket, pace: Pace, now: Instant) -> Result<Duration, Rejection> {
        let rate = self.config.device_messages_per_sec;
        let Pace::Wait(max_wait) = pace else { return Ok(Duration::ZERO) };
        if rate <= 0.0 {
            return Ok(Duration::ZERO);
        }
        let elapsed = now.saturating_duration_since(state.refilled).as_secs_f64();
        state.tokens = (state.tokens + elapsed * rate).min(self.burst());
        state.refilled = now;
        let max_wait = max_wait.as_secs_f64();
        // Taking the token leaves `tokens - 1`; below zero, the message waits until it refills.
        let left = state.tokens - 1.0;
        let wait = if left >= 0.0 { 0.0 } else { -left / rate };
        if wait > max_wait {
            return Err(Rejection::RateLimited(rate));
        }
        state.tokens = left;
        Ok(Duration::from_secs_f64(wait))
    }

    /// Forgets a deleted device, freeing its place under the device cap.
    pub fn forget(&self, device: &str) {
        self.lock().remove(device);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::DeviceId;

    fn config(rate: f64, burst: u32, devices: usize, metrics: usize) -> LimitsConfig {
        LimitsConfig {
            device_messages_per_sec: rate,
            device_burst: burst,
            max_devices: devices,
            max_metrics_per_device: metrics,
            max_retained_per_device: 16,
            max_retained_bytes_per_device: 16_384,
            max_retained: 100_000,
            max_retained_bytes: 64 << 20,
        }
    }

    fn msg(device: &str, metrics: &[&str]) -> Message {
        Message::new(DeviceId::try_from(device).unwrap(), 0, metrics.iter().map(|m| (*m, 1.0)))
    }

    #[test]
    fn a_device_has_at_most_its_share_of_attribute_names() {
        let limits = Limits::new(config(0.0, 10, 2, 4), &[]);
        let (d, now) = (DeviceId::try_from("d").unwrap(), Instant::now());
        let names: Vec<String> = (0..MAX_ATTRIBUTES).map(|i| format!("a{i}")).collect();
        let names = || names.iter().map(String::as_str);
        assert!(limits.admit_attributes(&d, names().take(30), Pace::Unlimited, now).is_ok());
        assert!(limits.admit_attributes(&d, names(), Pace::Unlimited, now).is_ok(), "32 in all");
        assert!(limits.admit_attributes(&d, names().rev(), Pace::Unlimited, now).is_ok(), "known ones again");
        assert_eq!(
            limits.admit_attributes(&d, ["one_more"], Pace::Unlimited, now),
            Err(Rejection::TooManyAttributes(MAX_ATTRIBUTES))
        );
        // Another device has its own, and takes a place under the device cap.
        assert!(
            limits.admit_attributes(&DeviceId::try_from("e").unwrap(), ["fw"], Pace::Unlimited, now).is_ok()
        );
        assert_eq!(
            limits.admit_attributes(&DeviceId::try_from("f").unwrap(), ["fw"], Pace::Unlimited, now),
            Err(Rejection::TooManyDevices(2))
        );
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let limits = Limits::new(config(10.0, 3, 100, 100), &[]);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(
                limits.admit(&mut msg("a", &["t"]), Pace::Wait(Duration::ZERO), t0),
                Ok(Duration::ZERO)
            );
        }
        assert_eq!(
            limits.admit(&mut msg("a", &["t"]), Pace::Wait(Duration::ZERO), t0),
            Err(Rejection::RateLimited(10.0))
        );
        // Another device has its own bucket.
        assert!(limits.admit(&mut msg("b", &["t"]), Pace::Wait(Duration::ZERO), t0).is_ok());
        // 100 ms later one token is back.
        let t1 = t0 + Duration::from_millis(100);
        assert!(limits.admit(&mut msg("a", &["t"]), Pace::Wait(Duration::ZERO), t1).is_ok());
        assert!(limits.admit(&mut msg("a", &["t"]), Pace::Wait(Duration::ZERO), t1).is_err());
    }

    #[test]
    fn waiting_sources_are_paced_and_refused_only_beyond_the_wait() {
        let limits = Limits::new(config(10.0, 1, 100, 100), &[]);
        let t0 = Instant::now();
        let pace = Pace::Wait(Duration::from_millis(250));
        assert_eq!(limits.admit(&mut msg("a", &["t"]), pace, t0), Ok(Duration::ZERO));
        assert_eq!(limits.admit(&mut msg("a", &["t"]), pace, t0), Ok(Duration::from_millis(100)));
        assert_eq!(limits.admit(&mut msg("a", &["t"]), pace, t0), Ok(Duration::from_millis(200)));
        assert!(limits.admit(&mut msg("a", &["t"]), pace, t0).is_err(), "300 ms is over the wait");
        assert!(limits.admit(&mut msg("a", &["t"]), Pace::Unlimited, t0).is_ok());
    }

    #[test]
    fn device_and_metric_caps_hold_and_known_devices_count() {
        let known: DeviceSummary = serde_json::from_value(serde_json::json!({
            "id": "old", "first_seen": 0, "last_seen": 0, "status": null, "message_count": 1,
            "metrics": [{"name": "t", "value": 1.0, "ts": 0}]
        }))
        .unwrap();
        let limits = Limits::new(config(0.0, 1, 2, 2), &[known]);
        let now = Instant::now();
        assert!(limits.admit(&mut msg("new", &["t"]), Pace::Wait(Duration::ZERO), now).is_ok());
        assert_eq!(
            limits.admit(&mut msg("third", &["t"]), Pace::Wait(Duration::ZERO), now),
            Err(Rejection::TooManyDevices(2))
        );
        let mut m = msg("old", &["a", "b", "t"]);
        assert!(limits.admit(&mut m, Pace::Wait(Duration::ZERO), now).is_ok());
        assert_eq!(m.values.iter().map(|v| v.0.as_str()).collect::<Vec<_>>(), ["a", "t"]);
        assert_eq!(m.dropped, [DroppedMetric { name: "b".into(), reason: DropReason::TooManyMetrics }]);
        assert_eq!(
            limits.admit(&mut msg("old", &["c"]), Pace::Wait(Duration::ZERO), now),
            Err(Rejection::TooManyMetrics(2))
        );
        limits.forget("new");
        assert!(
            limits.admit(&mut msg("third", &["t"]), Pace::Wait(Duration::ZERO), now).is_ok(),
            "a deleted device frees a place"
        );
    }

    #[test]
    fn statuses_take_a_message_and_a_place_under_the_device_cap() {
        let limits = Limits::new(config(10.0, 1, 1, 8), &[]);
        let now = Instant::now();
        let pace = Pace::Wait(Duration::ZERO);
        let a = DeviceId::try_from("a").unwrap();
        assert_eq!(limits.admit_device(&a, pace, now), Ok(Duration::ZERO));
        assert!(limits.knows("a"));
        assert_eq!(limits.admit_device(&a, pace, now), Err(Rejection::RateLimited(10.0)));
        let b = DeviceId::try_from("b").unwrap();
        assert_eq!(limits.admit_device(&b, pace, now), Err(Rejection::TooManyDevices(1)));
        assert!(!limits.knows("b"), "a refused status registers nothing");
    }

    #[test]
    fn other_topics_are_held_to_their_connection_rate() {
        let limits = Limits::new(config(10.0, 2, 2, 8), &[]);
        let now = Instant::now();
        let pace = Pace::Wait(Duration::ZERO);
        assert!(limits.admit_client("c1", pace, now).is_ok());
        assert!(limits.admit_client("c1", pace, now).is_ok());
        assert_eq!(limits.admit_client("c1", pace, now), Err(Rejection::RateLimited(10.0)));
        assert!(limits.admit_client("c1", Pace::Unlimited, now).is_ok());
        assert!(!limits.knows("c1"), "a connection is not a device");
        assert!(limits.admit_client("c2", pace, now).is_ok());
        assert!(limits.admit_client("c3", pace, now).is_err(), "connections are bounded too");
        let later = now + Duration::from_secs(1);
        assert!(limits.admit_client("c3", pace, later).is_ok(), "refilled ones are forgotten");
    }
}
