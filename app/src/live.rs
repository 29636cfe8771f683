//! Live state: what `/ws/live` has said since the page loaded, merged over what the server
//! rendered. Updates are applied once per animation frame, so a burst of readings costs one
//! re-render, not one per reading.

use std::collections::BTreeMap;

use leptos::prelude::*;
use telemetry::{DeviceStatus, DeviceSummary, LiveEvent, MetricLatest, Millis};

/// The connection to `/ws/live`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Not started (server render) or connecting.
    Connecting,
    Open,
    /// Lost; reconnecting with back-off.
    Reconnecting,
}

/// What the feed said about one device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveDevice {
    pub last_seen: Millis,
    /// metric → (value, reading time)
    pub values: BTreeMap<String, (f64, Millis)>,
    pub status: Option<DeviceStatus>,
    pub readings: u64,
}

/// Live state shared by every page (a context).
#[derive(Clone, Copy)]
pub struct Live {
    pub devices: RwSignal<BTreeMap<String, LiveDevice>>,
    pub connection: RwSignal<Connection>,
    /// Bumped when the feed says this client missed events: pages reload their data.
    pub resyncs: RwSignal<u32>,
    /// The browser's clock, ticking each second once hydrated; `None` on the server.
    pub now: RwSignal<Option<Millis>>,
}

impl Live {
    pub fn new() -> Live {
        Live {
            devices: RwSignal::new(BTreeMap::new()),
            connection: RwSignal::new(Connection::Connecting),
            resyncs: RwSignal::new(0),
            now: RwSignal::new(None),
        }
    }

    /// True after hydration: times may then be shown in the browser's zone.
    pub fn hydrated(&self) -> bool {
        self.now.get().is_some()
    }

    /// Applies a batch of events.
    pub fn apply(&self, events: Vec<LiveEvent>) {
        let mut resync = false;
        self.devices.update(|devices| {
            for e in events {
                resync |= matches!(e, LiveEvent::Resync { .. });
                apply(devices, e);
            }
        });
        if resync {
            self.resyncs.update(|n| *n += 1);
        }
    }
}

impl Default for Live {
    fn default() -> Self {
        Live::new()
    }
}

/// Folds one event into the live map.
pub fn apply(devices: &mut BTreeMap<String, LiveDevice>, event: LiveEvent) {
    match event {
        LiveEvent::Reading { device, ts, received, values } => {
            let d = devices.entry(device).or_default();
            d.last_seen = d.last_seen.max(received);
            d.readings += 1;
            for (name, v) in values {
                let slot = d.values.entry(name).or_insert((v, ts));
                if ts >= slot.1 {
                    *slot = (v, ts);
                }
            }
        }
        LiveEvent::Status { device, online, at } => {
            let d = devices.entry(device).or_default();
            if d.status.is_none_or(|s| at >= s.at) {
                d.status = Some(DeviceStatus { online, at });
            }
        }
        LiveEvent::Hello { .. } | LiveEvent::Resync { .. } => {}
    }
}

/// The server's device list updated with everything newer from the live feed. A device the
/// server did not know yet appears once it has sent a reading.
pub fn merge(base: &[DeviceSummary], live: &BTreeMap<String, LiveDevice>) -> BTreeMap<String, DeviceSummary> {
    let mut out: BTreeMap<String, DeviceSummary> = base.iter().map(|d| (d.id.clone(), d.clone())).collect();
    for (id, l) in live {
        let d = match out.get_mut(id) {
            Some(d) => d,
            None if l.readings > 0 => out.entry(id.clone()).or_insert_with(|| DeviceSummary {
                id: id.clone(),
                first_seen: l.last_seen,
                last_seen: l.last_seen,
                status: None,
                message_count: 0,
                metrics: Vec::new(),
            }),
            None => continue,
        };
        d.last_seen = d.last_seen.max(l.last_seen);
        d.message_count += l.readings;
        if let Some(s) = l.status
            && d.status.is_none_or(|old| s.at >= old.at)
        {
            d.status = Some(s);
        }
        for (name, (value, ts)) in &l.values {
            match d.metrics.iter_mut().find(|m| &m.name == name) {
                Some(m) if *ts >= m.ts => {
                    m.value = *value;
                    m.ts = *ts;
                }
                Some(_) => {}
                None => d.metrics.push(MetricLatest { name: name.clone(), value: *value, ts: *ts }),
            }
        }
        d.metrics.sort_by(|a, b| a.name.cmp(&b.name));
    }
    out
}

/// Starts the clock and the `/ws/live` connection (browser only).
#[cfg(feature = "hydrate")]
pub fn start(live: Live) {
    use std::time::Duration;
    live.now.set(Some(js_sys_now()));
    let _ = set_interval_with_handle(move || live.now.set(Some(js_sys_now())), Duration::from_secs(1));
    socket::connect(live, 0);
}

#[cfg(feature = "hydrate")]
fn js_sys_now() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(feature = "hydrate")]
mod socket {
    //! The browser side of `/ws/live`: reconnects with exponential back-off and jitter.

    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    use leptos::prelude::*;
    use telemetry::LiveEvent;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use web_sys::{CloseEvent, MessageEvent, WebSocket};

    use super::{Connection, Live};

    pub fn connect(live: Live, attempt: u32) {
        let Some(window) = web_sys::window() else { return };
        let location = window.location();
        let scheme = if location.protocol().ok().as_deref() == Some("https:") { "wss" } else { "ws" };
        let host = location.host().unwrap_or_default();
        let Ok(ws) = WebSocket::new(&format!("{scheme}://{host}/ws/live")) else {
            retry(live, attempt);
            return;
        };
        let pending: Rc<RefCell<Vec<LiveEvent>>> = Rc::default();

        let on_open = Closure::<dyn FnMut()>::new(move || live.connection.set(Connection::Open));
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let Some(text) = e.data().as_string() else { return };
            let Ok(event) = serde_json::from_str::<LiveEvent>(&text) else { return };
            let first = {
                let mut p = pending.borrow_mut();
                p.push(event);
                p.len() == 1
            };
            if first {
                let pending = pending.clone();
                request_animation_frame(move || live.apply(std::mem::take(&mut *pending.borrow_mut())));
            }
        });
        let opened_at = js_sys::Date::now();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |_: CloseEvent| {
            live.connection.set(Connection::Reconnecting);
            // A connection that lived a while resets the back-off.
            let attempt = if js_sys::Date::now() - opened_at > 30_000.0 { 0 } else { attempt + 1 };
            retry(live, attempt);
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        // The handlers live as long as the socket; one set per connection.
        on_open.forget();
        on_message.forget();
        on_close.forget();
    }

    fn retry(live: Live, attempt: u32) {
        let base = 500.0 * 2f64.powi(attempt.min(6) as i32);
        let delay = base.min(30_000.0) * (0.5 + js_sys::Math::random() * 0.5);
        set_timeout(move || connect(live, attempt), Duration::from_millis(delay as u64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, last_seen: Millis, metrics: &[(&str, f64, Millis)]) -> DeviceSummary {
        DeviceSummary {
            id: id.into(),
            first_seen: 0,
            last_seen,
            status: None,
            message_count: 1,
            metrics: metrics
                .iter()
                .map(|(n, v, t)| MetricLatest { name: (*n).into(), value: *v, ts: *t })
                .collect(),
        }
    }

    fn reading(device: &str, ts: Millis, values: &[(&str, f64)]) -> LiveEvent {
        LiveEvent::Reading {
            device: device.into(),
            ts,
            received: ts + 1,
            values: values.iter().map(|(n, v)| ((*n).into(), *v)).collect(),
        }
    }

    #[test]
    fn live_readings_update_values_and_add_new_devices() {
        let base = vec![summary("a", 100, &[("t", 20.0, 100), ("h", 50.0, 100)])];
        let mut live = BTreeMap::new();
        apply(&mut live, reading("a", 200, &[("t", 21.0), ("battery", 3.9)]));
        apply(&mut live, reading("new", 300, &[("t", 5.0)]));
        apply(&mut live, LiveEvent::Status { device: "ghost".into(), online: true, at: 5 });
        let merged = merge(&base, &live);
        assert_eq!(merged.keys().collect::<Vec<_>>(), ["a", "new"]);
        let a = &merged["a"];
        assert_eq!(a.last_seen, 201);
        assert_eq!(a.message_count, 2);
        let values: Vec<_> = a.metrics.iter().map(|m| (m.name.as_str(), m.value)).collect();
        assert_eq!(values, [("battery", 3.9), ("h", 50.0), ("t", 21.0)]);
        assert_eq!(merged["new"].metric("t").map(|m| m.value), Some(5.0));
    }

    #[test]
    fn older_live_readings_do_not_override_newer_server_values() {
        let base = vec![summary("a", 500, &[("t", 30.0, 500)])];
        let mut live = BTreeMap::new();
        apply(&mut live, reading("a", 100, &[("t", 1.0)]));
        assert_eq!(merge(&base, &live)["a"].metric("t").map(|m| m.value), Some(30.0));
    }

    #[test]
    fn status_events_mark_devices_offline() {
        let base = vec![summary("a", 100, &[("t", 1.0, 100)])];
        let mut live = BTreeMap::new();
        apply(&mut live, LiveEvent::Status { device: "a".into(), online: false, at: 150 });
        let a = &merge(&base, &live)["a"];
        assert_eq!(a.health(160), telemetry::device::Health::Offline);
    }
}
