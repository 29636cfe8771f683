//! The sign-in forms' endpoints. They answer plain form posts with redirects, so signing in
//! works without JavaScript; errors go back to the form as `?error=`.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use tracing::{info, warn};

use super::guard::cookie;
use super::{Auth, AuthError, COOKIE, LoginError};

#[derive(Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub struct SetupForm {
    name: String,
    password: String,
}

/// Only a path on this site: never `//elsewhere` or `https://elsewhere`, and only printable
/// ASCII (what the guard's percent-encoded paths hold), so it always fits a `Location` header.
fn local(next: &str) -> &str {
    let printable = next.bytes().all(|b| b.is_ascii_graphic());
    if printable && next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
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

pub async fn login(State(auth): State<Arc<Auth>>, Form(form): Form<LoginForm>) -> Response {
    let next = local(&form.next).to_owned();
    let name = form.name.trim().to_owned();
    let a = auth.clone();
    let who = name.clone();
    let result = tokio::task::spawn_blocking(move || a.login(&who, &form.password)).await;
    match result {
        Ok(Ok(token)) => {
            info!(user = %name, "signed in");
            with_cookie(&next, auth.cookie(&token))
        }
        Ok(Err(LoginError::Throttled(wait))) => {
            warn!(user = %name, "sign-in throttled");
            let secs = wait.as_secs().max(1);
            let body = format!(
                "<!doctype html><title>Too many attempts</title><p>Too many wrong passwords for this user. \
                 Try again in {secs} seconds.</p><p><a href=\"/login\">Back to sign in</a></p>"
            );
            let mut res = (StatusCode::TOO_MANY_REQUESTS, Html(body)).into_response();
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            res
        }
        Ok(Err(LoginError::Invalid)) => {
            warn!(user = %name, "sign-in failed: wrong user name or password");
            Redirect::to(&format!("/login?error=invalid&next={}", super::url_encode(&next))).into_response()
        }
        Ok(Err(LoginError::Db(e))) => {
            warn!(error = %e, "sign-in failed: user database");
            (StatusCode::SERVICE_UNAVAILABLE, "user database unavailable").into_response()
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "sign-in failed").into_response(),
    }
}

pub async fn logout(State(auth): State<Arc<Auth>>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, COOKIE) {
        auth.logout(token);
    }
    with_cookie("/login", auth.clear_cookie())
}

pub async fn setup(State(auth): State<Arc<Auth>>, Form(form): Form<SetupForm>) -> Response {
    let name = form.name.trim().to_owned();
    let a = auth.clone();
    let who = name.clone();
    match tokio::task::spawn_blocking(move || a.setup(&who, &form.password)).await {
        Ok(Ok(token)) => {
            info!(user = %name, "first admin created");
            with_cookie("/", auth.cookie(&token))
        }
        Ok(Err(e)) => {
            let code = match e {
                AuthError::BadName => "name",
                AuthError::ShortPassword => "password",
                AuthError::AlreadySetUp => "done",
                AuthError::Db(_) => "storage",
            };
            Redirect::to(&format!("/setup?error={code}")).into_response()
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "setup failed").into_response(),
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
    }
}
