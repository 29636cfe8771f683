//! Server functions for the admin page's users: list, add, change a role, remove. Admins
//! only; the server refuses to leave no admin and admins changing their own account.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};
use telemetry::{Role, UserEntry};

use super::codec::JsonText;
use super::error::ApiError;
#[cfg(feature = "ssr")]
use super::ssr;

/// Every user, and which of them is asking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserList {
    pub me: String,
    pub users: Vec<UserEntry>,
}

#[server(prefix = "/api", endpoint = "admin/users", input = GetUrl, output = JsonText)]
pub async fn list_users() -> Result<UserList, ApiError> {
    ssr::accounts(|a, me| Ok(UserList { users: a.users()?, me })).await
}

/// Adds a user who signs in with `password`. A plain form can post here.
#[server(prefix = "/api", endpoint = "admin/users/add", output = JsonText)]
pub async fn add_user(name: String, password: String, role: Role) -> Result<(), ApiError> {
    ssr::accounts(move |a, _| a.add_user(name.trim(), &password, role)).await
}

/// Makes another user an admin or a viewer.
#[server(prefix = "/api", endpoint = "admin/users/role", output = JsonText)]
pub async fn set_user_role(name: String, role: Role) -> Result<(), ApiError> {
    ssr::accounts(move |a, me| a.set_role(&me, &name, role)).await
}

/// Removes another user and ends their sessions, if `confirm` is "yes".
#[server(prefix = "/api", endpoint = "admin/users/remove", output = JsonText)]
pub async fn remove_user(name: String, confirm: Option<String>) -> Result<(), ApiError> {
    if confirm.as_deref() != Some("yes") {
        ssr::signed_in_admin()?;
        return Err(ApiError::BadRequest("tick the box to confirm the removal".into()));
    }
    ssr::accounts(move |a, me| a.remove_user(&me, &name)).await
}
