//! Request guard and response headers for a server people expose on their network.
//!
//! - Cross-site request forgery: a state-changing request (any method but GET/HEAD/OPTIONS) and
//!   every WebSocket upgrade coming from a browser must come from this site: `Sec-Fetch-Site`
//!   `same-origin` (or `none`: typed by the user), else an `Origin` equal to the request's own host
//!   or one of `web.allowed_origins`. Requests without either header are not from a browser (a
//!   device, curl) and pass.
//! - Every response gets `X-Content-Type-Options: nosniff`, `Referrer-Policy`, `X-Frame-Options`,
//!   and HTML without its own policy gets a strict `Content-Security-Policy` (pages rendered by
//!   the app set theirs, with the request's script nonce).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::warn;

/// Origins (scheme://host[:port]) allowed besides the server's own.
#[derive(Debug, Clone, Default)]
pub struct Origins(pub Vec<String>);

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Why a request was refused, if it was.
pub fn cross_site(headers: &HeaderMap, allowed: &Origins) -> Option<String> {
    let origin = header(headers, "origin");
    if let Some(site) = header(headers, "sec-fetch-site") {
        if site == "same-origin" || site == "none" {
            return None;
        }
        if origin.is_none() {
            return Some(format!("Sec-Fetch-Site: {site} without an Origin"));
        }
    }
    let origin = origin?;
    if allowed.0.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return None;
    }
    let host = header(headers, "host").unwrap_or_default();
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        return None;
    }
    Some(format!("Origin {origin} is not this site ({host})"))
}

fn is_upgrade(req: &Request) -> bool {
    header(req.headers(), "upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
}

/// Whether a request may change something: every method but GET, HEAD and OPTIONS.
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub async fn guard(State(allowed): State<Arc<Origins>>, req: Request, next: Next) -> Response {
    if (changes_state(req.method()) || is_upgrade(&req))
        && let Some(why) = cross_site(req.headers(), &allowed)
    {
        warn!(method = %req.method(), path = %req.uri().path(), "cross-site request refused: {why}");
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let mut res: Response<Body> = next.run(req).await;
    let headers = res.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if html && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'",
            ),
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_site_browsers_and_non_browsers_pass() {
        let none = Origins::default();
        assert_eq!(cross_site(&headers(&[]), &none), None, "curl, devices");
        assert_eq!(cross_site(&headers(&[("sec-fetch-site", "same-origin")]), &none), None);
        assert_eq!(
            cross_site(&headers(&[("host", "dash.local:3000"), ("origin", "http://dash.local:3000")]), &none),
            None
        );
        let proxy = Origins(vec!["https://iot.example.com".into()]);
        assert_eq!(
            cross_site(
                &headers(&[("host", "127.0.0.1:3000"), ("origin", "https://iot.example.com")]),
                &proxy
            ),
            None
        );
    }

    #[test]
    fn other_sites_are_refused() {
        let none = Origins::default();
        let forged = headers(&[
            ("host", "dash.local:3000"),
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert!(cross_site(&forged, &none).unwrap().contains("evil.example"));
        assert!(cross_site(&headers(&[("host", "dash.local:3000"), ("origin", "null")]), &none).is_some());
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")]), &none).is_some());
    }
}
