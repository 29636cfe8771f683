//! The sign-in guard in front of every route: it works out who is asking (session cookie, or
//! HTTP Basic for scripts), records it as an [`Access`] request extension (which the server
//! functions read), sends strangers to the sign-in page (pages) or answers 401 (everything
//! else), lets only admins change things (every method but GET/HEAD), and lets only signed-in
//! admins reach the admin page and its server functions (users and device keys), even when
//! the dashboard is open.
//!
//! Two narrower credentials: a device key (`-u <device id>:<key>`) lets `POST /api/telemetry`
//! store that device's readings and nothing else ([`IngestAs`]); `web.metrics_token` as a
//! bearer token lets a scraper read `/metrics`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine;
use serde_json::json;
use telemetry::text::untrusted;
use telemetry::{Access, Role, SessionUser};
use tracing::warn;

use super::guard::{ClientIp, changes_state, is_asset};
use crate::auth::{Auth, LoginError};

/// Reachable without signing in.
const PUBLIC: &[&str] =
    &["/login", "/setup", "/auth/login", "/auth/logout", "/auth/setup", "/api/whoami", "/healthz"];

/// A request to `POST /api/telemetry` signed in with a device key: it may store readings of
/// this device only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestAs(pub String);

/// What the guard needs.
pub struct SignIn {
    pub auth: Arc<Auth>,
    /// The bearer token that reads `/metrics` without signing in; empty: none.
    pub metrics_token: String,
}

/// The admin page and its server functions: signed-in admins only (the server functions check
/// again).
fn admin_only(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/") || path.starts_with("/api/admin/")
}

fn is_public(method: &Method, path: &str) -> bool {
    PUBLIC.contains(&path) || is_asset(method, path)
}

/// The values of one cookie, in the order sent.
pub fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (name, password) =
        String::from_utf8(decoded).ok()?.split_once(':').map(|(n, p)| (n.to_owned(), p.to_owned()))?;
    Some((name, password))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
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

/// The signed-in user of the request's session cookie, if any of its values is a session.
pub fn session_user(auth: &Auth, headers: &HeaderMap) -> Option<SessionUser> {
    cookies(headers, auth.cookie_name()).take(4).find_map(|t| auth.session(t))
}

pub async fn require_sign_in(State(guard): State<Arc<SignIn>>, mut req: Request, next: Next) -> Response {
    let auth = &guard.auth;
    let path = req.uri().path().to_owned();
    // Static files need nobody's identity: no session lookup for them.
    if is_asset(req.method(), &path) {
        return next.run(req).await;
    }
    let peer =
        req.extensions().get::<ClientIp>().map(|c| c.0).unwrap_or(std::net::Ipv6Addr::LOCALHOST.into());
    let mut user = session_user(auth, req.headers());
    if path == "/metrics"
        && !guard.metrics_token.is_empty()
        && bearer(req.headers())
            .is_some_and(|t| crate::secret::same_secret(t.as_bytes(), guard.metrics_token.as_bytes()))
    {
        return next.run(req).await;
    }
    if user.is_none()
        && let Some((name, password)) = basic_credentials(req.headers())
    {
        // A device key posts that device's readings, and does nothing else.
        if path == "/api/telemetry"
            && req.method() == Method::POST
            && auth.check_device_key(&name, password.as_bytes()).is_some()
        {
            req.extensions_mut().insert(IngestAs(name));
            req.extensions_mut().insert(auth.access(None));
            return next.run(req).await;
        }
        match auth.check_password(&name, &password, peer).await {
            Ok(u) => user = Some(u),
            Err(LoginError::Throttled(wait)) => {
                let mut res = json_error(StatusCode::TOO_MANY_REQUESTS, "too many wrong passwords");
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
                return res;
            }
            Err(LoginError::Busy) => {
                let mut res = json_error(StatusCode::SERVICE_UNAVAILABLE, "too many sign-ins at once");
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
                return res;
            }
            Err(_) => {
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
    if !is_public(req.method(), &path) {
        if access.user.is_none() && !access.open {
            if wants_page(&req) {
                let target = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
                let next_param = crate::auth::url_encode(target);
                return Redirect::to(&format!("/login?next={next_param}")).into_response();
            }
            return json_error(StatusCode::UNAUTHORIZED, "sign in required");
        }
        if changes_state(req.method()) && !access.can_change() && path != "/auth/password" {
            let who = access.user.as_ref().map(|u| u.name.as_str()).unwrap_or("-");
            if let Some(earlier) = auth.log_line("change refused", &format!("{who}\n{path}")) {
                warn!(user = who, method = %req.method(), path = %untrusted(&path), earlier, "change refused: viewers only look");
            }
            return json_error(StatusCode::FORBIDDEN, "only admins can change this");
        }
    }
    if admin_only(&path) && !access.user.as_ref().is_some_and(|u| u.role == Role::Admin) {
        let who = access.user.as_ref().map(|u| u.name.as_str()).unwrap_or("-");
        if let Some(earlier) = auth.log_line("admin page refused", &format!("{who}\n{path}")) {
            warn!(user = who, path = %untrusted(&path), earlier, "admin page refused: admins only");
        }
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
        assert!(!is_public(&Method::GET, "/metrics"));
        assert!(!is_public(&Method::POST, "/auth/password"));
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
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; iot_session=abc; x=1; iot_session=def"),
        );
        assert_eq!(cookies(&h, "iot_session").collect::<Vec<_>>(), ["abc", "def"]);
        assert_eq!(cookies(&h, "iot").next(), None);
    }
}
