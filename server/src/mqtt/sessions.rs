//! How each MQTT client of the embedded broker signed in, so that its rights are checked on
//! every publish, subscription and delivery, and its connection ends when they do: when its device key
//! is replaced or revoked, and, for clients that came in without a key while the dashboard was
//! open, when sign-in becomes required.

use std::collections::HashMap;
use std::sync::Mutex;

use telemetry::{Rejection, own_topic};

use crate::auth::Auth;

/// What a connection signed in as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedIn {
    /// The device whose id is the client id, with the hash of the key it used.
    Device([u8; 32]),
    /// No key (the broker was open when it connected).
    Anonymous,
}

/// One connection: when it was made (rmqtt's id for it) and how it signed in.
#[derive(Debug, Clone, Copy)]
struct Entry {
    created: i64,
    signed_in: SignedIn,
}

/// Connections by client id (one each: a new CONNECT takes the id over). Entries go when the
/// session ends, so at most one per session the broker keeps.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Entry>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a connection the broker accepted.
    pub fn connected(&self, client: &str, created: i64, signed_in: SignedIn) {
        self.lock().insert(client.to_owned(), Entry { created, signed_in });
    }

    /// Forgets a session that ended (unless the client id was taken over since).
    pub fn ended(&self, client: &str, created: i64) {
        let mut map = self.lock();
        if map.get(client).is_some_and(|e| e.created == created) {
            map.remove(client);
        }
    }

    /// Whether `client`'s connection `created` may act now. `Ok(true)`: it must keep to its own
    /// device's topics (sign-in is required and it signed in with its current key);
    /// `Ok(false)`: sign-in is not required, anything goes.
    pub fn rights(&self, auth: &Auth, client: &str, created: i64) -> Result<bool, Rejection> {
        if !auth.devices_must_sign_in() {
            return Ok(false);
        }
        match self.lock().get(client) {
            Some(Entry { created: c, signed_in: SignedIn::Device(key) })
                if *c == created && auth.device_key_current(client, key) =>
            {
                Ok(true)
            }
            Some(Entry { signed_in: SignedIn::Device(_), .. }) => Err(Rejection::WrongKey),
            _ => Err(Rejection::NotSignedIn),
        }
    }

    /// Whether `client`'s connection `created` may be delivered a message on `topic` now:
    /// anything while sign-in is not required, then only its own device's topics, and nothing
    /// once its rights ended (even if it subscribed more widely while they lasted).
    pub fn may_receive(&self, auth: &Auth, client: &str, created: i64, topic: &str) -> bool {
        match self.rights(auth, client, created) {
            Ok(true) => own_topic(client, topic),
            Ok(false) => true,
            Err(_) => false,
        }
    }

    /// Connections whose rights ended: every one without a current key, once sign-in is
    /// required.
    pub fn without_rights(&self, auth: &Auth) -> Vec<String> {
        if !auth.devices_must_sign_in() {
            return Vec::new();
        }
        self.lock()
            .iter()
            .filter(|(client, e)| match e.signed_in {
                SignedIn::Device(key) => !auth.device_key_current(client, &key),
                SignedIn::Anonymous => true,
            })
            .map(|(client, _)| client.clone())
            .collect()
    }

    #[cfg(test)]
    fn count(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthConfig;
    use crate::auth::users::UserDb;
    use telemetry::Role;

    #[test]
    fn rights_follow_sign_in_and_keys() {
        let auth = Auth::new(
            UserDb::in_memory().unwrap(),
            AuthConfig {
                open: false,
                session_days: 1,
                secure_cookies: false,
                setup_token: Default::default(),
            },
        )
        .unwrap();
        let key = auth.new_device_key("d1").unwrap();
        let hash = auth.check_device_key("d1", key.as_bytes()).unwrap();
        let s = Sessions::default();
        s.connected("d1", 1, SignedIn::Device(hash));
        s.connected("anon", 2, SignedIn::Anonymous);
        assert_eq!(s.rights(&auth, "anon", 2), Ok(false), "open: anything goes");
        assert!(s.without_rights(&auth).is_empty());
        assert!(s.may_receive(&auth, "d1", 1, "app/device/d2/telemetry"));

        auth.add_user("ann", "correct horse", Role::Admin).unwrap();
        assert_eq!(s.rights(&auth, "d1", 1), Ok(true));
        assert_eq!(s.rights(&auth, "anon", 2), Err(Rejection::NotSignedIn));
        assert_eq!(s.rights(&auth, "d1", 9), Err(Rejection::WrongKey), "another connection's id");
        assert_eq!(s.without_rights(&auth), ["anon"]);
        assert!(s.may_receive(&auth, "d1", 1, "app/device/d1/status"));
        assert!(!s.may_receive(&auth, "d1", 1, "app/device/d2/telemetry"), "own topics only now");
        assert!(!s.may_receive(&auth, "anon", 2, "app/device/anon/status"), "rights ended");

        auth.new_device_key("d1").unwrap();
        assert_eq!(s.rights(&auth, "d1", 1), Err(Rejection::WrongKey), "a replaced key ends it");
        let mut out = s.without_rights(&auth);
        out.sort();
        assert_eq!(out, ["anon", "d1"]);

        s.connected("d1", 3, SignedIn::Anonymous);
        s.ended("d1", 1);
        assert_eq!(s.count(), 2, "a taken-over id keeps its new connection");
        s.ended("d1", 3);
        assert_eq!(s.count(), 1);
    }
}
