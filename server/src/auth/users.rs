//! Users and sign-in sessions, in their own redb file next to the telemetry database
//! (`users.redb`). Session tokens are stored only as SHA-256 hashes, so a copy of the file
//! does not let anyone in; passwords only as Argon2id hashes.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use telemetry::Role;

/// User name → [`UserRecord`] (JSON).
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// SHA-256 of a session token → [`SessionRecord`] (JSON).
const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");
/// Device id → SHA-256 of its MQTT password (a random key the server made).
const DEVICE_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("device_keys");

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    /// Argon2id PHC string.
    pub password: String,
    pub role: Role,
    pub created: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user: String,
    pub expires: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("user database: {0}")]
pub struct UserDbError(String);

fn err(e: impl std::fmt::Display) -> UserDbError {
    UserDbError(e.to_string())
}

/// What [`UserDb::change_keeping_an_admin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Done,
    NoSuchUser,
    /// Refused: the user is the last admin.
    LastAdmin,
}

/// Ends every session of `name`.
fn remove_sessions_of(tx: &redb::WriteTransaction, name: &str) -> Result<(), UserDbError> {
    let mut sessions = tx.open_table(SESSIONS).map_err(err)?;
    sessions
        .retain(|_, v| serde_json::from_slice::<SessionRecord>(v).map(|s| s.user != name).unwrap_or(false))
        .map_err(err)
}

pub struct UserDb {
    db: Database,
}

impl UserDb {
    /// Opens (or creates) the file, only its owner reading it.
    pub fn open(path: &Path) -> Result<UserDb, UserDbError> {
        crate::files::private_file(path).map_err(|e| UserDbError(format!("{}: {e}", path.display())))?;
        let db = Database::create(path).map_err(|e| UserDbError(format!("{}: {e}", path.display())))?;
        Self::init(db)
    }

    pub fn in_memory() -> Result<UserDb, UserDbError> {
        Self::init(
            Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()).map_err(err)?,
        )
    }

    fn init(db: Database) -> Result<UserDb, UserDbError> {
        let tx = db.begin_write().map_err(err)?;
        tx.open_table(USERS).map_err(err)?;
        tx.open_table(SESSIONS).map_err(err)?;
        tx.open_table(DEVICE_KEYS).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(UserDb { db })
    }

    pub fn count(&self) -> Result<u64, UserDbError> {
        let tx = self.db.begin_read().map_err(err)?;
        tx.open_table(USERS).map_err(err)?.len().map_err(err)
    }

    pub fn get(&self, name: &str) -> Result<Option<UserRecord>, UserDbError> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(USERS).map_err(err)?;
        let Some(v) = table.get(name).map_err(err)? else { return Ok(None) };
        serde_json::from_slice(v.value()).map(Some).map_err(err)
    }

    pub fn list(&self) -> Result<Vec<UserRecord>, UserDbError> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(USERS).map_err(err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(err)? {
            let (_, v) = entry.map_err(err)?;
            out.push(serde_json::from_slice(v.value()).map_err(err)?);
        }
        Ok(out)
    }

    /// Adds or replaces a user; true if it replaced one.
    pub fn put(&self, user: &UserRecord) -> Result<bool, UserDbError> {
        let tx = self.db.begin_write().map_err(err)?;
        let replaced = {
            let bytes = serde_json::to_vec(user).map_err(err)?;
            let mut users = tx.open_table(USERS).map_err(err)?;
            users.insert(user.name.as_str(), bytes.as_slice()).map_err(err)?.is_some()
        };
        tx.commit().map_err(err)?;
        Ok(replaced)
    }

    /// Adds a user unless one of that name exists; false if one did (nothing changed).
    pub fn insert_new(&self, user: &UserRecord) -> Result<bool, UserDbError> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut users = tx.open_table(USERS).map_err(err)?;
            if users.get(user.name.as_str()).map_err(err)?.is_some() {
                return Ok(false);
            }
            let bytes = serde_json::to_vec(user).map_err(err)?;
            users.insert(user.name.as_str(), bytes.as_slice()).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(true)
    }

    /// Removes a user and signs them out everywhere; false if there was none.
    pub fn remove(&self, name: &str) -> Result<bool, UserDbError> {
        let tx = self.db.begin_write().map_err(err)?;
        let existed = {
            remove_sessions_of(&tx, name)?;
            tx.open_table(USERS).map_err(err)?.remove(name).map_err(err)?.is_some()
        };
        tx.commit().map_err(err)?;
        Ok(existed)
    }

    /// Removes a user (ending their sessions), or sets their role (`Some`), unless that would
    /// leave no admin. Checked and written in one transaction, so two admins demoting each
    /// other at once cannot both succeed.
    pub fn change_keeping_an_admin(&self, name: &str, role: Option<Role>) -> Result<Change, UserDbError> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut users = tx.open_table(USERS).map_err(err)?;
            let Some(v) = users.get(name).map_err(err)? else { return Ok(Change::NoSuchUser) };
            let mut user: UserRecord = serde_json::from_slice(v.value()).map_err(err)?;
            drop(v);
            if user.role == Role::Admin && role != Some(Role::Admin) {
                let mut admins = 0;
                for entry in users.iter().map_err(err)? {
                    let (_, v) = entry.map_err(err)?;
                    let other: UserRecord = serde_json::from_slice(v.value()).map_err(err)?;
                    admins += usize::from(other.role == Role::Admin);
                }
                if admins <= 1 {
                    return Ok(Change::LastAdmin);
                }
            }
            match role {
                Some(role) => {
                    user.role = role;
                    let bytes = serde_json::to_vec(&user).map_err(err)?;
                    users.insert(name, bytes.as_slice()).map_err(err)?;
                }
                None => {
                    users.remove(name).map_err(err)?;
                    drop(users);
                    remove_sessions_of(&tx, name)?;
                }
            }
        }
        tx.commit().map_err(err)?;
        Ok(Change::Done)
    }

    /// Stores a session; beyond `max_per_user` sessions of that user, the ones closest to
    /// expiry end.
    pub fn put_session(
        &self,
        token_hash: &[u8],
        session: &SessionRecord,
        max_per_user: usize,
    ) -> Result<(), UserDbError> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let bytes = serde_json::to_vec(session).map_err(err)?;
            let mut table = tx.open_table(SESSIONS).map_err(err)?;
            table.insert(token_hash, bytes.as_slice()).map_err(err)?;
            let mut mine = Vec::new();
            for entry in table.iter().map_err(err)? {
                let (k, v) = entry.map_err(err)?;
                if let Ok(s) = serde_json::from_slice::<SessionRecord>(v.value())
                    && s.user == session.user
                {
                    mine.push((s.expires, k.value().to_vec()));
                }
            }
            if mine.len() > max_per_user {
                mine.sort();
                for (_, key) in &mine[..mine.len() - max_per_user] {
                    table.remove(key.as_slice()).map_err(err)?;
                }
            }
        }
        tx.commit().map_err(err)
    }

    /// The user of an unexpired session, in one read (this runs on every request).
    pub fn session_user(&self, token_hash: &[u8], now: i64) -> Result<Option<UserRecord>, UserDbError> {
        let tx = self.db.begin_read().map_err(err)?;
        let sessions = tx.open_table(SESSIONS).map_err(err)?;
        let Some(v) = sessions.get(token_hash).map_err(err)? else { return Ok(None) };
        let session: SessionRecord = serde_json::from_slice(v.value()).map_err(err)?;
        if session.expires <= now {
            return Ok(None);
        }
        let users = tx.open_table(USERS).map_err(err)?;
        let Some(v) = users.get(session.user.as_str()).map_err(err)? else { return Ok(None) };
        serde_json::from_slice(v.value()).map(Some).map_err(err)
    }

    /// Sets a user's password (an Argon2id PHC string) and ends all their sessions, in one
    /// transaction; false if there is no such user.
    pub fn set_password(&self, name: &str, password: &str) -> Result<bool, UserDbError> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut users = tx.open_table(USERS).map_err(err)?;
            let Some(v) = users.get(name).map_err(err)? else { return Ok(false) };
            let mut user: UserRecord = serde_json::from_slice(v.value()).map_err(err)?;
            drop(v);
            user.password = password.to_owned();
            let bytes = serde_json::to_vec(&user).map_err(err)?;
            users.insert(name, bytes.as_slice()).map_err(err)?;
            drop(users);
            remove_sessions_of(&tx, name)?;
        }
        tx.commit().map_err(err)?;
        Ok(true)
    }

    /// Ends every session of `name`.
    pub fn end_sessions_of(&self, name: &str) -> Result<(), UserDbError> {
        let tx = self.db.begin_write().map_err(err)?;
        remove_sessions_of(&tx, name)?;
        tx.commit().map_err(err)
    }

    pub fn remove_session(&self, token_hash: &[u8]) -> Result<(), UserDbError> {
        let tx = self.db.begin_write().map_err(err)?;
        tx.open_table(SESSIONS).map_err(err)?.remove(token_hash).map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Drops sessions that expired before `now`; answers how many sessions are left.
    pub fn remove_expired(&self, now: i64) -> Result<u64, UserDbError> {
        let tx = self.db.begin_write().map_err(err)?;
        let left = {
            let mut sessions = tx.open_table(SESSIONS).map_err(err)?;
            sessions
                .retain(|_, v| {
                    serde_json::from_slice::<SessionRecord>(v).map(|s| s.expires > now).unwrap_or(false)
                })
                .map_err(err)?;
            sessions.len().map_err(err)?
        };
        tx.commit().map_err(err)?;
        Ok(left)
    }

    /// Sessions stored (live or not yet pruned).
    pub fn session_count(&self) -> Result<u64, UserDbError> {
        let tx = self.db.begin_read().map_err(err)?;
        tx.open_table(SESSIONS).map_err(err)?.len().map_err(err)
    }

    /// Every device key: device id → SHA-256 of the key.
    pub fn device_key_hashes(&self) -> Result<Vec<(String, Vec<u8>)>, UserDbError> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(DEVICE_KEYS).map_err(err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Sets a device's key hash; true if it replaced one.
    pub fn put_device_key(&self, device: &str, key_hash: &[u8]) -> Result<bool, UserDbError> {
        let tx = self.db.begin_write().map_err(err)?;
        let replaced =
            tx.open_table(DEVICE_KEYS).map_err(err)?.insert(device, key_hash).map_err(err)?.is_some();
        tx.commit().map_err(err)?;
        Ok(replaced)
    }

    pub fn remove_device_key(&self, device: &str) -> Result<bool, UserDbError> {
        let tx = self.db.begin_write().map_err(err)?;
        let existed = tx.open_table(DEVICE_KEYS).map_err(err)?.remove(device).map_err(err)?.is_some();
        tx.commit().map_err(err)?;
        Ok(existed)
    }

    pub fn device_key(&self, device: &str) -> Result<Option<Vec<u8>>, UserDbError> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(DEVICE_KEYS).map_err(err)?;
        Ok(table.get(device).map_err(err)?.map(|v| v.value().to_vec()))
    }

    pub fn device_key_ids(&self) -> Result<Vec<String>, UserDbError> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(DEVICE_KEYS).map_err(err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(err)? {
            out.push(entry.map_err(err)?.0.value().to_owned());
        }
        Ok(out)
    }
}
