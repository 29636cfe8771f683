//! The sign-in forms' endpoints. They answer plain form posts with redirects, so signing in
//! works without JavaScript; errors go back to the form as `?error=`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use telemetry::Access;
use telemetry::text::untrusted;
use tracing::{info, warn};

use super::guard::ClientIp;
use super::sign_in::cookies;
use crate::auth::{Auth, AuthError, LoginError, PasswordChangeError};

#[derive(Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    token: String,
    name: String,
    password: String,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    password: String,
    /// The new password again, when the form asks for it twice.
    #[serde(default)]
    confirm: Option<String>,
}

/// Only a path on this site: never `//elsewhere` or `https://elsewhere`, and only printable
/// ASCII (what the guard's percent-encoded paths hold), so it always fits a `Location` header.
fn local(next: &str) -> &str {
    let printable = next.bytes().all(|b| b.is_ascii_graphic());
    if printable
        && next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 2048
    {
        next
    } else {
        "/"
    }
}

fn with_cookie(to: &str, cookie: String) -> Response {
    let mut res = Redirect::to(to).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

fn throttled(wait: std::time::Duration, what: &str, back: &str) -> Response {
    let secs = wait.as_secs().max(1);
    let body = format!(
        "<!doctype html><title>Too many attempts</title><p>Too many {what}. Try again in {secs} \
         seconds.</p><p><a href=\"{back}\">Back</a></p>"
    );
    let mut res = (StatusCode::TOO_MANY_REQUESTS, Html(body)).into_response();
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    res
}

fn busy() -> Response {
    let mut res =
        (StatusCode::SERVICE_UNAVAILABLE, "too many sign-ins at once; try again shortly").into_response();
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
    res
}

pub async fn login(
    State(auth): State<Arc<Auth>>,
    Extension(ClientIp(peer)): Extension<ClientIp>,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = local(&form.next).to_owned();
    let name = form.name.trim().to_owned();
    match auth.login(&name, &form.password, peer).await {
        Ok(token) => {
            info!(user = %untrusted(&name), %peer, "signed in");
            with_cookie(&next, auth.cookie(&token))
        }
        Err(LoginError::Throttled(wait)) => throttled(wait, "wrong passwords", "/login"),
        Err(LoginError::Busy) => busy(),
        Err(LoginError::Invalid) => {
            if let Some(earlier) = auth.log_line("sign-in failed", &format!("{name}\n{peer}")) {
                warn!(user = %untrusted(&name), %peer, earlier, "sign-in failed: wrong user name or password");
            }
            Redirect::to(&format!("/login?error=invalid&next={}", crate::auth::url_encode(&next)))
                .into_response()
        }
        Err(LoginError::Db(e)) => {
            warn!(error = %e, "sign-in failed: user database");
            (StatusCode::SERVICE_UNAVAILABLE, "user database unavailable").into_response()
        }
    }
}

/// Ends the session, and tells the browser to drop what its HTTP cache holds of this site
/// (the page's script clears the offline copies).
pub async fn logout(State(auth): State<Arc<Auth>>, headers: HeaderMap) -> Response {
    for token in cookies(&headers, auth.cookie_name()).take(4) {
        auth.logout(token);
    }
    let mut res = with_cookie("/login", auth.clear_cookie());
    res.headers_mut().insert("clear-site-data", HeaderValue::from_static("\"cache\""));
    res
}

pub async fn setup(
    State(auth): State<Arc<Auth>>,
    Extension(ClientIp(peer)): Extension<ClientIp>,
    Form(form): Form<SetupForm>,
) -> Response {
    if let Err(wait) = auth.check_address(peer) {
        return throttled(wait, "failed attempts", "/setup");
    }
    let name = form.name.trim().to_owned();
    let a = auth.clone();
    let who = name.clone();
    match tokio::task::spawn_blocking(move || a.setup(&form.token, &who, &form.password)).await {
        Ok(Ok(token)) => {
            info!(user = %untrusted(&name), %peer, "first admin created: sign-in is now required");
            with_cookie("/", auth.cookie(&token))
        }
        Ok(Err(e)) => {
            let code = match e {
                AuthError::BadName => "name",
                AuthError::ShortPassword | AuthError::LongPassword => "password",
                AuthError::AlreadySetUp | AuthError::TooManyUsers => "done",
                AuthError::WrongSetupToken => {
                    auth.failed_attempt(peer);
                    if let Some(earlier) = auth.log_line("wrong setup token", &peer.to_string()) {
                        warn!(%peer, earlier, "setup refused: wrong setup token");
                    }
                    "token"
                }
                AuthError::TooManyKeys | AuthError::Db(_) => "storage",
            };
            Redirect::to(&format!("/setup?error={code}")).into_response()
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "setup failed").into_response(),
    }
}

/// `POST /auth/password`: the signed-in user changes their own password; every other session
/// of theirs ends.
pub async fn change_password(
    State(auth): State<Arc<Auth>>,
    Extension(ClientIp(peer)): Extension<ClientIp>,
    access: Option<Extension<Access>>,
    Form(form): Form<PasswordForm>,
) -> Response {
    let Some(user) = access.and_then(|Extension(a)| a.user) else {
        return (StatusCode::UNAUTHORIZED, "sign in first").into_response();
    };
    if form.confirm.as_ref().is_some_and(|c| *c != form.password) {
        return Redirect::to("/account?error=mismatch").into_response();
    }
    match auth.change_password(&user.name, &form.current, &form.password, peer).await {
        Ok(token) => {
            info!(user = %user.name, %peer, "password changed; other sessions ended");
            with_cookie("/account?done=password", auth.cookie(&token))
        }
        Err(PasswordChangeError::Rules(AuthError::LongPassword)) => {
            Redirect::to("/account?error=long_password").into_response()
        }
        Err(PasswordChangeError::Rules(_)) => Redirect::to("/account?error=short_password").into_response(),
        Err(PasswordChangeError::Login(LoginError::Invalid)) => {
            Redirect::to("/account?error=wrong_password").into_response()
        }
        Err(PasswordChangeError::Login(LoginError::Throttled(wait))) => {
            throttled(wait, "wrong passwords", "/account")
        }
        Err(PasswordChangeError::Login(LoginError::Busy)) => busy(),
        Err(PasswordChangeError::Login(LoginError::Db(e))) => {
            warn!(error = %e, "password change failed: user database");
            (StatusCode::SERVICE_UNAVAILABLE, "user database unavailable").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(local("/d/overview?x=1"), "/d/overview?x=1");
        assert_eq!(local("//evil.example"), "/");
        assert_eq!(local("https://evil.example"), "/");
        assert_eq!(local("/\\evil.example"), "/");
        assert_eq!(local(""), "/");
        assert_eq!(local("/\nSet-Cookie: x=1"), "/", "a line break would not fit the header");
        assert_eq!(local("/caf\u{e9}"), "/");
        assert_eq!(local("/a b"), "/");
        assert_eq!(local(&format!("/{}", "a".repeat(5000))), "/");
    }
}
