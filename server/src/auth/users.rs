//! [`UserDb`]: users, sign-in sessions and device keys in their own redb file next to the
//! telemetry database (`users.redb`), the one-node [`UserStore`]. Session tokens are stored
//! only as SHA-256 hashes, so a copy of the file does not let anyone in; passwords only as
//! Argon2id hashes. redb has one writer at a time, so each write transaction's checks (caps,
//! the last admin) hold until it commits; and one process has the file open (redb locks it),
//! so nothing changes it behind the server's back.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use telemetry::Role;

use super::user_store::UserStore;
pub use super::user_store::{Added, Change, SessionRecord, UserRecord, UserStoreError};

/// User name → [`UserRecord`] (JSON).
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// SHA-256 of a session token → [`SessionRecord`] (JSON).
const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");
/// Device id → SHA-256 of its MQTT password (a random key the server made).
const DEVICE_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("device_keys");

fn err(e: impl std::fmt::Display) -> UserStoreError {
    UserStoreError::new(e)
}

/// Ends every session of `name`.
fn remove_sessions_of(tx: &redb::WriteTransaction, name: &str) -> Result<(), UserStoreError> {
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
    pub fn open(path: &Path) -> Result<UserDb, UserStoreError> {
        crate::files::private_file(path).map_err(|e| UserStoreError(format!("{}: {e}", path.display())))?;
        let db = Database::create(path).map_err(|e| UserStoreError(format!("{}: {e}", path.display())))?;
        Self::init(db)
    }

    pub fn in_memory() -> Result<UserDb, UserStoreError> {
        Self::init(
            Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()).map_err(err)?,
        )
    }

    fn init(db: Database) -> Result<UserDb, UserStoreError> {
        let tx = db.begin_write().map_err(err)?;
        tx.open_table(USERS).map_err(err)?;
        tx.open_table(SESSIONS).map_err(err)?;
        tx.open_table(DEVICE_KEYS).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(UserDb { db })
    }

    /// Adds `user` in `tx` unless `refuse` says why not; `replace` lets it take the place
    /// of one of that name (whose sessions end).
    fn add(
        &self,
        user: &UserRecord,
        replace: bool,
        refuse: impl Fn(u64) -> Option<Added>,
    ) -> Result<Added, UserStoreError> {
        let tx = self.db.begin_write().map_err(err)?;
        let added = {
            let mut users = tx.open_table(USERS).map_err(err)?;
            let exists = users.get(user.name.as_str()).map_err(err)?.is_some();
            if exists && !replace {
                return Ok(Added::Taken);
            }
            if let Some(refused) = refuse(users.len().map_err(err)?).filter(|_| !exists) {
                return Ok(refused);
            }
            let bytes = serde_json::to_vec(user).map_err(err)?;
            users.insert(user.name.as_str(), bytes.as_slice()).map_err(err)?;
            drop(users);
            if exists {
                remove_sessions_of(&tx, &user.name)?;
                Added::Replaced
            } else {
                Added::New
            }
        };
        tx.commit().map_err(err)?;
        Ok(added)
    }
}

impl UserStore for UserDb {
    fn count(&self) -> Result<u64, UserStoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        tx.open_table(USERS).map_err(err)?.len().map_err(err)
    }

    fn get(&self, name: &str) -> Result<Option<UserRecord>, UserStoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(USERS).map_err(err)?;
        let Some(v) = table.get(name).map_err(err)? else { return Ok(None) };
        serde_json::from_slice(v.value()).map(Some).map_err(err)
    }

    fn list(&self) -> Result<Vec<UserRecord>, UserStoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(USERS).map_err(err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(err)? {
            let (_, v) = entry.map_err(err)?;
            out.push(serde_json::from_slice(v.value()).map_err(err)?);
        }
        Ok(out)
    }

    fn put(&self, user: &UserRecord, max_users: usize) -> Result<Added, UserStoreError> {
        self.add(user, true, |count| (count >= max_users as u64).then_some(Added::Full))
    }

    fn insert_new(&self, user: &UserRecord, max_users: usize) -> Result<Added, UserStoreError> {
        self.add(user, false, |count| (count >= max_users as u64).then_some(Added::Full))
    }

    fn insert_first(&self, user: &UserRecord) -> Result<Added, UserStoreError> {
        self.add(user, false, |count| (count > 0).then_some(Added::Taken))
    }

    fn remove(&self, name: &str) -> Result<bool, UserStoreError> {
        let tx = self.db.begin_write().map_err(err)?;
        let existed = {
            remove_sessions_of(&tx, name)?;
            tx.open_table(USERS).map_err(err)?.remove(name).map_err(err)?.is_some()
        };
        tx.commit().map_err(err)?;
        Ok(existed)
    }

    fn change_keeping_an_admin(&self, name: &str, role: Option<Role>) -> Result<Change, UserStoreError> {
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

    fn put_session(
        &self,
        token_hash: &[u8],
        session: &SessionRecord,
        max_per_user: usize,
    ) -> Result<(), UserStoreError> {
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

    fn session_user(&self, token_hash: &[u8], now: i64) -> Result<Option<UserRecord>, UserStoreError> {
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

    fn set_password(&self, name: &str, password: &str) -> Result<bool, UserStoreError> {
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

    fn remove_session(&self, token_hash: &[u8]) -> Result<(), UserStoreError> {
        let tx = self.db.begin_write().map_err(err)?;
        tx.open_table(SESSIONS).map_err(err)?.remove(token_hash).map_err(err)?;
        tx.commit().map_err(err)
    }

    fn remove_expired(&self, now: i64) -> Result<u64, UserStoreError> {
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

    fn session_count(&self) -> Result<u64, UserStoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        tx.open_table(SESSIONS).map_err(err)?.len().map_err(err)
    }

    fn device_key_hashes(&self) -> Result<Vec<(String, Vec<u8>)>, UserStoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(DEVICE_KEYS).map_err(err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn put_device_key(
        &self,
        device: &str,
        key_hash: &[u8],
        max_keys: usize,
    ) -> Result<Added, UserStoreError> {
        let tx = self.db.begin_write().map_err(err)?;
        let added = {
            let mut keys = tx.open_table(DEVICE_KEYS).map_err(err)?;
            let exists = keys.get(device).map_err(err)?.is_some();
            if !exists && keys.len().map_err(err)? >= max_keys as u64 {
                return Ok(Added::Full);
            }
            keys.insert(device, key_hash).map_err(err)?;
            if exists { Added::Replaced } else { Added::New }
        };
        tx.commit().map_err(err)?;
        Ok(added)
    }

    fn remove_device_key(&self, device: &str) -> Result<bool, UserStoreError> {
        let tx = self.db.begin_write().map_err(err)?;
        let existed = tx.open_table(DEVICE_KEYS).map_err(err)?.remove(device).map_err(err)?.is_some();
        tx.commit().map_err(err)?;
        Ok(existed)
    }

    fn device_key(&self, device: &str) -> Result<Option<Vec<u8>>, UserStoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(DEVICE_KEYS).map_err(err)?;
        Ok(table.get(device).map_err(err)?.map(|v| v.value().to_vec()))
    }

    fn device_key_ids(&self) -> Result<Vec<String>, UserStoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(DEVICE_KEYS).map_err(err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(err)? {
            out.push(entry.map_err(err)?.0.value().to_owned());
        }
        Ok(out)
    }

    /// Always 0: this process is the only one with the file open, and its [`super::Auth`]
    /// changes its memory of the keys with every change it makes.
    fn device_keys_version(&self) -> Result<u64, UserStoreError> {
        Ok(0)
    }
}
