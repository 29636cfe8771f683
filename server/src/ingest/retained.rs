//! The retained messages the embedded broker hands new subscribers, in memory as the store
//! holds them, and their caps. A retained publish is decided here ([`Retained::reserve`]),
//! before it is queued: a new topic beyond its owner's count, payloads beyond its owner's
//! bytes, or anything beyond the broker's totals is refused. Its place stays reserved until
//! the writer has committed it and applied it here ([`Retained::apply`], in commit order), so
//! publishes decided at the same time cannot overshoot a cap together.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rmqtt::retain::RetainTree;
use rmqtt::topic::Topic;
use telemetry::{Millis, Rejection};

pub use crate::store::RetainedCaps as Caps;
use crate::store::{RetainStore, RetainedChange, RetainedMessage, RetainedUsage as Usage};

#[derive(Default)]
struct State {
    /// For subscriptions' filters.
    tree: RetainTree<Arc<RetainedMessage>>,
    /// The same messages by topic.
    topics: HashMap<String, Arc<RetainedMessage>>,
    /// What each owner holds and has reserved; owners holding nothing are removed.
    owners: HashMap<String, Usage>,
    /// What all hold and have reserved.
    total: Usage,
}

impl State {
    fn insert(&mut self, message: Arc<RetainedMessage>) {
        self.remove(&message.topic);
        let Ok(topic) = message.topic.parse::<Topic>() else { return };
        let usage = Usage { count: 1, bytes: message.payload.len() };
        self.owners.entry(message.owner.clone()).or_default().add(usage);
        self.total.add(usage);
        self.tree.insert(&topic, message.clone());
        self.topics.insert(message.topic.clone(), message);
    }

    fn remove(&mut self, topic: &str) {
        let Some(old) = self.topics.remove(topic) else { return };
        if let Ok(parsed) = topic.parse::<Topic>() {
            self.tree.remove(&parsed);
        }
        self.release(&old.owner, Usage { count: 1, bytes: old.payload.len() });
    }

    fn release(&mut self, owner: &str, usage: Usage) {
        self.total.sub(usage);
        if let Some(held) = self.owners.get_mut(owner) {
            held.sub(usage);
            if *held == Usage::default() {
                self.owners.remove(owner);
            }
        }
    }
}

/// The retained messages; shared by the writer (which applies what it committed) and the
/// broker (which reads them for new subscriptions).
pub struct Retained {
    caps: Caps,
    state: Mutex<State>,
}

/// A retained message's place under the caps, held until it is applied or given up (dropped).
pub struct Reservation {
    retained: Arc<Retained>,
    owner: String,
    usage: Usage,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.retained.lock().release(&self.owner, self.usage);
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reservation({}, {:?})", self.owner, self.usage)
    }
}

/// Whose caps a retained message on `topic` from connection `client` counts against: the
/// device of an `app/device/<id>/…` topic, otherwise the connection.
pub fn owner<'a>(topic: &'a str, client: &'a str) -> &'a str {
    let device = topic.strip_prefix(telemetry::topic::DEVICE_PREFIX).and_then(|rest| rest.split('/').next());
    device.filter(|id| !id.is_empty()).unwrap_or(client)
}

/// Whether `topic` is a device's command topic, `app/device/<id>/cmd/…`, which never keeps a
/// retained message: a device would run it again on every reconnect.
pub fn is_command(topic: &str) -> bool {
    let Some(rest) = topic.strip_prefix(telemetry::topic::DEVICE_PREFIX) else { return false };
    let mut levels = rest.split('/');
    levels.next();
    levels.next() == Some("cmd")
}

/// The retained messages `store` holds, under `caps`. Those expired by `now` are left out, and
/// cleared from the store, so it never holds more than the caps allow for long; a store that
/// cannot be read leaves none, and says so.
pub(super) fn load(store: &dyn RetainStore, caps: Caps, now: Millis) -> Retained {
    let messages = store.retained().unwrap_or_else(|e| {
        tracing::error!(error = %e, "retained messages not loaded");
        Vec::new()
    });
    let expired: Vec<RetainedChange> =
        messages.iter().filter(|m| m.expired(now)).map(|m| RetainedChange::Clear(m.topic.clone())).collect();
    if let Err(e) = store.put_retained(&expired) {
        tracing::error!(error = %e, "expired retained messages not cleared");
    }
    Retained::new(caps, messages, now)
}

/// Whether `payload` on `topic` is a status the store ignores as a delayed last will (an
/// `offline` numbered with an older session than the status retained there), which must not
/// replace that status for later subscribers either.
pub fn is_stale_will(retained: &Retained, topic: &str, payload: &[u8]) -> bool {
    let numbered = |payload: &[u8]| match telemetry::decode(topic, payload, 0) {
        Ok(telemetry::Decoded::Status { online, session, .. }) => Some((online, session?)),
        _ => None,
    };
    let Some((false, session)) = numbered(payload) else { return false };
    retained.get(topic).and_then(|kept| numbered(&kept.payload)).is_some_and(|(_, kept)| session < kept)
}

impl Retained {
    /// Holds `messages` (as the store had them), leaving out those expired by `now`.
    pub fn new(caps: Caps, messages: Vec<RetainedMessage>, now: Millis) -> Retained {
        let mut state = State::default();
        for message in messages.into_iter().filter(|m| !m.expired(now)) {
            state.insert(Arc::new(message));
        }
        Retained { caps, state: Mutex::new(state) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves a place for a retained message of `bytes` on `topic`, owned by `owner`, or
    /// says why it is refused. Replacing a message takes no new place, only the bytes it adds.
    pub fn reserve(
        self: &Arc<Self>,
        owner: &str,
        topic: &str,
        bytes: usize,
    ) -> Result<Reservation, Rejection> {
        if is_command(topic) {
            return Err(Rejection::RetainedCommand);
        }
        let caps = self.caps;
        let mut state = self.lock();
        let usage = match state.topics.get(topic) {
            Some(old) => Usage { count: 0, bytes: bytes.saturating_sub(old.payload.len()) },
            None => Usage { count: 1, bytes },
        };
        let held = state.owners.get(owner).copied().unwrap_or_default().plus(usage);
        let total = state.total.plus(usage);
        if let Some(why) = caps.refusal(held, total) {
            return Err(why);
        }
        state.owners.entry(owner.to_owned()).or_default().add(usage);
        state.total = total;
        drop(state);
        Ok(Reservation { retained: self.clone(), owner: owner.to_owned(), usage })
    }

    /// Applies changes the store has committed, in the order committed.
    pub fn apply(&self, changes: &[RetainedChange]) {
        let mut state = self.lock();
        for change in changes {
            match change {
                RetainedChange::Set(message) => state.insert(Arc::new(message.clone())),
                RetainedChange::Clear(topic) => state.remove(topic),
            }
        }
    }

    /// The messages retained on topics `filter` matches, unexpired at `now`.
    pub fn matching(&self, filter: &str, now: Millis) -> Vec<Arc<RetainedMessage>> {
        let Ok(filter) = filter.parse::<Topic>() else { return Vec::new() };
        let state = self.lock();
        state.tree.matches(&filter).into_iter().map(|(_, m)| m).filter(|m| !m.expired(now)).collect()
    }

    /// Whether any message can be retained at all (`limits.max_retained` 0 keeps none).
    pub fn enabled(&self) -> bool {
        [self.caps.per_owner, self.caps.bytes_per_owner, self.caps.total, self.caps.total_bytes]
            .iter()
            .all(|cap| *cap > 0)
    }

    /// The topics `owner` holds a retained message on.
    pub fn owned_by(&self, owner: &str) -> Vec<String> {
        let state = self.lock();
        state.topics.values().filter(|m| m.owner == owner).map(|m| m.topic.clone()).collect()
    }

    /// The message retained on `topic`, if any.
    pub fn get(&self, topic: &str) -> Option<Arc<RetainedMessage>> {
        self.lock().topics.get(topic).cloned()
    }

    /// How many messages are retained and their bytes of payload, those being stored included.
    pub fn usage(&self) -> (usize, usize) {
        let total = self.lock().total;
        (total.count, total.bytes)
    }

    /// How many messages are retained.
    pub fn len(&self) -> usize {
        self.lock().topics.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps { per_owner: 2, bytes_per_owner: 10, total: 3, total_bytes: 100 };

    #[test]
    fn an_offline_from_an_older_session_than_the_retained_status_is_stale() {
        let caps = Caps { per_owner: 10, bytes_per_owner: 1_000, total: 10, total_bytes: 1_000 };
        let retained = Arc::new(Retained::new(caps, Vec::new(), 0));
        let status = "app/device/a/status";
        assert!(
            !is_stale_will(&retained, status, br#"{"state":"offline","session":16}"#),
            "nothing retained"
        );
        set(&retained, status, r#"{"state":"online","session":17}"#).unwrap();
        assert!(is_stale_will(&retained, status, br#"{"state":"offline","session":16}"#));
        assert!(!is_stale_will(&retained, status, br#"{"state":"offline","session":17}"#));
        assert!(
            !is_stale_will(&retained, status, br#"{"state":"online","session":3}"#),
            "a counter starting over"
        );
        assert!(!is_stale_will(&retained, status, b"offline"), "not numbered");
        assert!(!is_stale_will(&retained, "app/device/a/x", br#"{"state":"offline","session":1}"#));
    }

    #[test]
    fn loading_leaves_out_and_clears_what_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::RedbStore::open(&dir.path().join("r.redb")).unwrap();
        let mut gone = message("app/device/a/status", "online");
        gone.expires = Some(1_000);
        let mut kept = message("app/device/a/attributes", "{}");
        kept.expires = Some(1_001);
        let changes = [RetainedChange::Set(gone), RetainedChange::Set(kept.clone())];
        store.put_retained(&changes).unwrap();
        let caps = Caps { per_owner: 1, bytes_per_owner: 10, total: 1, total_bytes: 10 };
        let retained = load(&store, caps, 1_000);
        assert_eq!(topics(&retained, "#"), ["app/device/a/attributes"]);
        assert_eq!(retained.usage(), (1, 2), "only what was loaded counts");
        assert_eq!(store.retained().unwrap(), [kept], "the expired one is cleared from the store");
    }

    fn message(topic: &str, payload: &str) -> RetainedMessage {
        let client = "client";
        RetainedMessage {
            topic: topic.into(),
            owner: owner(topic, client).into(),
            payload: payload.as_bytes().to_vec(),
            qos: 1,
            at: 0,
            expires: None,
            properties: Default::default(),
        }
    }

    fn set(retained: &Arc<Retained>, topic: &str, payload: &str) -> Result<(), Rejection> {
        let m = message(topic, payload);
        let held = retained.reserve(&m.owner, topic, m.payload.len())?;
        retained.apply(&[RetainedChange::Set(m)]);
        drop(held);
        Ok(())
    }

    fn topics(retained: &Retained, filter: &str) -> Vec<String> {
        let mut out: Vec<String> = retained.matching(filter, 0).iter().map(|m| m.topic.clone()).collect();
        out.sort();
        out
    }

    #[test]
    fn filters_match_as_mqtt_says() {
        let caps = Caps { per_owner: 10, bytes_per_owner: 100, total: 10, total_bytes: 100 };
        let retained = Arc::new(Retained::new(caps, Vec::new(), 0));
        for topic in
            ["app/device/a/status", "app/device/a/attributes", "app/device/b/status", "app", "$SYS/x"]
        {
            set(&retained, topic, "x").unwrap();
        }
        assert_eq!(topics(&retained, "app/device/+/status"), ["app/device/a/status", "app/device/b/status"]);
        assert_eq!(topics(&retained, "app/device/a/#"), ["app/device/a/attributes", "app/device/a/status"]);
        assert_eq!(topics(&retained, "app/device/a/status"), ["app/device/a/status"]);
        assert_eq!(
            topics(&retained, "app/#"),
            ["app", "app/device/a/attributes", "app/device/a/status", "app/device/b/status"]
        );
        assert_eq!(topics(&retained, "#").len(), 4, "$ topics are not matched by a wildcard first level");
        assert_eq!(topics(&retained, "$SYS/#"), ["$SYS/x"]);
        assert!(topics(&retained, "app/device/c/#").is_empty());
        assert!(topics(&retained, "bad/#/filter").is_empty());
    }

    #[test]
    fn caps_count_new_topics_and_bytes_per_owner_and_in_all() {
        let retained = Arc::new(Retained::new(CAPS, Vec::new(), 0));
        set(&retained, "app/device/a/status", "online").unwrap();
        set(&retained, "app/device/a/x", "1234").unwrap();
        assert_eq!(set(&retained, "app/device/a/y", "1"), Err(Rejection::TooManyRetained(2)));
        // Replacing takes no new place, only the bytes it adds.
        set(&retained, "app/device/a/x", "12").unwrap();
        assert_eq!(set(&retained, "app/device/a/x", "123456"), Err(Rejection::RetainedTooLarge(10)));
        set(&retained, "app/device/a/x", "1234").unwrap();
        // Other owners have their own; the total is shared.
        set(&retained, "app/device/b/status", "online").unwrap();
        assert_eq!(set(&retained, "app/device/c/status", "online"), Err(Rejection::RetainedFull));
        // A clear gives its place back.
        retained.apply(&[RetainedChange::Clear("app/device/a/x".into())]);
        assert_eq!(retained.owned_by("a"), ["app/device/a/status"]);
        set(&retained, "app/device/c/status", "online").unwrap();
        assert_eq!(retained.len(), 3);
        // Topics that are not a device's count against the connection.
        assert_eq!(set(&retained, "other/topic", "x"), Err(Rejection::RetainedFull));
        assert_eq!(owner("other/topic", "client"), "client");
    }

    #[test]
    fn a_reservation_holds_its_place_until_applied_or_dropped() {
        let retained = Arc::new(Retained::new(CAPS, Vec::new(), 0));
        assert!(retained.enabled());
        assert!(!Retained::new(Caps { total: 0, ..CAPS }, Vec::new(), 0).enabled());
        let first = retained.reserve("a", "app/device/a/1", 1).unwrap();
        let second = retained.reserve("a", "app/device/a/2", 1).unwrap();
        assert_eq!(retained.reserve("a", "app/device/a/3", 1).unwrap_err(), Rejection::TooManyRetained(2));
        drop(second);
        let third = retained.reserve("a", "app/device/a/3", 1).unwrap();
        retained.apply(&[RetainedChange::Set(message("app/device/a/1", "x"))]);
        drop(first);
        drop(third);
        // What is held is what was applied: one message, one byte.
        assert_eq!(retained.lock().owners.get("a"), Some(&Usage { count: 1, bytes: 1 }));
        assert_eq!(retained.lock().total, Usage { count: 1, bytes: 1 });
        retained.apply(&[RetainedChange::Clear("app/device/a/1".into())]);
        assert!(retained.lock().owners.is_empty(), "owners holding nothing are forgotten");
    }

    #[test]
    fn commands_are_never_retained_and_expired_messages_are_not_loaded_or_matched() {
        let retained = Arc::new(Retained::new(CAPS, Vec::new(), 0));
        assert_eq!(retained.reserve("a", "app/device/a/cmd/17", 1).unwrap_err(), Rejection::RetainedCommand);
        assert_eq!(retained.reserve("a", "app/device/a/cmd", 1).unwrap_err(), Rejection::RetainedCommand);
        assert!(retained.reserve("a", "app/device/a/cmdx", 1).is_ok());
        assert!(!is_command("other/a/cmd/1"));
        let mut soon = message("app/device/a/status", "online");
        soon.expires = Some(1_000);
        let retained =
            Arc::new(Retained::new(CAPS, vec![soon.clone(), message("app/device/b/status", "x")], 0));
        assert_eq!(topics(&retained, "app/device/+/status").len(), 2);
        assert!(retained.matching("app/device/a/status", 1_000).is_empty(), "expired");
        let reloaded = Retained::new(CAPS, vec![soon], 1_000);
        assert!(reloaded.is_empty());
    }
}
