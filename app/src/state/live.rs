//! Live state: what `/ws/live` (and, after a gap, the changes feed) said since the page loaded,
//! merged over what the server rendered and what the offline cache remembered. Updates are
//! applied once per animation frame, so a burst of readings costs one re-render, not one per
//! reading.
//!
//! This is state only: the browser side (`crate::browser`) feeds it and keeps it offline.
//!
//! Every change carries a sequence number. The client keeps the highest it has applied (its
//! high-water mark) and, whenever it reconnects, fetches only the changes after it, so nothing
//! is missed and nothing is counted twice.

use std::collections::BTreeMap;

use leptos::prelude::*;
use telemetry::alarm::Alarm;
use telemetry::attributes::{AttrValue, Attribute, DeviceEvent, MAX_DEVICE_EVENTS};
use telemetry::tags::Tags;
use telemetry::{DeviceStatus, DeviceSummary, LiveEvent, MetricLatest, Millis, Refused};

/// The connection to `/ws/live`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Not started (server render) or connecting for the first time.
    Connecting,
    Open,
    /// Lost or refused: offline until it reconnects (with back-off).
    Reconnecting,
}

/// What the feed (or the offline cache) said about one device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveDevice {
    pub last_seen: Millis,
    /// metric → (value, reading time)
    pub values: BTreeMap<String, (f64, Millis)>,
    pub status: Option<DeviceStatus>,
    /// Readings applied since the page loaded.
    pub readings: u64,
    /// Known from the offline cache (so shown even without a reading this session).
    pub cached: bool,
    /// What the feed last said about the device being refused: `Some(None)` when it stopped.
    pub refused: Option<Option<Refused>>,
    /// Its tags as the feed (or a newer cache) last said.
    pub tags: Option<Tags>,
    /// Attributes the feed (or the cache) said changed: name → (value, when it changed).
    pub attributes: BTreeMap<String, (AttrValue, Millis)>,
    /// Its events the feed brought, with their change numbers, newest first (at most
    /// [`MAX_DEVICE_EVENTS`]).
    pub events: Vec<(u64, DeviceEvent)>,
    /// Its connections the feed brought (begun, ended or refused), newest first, one per
    /// `connected_at` (at most [`telemetry::connections::MAX_LOGGED`]).
    pub connections: Vec<telemetry::connections::Connection>,
}

/// Live state shared by every page (a context).
#[derive(Clone, Copy)]
pub struct Live {
    pub devices: RwSignal<BTreeMap<String, LiveDevice>>,
    pub connection: RwSignal<Connection>,
    /// The browser's clock, ticking each second once hydrated; `None` on the server.
    pub now: RwSignal<Option<Millis>>,
    /// Whether `now` has started: changes once, so what depends on it does not re-run each second.
    hydrated: Memo<bool>,
    /// Time of the newest data shown, for "data as of" when offline.
    pub data_as_of: RwSignal<Option<Millis>>,
    /// Highest change sequence number applied.
    pub hwm: StoredValue<u64>,
    /// The server's device list as last rendered or fetched (what the cache is merged over).
    pub base: StoredValue<Vec<DeviceSummary>>,
    /// Why the offline cache cannot be used, if it cannot (private mode, storage refused).
    pub cache_problem: RwSignal<Option<String>>,
    /// The changes applied last, for views that fold them into their own data (charts), and
    /// for the offline cache, which saves soon after each batch. Views read it when their
    /// effects run, so at most one batch may be set per turn of the event loop: a second one
    /// would replace the first unseen.
    pub batch: RwSignal<Vec<LiveEvent>>,
    /// Alarms by id as the server last said: the active ones (the header's badge counts the
    /// unacknowledged), and the latest [`KEPT_CLEARED`] cleared (so charts end their bands,
    /// and older news of them cannot bring them back).
    pub alarms: RwSignal<BTreeMap<String, Alarm>>,
    /// The change as of which `alarms` lists every active, unacknowledged alarm (0: not known
    /// to): a list as of an earlier change (a page from the offline cache, say) cannot bring
    /// back what a later one left out.
    pub alarms_as_of: StoredValue<u64>,
    /// The device whose connection log a page shows: the only one whose live connection news
    /// is kept (every device's would add up without bound on a busy fleet).
    connections_of: StoredValue<Option<String>>,
    /// Desired and reported state of the devices a dashboard's controls drive.
    pub shadows: super::shadows::Shadows,
}

impl Live {
    pub fn new() -> Live {
        let now = RwSignal::new(None);
        Live {
            devices: RwSignal::new(BTreeMap::new()),
            connection: RwSignal::new(Connection::Connecting),
            now,
            hydrated: Memo::new(move |_| now.with(Option::is_some)),
            data_as_of: RwSignal::new(None),
            hwm: StoredValue::new(0),
            base: StoredValue::new(Vec::new()),
            cache_problem: RwSignal::new(None),
            batch: RwSignal::new(Vec::new()),
            alarms: RwSignal::new(BTreeMap::new()),
            alarms_as_of: StoredValue::new(0),
            connections_of: StoredValue::new(None),
            shadows: super::shadows::Shadows::default(),
        }
    }

    /// Keeps live connection news for `device` only (`None`: for none), forgetting the rest.
    pub fn watch_connections(&self, device: Option<String>) {
        self.connections_of.set_value(device.clone());
        self.devices.maybe_update(|devices| {
            let mut forgot = false;
            for (id, d) in devices.iter_mut() {
                if Some(id) != device.as_ref() && !d.connections.is_empty() {
                    d.connections.clear();
                    forgot = true;
                }
            }
            forgot
        });
    }

    /// True after hydration: times may then be shown in the browser's zone.
    pub fn hydrated(&self) -> bool {
        self.hydrated.get()
    }

    /// True when the live feed is down after hydration: values may be stale.
    pub fn offline(&self) -> bool {
        self.hydrated() && self.connection.get() == Connection::Reconnecting
    }

    /// Records server data a page received: `devices` are current to `last_seq`.
    pub fn seed(&self, last_seq: u64, devices: &[DeviceSummary]) {
        // Tags carry no time: the server's are the newest when its list is current to every
        // change applied here (a feed event at or below the mark would be skipped).
        if last_seq >= self.hwm.get_value() {
            self.devices.maybe_update(|live| {
                let mut forgot = false;
                for d in devices {
                    if let Some(l) = live.get_mut(&d.id) {
                        forgot |= l.tags.take().is_some();
                    }
                }
                forgot
            });
        }
        self.hwm.update_value(|h| *h = (*h).max(last_seq));
        self.base.update_value(|base| {
            for d in devices {
                match base.iter_mut().find(|b| b.id == d.id) {
                    Some(b) => *b = d.clone(),
                    None => base.push(d.clone()),
                }
            }
        });
        let newest = devices.iter().map(|d| d.last_seen).max();
        self.note_data_time(newest);
    }

    fn note_data_time(&self, t: Option<Millis>) {
        if let Some(t) = t
            && self.data_as_of.get_untracked().is_none_or(|old| t > old)
        {
            self.data_as_of.set(Some(t));
        }
    }

    /// Applies changes in order, skipping any at or below the high-water mark (already seen).
    pub fn apply(&self, events: Vec<LiveEvent>) {
        let hwm = self.hwm.get_value();
        let fresh: Vec<LiveEvent> = events.into_iter().filter(|e| e.seq().is_none_or(|s| s > hwm)).collect();
        if fresh.is_empty() {
            return;
        }
        let top = fresh.iter().filter_map(LiveEvent::seq).max().unwrap_or(hwm);
        self.hwm.set_value(top.max(hwm));
        let newest = fresh
            .iter()
            .filter_map(|e| match e {
                LiveEvent::Reading { received, .. } => Some(*received),
                _ => None,
            })
            .max();
        let watched = self.connections_of.get_value();
        self.devices.update(|devices| {
            for e in &fresh {
                if let LiveEvent::Connection { device, .. } = e
                    && watched.as_ref() != Some(device)
                {
                    continue;
                }
                apply(devices, e.clone());
            }
        });
        if fresh.iter().any(|e| matches!(e, LiveEvent::Alarm { .. })) {
            self.alarms.update(|alarms| {
                for e in &fresh {
                    if let LiveEvent::Alarm { alarm, .. } = e {
                        note_alarm(alarms, alarm.clone());
                    }
                }
            });
        }
        self.shadows.apply(&fresh);
        self.batch.set(fresh);
        self.note_data_time(newest);
    }

    /// Records the active, unacknowledged alarms the server listed (the header badge's start),
    /// current to at least `last_seq` (every one of them, unless there were `more`): newer news
    /// of each alarm wins (see [`merge_alarms`]). The mark is taken only if nothing set one (no
    /// page data), so changes after it are fetched on connecting; a page's own data keeps its
    /// own mark.
    pub fn seed_alarms(&self, last_seq: u64, alarms: Vec<Alarm>, more: bool) {
        self.hwm.update_value(|h| {
            if *h == 0 {
                *h = last_seq;
            }
        });
        self.merge_alarms(if more { 0 } else { last_seq }, alarms);
    }

    /// Overlays the alarms the offline cache remembered, which listed every active,
    /// unacknowledged one as of `as_of` (0: not every one).
    pub fn restore_alarms(&self, as_of: u64, alarms: Vec<Alarm>) {
        self.merge_alarms(as_of, alarms);
    }

    fn merge_alarms(&self, as_of: u64, alarms: Vec<Alarm>) {
        let mut known_as_of = self.alarms_as_of.get_value();
        self.alarms.update(|known| merge_alarms(known, &mut known_as_of, as_of, alarms));
        self.alarms_as_of.set_value(known_as_of);
    }

    /// Overlays what the offline cache remembered (newer values win, per metric).
    pub fn restore(&self, hwm: u64, devices: Vec<DeviceSummary>) {
        // Tags carry no time of their own: the cache's win if it is newer than the page.
        let newer = hwm > self.hwm.get_value();
        self.hwm.update_value(|h| *h = (*h).max(hwm));
        let newest = devices.iter().map(|d| d.last_seen).max();
        self.devices.update(|live| {
            for d in devices {
                let l = live.entry(d.id.clone()).or_default();
                l.cached = true;
                if newer {
                    l.tags = Some(d.tags.clone());
                }
                l.last_seen = l.last_seen.max(d.last_seen);
                if let Some(s) = d.status
                    && l.status.is_none_or(|old| s.at > old.at)
                {
                    l.status = Some(s);
                }
                for m in d.metrics {
                    let slot = l.values.entry(m.name).or_insert((m.value, m.ts));
                    if m.ts > slot.1 {
                        *slot = (m.value, m.ts);
                    }
                }
                for a in d.attributes {
                    let slot = l.attributes.entry(a.name).or_insert((a.value.clone(), a.changed_at));
                    if a.changed_at > slot.1 {
                        *slot = (a.value, a.changed_at);
                    }
                }
            }
        });
        self.note_data_time(newest);
    }

    /// Everything known now: the server's list with the live and cached overlay.
    pub fn snapshot(&self) -> BTreeMap<String, DeviceSummary> {
        self.base.with_value(|base| self.devices.with_untracked(|l| merge(base, l)))
    }
}

impl Default for Live {
    fn default() -> Self {
        Live::new()
    }
}

/// Merges `list`, which holds every active, unacknowledged alarm as of change `as_of` (0: not
/// every one), into `known`, which does as of `*known_as_of`. A list as new or newer is taken
/// whole: a known alarm it leaves out that was active and unacknowledged by `as_of` no longer
/// is (acknowledged or cleared since: it is forgotten). From an older list only news of known
/// alarms, or of changes after `*known_as_of`, is taken. Either way newer news wins.
pub fn merge_alarms(
    known: &mut BTreeMap<String, Alarm>,
    known_as_of: &mut u64,
    as_of: u64,
    list: Vec<Alarm>,
) {
    if as_of > 0 && as_of >= *known_as_of {
        let listed: std::collections::BTreeSet<&str> = list.iter().map(|a| a.id.as_str()).collect();
        known.retain(|id, a| !(a.active && !a.acked && a.seq <= as_of) || listed.contains(id.as_str()));
        *known_as_of = as_of;
        for alarm in list {
            note_alarm(known, alarm);
        }
    } else {
        for alarm in list {
            if known.contains_key(&alarm.id) || alarm.seq > *known_as_of {
                note_alarm(known, alarm);
            }
        }
    }
}

/// Cleared alarms [`Live::alarms`] keeps at most.
pub const KEPT_CLEARED: usize = 200;

/// Keeps the latest news of `alarm`: older news than what is known (a lower `seq`) changes
/// nothing. Past [`KEPT_CLEARED`] cleared alarms, the one cleared longest ago is forgotten.
pub fn note_alarm(alarms: &mut BTreeMap<String, Alarm>, alarm: Alarm) {
    if alarms.get(&alarm.id).is_some_and(|known| known.seq > alarm.seq) {
        return;
    }
    let cleared = !alarm.active;
    alarms.insert(alarm.id.clone(), alarm);
    if cleared {
        let mut old: Vec<(u64, String)> =
            alarms.values().filter(|a| !a.active).map(|a| (a.seq, a.id.clone())).collect();
        if old.len() > KEPT_CLEARED {
            let extra = old.len() - KEPT_CLEARED;
            old.sort_unstable();
            for (_, id) in old.into_iter().take(extra) {
                alarms.remove(&id);
            }
        }
    }
}

/// Folds one event into the live map.
pub fn apply(devices: &mut BTreeMap<String, LiveDevice>, event: LiveEvent) {
    match event {
        LiveEvent::Reading { device, ts, received, values, .. } => {
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
        LiveEvent::Status { device, online, at, session, .. } => {
            let d = devices.entry(device).or_default();
            if d.status.is_none_or(|s| at >= s.at) {
                let session = session.or(d.status.and_then(|s| s.session));
                d.status = Some(DeviceStatus { online, at, session });
            }
        }
        LiveEvent::Refused { device, refused } => devices.entry(device).or_default().refused = Some(refused),
        LiveEvent::Tags { device, tags, .. } => devices.entry(device).or_default().tags = Some(tags),
        LiveEvent::Attributes { device, at, values, .. } => {
            let d = devices.entry(device).or_default();
            for (name, value) in values {
                let slot = d.attributes.entry(name).or_insert((value.clone(), at));
                if at >= slot.1 {
                    *slot = (value, at);
                }
            }
        }
        LiveEvent::Event { seq, event } => {
            let d = devices.entry(event.device.clone()).or_default();
            d.events.insert(0, (seq, event));
            d.events.truncate(MAX_DEVICE_EVENTS);
        }
        LiveEvent::Connection { device, connection } => {
            let log = &mut devices.entry(device).or_default().connections;
            log.retain(|c| c.connected_at != connection.connected_at);
            let at = log.partition_point(|c| c.connected_at > connection.connected_at);
            log.insert(at, connection);
            log.truncate(telemetry::connections::MAX_LOGGED);
        }
        // Alarms are not a device's state: `Live::alarms` holds them.
        LiveEvent::Alarm { .. } => {}
        // Not a device's state: the device page's commands take them from `Live::batch`.
        LiveEvent::Command { .. } => {}
        // Not a device summary's either: `Live::shadows` holds those of watched devices.
        LiveEvent::Desired { .. } => {}
        LiveEvent::Hello { .. } | LiveEvent::Resync { .. } => {}
    }
}

/// The server's device list updated with everything newer from the live feed and the cache.
/// A device the server did not list appears once it has sent a reading (or was cached).
pub fn merge(base: &[DeviceSummary], live: &BTreeMap<String, LiveDevice>) -> BTreeMap<String, DeviceSummary> {
    let mut out: BTreeMap<String, DeviceSummary> = base.iter().map(|d| (d.id.clone(), d.clone())).collect();
    for (id, l) in live {
        let d = match out.get_mut(id) {
            Some(d) => d,
            None if l.readings > 0 || l.cached => out.entry(id.clone()).or_insert_with(|| DeviceSummary {
                id: id.clone(),
                first_seen: l.last_seen,
                last_seen: l.last_seen,
                status: None,
                message_count: 0,
                metrics: Vec::new(),
                name: None,
                note: None,
                tags: Default::default(),
                refused: None,
                interval: Default::default(),
                attributes: Vec::new(),
            }),
            None => continue,
        };
        if let Some(tags) = &l.tags {
            d.tags = tags.clone();
        }
        d.last_seen = d.last_seen.max(l.last_seen);
        if let Some(refused) = &l.refused {
            d.refused = refused.clone();
        }
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
        for (name, (value, changed_at)) in &l.attributes {
            match d.attributes.binary_search_by(|a| a.name.cmp(name)) {
                Ok(i) if *changed_at >= d.attributes[i].changed_at => {
                    d.attributes[i].value = value.clone();
                    d.attributes[i].changed_at = *changed_at;
                }
                Ok(_) => {}
                Err(i) => d.attributes.insert(
                    i,
                    Attribute { name: name.clone(), value: value.clone(), changed_at: *changed_at },
                ),
            }
        }
    }
    out
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
            name: None,
            note: None,
            tags: Default::default(),
            refused: None,
            interval: Default::default(),
            attributes: Vec::new(),
        }
    }

    fn reading(seq: u64, device: &str, ts: Millis, values: &[(&str, f64)]) -> LiveEvent {
        LiveEvent::Reading {
            seq,
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
        apply(&mut live, reading(1, "a", 200, &[("t", 21.0), ("battery", 3.9)]));
        apply(&mut live, reading(2, "new", 300, &[("t", 5.0)]));
        apply(
            &mut live,
            LiveEvent::Status { seq: 3, device: "ghost".into(), online: true, at: 5, session: None },
        );
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
        apply(&mut live, reading(1, "a", 100, &[("t", 1.0)]));
        assert_eq!(merge(&base, &live)["a"].metric("t").map(|m| m.value), Some(30.0));
    }

    #[test]
    fn live_attributes_and_events_land_on_their_device() {
        use telemetry::attributes::EventKind;
        let text = |s: &str| AttrValue::Text(s.into());
        let mut base = summary("a", 100, &[]);
        base.attributes = vec![
            Attribute { name: "fw".into(), value: text("1.4.1"), changed_at: 50 },
            Attribute { name: "ip".into(), value: text("10.0.0.7"), changed_at: 50 },
        ];
        let mut live = BTreeMap::new();
        let changed = |seq, at, values: &[(&str, &str)]| LiveEvent::Attributes {
            seq,
            device: "a".into(),
            at,
            values: values.iter().map(|(k, v)| ((*k).into(), text(v))).collect(),
        };
        apply(&mut live, changed(1, 200, &[("fw", "1.4.2"), ("model", "c3")]));
        apply(&mut live, changed(2, 40, &[("ip", "10.0.0.1")]));
        let event = DeviceEvent {
            device: "a".into(),
            at: 200,
            kind: EventKind::Attribute { name: "fw".into(), from: text("1.4.1"), to: text("1.4.2") },
        };
        apply(&mut live, LiveEvent::Event { seq: 3, event: event.clone() });
        let a = &merge(&[base], &live)["a"];
        let shown: Vec<_> =
            a.attributes.iter().map(|x| (x.name.as_str(), x.value.text(), x.changed_at)).collect();
        assert_eq!(
            shown,
            [("fw", "1.4.2".into(), 200), ("ip", "10.0.0.7".into(), 50), ("model", "c3".into(), 200)],
            "newer changes win, older news does not"
        );
        assert_eq!(live["a"].events, [(3, event)]);
    }

    #[test]
    fn live_connections_replace_their_entry_newest_first_and_stay_bounded() {
        use telemetry::connections::{Connection, Ended, MAX_LOGGED};
        let entry = |at: Millis, ended: Option<Millis>| Connection {
            connected_at: at,
            ended_at: ended,
            reason: ended.map(|_| Ended::KeepaliveTimeout),
            address: None,
            protocol: 4,
        };
        let mut live = BTreeMap::new();
        let event = |c: Connection| LiveEvent::Connection { device: "a".into(), connection: c };
        apply(&mut live, event(entry(100, None)));
        apply(&mut live, event(entry(50, Some(60))));
        apply(&mut live, event(entry(100, Some(200))));
        let seen: Vec<_> = live["a"].connections.iter().map(|c| (c.connected_at, c.ended_at)).collect();
        assert_eq!(seen, [(100, Some(200)), (50, Some(60))], "one entry per connection, newest first");
        for at in 1_000..1_000 + MAX_LOGGED as Millis {
            apply(&mut live, event(entry(at, None)));
        }
        assert_eq!(live["a"].connections.len(), MAX_LOGGED);
        assert_eq!(live["a"].connections.last().map(|c| c.connected_at), Some(1_000), "the oldest went");
    }

    #[test]
    fn live_connections_are_kept_only_for_the_device_whose_page_shows_them() {
        use telemetry::connections::Connection;
        let event = |device: &str, at: Millis| LiveEvent::Connection {
            device: device.into(),
            connection: Connection {
                connected_at: at,
                ended_at: None,
                reason: None,
                address: None,
                protocol: 4,
            },
        };
        let owner = Owner::new();
        owner.with(|| {
            let live = Live::new();
            live.apply(vec![event("a", 1), event("b", 1)]);
            let kept =
                |id: &str| live.devices.with_untracked(|d| d.get(id).map_or(0, |d| d.connections.len()));
            assert_eq!((kept("a"), kept("b")), (0, 0), "no page shows any");
            live.watch_connections(Some("a".into()));
            live.apply(vec![event("a", 2), event("b", 2)]);
            assert_eq!((kept("a"), kept("b")), (1, 0));
            live.watch_connections(None);
            assert_eq!(kept("a"), 0, "forgotten once the page is left");
        });
    }

    #[test]
    fn status_events_mark_devices_offline() {
        let base = vec![summary("a", 100, &[("t", 1.0, 100)])];
        let mut live = BTreeMap::new();
        apply(
            &mut live,
            LiveEvent::Status { seq: 1, device: "a".into(), online: false, at: 150, session: None },
        );
        let a = &merge(&base, &live)["a"];
        assert_eq!(a.health(160), telemetry::device::Health::Offline);
    }

    #[test]
    fn tags_follow_the_feed_and_a_newer_cache() {
        let tags = |text: &str| telemetry::tags::parse_tags(text).unwrap();
        let mut with = summary("a", 100, &[]);
        with.tags = tags("site=barn");
        let base = vec![with.clone()];
        let mut live = BTreeMap::new();
        assert_eq!(merge(&base, &live)["a"].tags, tags("site=barn"), "the server's until the feed says");
        apply(
            &mut live,
            LiveEvent::Tags { seq: 3, device: "a".into(), tags: tags("site=greenhouse"), at: 1 },
        );
        assert_eq!(merge(&base, &live)["a"].tags, tags("site=greenhouse"));
        let owner = Owner::new();
        owner.with(|| {
            let live = Live::new();
            live.seed(5, std::slice::from_ref(&with));
            let mut cached = summary("a", 100, &[]);
            cached.tags = tags("site=old");
            live.restore(4, vec![cached.clone()]);
            assert_eq!(live.snapshot()["a"].tags, tags("site=barn"), "an older cache leaves the page's");
            cached.tags = tags("site=new");
            live.restore(9, vec![cached]);
            assert_eq!(live.snapshot()["a"].tags, tags("site=new"), "a newer cache wins");
            let mut fresh = with.clone();
            fresh.tags = tags("site=newest");
            live.seed(8, std::slice::from_ref(&fresh));
            assert_eq!(live.snapshot()["a"].tags, tags("site=new"), "an older page leaves the newer news");
            live.seed(9, std::slice::from_ref(&fresh));
            assert_eq!(live.snapshot()["a"].tags, tags("site=newest"), "a page as new as the news wins");
        });
    }

    #[test]
    fn changes_at_or_below_the_high_water_mark_are_applied_once() {
        let owner = Owner::new();
        owner.with(|| {
            let live = Live::new();
            live.seed(10, &[summary("a", 100, &[("t", 1.0, 100)])]);
            // 9 and 10 are already in the server's list; 11 and 12 are new; 11 comes twice.
            live.apply(vec![reading(9, "a", 90, &[("t", 0.5)]), reading(10, "a", 100, &[("t", 1.0)])]);
            live.apply(vec![reading(11, "a", 110, &[("t", 2.0)]), reading(12, "a", 120, &[("t", 3.0)])]);
            live.apply(vec![reading(11, "a", 110, &[("t", 2.0)])]);
            let a = &live.snapshot()["a"];
            assert_eq!(a.message_count, 3);
            assert_eq!(a.metric("t").map(|m| m.value), Some(3.0));
            assert_eq!(live.hwm.get_value(), 12);
            assert_eq!(live.data_as_of.get_untracked(), Some(121));
        });
    }

    #[test]
    fn alarms_seeded_by_the_server_take_only_newer_news() {
        let owner = Owner::new();
        owner.with(|| {
            let alarm = |seq: u64, active: bool, acked: bool| Alarm {
                active,
                acked,
                seq,
                ..Alarm::new("a1".into(), "r", "hot", "d", telemetry::alarm::Severity::Major, None, 0)
            };
            let live = Live::new();
            live.seed_alarms(20, vec![alarm(15, true, false)], false);
            assert_eq!(live.hwm.get_value(), 20);
            // Replayed older news (cleared at 12, before it fired again at 15) changes nothing.
            live.apply(vec![LiveEvent::Alarm { seq: 21, alarm: alarm(12, false, false) }]);
            assert!(live.alarms.with_untracked(|a| a.contains_key("a1")));
            live.apply(vec![LiveEvent::Alarm { seq: 22, alarm: alarm(22, true, true) }]);
            assert!(live.alarms.with_untracked(|a| a["a1"].acked));
            live.apply(vec![LiveEvent::Alarm { seq: 23, alarm: alarm(23, false, true) }]);
            assert!(live.alarms.with_untracked(|a| !a["a1"].active), "cleared, and known so");
            live.seed_alarms(20, vec![alarm(15, true, false)], false);
            assert!(live.alarms.with_untracked(|a| !a["a1"].active), "older news cannot bring it back");
            // A page's own mark stays.
            let other = Live::new();
            other.seed(5, &[]);
            other.seed_alarms(20, vec![], false);
            assert_eq!(other.hwm.get_value(), 5);
        });
    }

    fn news(id: &str, seq: u64, active: bool, acked: bool) -> Alarm {
        Alarm {
            active,
            acked,
            cleared_at: (!active).then_some(1),
            seq,
            ..Alarm::new(id.into(), "r", "hot", "d", telemetry::alarm::Severity::Major, None, 0)
        }
    }

    fn needing(known: &BTreeMap<String, Alarm>) -> Vec<&str> {
        known.values().filter(|a| a.active && !a.acked).map(|a| a.id.as_str()).collect()
    }

    #[test]
    fn a_newer_list_of_alarms_wins_whole_and_an_older_one_adds_only_news() {
        // The offline cache (as of 50) knew: x fired at 30, y cleared at 40, z fired at 45.
        let cache =
            || vec![news("x", 30, true, false), news("y", 40, false, false), news("z", 45, true, false)];
        // A fresh page (as of 100): x was acknowledged since, y is gone, z is still on, w is new.
        let page = || vec![news("z", 45, true, false), news("w", 90, true, false)];
        for cache_first in [true, false] {
            let (mut known, mut as_of) = (BTreeMap::new(), 0);
            if cache_first {
                merge_alarms(&mut known, &mut as_of, 50, cache());
                merge_alarms(&mut known, &mut as_of, 100, page());
            } else {
                merge_alarms(&mut known, &mut as_of, 100, page());
                merge_alarms(&mut known, &mut as_of, 50, cache());
            }
            assert_eq!(needing(&known), ["w", "z"], "cache first: {cache_first}");
            assert_eq!(as_of, 100);
        }

        // Offline, a page kept from before (as of 20, when only v was on) and the cache (as of
        // 50: v acknowledged at 35, x fired at 30 and y cleared at 40 since).
        let old_page = || vec![news("v", 10, true, false), news("y", 12, true, false)];
        let cache =
            || vec![news("v", 35, true, true), news("x", 30, true, false), news("y", 40, false, false)];
        for cache_first in [true, false] {
            let (mut known, mut as_of) = (BTreeMap::new(), 0);
            if cache_first {
                merge_alarms(&mut known, &mut as_of, 50, cache());
                merge_alarms(&mut known, &mut as_of, 20, old_page());
            } else {
                merge_alarms(&mut known, &mut as_of, 20, old_page());
                merge_alarms(&mut known, &mut as_of, 50, cache());
            }
            assert_eq!(needing(&known), ["x"], "cache first: {cache_first}");
            assert!(known["v"].acked && !known["y"].active);
        }

        // A list that is not whole (the badge's first 500 of more) only adds.
        let (mut known, mut as_of) = (BTreeMap::new(), 0);
        merge_alarms(&mut known, &mut as_of, 50, vec![news("a", 10, true, false)]);
        merge_alarms(&mut known, &mut as_of, 0, vec![news("b", 60, true, false)]);
        assert_eq!((needing(&known), as_of), (vec!["a", "b"], 50));
    }

    #[test]
    fn only_the_latest_cleared_alarms_are_kept() {
        let alarm = |i: u64, active: bool| Alarm {
            active,
            cleared_at: (!active).then_some(1),
            seq: i,
            ..Alarm::new(format!("a{i}"), "r", "hot", "d", telemetry::alarm::Severity::Major, None, 0)
        };
        let mut alarms = BTreeMap::new();
        note_alarm(&mut alarms, alarm(0, true));
        for i in 1..=KEPT_CLEARED as u64 + 5 {
            note_alarm(&mut alarms, alarm(i, false));
        }
        assert_eq!(alarms.len(), KEPT_CLEARED + 1, "every active one, and the latest cleared");
        assert!(alarms.contains_key("a0") && !alarms.contains_key("a5") && alarms.contains_key("a6"));
    }

    #[test]
    fn the_offline_cache_fills_in_devices_and_newer_values() {
        let owner = Owner::new();
        owner.with(|| {
            let live = Live::new();
            live.seed(5, &[summary("a", 100, &[("t", 1.0, 100)])]);
            live.restore(
                8,
                vec![summary("a", 300, &[("t", 7.0, 300)]), summary("b", 200, &[("h", 40.0, 200)])],
            );
            let all = live.snapshot();
            assert_eq!(all["a"].metric("t").map(|m| m.value), Some(7.0));
            assert_eq!(all["b"].metric("h").map(|m| m.value), Some(40.0));
            assert_eq!(all["a"].message_count, 1, "cached values are not counted as new readings");
            assert_eq!(live.hwm.get_value(), 8);
        });
    }
}
