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
//! # Several nodes on one database
//! With a [`UserStore`] shared by several nodes (PostgreSQL), what [`Auth`] keeps in memory is
//! per node. Each piece, and what it means:
//! - Sessions are not kept: every request's session is read from the store, so a session
//!   ended on one node (sign-out, password change, user removed or demoted) is refused or
//!   downgraded on every node at its next request. No sticky load balancing is needed.
//! - Whether any user exists ([`Auth::access`], asked on every request): once a node has seen
//!   a user it remembers that (the server never removes the last admin, and the command
//!   line's removal runs with the servers stopped); until then it asks the store every
//!   time, so a setup made on another node closes the dashboard on this one at once.
//! - Device keys are kept in memory (checked on every CONNECT and publish) and read again
//!   when [`UserStore::device_keys_version`] changed, asked at most every [`KEYS_FRESH`]:
//!   a key replaced or revoked on another node stops working here within that bound, and
//!   this node then announces it, so its connections with the old key end.
//! - The setup token is per node (random per start unless `auth.setup_token` fixes it): give
//!   every node the same fixed one, or open `/setup` on the node that printed its token.
//! - The password gate's throttles and its cap on checks at once are per node: behind a
//!   load balancer spreading one client over N nodes, it gets N times the guesses.
//! - [`AuthEvent`]s reach this node's connections only. Another node's live feeds see a
//!   change when they check their rights again (every [`crate::web::live::RECHECK_EVERY`],
//!   reading the store); its MQTT connections see a key change as said above.
//! - The log budget is per node.
//!
//! # Layout
//! - [`user_store`]: what is kept ([`UserStore`]) and the rules it keeps;
//!   [`users`]: the redb file that keeps it on one node; [`password`]: Argon2id;
//!   [`gate`] and [`throttle`]: how often, and how many at once, passwords are checked.
//! - The HTTP side (the sign-in guard and forms) is in [`crate::web`].
//! - [`accounts`]: users and device keys as the dashboard's admin page changes them.

pub mod accounts;
pub mod gate;
pub mod password;
pub mod throttle;
pub mod user_store;
pub mod users;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use telemetry::accounts::{MAX_DEVICE_KEYS, MAX_PASSWORD_LEN, MAX_USERS};
use telemetry::{Access, Role, SessionUser, valid_name};
use tokio::sync::broadcast;

use crate::clock::now_ms;
use crate::log_limit::LogLimit;
use crate::secret::same_secret;

use self::gate::Gate;
pub use self::user_store::{Added, UserStore, UserStoreError};
use self::user_store::{SessionRecord, UserRecord};

/// The session cookie's name over plain HTTP.
pub const COOKIE: &str = "iot_session";
/// Its name with secure cookies: a `__Host-` cookie is only ever set by this host, over HTTPS,
/// for the whole site, so no neighbour (a sibling subdomain, a plain-HTTP page) can plant one.
pub const SECURE_COOKIE: &str = "__Host-iot_session";

/// Sessions one user may hold; signing in again beyond that ends the oldest.
pub const MAX_SESSIONS_PER_USER: usize = 32;

/// How long this node trusts its memory of the device keys before asking the store whether
/// any changed (on another node).
pub const KEYS_FRESH: Duration = Duration::from_secs(1);

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
    Db(#[from] UserStoreError),
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
    Db(#[from] UserStoreError),
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
    users: Box<dyn UserStore>,
    config: AuthConfig,
    /// Per node (see the module's doc).
    gate: Gate,
    /// A user exists: once seen, remembered (see the module's doc).
    users_exist: AtomicBool,
    /// The one-time token `/setup` needs, while no user exists. Per node.
    setup_token: Mutex<Option<String>>,
    /// This node's memory of the device keys: checked on every CONNECT and publish.
    keys: RwLock<Keys>,
    /// When `keys` was last found current (ms since `started`); the refresh under way, or
    /// this node's own change to the keys.
    keys_checked: AtomicU64,
    keys_refresh: Mutex<()>,
    started: Instant,
    /// To this node's connections only.
    events: broadcast::Sender<AuthEvent>,
    /// The budget of sign-in's log lines (failed sign-ins, wrong setup tokens, refusals).
    log: LogLimit,
}

/// Every device key's hash, by device, as of the store's [`UserStore::device_keys_version`].
struct Keys {
    version: u64,
    hashes: HashMap<String, [u8; 32]>,
}

impl Keys {
    fn read(users: &dyn UserStore) -> Result<Keys, UserStoreError> {
        // The version first: a change made while the keys are read shows as a newer one.
        let version = users.device_keys_version()?;
        let hashes = users
            .device_key_hashes()?
            .into_iter()
            .filter_map(|(device, hash)| Some((device, <[u8; 32]>::try_from(hash).ok()?)))
            .collect();
        Ok(Keys { version, hashes })
    }
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
    pub fn new(users: impl UserStore + 'static, config: AuthConfig) -> Result<Auth, AuthError> {
        let count = users.count()?;
        users.remove_expired(now_ms())?;
        let keys = Keys::read(&users)?;
        let setup_token = (count == 0).then(|| match config.setup_token.expose().trim() {
            "" => crate::random::hex(SETUP_TOKEN_BYTES),
            fixed => fixed.to_owned(),
        });
        Ok(Auth {
            users: Box::new(users),
            config,
            gate: Gate::default(),
            users_exist: AtomicBool::new(count > 0),
            setup_token: Mutex::new(setup_token),
            keys: RwLock::new(keys),
            keys_checked: AtomicU64::new(0),
            keys_refresh: Mutex::new(()),
            started: Instant::now(),
            events: broadcast::channel(64).0,
            log: LogLimit::default(),
        })
    }

    /// Whether any user exists: remembered once seen, asked of the store until then (another
    /// node may have made the first). A store that cannot answer counts as yes: the
    /// dashboard stays closed while its users cannot be read.
    fn users_exist(&self) -> bool {
        if self.users_exist.load(Ordering::Relaxed) {
            return true;
        }
        match self.users.count() {
            Ok(0) => false,
            Ok(_) => {
                self.first_user();
                true
            }
            Err(e) => {
                if self.log_line("user database", "count").is_some() {
                    tracing::warn!(error = %e, "user database: cannot tell whether users exist; signing in is required");
                }
                true
            }
        }
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
        let none = !self.users_exist();
        Access { user, open: self.config.open || none, setup_needed: none }
    }

    /// Whether people must sign in (a user exists and the dashboard is not configured open).
    pub fn sign_in_required(&self) -> bool {
        !self.config.open && self.users_exist()
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
        match self.users.put(&record, MAX_USERS)? {
            Added::New => self.first_user(),
            // (`put` replaces: never `Taken`.)
            Added::Replaced | Added::Taken => self.announce(AuthEvent::Sessions),
            Added::Full => return Err(AuthError::TooManyUsers),
        }
        Ok(())
    }

    /// A user exists (the first, or another that this node now knows of): setup is over, and
    /// everyone signs in from now on. Announced once per node.
    fn first_user(&self) {
        if self.users_exist.swap(true, Ordering::Relaxed) {
            return;
        }
        *self.setup_token.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if !self.config.open {
            self.announce(AuthEvent::SignInRequired);
        }
    }

    /// Removes a user (the command line's `user remove`, the last admin included).
    pub fn remove_user(&self, name: &str) -> Result<bool, AuthError> {
        let removed = self.users.remove(name)?;
        if removed {
            self.users_exist.store(self.users.count()? > 0, Ordering::Relaxed);
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
    /// the setup token. Blocking (Argon2). Two setups at once, on one node or two, make one admin: the store adds the first
    /// user only while there is none.
    pub fn setup(&self, token: &str, name: &str, password: &str) -> Result<String, AuthError> {
        if self.users_exist() {
            return Err(AuthError::AlreadySetUp);
        }
        let expected = self.setup_token().ok_or(AuthError::AlreadySetUp)?;
        if !same_secret(token.trim().as_bytes(), expected.as_bytes()) {
            return Err(AuthError::WrongSetupToken);
        }
        let record = Self::new_record(name, password, Role::Admin)?;
        match self.users.insert_first(&record)? {
            Added::New => self.first_user(),
            _ => {
                self.first_user();
                return Err(AuthError::AlreadySetUp);
            }
        }
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

    fn new_session(&self, name: &str) -> Result<String, UserStoreError> {
        let expires = now_ms().saturating_add((self.config.session_days as i64).saturating_mul(86_400_000));
        self.session_until(name, expires)
    }

    /// A new session for `name` that lasts until `expires` (ms).
    pub(crate) fn session_until(&self, name: &str, expires: i64) -> Result<String, UserStoreError> {
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
    pub fn prune_sessions(&self) -> Result<u64, UserStoreError> {
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
        let key = crate::random::hex(24);
        let hash = token_hash(&key);
        // No refresh runs meanwhile, so its reading cannot hide this change.
        let _writing = self.keys_refresh.lock().unwrap_or_else(|e| e.into_inner());
        let replaced = match self.users.put_device_key(device, &hash, MAX_DEVICE_KEYS)? {
            Added::Full => return Err(AuthError::TooManyKeys),
            added => added == Added::Replaced,
        };
        self.keys.write().unwrap_or_else(|e| e.into_inner()).hashes.insert(device.to_owned(), hash);
        if replaced {
            self.announce(AuthEvent::DeviceKey(device.to_owned()));
        }
        Ok((key, replaced))
    }

    /// Revokes a device's key; its connections end.
    pub fn revoke_device_key(&self, device: &str) -> Result<bool, AuthError> {
        let _writing = self.keys_refresh.lock().unwrap_or_else(|e| e.into_inner());
        let removed = self.users.remove_device_key(device)?;
        self.keys.write().unwrap_or_else(|e| e.into_inner()).hashes.remove(device);
        if removed {
            self.announce(AuthEvent::DeviceKey(device.to_owned()));
        }
        Ok(removed)
    }

    /// Reads the device keys again if another node changed them, asking the store at most
    /// every [`KEYS_FRESH`]; announces each device whose key changed, so this node's
    /// connections with the old one end. One caller asks while the others go on with what
    /// is known; a store that cannot answer leaves the keys as they were (devices are not
    /// cut off by a database outage) and is asked again after the bound.
    pub fn refresh_device_keys(&self) {
        let elapsed = |auth: &Auth| u64::try_from(auth.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let checked = self.keys_checked.load(Ordering::Relaxed);
        if elapsed(self).saturating_sub(checked) < KEYS_FRESH.as_millis() as u64 {
            return;
        }
        let Ok(_one) = self.keys_refresh.try_lock() else { return };
        let now = elapsed(self);
        if now.saturating_sub(self.keys_checked.load(Ordering::Relaxed)) < KEYS_FRESH.as_millis() as u64 {
            return;
        }
        self.keys_checked.store(now, Ordering::Relaxed);
        let version = match self.users.device_keys_version() {
            Ok(v) => v,
            Err(e) => return tracing::warn!(error = %e, "user database: device keys not checked"),
        };
        if self.keys.read().unwrap_or_else(|e| e.into_inner()).version == version {
            return;
        }
        let fresh = match Keys::read(&*self.users) {
            Ok(keys) => keys,
            Err(e) => return tracing::warn!(error = %e, "user database: device keys not read"),
        };
        let changed: Vec<String> = {
            let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
            let old = std::mem::replace(&mut *keys, fresh);
            old.hashes
                .into_iter()
                .filter(|(device, hash)| keys.hashes.get(device) != Some(hash))
                .map(|(device, _)| device)
                .collect()
        };
        for device in changed {
            self.announce(AuthEvent::DeviceKey(device));
        }
    }

    pub fn device_keys(&self) -> Result<Vec<String>, AuthError> {
        Ok(self.users.device_key_ids()?)
    }

    /// The hash of `device`'s key if `key` is it. Keys are random, so a plain hash suffices.
    pub fn check_device_key(&self, device: &str, key: &[u8]) -> Option<[u8; 32]> {
        let key = std::str::from_utf8(key).ok()?;
        let hash = token_hash(key);
        self.refresh_device_keys();
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        keys.hashes.get(device).filter(|stored| same_secret(*stored, &hash)).copied()
    }

    /// Whether `device`'s key is still the one whose hash is `hash` (not replaced or revoked,
    /// here or, within [`KEYS_FRESH`], on another node).
    pub fn device_key_current(&self, device: &str, hash: &[u8; 32]) -> bool {
        self.refresh_device_keys();
        self.keys.read().unwrap_or_else(|e| e.into_inner()).hashes.get(device) == Some(hash)
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

    use super::users::UserDb;
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
