//! Sign-in: users with Argon2id-hashed passwords and the roles admin (changes things) and
//! viewer (looks), session cookies, device keys, and the request guard that enforces them.
//!
//! - No user yet: the dashboard is open, and `/setup` creates the first admin, but only with
//!   the one-time setup token the server prints at start (or `server user add` does it, with
//!   the server stopped). Once a user exists every page, server function, export and the live
//!   WebSocket need a session, unless `auth.open` is set (a trusted LAN); devices need a key.
//! - Sessions are random 256-bit tokens in an `HttpOnly; SameSite=Strict` cookie (`Secure` and
//!   `__Host-` with `auth.secure_cookies`, behind HTTPS); only their SHA-256 is stored. Scripts
//!   may send HTTP Basic credentials instead.
//! - Every password check goes through one [`gate::Gate`]: few at a time, throttled per client
//!   address and per user name from an address.
//! - What changes who may do what is announced as an [`AuthEvent`], so live connections (MQTT
//!   sessions, live feeds) end when their rights do.
//!
//! # Layout
//! - [`users`]: the user, session and device key tables; [`password`]: Argon2id;
//!   [`gate`] and [`throttle`]: how often, and how many at once, passwords are checked.
//! - The HTTP side (the sign-in guard and forms) is in [`crate::web`].
//! - [`accounts`]: users and device keys as the dashboard's admin page changes them.

pub mod accounts;
pub mod gate;
pub mod password;
pub mod throttle;
pub mod users;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use telemetry::accounts::{MAX_DEVICE_KEYS, MAX_PASSWORD_LEN, MAX_USERS};
use telemetry::{Access, Role, SessionUser, valid_name};
use tokio::sync::broadcast;

use crate::clock::now_ms;
use crate::log_limit::LogLimit;
use crate::secret::same_secret;

use self::gate::Gate;
use self::users::{SessionRecord, UserDb, UserDbError, UserRecord};

/// The session cookie's name over plain HTTP.
pub const COOKIE: &str = "iot_session";
/// Its name with secure cookies: a `__Host-` cookie is only ever set by this host, over HTTPS,
/// for the whole site, so no neighbour (a sibling subdomain, a plain-HTTP page) can plant one.
pub const SECURE_COOKIE: &str = "__Host-iot_session";

/// Sessions one user may hold; signing in again beyond that ends the oldest.
pub const MAX_SESSIONS_PER_USER: usize = 32;

/// The one-time setup token's length, in bytes of randomness.
const SETUP_TOKEN_BYTES: usize = 16;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// No sign-in at all, even once users exist: for a trusted LAN.
    pub open: bool,
    /// How long a sign-in lasts.
    pub session_days: u64,
    /// Mark the cookie `Secure` (the dashboard is served over HTTPS, e.g. behind a proxy).
    pub secure_cookies: bool,
    /// The setup token, when it should not be random (automated installs); empty: random.
    #[serde(default)]
    pub setup_token: crate::secret::Secret,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("user names are 1 to 64 of A-Z a-z 0-9 _ . -")]
    BadName,
    #[error("passwords need at least {} characters", telemetry::auth::MIN_PASSWORD_LEN)]
    ShortPassword,
    #[error("passwords are at most {MAX_PASSWORD_LEN} characters")]
    LongPassword,
    #[error("setup is done: a user already exists")]
    AlreadySetUp,
    #[error("wrong setup token")]
    WrongSetupToken,
    #[error("the server keeps at most {MAX_USERS} users")]
    TooManyUsers,
    #[error("the server keeps at most {MAX_DEVICE_KEYS} device keys")]
    TooManyKeys,
    #[error(transparent)]
    Db(#[from] UserDbError),
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("too many wrong passwords; try again in {} s", .0.as_secs().max(1))]
    Throttled(Duration),
    #[error("too many sign-ins at once; try again shortly")]
    Busy,
    #[error("wrong user name or password")]
    Invalid,
    #[error(transparent)]
    Db(#[from] UserDbError),
}

/// A change to who may do what, for the connections that hold rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthEvent {
    /// The first user exists: from now on people and devices sign in.
    SignInRequired,
    /// A device's key was replaced or revoked: connections signed in with the old one end.
    DeviceKey(String),
    /// Sessions ended, or a user's role or password changed: live feeds check theirs again.
    Sessions,
}

/// Where the user database lives: `users.redb` next to the telemetry database.
pub fn users_path(storage: &Path) -> PathBuf {
    storage.with_file_name("users.redb")
}

pub struct Auth {
    users: UserDb,
    config: AuthConfig,
    gate: Gate,
    count: AtomicU64,
    /// Serialises setup: two first admins at once cannot both win.
    setup: Mutex<()>,
    /// The one-time token `/setup` needs, while no user exists.
    setup_token: Mutex<Option<String>>,
    /// Every device key's hash, by device: checked on every CONNECT and publish.
    keys: RwLock<HashMap<String, [u8; 32]>>,
    events: broadcast::Sender<AuthEvent>,
    /// The budget of sign-in's log lines (failed sign-ins, wrong setup tokens, refusals).
    log: LogLimit,
}

/// Percent-encodes a path for a query parameter, leaving unreserved characters and `/`.
pub(crate) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Auth {
    pub fn new(users: UserDb, config: AuthConfig) -> Result<Auth, AuthError> {
        let count = users.count()?;
        users.remove_expired(now_ms())?;
        let keys = users
            .device_key_hashes()?
            .into_iter()
            .filter_map(|(device, hash)| Some((device, <[u8; 32]>::try_from(hash).ok()?)))
            .collect();
        let setup_token = (count == 0).then(|| match config.setup_token.expose().trim() {
            "" => crate::random::hex(SETUP_TOKEN_BYTES),
            fixed => fixed.to_owned(),
        });
        Ok(Auth {
            users,
            config,
            gate: Gate::default(),
            count: AtomicU64::new(count),
            setup: Mutex::new(()),
            setup_token: Mutex::new(setup_token),
            keys: RwLock::new(keys),
            events: broadcast::channel(64).0,
            log: LogLimit::default(),
        })
    }

    /// Whether to log a line about `key` for `reason` now ([`LogLimit::check`]): sign-in's
    /// refusals are repeated at will by outsiders.
    pub fn log_line(&self, reason: &'static str, key: &str) -> Option<u64> {
        self.log.check(reason, key, std::time::Instant::now())
    }

    /// Changes to who may do what, from now on.
    pub fn events(&self) -> broadcast::Receiver<AuthEvent> {
        self.events.subscribe()
    }

    fn announce(&self, event: AuthEvent) {
        // An error only means nobody listens.
        let _ = self.events.send(event);
    }

    /// What a request with `user` (if signed in) may see.
    pub fn access(&self, user: Option<SessionUser>) -> Access {
        let none = self.count.load(Ordering::Relaxed) == 0;
        Access { user, open: self.config.open || none, setup_needed: none }
    }

    /// Whether people must sign in (a user exists and the dashboard is not configured open).
    pub fn sign_in_required(&self) -> bool {
        !self.config.open && self.count.load(Ordering::Relaxed) > 0
    }

    /// The setup token, while no user exists: the server prints the setup link with it.
    pub fn setup_token(&self) -> Option<String> {
        self.setup_token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A new user's record, once the name and password pass.
    fn new_record(name: &str, password: &str, role: Role) -> Result<UserRecord, AuthError> {
        if valid_name(name).is_err() {
            return Err(AuthError::BadName);
        }
        check_password_rules(password)?;
        Ok(UserRecord { name: name.to_owned(), password: password::hash(password), role, created: now_ms() })
    }

    /// Adds a user, or replaces one of that name (the command line's `user add`): a replaced
    /// user's sessions end, so a password reset locks out whoever knew the old one.
    pub fn add_user(&self, name: &str, password: &str, role: Role) -> Result<(), AuthError> {
        let record = Self::new_record(name, password, role)?;
        if self.users.get(name)?.is_none() && self.count.load(Ordering::Relaxed) >= MAX_USERS as u64 {
            return Err(AuthError::TooManyUsers);
        }
        if self.users.put(&record)? {
            self.users.end_sessions_of(name)?;
            self.announce(AuthEvent::Sessions);
        } else if self.count.fetch_add(1, Ordering::Relaxed) == 0 {
            self.first_user();
        }
        Ok(())
    }

    /// The first user exists: setup is over, and everyone signs in from now on.
    fn first_user(&self) {
        *self.setup_token.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if !self.config.open {
            self.announce(AuthEvent::SignInRequired);
        }
    }

    pub fn remove_user(&self, name: &str) -> Result<bool, AuthError> {
        let removed = self.users.remove(name)?;
        if removed {
            self.count.fetch_sub(1, Ordering::Relaxed);
            self.announce(AuthEvent::Sessions);
        }
        Ok(removed)
    }

    /// What `name`'s Basic credentials stand on, if they exist: their role and a digest of their
    /// password's hash. It changes when either does (a password change or reset, or the user
    /// removed and added again), so what was opened with the old password can be ended.
    pub fn credentials_stamp(&self, name: &str) -> Option<(Role, [u8; 32])> {
        self.users.get(name).ok().flatten().map(|u| (u.role, token_hash(&u.password)))
    }

    pub fn users(&self) -> Result<Vec<(String, Role)>, AuthError> {
        Ok(self.users.list()?.into_iter().map(|u| (u.name, u.role)).collect())
    }

    /// Creates the first admin and signs them in; refused once any user exists, and without
    /// the setup token. Blocking (Argon2).
    pub fn setup(&self, token: &str, name: &str, password: &str) -> Result<String, AuthError> {
        let _one_at_a_time = self.setup.lock().unwrap_or_else(|e| e.into_inner());
        if self.users.count()? > 0 {
            return Err(AuthError::AlreadySetUp);
        }
        let expected = self.setup_token().ok_or(AuthError::AlreadySetUp)?;
        if !same_secret(token.trim().as_bytes(), expected.as_bytes()) {
            return Err(AuthError::WrongSetupToken);
        }
        self.add_user(name, password, Role::Admin)?;
        Ok(self.new_session(name)?)
    }

    /// Checks a password, through the gate (throttled per address and per name from an
    /// address, few at a time).
    pub async fn check_password(
        self: &std::sync::Arc<Self>,
        name: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<SessionUser, LoginError> {
        // No such name can exist: nothing to hide by spending Argon2's time on it, but it is
        // a failure from that address all the same.
        if valid_name(name).is_err() || password.chars().count() > MAX_PASSWORD_LEN {
            self.gate.check_address(peer).map_err(LoginError::Throttled)?;
            self.gate.failed(peer);
            return Err(LoginError::Invalid);
        }
        let (auth, who, password) = (self.clone(), name.to_owned(), password.to_owned());
        let checked = self
            .gate
            .run(name, peer, move || {
                let user = match auth.users.get(&who) {
                    Ok(user) => user,
                    Err(e) => return Some(Err(e)),
                };
                match user {
                    Some(u) if password::verify(&password, &u.password) => {
                        Some(Ok(SessionUser { name: u.name, role: u.role }))
                    }
                    Some(_) => None,
                    None => {
                        password::verify_nobody(&password);
                        None
                    }
                }
            })
            .await;
        match checked {
            Ok(result) => Ok(result?),
            Err(gate::Refused::Throttled(wait)) => Err(LoginError::Throttled(wait)),
            Err(gate::Refused::Busy) => Err(LoginError::Busy),
            Err(gate::Refused::Failed) => Err(LoginError::Invalid),
        }
    }

    /// Signs in: a new session token for the cookie.
    pub async fn login(
        self: &std::sync::Arc<Self>,
        name: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<String, LoginError> {
        let user = self.check_password(name, password, peer).await?;
        Ok(self.new_session(&user.name)?)
    }

    /// Changes `name`'s password, given the current one: every session of theirs ends, and a
    /// new one is answered for the browser that asked.
    pub async fn change_password(
        self: &std::sync::Arc<Self>,
        name: &str,
        current: &str,
        new: &str,
        peer: IpAddr,
    ) -> Result<String, PasswordChangeError> {
        check_password_rules(new).map_err(PasswordChangeError::Rules)?;
        self.check_password(name, current, peer).await.map_err(PasswordChangeError::Login)?;
        let auth = self.clone();
        let (who, new) = (name.to_owned(), new.to_owned());
        let token = tokio::task::spawn_blocking(move || {
            if !auth.users.set_password(&who, &password::hash(&new))? {
                return Ok(None);
            }
            auth.new_session(&who).map(Some)
        })
        .await
        .map_err(|_| PasswordChangeError::Login(LoginError::Busy))?
        .map_err(|e| PasswordChangeError::Login(LoginError::Db(e)))?;
        self.announce(AuthEvent::Sessions);
        token.ok_or(PasswordChangeError::Login(LoginError::Invalid))
    }

    /// Counts a failure that needed no password check against `peer` (a wrong setup token).
    pub fn failed_attempt(&self, peer: IpAddr) {
        self.gate.failed(peer);
    }

    /// `Err(wait)` while `peer` has failed too often.
    pub fn check_address(&self, peer: IpAddr) -> Result<(), Duration> {
        self.gate.check_address(peer)
    }

    fn new_session(&self, name: &str) -> Result<String, UserDbError> {
        let expires = now_ms().saturating_add((self.config.session_days as i64).saturating_mul(86_400_000));
        self.session_until(name, expires)
    }

    /// A new session for `name` that lasts until `expires` (ms).
    pub(crate) fn session_until(&self, name: &str, expires: i64) -> Result<String, UserDbError> {
        let token = crate::random::hex(32);
        let record = SessionRecord { user: name.to_owned(), expires };
        self.users.put_session(&token_hash(&token), &record, MAX_SESSIONS_PER_USER)?;
        Ok(token)
    }

    /// The user a session token belongs to, if it is valid and the user still exists.
    pub fn session(&self, token: &str) -> Option<SessionUser> {
        if token.len() != 64 {
            return None;
        }
        let user = self.users.session_user(&token_hash(token), now_ms()).ok().flatten()?;
        Some(SessionUser { name: user.name, role: user.role })
    }

    pub fn logout(&self, token: &str) {
        let _ = self.users.remove_session(&token_hash(token));
        self.announce(AuthEvent::Sessions);
    }

    /// Drops expired sessions; answers how many are left.
    pub fn prune_sessions(&self) -> Result<u64, UserDbError> {
        self.users.remove_expired(now_ms())
    }

    /// Whether MQTT devices must sign in (with their device key): whenever people must.
    pub fn devices_must_sign_in(&self) -> bool {
        self.sign_in_required()
    }

    /// Makes (or replaces) a device's MQTT password: a random key, shown once, stored hashed.
    pub fn new_device_key(&self, device: &str) -> Result<String, AuthError> {
        Ok(self.replace_device_key(device)?.0)
    }

    /// A new key for `device`, and whether it replaced one. Connections signed in with the
    /// old key end.
    fn replace_device_key(&self, device: &str) -> Result<(String, bool), AuthError> {
        if valid_name(device).is_err() {
            return Err(AuthError::BadName);
        }
        let known = self.keys.read().unwrap_or_else(|e| e.into_inner()).contains_key(device);
        if !known && self.keys.read().unwrap_or_else(|e| e.into_inner()).len() >= MAX_DEVICE_KEYS {
            return Err(AuthError::TooManyKeys);
        }
        let key = crate::random::hex(24);
        let hash = token_hash(&key);
        let replaced = self.users.put_device_key(device, &hash)?;
        self.keys.write().unwrap_or_else(|e| e.into_inner()).insert(device.to_owned(), hash);
        if replaced {
            self.announce(AuthEvent::DeviceKey(device.to_owned()));
        }
        Ok((key, replaced))
    }

    /// Revokes a device's key; its connections end.
    pub fn revoke_device_key(&self, device: &str) -> Result<bool, AuthError> {
        let removed = self.users.remove_device_key(device)?;
        self.keys.write().unwrap_or_else(|e| e.into_inner()).remove(device);
        if removed {
            self.announce(AuthEvent::DeviceKey(device.to_owned()));
        }
        Ok(removed)
    }

    pub fn device_keys(&self) -> Result<Vec<String>, AuthError> {
        Ok(self.users.device_key_ids()?)
    }

    /// The hash of `device`'s key if `key` is it. Keys are random, so a plain hash suffices.
    pub fn check_device_key(&self, device: &str, key: &[u8]) -> Option<[u8; 32]> {
        let key = std::str::from_utf8(key).ok()?;
        let hash = token_hash(key);
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        keys.get(device).filter(|stored| same_secret(*stored, &hash)).copied()
    }

    /// Whether `device`'s key is still the one whose hash is `hash` (not replaced or revoked).
    pub fn device_key_current(&self, device: &str, hash: &[u8; 32]) -> bool {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).get(device) == Some(hash)
    }

    /// The session cookie's name: `__Host-` prefixed with secure cookies.
    pub fn cookie_name(&self) -> &'static str {
        if self.config.secure_cookies { SECURE_COOKIE } else { COOKIE }
    }

    /// The `Set-Cookie` value for a new session.
    pub fn cookie(&self, token: &str) -> String {
        let secure = if self.config.secure_cookies { "; Secure" } else { "" };
        let max_age = self.config.session_days.saturating_mul(86_400);
        format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
            self.cookie_name()
        )
    }

    /// The `Set-Cookie` value that signs out.
    pub fn clear_cookie(&self) -> String {
        let secure = if self.config.secure_cookies { "; Secure" } else { "" };
        format!("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}", self.cookie_name())
    }
}

/// Why a password change was refused.
#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error(transparent)]
    Rules(AuthError),
    #[error(transparent)]
    Login(LoginError),
}

fn check_password_rules(password: &str) -> Result<(), AuthError> {
    let chars = password.chars().count();
    if chars < telemetry::auth::MIN_PASSWORD_LEN {
        return Err(AuthError::ShortPassword);
    }
    if chars > MAX_PASSWORD_LEN {
        return Err(AuthError::LongPassword);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn config() -> AuthConfig {
        AuthConfig { open: false, session_days: 7, secure_cookies: false, setup_token: Default::default() }
    }

    fn auth() -> Arc<Auth> {
        Arc::new(Auth::new(UserDb::in_memory().unwrap(), config()).unwrap())
    }

    #[tokio::test]
    async fn setup_once_with_the_token_then_sessions_and_roles() {
        let a = auth();
        assert!(a.access(None).open && a.access(None).setup_needed);
        let token = a.setup_token().expect("a token while no user exists");
        assert_eq!(token.len(), 2 * SETUP_TOKEN_BYTES);
        let mut events = a.events();
        assert!(matches!(a.setup("wrong", "ann", "correct horse"), Err(AuthError::WrongSetupToken)));
        assert!(matches!(a.setup("", "ann", "correct horse"), Err(AuthError::WrongSetupToken)));
        assert!(matches!(a.setup(&token, "ann", "short"), Err(AuthError::ShortPassword)));
        let session = a.setup(&token, "ann", "correct horse").unwrap();
        assert_eq!(events.try_recv().unwrap(), AuthEvent::SignInRequired);
        assert_eq!(a.setup_token(), None, "the token is used up");
        assert!(matches!(a.setup(&token, "eve", "correct horse"), Err(AuthError::AlreadySetUp)));
        assert!(!a.access(None).open);
        assert_eq!(a.session(&session), Some(SessionUser { name: "ann".into(), role: Role::Admin }));
        a.add_user("val", "viewer pass", Role::Viewer).unwrap();
        let v = a.login("val", "viewer pass", PEER).await.unwrap();
        assert_eq!(a.session(&v).unwrap().role, Role::Viewer);
        assert!(matches!(a.login("val", "wrong pass", PEER).await, Err(LoginError::Invalid)));
        assert!(matches!(a.login("nobody", "wrong pass", PEER).await, Err(LoginError::Invalid)));
        assert!(matches!(a.login(&"x".repeat(70_000), "p", PEER).await, Err(LoginError::Invalid)));
        a.logout(&v);
        assert_eq!(a.session(&v), None);
        assert!(a.remove_user("ann").unwrap());
        assert_eq!(a.session(&session), None, "a removed user's sessions end");
        assert!(matches!(a.add_user("a/b", "long enough", Role::Admin), Err(AuthError::BadName)));
        assert!(matches!(a.add_user("b", &"x".repeat(2_000), Role::Admin), Err(AuthError::LongPassword)));
        assert_eq!(a.session("00"), None);
    }

    #[tokio::test]
    async fn a_password_reset_or_change_ends_old_sessions() {
        let a = auth();
        a.add_user("ann", "correct horse", Role::Admin).unwrap();
        let old = a.login("ann", "correct horse", PEER).await.unwrap();
        a.add_user("ann", "battery staple", Role::Admin).unwrap();
        assert_eq!(a.session(&old), None, "the command line's reset ends sessions");
        let s1 = a.login("ann", "battery staple", PEER).await.unwrap();
        let s2 = a.login("ann", "battery staple", PEER).await.unwrap();
        assert!(matches!(
            a.change_password("ann", "wrong one!", "new password", PEER).await,
            Err(PasswordChangeError::Login(LoginError::Invalid))
        ));
        assert!(matches!(
            a.change_password("ann", "battery staple", "short", PEER).await,
            Err(PasswordChangeError::Rules(AuthError::ShortPassword))
        ));
        let fresh = a.change_password("ann", "battery staple", "new password", PEER).await.unwrap();
        assert_eq!((a.session(&s1), a.session(&s2)), (None, None), "every other session ends");
        assert!(a.session(&fresh).is_some());
        assert!(a.login("ann", "new password", PEER).await.is_ok());
    }

    #[test]
    fn a_fixed_setup_token_is_used_as_given() {
        let config = AuthConfig { setup_token: crate::secret::Secret::new(" fixed-token "), ..config() };
        let a = Auth::new(UserDb::in_memory().unwrap(), config).unwrap();
        assert_eq!(a.setup_token().as_deref(), Some("fixed-token"));
        assert!(a.setup("fixed-token", "ann", "correct horse").is_ok());
    }

    #[test]
    fn device_keys_are_made_checked_replaced_and_revoked_with_events() {
        let a = auth();
        assert!(!a.devices_must_sign_in(), "open until a user exists");
        a.add_user("ann", "correct horse", Role::Admin).unwrap();
        assert!(a.devices_must_sign_in());
        let mut events = a.events();
        let key = a.new_device_key("dev1").unwrap();
        let hash = a.check_device_key("dev1", key.as_bytes()).unwrap();
        assert!(a.device_key_current("dev1", &hash));
        assert!(a.check_device_key("dev2", key.as_bytes()).is_none(), "keys belong to one device");
        assert!(a.check_device_key("dev1", b"guess").is_none());
        assert!(events.try_recv().is_err(), "a first key ends nothing");
        let again = a.new_device_key("dev1").unwrap();
        assert_eq!(events.try_recv().unwrap(), AuthEvent::DeviceKey("dev1".into()));
        assert!(!a.device_key_current("dev1", &hash), "the old key's connections are out");
        assert!(a.check_device_key("dev1", key.as_bytes()).is_none(), "a new key replaces the old");
        assert!(a.check_device_key("dev1", again.as_bytes()).is_some());
        assert_eq!(a.device_keys().unwrap(), ["dev1"]);
        assert!(a.revoke_device_key("dev1").unwrap());
        assert_eq!(events.try_recv().unwrap(), AuthEvent::DeviceKey("dev1".into()));
        assert!(a.check_device_key("dev1", again.as_bytes()).is_none());
    }

    #[test]
    fn cookies_are_http_only_strict_and_host_prefixed_when_secure() {
        let a = auth();
        let c = a.cookie("abc");
        assert!(c.starts_with("iot_session=abc;") && c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        assert!(!c.contains("Secure"));
        let config = AuthConfig { secure_cookies: true, ..config() };
        let s = Auth::new(UserDb::in_memory().unwrap(), config).unwrap();
        let c = s.cookie("abc");
        assert!(c.starts_with("__Host-iot_session=abc;") && c.contains("; Secure") && c.contains("Path=/"));
        assert!(s.clear_cookie().starts_with("__Host-iot_session=;"));
    }
}
