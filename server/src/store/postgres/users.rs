//! Users, sign-in sessions and device keys ([`UserStore`]) on PostgreSQL, shared by every
//! node: a session made on one is good on all at once, and one ended on one is refused on
//! all at once (the server reads the session on every request).
//!
//! What two nodes could break by racing is decided in the database:
//! - Adding a user, and demoting or removing one, take the users' advisory lock
//!   ([`USERS_LOCK`]) for their transaction, then count: two nodes adding the last user
//!   the cap allows, or demoting the last two admins, take turns, and the second sees the
//!   first's commit (READ COMMITTED reads anew in each statement, after the lock).
//! - A session is stored with its user's row locked (`FOR NO KEY UPDATE`), so two sign-ins
//!   of one user on two nodes take turns trimming to the per-user cap; a user removed
//!   meanwhile takes their sessions with them (`ON DELETE CASCADE`), and a session for a
//!   user that does not exist is not stored.
//! - A device key is written with the `device_keys_version` counter's row locked (it moves
//!   on in the same statement), so the count against the cap and the version are exact.

use telemetry::Role;
use tokio_postgres::Row;

use super::blocking::PgBlocking;
use super::error::PgError;
use super::store::PgStore;
use crate::auth::user_store::{Added, Change, SessionRecord, UserRecord, UserStore, UserStoreError};

/// The advisory lock that writes counting users hold ("users" in ASCII).
const USERS_LOCK: i64 = 0x0000_0075_7365_7273;

/// Sessions ended in one purge statement at most, so a purge never holds locks long; the
/// purge goes on until none is left.
const PURGE_BATCH: i64 = 10_000;

fn user(row: &Row) -> Result<UserRecord, PgError> {
    let role: &str = row.get("role");
    let role: Role = role.parse().map_err(|_| PgError::Corrupt(format!("a user's role is {role:?}")))?;
    Ok(UserRecord { name: row.get("name"), password: row.get("password"), role, created: row.get("created") })
}

/// A cap as the database counts (caps are small constants).
fn cap(max: usize) -> i64 {
    i64::try_from(max).unwrap_or(i64::MAX)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// How a user is added.
#[derive(Clone, Copy)]
enum Adding {
    /// Or replaces the one of that name.
    Put,
    /// Unless one of that name exists.
    New,
    /// Unless any user exists.
    First,
}

impl PgStore {
    pub async fn user_count(&self) -> Result<u64, PgError> {
        let client = self.pool.get().await?;
        Ok(count(client.query_one("SELECT count(*) FROM users", &[]).await?.get(0)))
    }

    pub async fn user(&self, name: &str) -> Result<Option<UserRecord>, PgError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt("SELECT name, password, role, created FROM users WHERE name = $1", &[&name])
            .await?;
        row.as_ref().map(user).transpose()
    }

    /// Every user by name, bytewise (`COLLATE "C"`, as redb orders its keys); at most
    /// `MAX_USERS`, which adding keeps to.
    pub async fn users(&self) -> Result<Vec<UserRecord>, PgError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT name, password, role, created FROM users ORDER BY name COLLATE \"C\" LIMIT $1",
                &[&cap(telemetry::accounts::MAX_USERS)],
            )
            .await?;
        rows.iter().map(user).collect()
    }

    async fn add_user(&self, record: &UserRecord, how: Adding, max_users: usize) -> Result<Added, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&USERS_LOCK]).await?;
        let users: i64 = tx.query_one("SELECT count(*) FROM users", &[]).await?.get(0);
        let exists = tx.query_opt("SELECT 1 FROM users WHERE name = $1", &[&record.name]).await?.is_some();
        match how {
            Adding::First if users > 0 => return Ok(Added::Taken),
            Adding::New if exists => return Ok(Added::Taken),
            _ if !exists && users >= cap(max_users) => return Ok(Added::Full),
            _ => {}
        }
        let role = record.role.as_str();
        if exists {
            tx.execute(
                "UPDATE users SET password = $2, role = $3, created = $4 WHERE name = $1",
                &[&record.name, &record.password, &role, &record.created],
            )
            .await?;
            tx.execute("DELETE FROM user_sessions WHERE user_name = $1", &[&record.name]).await?;
        } else {
            tx.execute(
                "INSERT INTO users (name, password, role, created) VALUES ($1, $2, $3, $4)",
                &[&record.name, &record.password, &role, &record.created],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(if exists { Added::Replaced } else { Added::New })
    }

    /// Removes a user; their sessions go with the row.
    pub async fn remove_user(&self, name: &str) -> Result<bool, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&USERS_LOCK]).await?;
        let removed = tx.execute("DELETE FROM users WHERE name = $1", &[&name]).await? == 1;
        tx.commit().await?;
        Ok(removed)
    }

    pub async fn change_keeping_an_admin(&self, name: &str, role: Option<Role>) -> Result<Change, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&USERS_LOCK]).await?;
        let Some(row) = tx.query_opt("SELECT role FROM users WHERE name = $1", &[&name]).await? else {
            return Ok(Change::NoSuchUser);
        };
        let current: &str = row.get(0);
        if current == Role::Admin.as_str() && role != Some(Role::Admin) {
            let admins: i64 = tx
                .query_one("SELECT count(*) FROM users WHERE role = $1", &[&Role::Admin.as_str()])
                .await?
                .get(0);
            if admins <= 1 {
                return Ok(Change::LastAdmin);
            }
        }
        match role {
            Some(role) => {
                tx.execute("UPDATE users SET role = $2 WHERE name = $1", &[&name, &role.as_str()]).await?
            }
            None => tx.execute("DELETE FROM users WHERE name = $1", &[&name]).await?,
        };
        tx.commit().await?;
        Ok(Change::Done)
    }

    /// Stores a session; beyond `max_per_user` of that user's, the ones closest to expiry
    /// (then lowest hash, as redb's order) end. Nothing is stored for a user that does not
    /// exist (it could not be used).
    pub async fn put_session(
        &self,
        token_hash: &[u8],
        session: &SessionRecord,
        max_per_user: usize,
    ) -> Result<(), PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let user = &session.user;
        if tx.query_opt("SELECT 1 FROM users WHERE name = $1 FOR NO KEY UPDATE", &[user]).await?.is_none() {
            return Ok(());
        }
        tx.execute(
            "INSERT INTO user_sessions (token_hash, user_name, expires) VALUES ($1, $2, $3)
             ON CONFLICT (token_hash) DO UPDATE SET user_name = EXCLUDED.user_name, expires = EXCLUDED.expires",
            &[&token_hash, user, &session.expires],
        )
        .await?;
        tx.execute(
            "DELETE FROM user_sessions WHERE token_hash IN (
                SELECT token_hash FROM user_sessions WHERE user_name = $1
                ORDER BY expires DESC, token_hash DESC OFFSET $2)",
            &[user, &cap(max_per_user)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user of a session expiring after `now`: one indexed join.
    pub async fn session_user(&self, token_hash: &[u8], now: i64) -> Result<Option<UserRecord>, PgError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT u.name, u.password, u.role, u.created FROM user_sessions s
                 JOIN users u ON u.name = s.user_name WHERE s.token_hash = $1 AND s.expires > $2",
                &[&token_hash, &now],
            )
            .await?;
        row.as_ref().map(user).transpose()
    }

    /// Sets the password and ends every session of the user, in one transaction.
    pub async fn set_password(&self, name: &str, password: &str) -> Result<bool, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if tx.execute("UPDATE users SET password = $2 WHERE name = $1", &[&name, &password]).await? == 0 {
            return Ok(false);
        }
        tx.execute("DELETE FROM user_sessions WHERE user_name = $1", &[&name]).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn remove_session(&self, token_hash: &[u8]) -> Result<(), PgError> {
        let client = self.pool.get().await?;
        client.execute("DELETE FROM user_sessions WHERE token_hash = $1", &[&token_hash]).await?;
        Ok(())
    }

    /// Drops sessions expired at or before `now`, [`PURGE_BATCH`] at a time; answers how many
    /// are left. Several nodes purging at once only share the work.
    pub async fn remove_expired_sessions(&self, now: i64) -> Result<u64, PgError> {
        let client = self.pool.get().await?;
        loop {
            let gone = client
                .execute(
                    "DELETE FROM user_sessions WHERE token_hash IN (
                        SELECT token_hash FROM user_sessions WHERE expires <= $1 LIMIT $2)",
                    &[&now, &PURGE_BATCH],
                )
                .await?;
            if gone < PURGE_BATCH as u64 {
                break;
            }
        }
        Ok(count(client.query_one("SELECT count(*) FROM user_sessions", &[]).await?.get(0)))
    }

    pub async fn session_count(&self) -> Result<u64, PgError> {
        let client = self.pool.get().await?;
        Ok(count(client.query_one("SELECT count(*) FROM user_sessions", &[]).await?.get(0)))
    }

    /// Every device key by id, bytewise; at most `MAX_DEVICE_KEYS`, which issuing keeps to.
    pub async fn device_key_hashes(&self) -> Result<Vec<(String, Vec<u8>)>, PgError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT device, key_hash FROM device_keys ORDER BY device COLLATE \"C\" LIMIT $1",
                &[&cap(telemetry::accounts::MAX_DEVICE_KEYS)],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub async fn put_device_key(
        &self,
        device: &str,
        key_hash: &[u8],
        max_keys: usize,
    ) -> Result<Added, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Locks the counter's row until commit: key writes take turns.
        tx.execute("UPDATE counters SET value = value + 1 WHERE name = 'device_keys_version'", &[]).await?;
        let exists = tx.query_opt("SELECT 1 FROM device_keys WHERE device = $1", &[&device]).await?.is_some();
        if !exists {
            let keys: i64 = tx.query_one("SELECT count(*) FROM device_keys", &[]).await?.get(0);
            if keys >= cap(max_keys) {
                // Rolled back: the version stays.
                return Ok(Added::Full);
            }
        }
        tx.execute(
            "INSERT INTO device_keys (device, key_hash) VALUES ($1, $2)
             ON CONFLICT (device) DO UPDATE SET key_hash = EXCLUDED.key_hash",
            &[&device, &key_hash],
        )
        .await?;
        tx.commit().await?;
        Ok(if exists { Added::Replaced } else { Added::New })
    }

    pub async fn remove_device_key(&self, device: &str) -> Result<bool, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if tx.execute("DELETE FROM device_keys WHERE device = $1", &[&device]).await? == 0 {
            return Ok(false);
        }
        tx.execute("UPDATE counters SET value = value + 1 WHERE name = 'device_keys_version'", &[]).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn device_key(&self, device: &str) -> Result<Option<Vec<u8>>, PgError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_opt("SELECT key_hash FROM device_keys WHERE device = $1", &[&device])
            .await?
            .map(|r| r.get(0)))
    }

    pub async fn device_key_ids(&self) -> Result<Vec<String>, PgError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT device FROM device_keys ORDER BY device COLLATE \"C\" LIMIT $1",
                &[&cap(telemetry::accounts::MAX_DEVICE_KEYS)],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub async fn device_keys_version(&self) -> Result<u64, PgError> {
        let client = self.pool.get().await?;
        let row =
            client.query_one("SELECT value FROM counters WHERE name = 'device_keys_version'", &[]).await?;
        Ok(count(row.get(0)))
    }
}

impl PgBlocking {
    fn user_call<T, Q, F>(&self, query: Q) -> Result<T, UserStoreError>
    where
        Q: FnOnce(std::sync::Arc<PgStore>) -> F,
        F: Future<Output = Result<T, PgError>> + Send + 'static,
        T: Send + 'static,
    {
        Ok(self.call(query)?)
    }
}

impl UserStore for PgBlocking {
    fn count(&self) -> Result<u64, UserStoreError> {
        self.user_call(|pg| async move { pg.user_count().await })
    }

    fn get(&self, name: &str) -> Result<Option<UserRecord>, UserStoreError> {
        let name = name.to_owned();
        self.user_call(|pg| async move { pg.user(&name).await })
    }

    fn list(&self) -> Result<Vec<UserRecord>, UserStoreError> {
        self.user_call(|pg| async move { pg.users().await })
    }

    fn put(&self, user: &UserRecord, max_users: usize) -> Result<Added, UserStoreError> {
        let user = user.clone();
        self.user_call(move |pg| async move { pg.add_user(&user, Adding::Put, max_users).await })
    }

    fn insert_new(&self, user: &UserRecord, max_users: usize) -> Result<Added, UserStoreError> {
        let user = user.clone();
        self.user_call(move |pg| async move { pg.add_user(&user, Adding::New, max_users).await })
    }

    fn insert_first(&self, user: &UserRecord) -> Result<Added, UserStoreError> {
        let user = user.clone();
        self.user_call(move |pg| async move { pg.add_user(&user, Adding::First, usize::MAX).await })
    }

    fn remove(&self, name: &str) -> Result<bool, UserStoreError> {
        let name = name.to_owned();
        self.user_call(|pg| async move { pg.remove_user(&name).await })
    }

    fn change_keeping_an_admin(&self, name: &str, role: Option<Role>) -> Result<Change, UserStoreError> {
        let name = name.to_owned();
        self.user_call(move |pg| async move { pg.change_keeping_an_admin(&name, role).await })
    }

    fn put_session(
        &self,
        token_hash: &[u8],
        session: &SessionRecord,
        max_per_user: usize,
    ) -> Result<(), UserStoreError> {
        let (hash, session) = (token_hash.to_vec(), session.clone());
        self.user_call(move |pg| async move { pg.put_session(&hash, &session, max_per_user).await })
    }

    fn session_user(&self, token_hash: &[u8], now: i64) -> Result<Option<UserRecord>, UserStoreError> {
        let hash = token_hash.to_vec();
        self.user_call(move |pg| async move { pg.session_user(&hash, now).await })
    }

    fn set_password(&self, name: &str, password: &str) -> Result<bool, UserStoreError> {
        let (name, password) = (name.to_owned(), password.to_owned());
        self.user_call(|pg| async move { pg.set_password(&name, &password).await })
    }

    fn remove_session(&self, token_hash: &[u8]) -> Result<(), UserStoreError> {
        let hash = token_hash.to_vec();
        self.user_call(|pg| async move { pg.remove_session(&hash).await })
    }

    fn remove_expired(&self, now: i64) -> Result<u64, UserStoreError> {
        self.user_call(move |pg| async move { pg.remove_expired_sessions(now).await })
    }

    fn session_count(&self) -> Result<u64, UserStoreError> {
        self.user_call(|pg| async move { pg.session_count().await })
    }

    fn device_key_hashes(&self) -> Result<Vec<(String, Vec<u8>)>, UserStoreError> {
        self.user_call(|pg| async move { pg.device_key_hashes().await })
    }

    fn put_device_key(
        &self,
        device: &str,
        key_hash: &[u8],
        max_keys: usize,
    ) -> Result<Added, UserStoreError> {
        let (device, hash) = (device.to_owned(), key_hash.to_vec());
        self.user_call(move |pg| async move { pg.put_device_key(&device, &hash, max_keys).await })
    }

    fn remove_device_key(&self, device: &str) -> Result<bool, UserStoreError> {
        let device = device.to_owned();
        self.user_call(|pg| async move { pg.remove_device_key(&device).await })
    }

    fn device_key(&self, device: &str) -> Result<Option<Vec<u8>>, UserStoreError> {
        let device = device.to_owned();
        self.user_call(|pg| async move { pg.device_key(&device).await })
    }

    fn device_key_ids(&self) -> Result<Vec<String>, UserStoreError> {
        self.user_call(|pg| async move { pg.device_key_ids().await })
    }

    fn device_keys_version(&self) -> Result<u64, UserStoreError> {
        self.user_call(|pg| async move { pg.device_keys_version().await })
    }
}
