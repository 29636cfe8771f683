//! Who is using the dashboard, as the server tells the UI: roles and the signed-in user.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a user may do. Admins change things (dashboards, devices, users); viewers only look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    /// Whether this role may change dashboards, devices and users.
    pub fn can_change(self) -> bool {
        self == Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!("unknown role {other:?} (admin or viewer)")),
        }
    }
}

/// A signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub name: String,
    pub role: Role,
}

/// How the current request got in, as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Access {
    /// The signed-in user, if any.
    pub user: Option<SessionUser>,
    /// No sign-in needed: no user exists yet, or the server is configured open (a trusted LAN).
    pub open: bool,
    /// No user exists yet: the first admin can be created on the setup page.
    pub setup_needed: bool,
}

impl Access {
    /// Whether the request may change things.
    pub fn can_change(&self) -> bool {
        self.open || self.user.as_ref().is_some_and(|u| u.role.can_change())
    }
}

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;
