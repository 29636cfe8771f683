//! Version 7: users, sign-in sessions and device keys ([`super::super::users`]), what
//! `crate::auth::UserStore` keeps, shared by every node so a sign-in on one is good on all.
//! - `users`: one row per user: the name, the Argon2id PHC string (never the password), the
//!   role (checked to be one the server knows) and when it was made (ms since 1970, as the
//!   redb store keeps it). At most `MAX_USERS` rows, counted under the users' lock.
//! - `user_sessions`: the SHA-256 of each session token (never the token: a copy of the
//!   database lets nobody in), whose user, and when it expires (ms since 1970: the server
//!   computes it with saturating arithmetic, so any `bigint` can arrive). The user's row is
//!   referenced with `ON DELETE CASCADE`, so removing a user ends their sessions in the same
//!   statement. Index (user_name, expires): a user's sessions, oldest-expiring first, for the
//!   per-user cap and for ending them all; index (expires): the purge of expired ones.
//! - `device_keys`: device id → SHA-256 of its MQTT key. At most `MAX_DEVICE_KEYS`, counted
//!   under the lock of the `device_keys_version` counter.
//! - `counters.device_keys_version`: moved on by every write to `device_keys`, so nodes that
//!   keep the keys in memory learn cheaply that they must read them again.

pub(super) const SQL: &str = "
CREATE TABLE users (
    name text PRIMARY KEY,
    password text NOT NULL,
    role text NOT NULL CHECK (role IN ('admin', 'viewer')),
    created bigint NOT NULL
);
CREATE TABLE user_sessions (
    token_hash bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_name text NOT NULL REFERENCES users (name) ON DELETE CASCADE ON UPDATE CASCADE,
    expires bigint NOT NULL
);
CREATE INDEX user_sessions_user ON user_sessions (user_name, expires);
CREATE INDEX user_sessions_expires ON user_sessions (expires);
CREATE TABLE device_keys (
    device text PRIMARY KEY,
    key_hash bytea NOT NULL CHECK (octet_length(key_hash) = 32)
);
INSERT INTO counters (name, value) VALUES ('device_keys_version', 0);
";
