//! Sign-in: users with Argon2id-hashed passwords and the roles admin (changes things) and
//! viewer (looks), session cookies, and the request guard that enforces both.
//!
//! - No user yet: the dashboard is open and `/setup` creates the first admin (or `server user
//!   add` does, with the server stopped). Once a user exists every page, server function, export
//!   and the live WebSocket need a session, unless `auth.open` is set (a trusted LAN).
//! - Sessions are random 256-bit tokens in an `HttpOnly; SameSite=Strict` cookie (`Secure` with
//!   `auth.secure_cookies`, behind HTTPS); only their SHA-256 is stored. Scripts may send HTTP
//!   Basic credentials instead.
//! - Wrong passwords are throttled per user name (429); unknown names cost the same time.
//!
//! # Layout
//! - [`users`]: the user and session tables; [`password`]: Argon2id; [`throttle`].
//! - [`guard`]: the middleware; [`handlers`]: `/auth/login`, `/auth/logout`, `/auth/setup`.
//! - [`accounts`]: users and device keys as the dashboard's admin page changes them.

pub mod accounts;
pub mod guard;
pub mod handlers;
pub mod password;
pub mod throttle;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use telemetry::{Access, Role, SessionUser, valid_name};

use crate::ingest::now_ms;

use self::throttle::Throttle;
use self::users::{SessionRecord, UserDb, UserDbError, UserRecord};

/// The session cookie's name.
pub const COOKIE: &str = "iot_session";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// No sign-in at all, even once users exist: for a trusted LAN.
    pub open: bool,
    /// How long a sign-in lasts.
    pub session_days: u64,
    /// Mark the cookie `Secure` (the dashboard is served over HTTPS, e.g. behind a proxy).
    pub secure_cookies: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("user names are 1 to 64 of A-Z a-z 0-9 _ . -")]
    BadName,
    #[error("passwords need at least {} characters", telemetry::auth::MIN_PASSWORD_LEN)]
    ShortPassword,
    #[error("setup is done: a user already exists")]
    AlreadySetUp,
    #[error(transparent)]
    Db(#[from] UserDbError),
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("too many wrong passwords; try again in {} s", .0.as_secs().max(1))]
    Throttled(Duration),
    #[error("wrong user name or password")]
    Invalid,
    #[error(transparent)]
    Db(#[from] UserDbError),
}

/// Where the user database lives: `users.redb` next to the telemetry database.
pub fn users_path(storage: &Path) -> PathBuf {
    storage.with_file_name("users.redb")
}

pub struct Auth {
    users: UserDb,
    config: AuthConfig,
    throttle: Throttle,
    count: AtomicU64,
    setup: Mutex<()>,
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

/// `n` random bytes as lower-case hex.
fn random_hex(n: usize) -> String {
    use std::fmt::Write;
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().fold(String::with_capacity(2 * n), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl Auth {
    pub fn new(users: UserDb, config: AuthConfig) -> Result<Auth, AuthError> {
        let count = AtomicU64::new(users.count()?);
        users.remove_expired(now_ms())?;
        Ok(Auth { users, config, throttle: Throttle::default(), count, setup: Mutex::new(()) })
    }

    /// What a request with `user` (if signed in) may see.
    pub fn access(&self, user: Option<SessionUser>) -> Access {
        let none = self.count.load(Ordering::Relaxed) == 0;
        Access { user, open: self.config.open || none, setup_needed: none }
    }

    /// A new user's record, once the name and password pass.
    fn new_record(name: &str, password: &str, role: Role) -> Result<UserRecord, AuthError> {
        if valid_name(name).is_err() {
            return Err(AuthError::BadName);
        }
        if password.chars().count() < telemetry::auth::MIN_PASSWORD_LEN {
            return Err(AuthError::ShortPassword);
        }
        Ok(UserRecord { name: name.to_owned(), password: password::hash(password), role, created: now_ms() })
    }

    /// Adds a user, or replaces one of that name (the command line's `user add`).
    pub fn add_user(&self, name: &str, password: &str, role: Role) -> Result<(), AuthError> {
        let record = Self::new_record(name, password, role)?;
        if !self.users.put(&record)? {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    pub fn remove_user(&self, name: &str) -> Result<bool, AuthError> {
        let removed = self.users.remove(name)?;
        if removed {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(removed)
    }

    pub fn users(&self) -> Result<Vec<(String, Role)>, AuthError> {
        Ok(self.users.list()?.into_iter().map(|u| (u.name, u.role)).collect())
    }

    /// Creates the first admin and signs them in; refused once any user exists.
    pub fn setup(&self, name: &str, password: &str) -> Result<String, AuthError> {
        let _one_at_a_time = self.setup.lock().unwrap_or_else(|e| e.into_inner());
        if self.users.count()? > 0 {
            return Err(AuthError::AlreadySetUp);
        }
        self.add_user(name, password, Role::Admin)?;
        Ok(self.new_session(name)?)
    }

    /// Checks a password (throttled). Blocking: Argon2 takes tens of milliseconds.
    pub fn check_password(&self, name: &str, password: &str) -> Result<SessionUser, LoginError> {
        let now = Instant::now();
        self.throttle.check(name, now).map_err(LoginError::Throttled)?;
        let user = self.users.get(name)?;
        let ok = match &user {
            Some(u) => password::verify(password, &u.password),
            None => {
                password::verify_nobody(password);
                false
            }
        };
        match user {
            Some(u) if ok => {
                self.throttle.succeeded(name);
                Ok(SessionUser { name: u.name, role: u.role })
            }
            _ => {
                self.throttle.failed(name, now);
                Err(LoginError::Invalid)
            }
        }
    }

    /// Signs in: a new session token for the cookie.
    pub fn login(&self, name: &str, password: &str) -> Result<String, LoginError> {
        let user = self.check_password(name, password)?;
        Ok(self.new_session(&user.name)?)
    }

    fn new_session(&self, name: &str) -> Result<String, UserDbError> {
        let token = random_hex(32);
        let expires = now_ms() + self.config.session_days as i64 * 86_400_000;
        self.users.put_session(&token_hash(&token), &SessionRecord { user: name.to_owned(), expires })?;
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
    }

    /// Whether MQTT devices must sign in (with their device key): whenever people must.
    pub fn devices_must_sign_in(&self) -> bool {
        !self.config.open && self.count.load(Ordering::Relaxed) > 0
    }

    /// Makes (or replaces) a device's MQTT password: a random key, shown once, stored hashed.
    pub fn new_device_key(&self, device: &str) -> Result<String, AuthError> {
        Ok(self.replace_device_key(device)?.0)
    }

    /// A new key for `device`, and whether it replaced one.
    fn replace_device_key(&self, device: &str) -> Result<(String, bool), AuthError> {
        if valid_name(device).is_err() {
            return Err(AuthError::BadName);
        }
        let key = random_hex(24);
        let replaced = self.users.put_device_key(device, &token_hash(&key))?;
        Ok((key, replaced))
    }

    pub fn revoke_device_key(&self, device: &str) -> Result<bool, AuthError> {
        Ok(self.users.remove_device_key(device)?)
    }

    pub fn device_keys(&self) -> Result<Vec<String>, AuthError> {
        Ok(self.users.device_key_ids()?)
    }

    /// Whether `key` is `device`'s MQTT password. Keys are random, so a plain hash suffices.
    pub fn check_device_key(&self, device: &str, key: &[u8]) -> bool {
        let Ok(key) = std::str::from_utf8(key) else { return false };
        self.users.device_key(device).ok().flatten().is_some_and(|h| h == token_hash(key))
    }

    /// The `Set-Cookie` value for a new session.
    pub fn cookie(&self, token: &str) -> String {
        let secure = if self.config.secure_cookies { "; Secure" } else { "" };
        let max_age = self.config.session_days * 86_400;
        format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
    }

    /// The `Set-Cookie` value that signs out.
    pub fn clear_cookie(&self) -> String {
        format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        let config = AuthConfig { open: false, session_days: 7, secure_cookies: false };
        Auth::new(UserDb::in_memory().unwrap(), config).unwrap()
    }

    #[test]
    fn setup_once_then_sessions_and_roles() {
        let a = auth();
        assert!(a.access(None).open && a.access(None).setup_needed);
        assert!(matches!(a.setup("ann", "short"), Err(AuthError::ShortPassword)));
        let token = a.setup("ann", "correct horse").unwrap();
        assert!(matches!(a.setup("eve", "correct horse"), Err(AuthError::AlreadySetUp)));
        assert!(!a.access(None).open);
        assert_eq!(a.session(&token), Some(SessionUser { name: "ann".into(), role: Role::Admin }));
        a.add_user("val", "viewer pass", Role::Viewer).unwrap();
        let v = a.login("val", "viewer pass").unwrap();
        assert_eq!(a.session(&v).unwrap().role, Role::Viewer);
        assert!(matches!(a.login("val", "wrong pass"), Err(LoginError::Invalid)));
        assert!(matches!(a.login("nobody", "wrong pass"), Err(LoginError::Invalid)));
        a.logout(&v);
        assert_eq!(a.session(&v), None);
        assert!(a.remove_user("ann").unwrap());
        assert_eq!(a.session(&token), None, "a removed user's sessions end");
        assert!(matches!(a.add_user("a/b", "long enough", Role::Admin), Err(AuthError::BadName)));
        assert_eq!(a.session("00"), None);
    }

    #[test]
    fn device_keys_are_made_checked_and_revoked() {
        let a = auth();
        assert!(!a.devices_must_sign_in(), "open until a user exists");
        a.add_user("ann", "correct horse", Role::Admin).unwrap();
        assert!(a.devices_must_sign_in());
        let key = a.new_device_key("dev1").unwrap();
        assert!(a.check_device_key("dev1", key.as_bytes()));
        assert!(!a.check_device_key("dev2", key.as_bytes()), "keys belong to one device");
        assert!(!a.check_device_key("dev1", b"guess"));
        let again = a.new_device_key("dev1").unwrap();
        assert!(!a.check_device_key("dev1", key.as_bytes()), "a new key replaces the old");
        assert!(a.check_device_key("dev1", again.as_bytes()));
        assert_eq!(a.device_keys().unwrap(), ["dev1"]);
        assert!(a.revoke_device_key("dev1").unwrap());
        assert!(!a.check_device_key("dev1", again.as_bytes()));
    }

    #[test]
    fn cookies_are_http_only_and_strict() {
        let a = auth();
        let c = a.cookie("abc");
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"));
    }
}
