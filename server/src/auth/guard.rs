//! The sign-in guard in front of every route: it works out who is asking (session cookie, or
//! HTTP Basic for scripts), records it as an [`Access`] request extension (which the server
//! functions read), sends strangers to the sign-in page (pages) or answers 401 (everything
//! else), lets only admins change things (every method but GET/HEAD), and lets only signed-in
//! admins reach the admin page and its server functions (users and device keys), even when
//! the dashboard is open.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine;
use serde_json::json;
use telemetry::{Access, Role, SessionUser};
use tracing::warn;

use super::{Auth, COOKIE, LoginError};
use crate::security::changes_state;

/// Reachable without signing in.
const PUBLIC: &[&str] = &[
    "/login",
    "/setup",
    "/auth/login",
    "/auth/logout",
    "/auth/setup",
    "/api/whoami",
    "/healthz",
    "/metrics",
];

/// The admin page and its server functions: signed-in admins only (the server functions check
/// again).
fn admin_only(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/") || path.starts_with("/api/admin/")
}

fn is_public(method: &Method, path: &str) -> bool {
    PUBLIC.contains(&path) || is_asset(method, path)
}

/// The app's static files (scripts, styles, icons, manifest, service worker): no data in them.
/// Page paths may hold dots too (device ids), so only these places count.
fn is_asset(method: &Method, path: &str) -> bool {
    let reads = matches!(*method, Method::GET | Method::HEAD);
    let top_level_file = path.matches('/').count() == 1 && path.contains('.');
    let asset_dir = ["/pkg/", "/icons/", "/vendor/"].iter().any(|d| path.starts_with(d));
    reads && (top_level_file || asset_dir)
}

/// The value of one cookie.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (name, password) =
        String::from_utf8(decoded).ok()?.split_once(':').map(|(n, p)| (n.to_owned(), p.to_owned()))?;
    Some((name, password))
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn wants_page(req: &Request) -> bool {
    let html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    req.method() == Method::GET && html && !req.uri().path().starts_with("/api/")
}

pub async fn require_sign_in(State(auth): State<Arc<Auth>>, mut req: Request, next: Next) -> Response {
    // Static files need nobody's identity: no session lookup for them.
    if is_asset(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let mut user: Option<SessionUser> = cookie(req.headers(), COOKIE).and_then(|t| auth.session(t));
    if user.is_none()
        && let Some((name, password)) = basic_credentials(req.headers())
    {
        let a = auth.clone();
        match tokio::task::spawn_blocking(move || a.check_password(&name, &password)).await {
            Ok(Ok(u)) => user = Some(u),
            Ok(Err(LoginError::Throttled(wait))) => {
                let mut res = json_error(StatusCode::TOO_MANY_REQUESTS, "too many wrong passwords");
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
                return res;
            }
            _ => {
                let mut res = json_error(StatusCode::UNAUTHORIZED, "wrong user name or password");
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"IoT Dashboard\""),
                );
                return res;
            }
        }
    }
    let access: Access = auth.access(user);
    if !is_public(req.method(), req.uri().path()) {
        if access.user.is_none() && !access.open {
            if wants_page(&req) {
                let target = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
                let next_param = super::url_encode(target);
                return Redirect::to(&format!("/login?next={next_param}")).into_response();
            }
            return json_error(StatusCode::UNAUTHORIZED, "sign in required");
        }
        if changes_state(req.method()) && !access.can_change() {
            let who = access.user.as_ref().map(|u| u.name.as_str()).unwrap_or("-");
            warn!(user = who, method = %req.method(), path = req.uri().path(), "change refused: viewers only look");
            return json_error(StatusCode::FORBIDDEN, "only admins can change this");
        }
    }
    if admin_only(req.uri().path()) && !access.user.as_ref().is_some_and(|u| u.role == Role::Admin) {
        let who = access.user.as_ref().map(|u| u.name.as_str()).unwrap_or("-");
        warn!(user = who, path = req.uri().path(), "admin page refused: admins only");
        if wants_page(&req) {
            let body = "<!doctype html><title>Admins only</title><p>Only admins can manage users and \
                        device keys.</p><p><a href=\"/\">Back to the dashboard</a></p>";
            return (StatusCode::FORBIDDEN, Html(body)).into_response();
        }
        return json_error(StatusCode::FORBIDDEN, "only admins can manage users and device keys");
    }
    req.extensions_mut().insert(access);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_files_and_sign_in_are_public_data_is_not() {
        assert!(is_public(&Method::GET, "/pkg/iot-dashboard.wasm"));
        assert!(is_public(&Method::GET, "/sw.js"));
        assert!(is_public(&Method::POST, "/auth/login"));
        assert!(!is_public(&Method::POST, "/pkg/x.js"));
        assert!(!is_public(&Method::GET, "/api/export.csv"));
        assert!(!is_public(&Method::GET, "/api/devices"));
        assert!(!is_public(&Method::GET, "/ws/live"));
        assert!(!is_public(&Method::GET, "/device/a.b"));
        assert!(!is_public(&Method::GET, "/"));
    }

    #[test]
    fn the_admin_page_and_its_functions_are_admin_only() {
        for path in ["/admin", "/admin/", "/api/admin/users", "/api/admin/device_keys/issue"] {
            assert!(admin_only(path), "{path}");
        }
        for path in ["/administrator", "/api/devices", "/d/admin", "/device/admin"] {
            assert!(!admin_only(path), "{path}");
        }
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("theme=dark; iot_session=abc; x=1"));
        assert_eq!(cookie(&h, "iot_session"), Some("abc"));
        assert_eq!(cookie(&h, "iot"), None);
    }
}
