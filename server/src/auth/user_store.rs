//! [`UserStore`]: what [`super::Auth`] keeps of users, sign-in sessions and device keys, and
//! where: a redb file of its own on one node ([`super::users::UserDb`]), or PostgreSQL shared
//! by every node of a cluster (`PgBlocking`, in `store/postgres/users.rs`).
//!
//! The store holds every rule two nodes could break by racing, so none is checked in a
//! node's memory: the caps (users, sessions per user, device keys) are counted in the same
//! transaction as the write they limit, removing or demoting the last admin is refused in
//! the transaction that would do it, and a password change or a removal ends the user's
//! sessions in the transaction that makes it. Session tokens are kept only as their SHA-256,
//! passwords only as Argon2id PHC strings, device keys only as their SHA-256.

use serde::{Deserialize, Serialize};
use telemetry::Role;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    /// Argon2id PHC string.
    pub password: String,
    pub role: Role,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user: String,
    /// Milliseconds since 1970; the session ends at that instant.
    pub expires: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("user database: {0}")]
pub struct UserStoreError(pub String);

impl UserStoreError {
    pub fn new(e: impl std::fmt::Display) -> UserStoreError {
        UserStoreError(e.to_string())
    }
}

impl From<crate::store::StoreError> for UserStoreError {
    fn from(e: crate::store::StoreError) -> UserStoreError {
        UserStoreError::new(e)
    }
}

/// What [`UserStore::change_keeping_an_admin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Done,
    NoSuchUser,
    /// Refused: the user is the last admin.
    LastAdmin,
}

/// What adding a user or a device key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Stored; there was none of that name.
    New,
    /// Stored in place of the one of that name.
    Replaced,
    /// Nothing changed: one of that name exists ([`UserStore::insert_new`]), or any user
    /// does ([`UserStore::insert_first`]).
    Taken,
    /// Nothing changed: the cap is reached.
    Full,
}

/// Users, sessions and device keys. Every method is one transaction.
pub trait UserStore: Send + Sync {
    /// How many users there are.
    fn count(&self) -> Result<u64, UserStoreError>;

    fn get(&self, name: &str) -> Result<Option<UserRecord>, UserStoreError>;

    /// Every user, by name (bytewise).
    fn list(&self) -> Result<Vec<UserRecord>, UserStoreError>;

    /// Adds a user, or replaces the one of that name and ends its sessions (a password reset
    /// locks out whoever knew the old one); [`Added::Full`] if it would be user number
    /// `max_users + 1`.
    fn put(&self, user: &UserRecord, max_users: usize) -> Result<Added, UserStoreError>;

    /// Adds a user unless one of that name exists ([`Added::Taken`]) or `max_users` do.
    fn insert_new(&self, user: &UserRecord, max_users: usize) -> Result<Added, UserStoreError>;

    /// Adds the first user: [`Added::Taken`] if any user exists (two setups at once, on one
    /// node or two, make one admin).
    fn insert_first(&self, user: &UserRecord) -> Result<Added, UserStoreError>;

    /// Removes a user and ends their sessions; false if there was none.
    fn remove(&self, name: &str) -> Result<bool, UserStoreError>;

    /// Removes a user (ending their sessions), or sets their role (`Some`), unless that would
    /// leave no admin. Checked and written in one transaction, so two admins demoting each
    /// other at once, on one node or two, cannot both succeed.
    fn change_keeping_an_admin(&self, name: &str, role: Option<Role>) -> Result<Change, UserStoreError>;

    /// Stores a session under its token's hash; beyond `max_per_user` sessions of that user,
    /// the ones closest to expiry (then lowest hash) end.
    fn put_session(
        &self,
        token_hash: &[u8],
        session: &SessionRecord,
        max_per_user: usize,
    ) -> Result<(), UserStoreError>;

    /// The user of an unexpired session (expiring after `now`), in one read (this runs on
    /// every request).
    fn session_user(&self, token_hash: &[u8], now: i64) -> Result<Option<UserRecord>, UserStoreError>;

    /// Sets a user's password (an Argon2id PHC string) and ends all their sessions, in one
    /// transaction; false if there is no such user.
    fn set_password(&self, name: &str, password: &str) -> Result<bool, UserStoreError>;

    fn remove_session(&self, token_hash: &[u8]) -> Result<(), UserStoreError>;

    /// Drops sessions that expired at or before `now`; answers how many sessions are left.
    fn remove_expired(&self, now: i64) -> Result<u64, UserStoreError>;

    /// Sessions stored (live or not yet pruned).
    fn session_count(&self) -> Result<u64, UserStoreError>;

    /// Every device key: device id → SHA-256 of the key, by device id.
    fn device_key_hashes(&self) -> Result<Vec<(String, Vec<u8>)>, UserStoreError>;

    /// Sets a device's key hash: [`Added::New`], [`Added::Replaced`], or [`Added::Full`] if
    /// it would be key number `max_keys + 1`.
    fn put_device_key(&self, device: &str, key_hash: &[u8], max_keys: usize)
    -> Result<Added, UserStoreError>;

    fn remove_device_key(&self, device: &str) -> Result<bool, UserStoreError>;

    fn device_key(&self, device: &str) -> Result<Option<Vec<u8>>, UserStoreError>;

    /// Device ids with a key, by id.
    fn device_key_ids(&self) -> Result<Vec<String>, UserStoreError>;

    /// A number that changes whenever any device key is set or removed, by any node: a node
    /// keeping the keys in memory reads them again when it changed.
    fn device_keys_version(&self) -> Result<u64, UserStoreError>;
}
