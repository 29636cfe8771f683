//! The outermost guard of the HTTP surface, for a server people expose on their network:
//!
//! - **Host names** (DNS rebinding): a browser sends the name it looked up. Only names this
//!   server is reached by pass: loopback names (`localhost`, `*.localhost`), any IP address
//!   (a rebinding attack needs a name of the attacker's), the machine's own name (and
//!   `<name>.local`), the hosts of `web.allowed_origins` and `web.hosts`. Anything else,
//!   GETs and WebSocket upgrades included, gets 421 with the setting to change.
//! - **Cross-site requests**: a state-changing request (any method but GET/HEAD/OPTIONS) and
//!   every WebSocket upgrade coming from a browser must come from this site: `Sec-Fetch-Site`
//!   `same-origin` (or `none`: typed by the user), else an `Origin` equal to this site's own
//!   (scheme, host and port) or one of `web.allowed_origins`. Requests without either header
//!   are not from a browser (a device, curl) and pass.
//! - **Bodies**: `POST /api/telemetry` takes up to `web.max_body_bytes`; every other request
//!   body up to [`MAX_FORM_BODY`]. Larger ones get 413 before anything reads them.
//! - **The client's address**, for throttling: the peer's, or with a peer listed in
//!   `web.trusted_proxies`, the last address its `X-Forwarded-For` names.
//! - **Response headers**: `nosniff`, `Referrer-Policy`, `X-Frame-Options`, HSTS over HTTPS,
//!   `Cache-Control: no-store` on everything but static files (data, pages, the admin page),
//!   and a strict `Content-Security-Policy` on HTML without its own (pages rendered by the app
//!   set theirs, with the request's script nonce).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use telemetry::text::untrusted;
use tracing::warn;

use crate::log_limit::LogLimit;

/// Largest request body anywhere but HTTP ingest: forms and server function arguments (a
/// dashboard with every widget at its limits fits).
pub const MAX_FORM_BODY: usize = 256 * 1024;

/// The client's address, as the guard worked it out (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// What the guard checks requests against.
pub struct Site {
    /// Host names (lower case, without port) this server answers to, besides IP addresses
    /// and loopback names.
    pub hosts: Vec<String>,
    /// Origins (scheme://host[:port]) allowed besides the server's own.
    pub origins: Vec<String>,
    /// The dashboard's own scheme as browsers see it: https with TLS or secure cookies.
    pub https: bool,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// Largest `POST /api/telemetry` body.
    pub max_ingest_body: usize,
    pub log: LogLimit,
}

impl Site {
    /// The host names allowed: `hosts`, the hosts of `origins`, and the machine's own name.
    pub fn new(
        hosts: &[String],
        origins: Vec<String>,
        https: bool,
        trusted_proxies: Vec<IpAddr>,
        max_ingest_body: usize,
    ) -> Site {
        let mut names: Vec<String> = hosts.iter().map(|h| host_name(h).to_ascii_lowercase()).collect();
        names.extend(
            origins
                .iter()
                .filter_map(|o| o.split_once("://"))
                .map(|(_, h)| host_name(h).to_ascii_lowercase()),
        );
        if let Some(machine) = machine_name() {
            names.push(format!("{machine}.local"));
            names.push(machine);
        }
        names.retain(|n| !n.is_empty());
        names.sort();
        names.dedup();
        Site { hosts: names, origins, https, trusted_proxies, max_ingest_body, log: LogLimit::default() }
    }

    /// Whether a request naming `authority` (host[:port]) is for this server.
    pub fn host_allowed(&self, authority: &str) -> bool {
        let host = host_name(authority).trim_end_matches('.').to_ascii_lowercase();
        host.parse::<IpAddr>().is_ok()
            || host == "localhost"
            || host.ends_with(".localhost")
            || self.hosts.contains(&host)
    }
}

/// The host of `host[:port]` or `[v6]:port`.
fn host_name(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// This machine's host name (Linux), if it has one.
fn machine_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_ascii_lowercase();
    (!name.is_empty() && name != "localhost").then_some(name)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The name a request is addressed to: HTTP/2's `:authority`, else the `Host` header.
fn authority(req: &Request) -> Option<String> {
    req.uri().authority().map(|a| a.to_string()).or_else(|| header(req.headers(), "host").map(str::to_owned))
}

/// Why a request was refused as cross-site, if it was.
pub fn cross_site(headers: &HeaderMap, site: &Site) -> Option<String> {
    let origin = header(headers, "origin");
    if let Some(fetch_site) = header(headers, "sec-fetch-site") {
        if fetch_site == "same-origin" || fetch_site == "none" {
            return None;
        }
        if origin.is_none() {
            return Some(format!("Sec-Fetch-Site: {} without an Origin", untrusted(fetch_site)));
        }
    }
    let origin = origin?;
    if site.origins.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return None;
    }
    let host = header(headers, "host").unwrap_or_default();
    let scheme = if site.https { "https" } else { "http" };
    if !host.is_empty() && origin.eq_ignore_ascii_case(&format!("{scheme}://{host}")) {
        return None;
    }
    Some(format!("Origin {} is not this site ({scheme}://{})", untrusted(origin), untrusted(host)))
}

fn is_upgrade(req: &Request) -> bool {
    header(req.headers(), "upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
}

/// Whether a request may change something: every method but GET, HEAD and OPTIONS.
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The app's static files (scripts, styles, icons, manifest, service worker): no data in them.
/// Page paths may hold dots too (device ids), so only these places count.
pub fn is_asset(method: &Method, path: &str) -> bool {
    let reads = matches!(*method, Method::GET | Method::HEAD);
    let top_level_file = path.matches('/').count() == 1 && path.contains('.');
    let asset_dir = ["/pkg/", "/icons/", "/vendor/"].iter().any(|d| path.starts_with(d));
    reads && (top_level_file || asset_dir)
}

/// The client's address: the peer's, or the one a trusted proxy forwarded.
fn client_ip(req: &Request, site: &Site) -> IpAddr {
    let peer = req
        .extensions()
        .get::<ConnectInfo<super::listener::Peer>>()
        .map(|c| c.0.0.ip())
        .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST));
    if !site.trusted_proxies.contains(&peer) {
        return peer;
    }
    // The proxy appends the address it saw last: anything before it may be forged.
    req.headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .next_back()
        .unwrap_or(peer)
}

fn plain(status: StatusCode, text: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

pub async fn guard(State(site): State<Arc<Site>>, mut req: Request, next: Next) -> Response {
    if let Some(authority) = authority(&req)
        && !site.host_allowed(&authority)
    {
        let name = host_name(&authority).to_owned();
        if site.log.check("request for another host name", &name, Instant::now()).is_some() {
            warn!(host = %untrusted(&name), path = %untrusted(req.uri().path()), "request for another host name refused");
        }
        return plain(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "This dashboard does not answer to the name \"{}\". If that is its name, add it to \
                 web.hosts (IOT_WEB_HOSTS) and restart it.\n",
                untrusted(&name)
            ),
        );
    }
    if (changes_state(req.method()) || is_upgrade(&req))
        && let Some(why) = cross_site(req.headers(), &site)
    {
        if site.log.check("cross-site request", &why, Instant::now()).is_some() {
            warn!(method = %req.method(), path = %untrusted(req.uri().path()), "cross-site request refused: {why}");
        }
        return plain(StatusCode::FORBIDDEN, "cross-site request refused\n".into());
    }
    let ip = client_ip(&req, &site);
    req.extensions_mut().insert(ClientIp(ip));
    let path = req.uri().path().to_owned();
    let asset = is_asset(req.method(), &path);
    if changes_state(req.method()) && path != "/api/telemetry" {
        req = match limit_body(req, MAX_FORM_BODY).await {
            Ok(req) => req,
            Err(res) => return res,
        };
    } else if changes_state(req.method())
        && declared_length(req.headers()).is_some_and(|n| n > site.max_ingest_body)
    {
        // HTTP ingest answers its own 413 with counts; this only spares reading a huge body.
        return too_large(site.max_ingest_body);
    }
    let mut res: Response<Body> = next.run(req).await;
    let headers = res.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if site.https {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    if !asset && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
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

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    header(headers, "content-length")?.trim().parse().ok()
}

fn too_large(limit: usize) -> Response {
    let body = serde_json::json!({ "error": format!("request body over {limit} bytes") });
    (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
}

/// The request with its body read into memory, or 413 when it is over `limit` bytes.
async fn limit_body(req: Request, limit: usize) -> Result<Request, Response> {
    if declared_length(req.headers()).is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Err(_) => Err(too_large(limit)),
    }
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

    fn site(https: bool, origins: &[&str], hosts: &[&str]) -> Site {
        let hosts: Vec<String> = hosts.iter().map(|s| s.to_string()).collect();
        Site::new(&hosts, origins.iter().map(|s| s.to_string()).collect(), https, vec![], 1 << 20)
    }

    #[test]
    fn same_site_browsers_and_non_browsers_pass() {
        let plain = site(false, &[], &[]);
        assert_eq!(cross_site(&headers(&[]), &plain), None, "curl, devices");
        assert_eq!(cross_site(&headers(&[("sec-fetch-site", "same-origin")]), &plain), None);
        assert_eq!(
            cross_site(
                &headers(&[("host", "dash.local:3000"), ("origin", "http://dash.local:3000")]),
                &plain
            ),
            None
        );
        let proxy = site(false, &["https://iot.example.com"], &[]);
        assert_eq!(
            cross_site(
                &headers(&[("host", "127.0.0.1:3000"), ("origin", "https://iot.example.com")]),
                &proxy
            ),
            None
        );
    }

    #[test]
    fn other_sites_and_other_schemes_are_refused() {
        let plain = site(false, &[], &[]);
        let forged = headers(&[
            ("host", "dash.local:3000"),
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert!(cross_site(&forged, &plain).unwrap().contains("evil.example"));
        assert!(cross_site(&headers(&[("host", "dash.local:3000"), ("origin", "null")]), &plain).is_some());
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")]), &plain).is_some());
        let https = site(true, &[], &[]);
        let downgraded = headers(&[("host", "dash.local"), ("origin", "http://dash.local")]);
        assert!(cross_site(&downgraded, &https).is_some(), "the scheme is part of the origin");
        let same = headers(&[("host", "dash.local"), ("origin", "https://dash.local")]);
        assert_eq!(cross_site(&same, &https), None);
        let quoted = headers(&[("host", "dash.local"), ("origin", "https://e\"vil")]);
        assert!(cross_site(&quoted, &https).unwrap().contains("e\\\"vil"), "logged escaped");
    }

    #[test]
    fn only_this_servers_names_are_answered() {
        let s = site(false, &["https://iot.example.com"], &["Dash.Home"]);
        for ok in [
            "localhost:3000",
            "LOCALHOST",
            "app.localhost:3000",
            "127.0.0.1:3000",
            "192.168.1.20:3000",
            "[::1]:3000",
            "[fe80::1]",
            "dash.home:3000",
            "dash.home.",
            "iot.example.com",
        ] {
            assert!(s.host_allowed(ok), "{ok}");
        }
        for bad in ["evil.example", "evil.example:3000", "localhost.evil.example", "127.0.0.1.nip.io", ""] {
            assert!(!s.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn host_names_drop_ports() {
        assert_eq!(host_name("a.b:80"), "a.b");
        assert_eq!(host_name("[::1]:80"), "::1");
        assert_eq!(host_name("a.b"), "a.b");
        assert_eq!(host_name("a:b"), "a:b");
    }
}
