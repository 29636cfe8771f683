//! The admin page's view of [`Auth`]: users and device keys, with the rules the command line
//! does not need (its operator can always add an admin back): nobody removes or demotes the
//! last admin, and admins do not remove themselves or change their own role.

use telemetry::accounts::MAX_USERS;
use telemetry::{AccountError, Accounts, DeviceId, IssuedKey, Role, UserEntry};
use tracing::{info, warn};

use super::user_store::{Added, Change, UserStoreError};
use super::{Auth, AuthError, AuthEvent};

fn storage(e: impl std::fmt::Display) -> AccountError {
    warn!(error = %e, "user database");
    AccountError::Storage
}

impl From<UserStoreError> for AccountError {
    fn from(e: UserStoreError) -> AccountError {
        storage(e)
    }
}

impl From<AuthError> for AccountError {
    fn from(e: AuthError) -> AccountError {
        match e {
            AuthError::BadName => AccountError::BadName,
            AuthError::ShortPassword => AccountError::ShortPassword,
            AuthError::LongPassword => AccountError::LongPassword,
            AuthError::AlreadySetUp | AuthError::WrongSetupToken => AccountError::UserExists,
            AuthError::TooManyUsers => AccountError::TooManyUsers,
            AuthError::TooManyKeys => AccountError::TooManyKeys,
            AuthError::Db(e) => storage(e),
        }
    }
}

impl Auth {
    /// Removes `name` (`None`) or sets their role, on behalf of the admin `by`.
    fn change_user(&self, by: &str, name: &str, role: Option<Role>) -> Result<(), AccountError> {
        if by == name {
            return Err(AccountError::OwnAccount);
        }
        match self.users.change_keeping_an_admin(name, role)? {
            Change::Done => {
                self.announce(AuthEvent::Sessions);
                match role {
                    Some(role) => info!(by, user = name, %role, "role changed"),
                    // An admin remains: users still exist.
                    None => info!(by, user = name, "user removed"),
                }
                Ok(())
            }
            Change::NoSuchUser => Err(AccountError::NoSuchUser),
            Change::LastAdmin => Err(AccountError::LastAdmin),
        }
    }
}

impl Accounts for Auth {
    fn users(&self) -> Result<Vec<UserEntry>, AccountError> {
        Ok(Auth::users(self)?.into_iter().map(|(name, role)| UserEntry { name, role }).collect())
    }

    fn add_user(&self, name: &str, password: &str, role: Role) -> Result<(), AccountError> {
        let record = Auth::new_record(name, password, role)?;
        match self.users.insert_new(&record, MAX_USERS)? {
            Added::New => self.first_user(),
            // (`insert_new` replaces nothing: never `Replaced`.)
            Added::Taken | Added::Replaced => return Err(AccountError::UserExists),
            Added::Full => return Err(AccountError::TooManyUsers),
        }
        info!(user = name, %role, "user added");
        Ok(())
    }

    fn set_role(&self, by: &str, name: &str, role: Role) -> Result<(), AccountError> {
        self.change_user(by, name, Some(role))
    }

    fn remove_user(&self, by: &str, name: &str) -> Result<(), AccountError> {
        self.change_user(by, name, None)
    }

    fn device_keys(&self) -> Result<Vec<String>, AccountError> {
        Ok(Auth::device_keys(self)?)
    }

    fn issue_device_key(&self, device: &str) -> Result<IssuedKey, AccountError> {
        let device = DeviceId::try_from(device).map_err(|_| AccountError::BadDeviceId)?;
        let (key, replaced) = self.replace_device_key(device.as_str())?;
        info!(device = %device, replaced, "device key issued");
        Ok(IssuedKey { device: device.into(), key, replaced })
    }

    fn revoke_device_key(&self, device: &str) -> Result<(), AccountError> {
        if !Auth::revoke_device_key(self, device)? {
            return Err(AccountError::NoKey);
        }
        info!(device, "device key revoked");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthConfig;
    use crate::auth::users::UserDb;

    const PEER: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn auth_with(users: &[(&str, Role)]) -> std::sync::Arc<Auth> {
        let config = AuthConfig {
            open: false,
            session_days: 7,
            secure_cookies: false,
            setup_token: Default::default(),
        };
        let auth = Auth::new(UserDb::in_memory().unwrap(), config).unwrap();
        for (name, role) in users {
            Accounts::add_user(&auth, name, "long enough", *role).unwrap();
        }
        std::sync::Arc::new(auth)
    }

    /// The admin page's view (the command line's methods share some names).
    fn page(a: &Auth) -> &dyn Accounts {
        a
    }

    fn roles(a: &Auth) -> Vec<(String, Role)> {
        page(a).users().unwrap().into_iter().map(|u| (u.name, u.role)).collect()
    }

    #[test]
    fn the_last_admin_is_neither_removed_nor_demoted() {
        let a = auth_with(&[("ann", Role::Admin), ("val", Role::Viewer)]);
        assert_eq!(page(&a).remove_user("val", "ann"), Err(AccountError::LastAdmin));
        assert_eq!(page(&a).set_role("val", "ann", Role::Viewer), Err(AccountError::LastAdmin));
        assert_eq!(roles(&a), [("ann".into(), Role::Admin), ("val".into(), Role::Viewer)]);
        // With a second admin, either may go.
        page(&a).set_role("ann", "val", Role::Admin).unwrap();
        page(&a).set_role("val", "ann", Role::Viewer).unwrap();
        assert_eq!(
            page(&a).remove_user("ann", "val"),
            Err(AccountError::LastAdmin),
            "val is now the only admin"
        );
        assert_eq!(page(&a).set_role("ann", "ann", Role::Admin), Err(AccountError::OwnAccount));
    }

    #[test]
    fn admins_do_not_remove_or_demote_themselves() {
        let a = auth_with(&[("ann", Role::Admin), ("bob", Role::Admin)]);
        assert_eq!(page(&a).remove_user("ann", "ann"), Err(AccountError::OwnAccount));
        assert_eq!(page(&a).set_role("ann", "ann", Role::Viewer), Err(AccountError::OwnAccount));
        page(&a).remove_user("bob", "ann").unwrap();
        assert_eq!(roles(&a), [("bob".into(), Role::Admin)]);
        assert_eq!(page(&a).remove_user("bob", "ann"), Err(AccountError::NoSuchUser));
    }

    #[tokio::test]
    async fn a_removed_user_is_signed_out_and_a_demoted_one_only_looks() {
        let a = auth_with(&[("ann", Role::Admin), ("val", Role::Admin), ("vic", Role::Viewer)]);
        let val = a.login("val", "long enough", PEER).await.unwrap();
        let vic = a.login("vic", "long enough", PEER).await.unwrap();
        page(&a).set_role("ann", "val", Role::Viewer).unwrap();
        assert_eq!(a.session(&val).map(|u| u.role), Some(Role::Viewer), "takes effect at once");
        page(&a).remove_user("ann", "vic").unwrap();
        assert_eq!(a.session(&vic), None);
        assert!(a.devices_must_sign_in());
    }

    #[tokio::test]
    async fn adding_refuses_taken_names_bad_names_and_short_passwords() {
        let a = auth_with(&[("ann", Role::Admin)]);
        assert_eq!(page(&a).add_user("ann", "other password", Role::Viewer), Err(AccountError::UserExists));
        assert!(a.login("ann", "long enough", PEER).await.is_ok(), "the existing password stays");
        assert_eq!(
            page(&a).add_user("<img src=x onerror=1>", "long enough", Role::Viewer),
            Err(AccountError::BadName)
        );
        assert_eq!(page(&a).add_user("val", "short", Role::Viewer), Err(AccountError::ShortPassword));
        assert_eq!(roles(&a).len(), 1);
    }

    #[test]
    fn issuing_replaces_a_key_and_revoking_ends_it() {
        let a = auth_with(&[("ann", Role::Admin)]);
        let first = page(&a).issue_device_key("kitchen-1").unwrap();
        assert!(!first.replaced);
        assert!(a.check_device_key("kitchen-1", first.key.as_bytes()).is_some());
        let second = page(&a).issue_device_key("kitchen-1").unwrap();
        assert!(second.replaced, "the page says the old key was replaced");
        assert!(a.check_device_key("kitchen-1", first.key.as_bytes()).is_none(), "the old key stops working");
        assert!(a.check_device_key("kitchen-1", second.key.as_bytes()).is_some());
        assert_eq!(Accounts::device_keys(&*a).unwrap(), ["kitchen-1"]);
        page(&a).revoke_device_key("kitchen-1").unwrap();
        assert!(a.check_device_key("kitchen-1", second.key.as_bytes()).is_none());
        assert_eq!(page(&a).revoke_device_key("kitchen-1"), Err(AccountError::NoKey));
        assert_eq!(page(&a).issue_device_key("a/b").unwrap_err(), AccountError::BadDeviceId);
        assert_eq!(page(&a).issue_device_key("<b>").unwrap_err(), AccountError::BadDeviceId);
        assert!(Accounts::device_keys(&*a).unwrap().is_empty());
    }
}
