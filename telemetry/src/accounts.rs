//! Managing who signs in and which devices may connect, as the dashboard's admin page does it.
//! The server keeps users and device keys; the UI's server functions see only [`Accounts`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::auth::{MIN_PASSWORD_LEN, Role};

/// A user as the admin page lists them (never their password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEntry {
    pub name: String,
    pub role: Role,
}

/// A device key just made: shown once, then only its hash is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedKey {
    pub device: String,
    pub key: String,
    /// The device had a key, which no longer works.
    pub replaced: bool,
}

/// Why a change to users or device keys was refused. Every message is safe to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountError {
    BadName,
    ShortPassword,
    UserExists,
    NoSuchUser,
    /// The change would leave no admin.
    LastAdmin,
    /// Admins do not remove themselves or change their own role.
    OwnAccount,
    BadDeviceId,
    NoKey,
    Storage,
    /// Passwords are at most [`MAX_PASSWORD_LEN`] characters.
    LongPassword,
    /// The server keeps at most [`MAX_USERS`] users.
    TooManyUsers,
    /// The server keeps at most [`MAX_DEVICE_KEYS`] device keys.
    TooManyKeys,
    /// The current password given to change it was wrong.
    WrongPassword,
}

/// Most users the server keeps.
pub const MAX_USERS: usize = 1_000;
/// Most device keys the server keeps.
pub const MAX_DEVICE_KEYS: usize = 100_000;
/// Longest password accepted (Argon2 reads all of it).
pub const MAX_PASSWORD_LEN: usize = 1_024;

impl AccountError {
    pub const ALL: [AccountError; 13] = [
        AccountError::BadName,
        AccountError::ShortPassword,
        AccountError::UserExists,
        AccountError::NoSuchUser,
        AccountError::LastAdmin,
        AccountError::OwnAccount,
        AccountError::BadDeviceId,
        AccountError::NoKey,
        AccountError::Storage,
        AccountError::LongPassword,
        AccountError::TooManyUsers,
        AccountError::TooManyKeys,
        AccountError::WrongPassword,
    ];

    /// A short code for a URL (`/admin?error=last_admin`), so a page without JavaScript can
    /// say what went wrong without echoing anything the URL holds.
    pub fn code(self) -> &'static str {
        match self {
            AccountError::BadName => "bad_name",
            AccountError::ShortPassword => "short_password",
            AccountError::UserExists => "user_exists",
            AccountError::NoSuchUser => "no_such_user",
            AccountError::LastAdmin => "last_admin",
            AccountError::OwnAccount => "own_account",
            AccountError::BadDeviceId => "bad_device_id",
            AccountError::NoKey => "no_key",
            AccountError::Storage => "storage",
            AccountError::LongPassword => "long_password",
            AccountError::TooManyUsers => "too_many_users",
            AccountError::TooManyKeys => "too_many_keys",
            AccountError::WrongPassword => "wrong_password",
        }
    }

    pub fn from_code(code: &str) -> Option<AccountError> {
        AccountError::ALL.into_iter().find(|e| e.code() == code)
    }
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountError::BadName => f.write_str("user names are 1 to 64 of A-Z a-z 0-9 _ . -"),
            AccountError::ShortPassword => write!(f, "passwords need at least {MIN_PASSWORD_LEN} characters"),
            AccountError::UserExists => f.write_str("a user with that name exists; remove them first"),
            AccountError::NoSuchUser => f.write_str("no such user"),
            AccountError::LastAdmin => f.write_str("this is the last admin: make another user admin first"),
            AccountError::OwnAccount => {
                f.write_str("you cannot remove yourself or change your own role; another admin can")
            }
            AccountError::BadDeviceId => f.write_str("device ids are 1 to 64 of A-Z a-z 0-9 _ . -"),
            AccountError::NoKey => f.write_str("that device has no key"),
            AccountError::Storage => f.write_str("the user database is unavailable; try again shortly"),
            AccountError::LongPassword => write!(f, "passwords are at most {MAX_PASSWORD_LEN} characters"),
            AccountError::TooManyUsers => write!(f, "the server keeps at most {MAX_USERS} users"),
            AccountError::TooManyKeys => write!(f, "the server keeps at most {MAX_DEVICE_KEYS} device keys"),
            AccountError::WrongPassword => f.write_str("the current password is wrong"),
        }
    }
}

impl std::error::Error for AccountError {}

/// Users and device keys, as an admin changes them from the dashboard. `by` is the signed-in
/// admin making the change.
pub trait Accounts: Send + Sync {
    /// Every user, by name.
    fn users(&self) -> Result<Vec<UserEntry>, AccountError>;
    /// Adds a new user; an existing name is refused (its password stays as it is).
    fn add_user(&self, name: &str, password: &str, role: Role) -> Result<(), AccountError>;
    /// Changes another user's role; never leaves no admin.
    fn set_role(&self, by: &str, name: &str, role: Role) -> Result<(), AccountError>;
    /// Removes another user and ends their sessions; never the last admin.
    fn remove_user(&self, by: &str, name: &str) -> Result<(), AccountError>;
    /// The devices that have a key, by id.
    fn device_keys(&self) -> Result<Vec<String>, AccountError>;
    /// Makes a key for a device, replacing any it had.
    fn issue_device_key(&self, device: &str) -> Result<IssuedKey, AccountError>;
    /// Revokes a device's key: it can no longer connect.
    fn revoke_device_key(&self, device: &str) -> Result<(), AccountError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_own_code() {
        for e in AccountError::ALL {
            assert_eq!(AccountError::from_code(e.code()), Some(e));
        }
        assert_eq!(AccountError::from_code("<script>"), None);
    }
}
