//! The front end served from a CDN (`web.assets_url`), in-process on port 0: pages link the
//! hashed scripts, stylesheets and WASM under the configured URL, their Content-Security-Policy
//! lets that origin in, the service worker precaches from there, and every static file carries
//! the Cache-Control a browser or CDN needs (hashed: a year, immutable; `sw.js`: no-cache;
//! others: five minutes; pages: still no-store). A site built like `scripts/site.sh` builds
//! one (names from `asset-manifest.json`) stands in for the real build.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use server::Server;
use server::config::Config;
use tower::ServiceExt;

const HASH: &str = "0123456789abcdef";
const CDN: &str = "https://cdn.example.net/iot";

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
    }
}

async fn get(router: &axum::Router, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = Request::get(path).header("host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = router.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    Answer { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

/// A built site: the hashed files of tools/hash-assets.mjs, their manifest, a brotli copy of
/// the WASM, an icon, the web app manifest and a service worker as tools/build-sw.mjs writes
/// it (the hashed files' URLs after the placeholder the server replaces).
fn built_site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let built = [
        "/pkg/iot-dashboard.js",
        "/pkg/iot-dashboard.wasm",
        "/pkg/iot-dashboard.css",
        "/theme.js",
        "/pwa.js",
        "/charts.js",
        "/vendor/uPlot.iife.min.js",
        "/vendor/uPlot.min.css",
    ];
    let hashed = |p: &str| {
        let (stem, ext) = p.rsplit_once('.').unwrap();
        format!("{stem}.{HASH}.{ext}")
    };
    let mut manifest = serde_json::Map::new();
    for p in built {
        let file = dir.path().join(&hashed(p)[1..]);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, format!("/* {p} */")).unwrap();
        manifest.insert(p.to_owned(), hashed(p).into());
    }
    std::fs::write(dir.path().join("asset-manifest.json"), serde_json::Value::Object(manifest).to_string())
        .unwrap();
    std::fs::write(dir.path().join(format!("pkg/iot-dashboard.{HASH}.wasm.br")), "brotli bytes").unwrap();
    std::fs::create_dir_all(dir.path().join("icons")).unwrap();
    std::fs::write(dir.path().join("icons/icon-192.png"), "png").unwrap();
    std::fs::write(dir.path().join("manifest.webmanifest"), "{}").unwrap();
    std::fs::write(
        dir.path().join("sw.js"),
        format!(
            r#"precache([{{url:"__IOT_ASSETS_URL__/pkg/iot-dashboard.{HASH}.wasm",revision:null}},{{url:"icons/icon-192.png",revision:"1"}}])"#
        ),
    )
    .unwrap();
    dir
}

async fn start(site: &std::path::Path, assets_url: &str) -> (Server, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.path = data.path().join("t.redb");
    config.mqtt.listen = "127.0.0.1:0".parse().unwrap();
    config.web.site_root = site.to_owned();
    config.web.assets_url = assets_url.to_owned();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    (Server::start(config, http).await.unwrap(), data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_link_the_hashed_files_on_the_cdn_and_let_its_origin_in() {
    let site = built_site();
    let (server, _data) = start(site.path(), CDN).await;
    let router = server.router();

    let page = get(&router, "/", &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for built in [
        "pkg/iot-dashboard.js",
        "pkg/iot-dashboard.wasm",
        "pkg/iot-dashboard.css",
        "theme.js",
        "pwa.js",
        "charts.js",
        "vendor/uPlot.iife.min.js",
        "vendor/uPlot.min.css",
    ] {
        let (stem, ext) = built.rsplit_once('.').unwrap();
        let url = format!("{CDN}/{stem}.{HASH}.{ext}");
        assert!(page.body.contains(&url), "the page links {url}: {}", page.body);
        assert!(!page.body.contains(&format!("\"/{built}\"")), "and never the unhashed /{built}");
    }
    // The hydration script loads the JS and WASM by the hashed name, from the CDN.
    assert!(
        page.body.contains(&format!(r#"("{CDN}", "pkg", "iot-dashboard.{HASH}", "iot-dashboard.{HASH}""#)),
        "{}",
        page.body
    );
    // Icons and the web app manifest stay on the dashboard's own origin.
    assert!(
        page.body.contains(r#"href="/manifest.webmanifest""#) && page.body.contains(r#"href="/favicon.svg""#)
    );
    let csp = page.header("content-security-policy");
    for directive in ["script-src", "style-src", "connect-src"] {
        let sources = csp.split(';').map(str::trim).find(|d| d.starts_with(directive)).unwrap();
        assert!(
            sources.split(' ').any(|s| s == "https://cdn.example.net"),
            "{directive} lets the CDN in: {csp}"
        );
    }
    assert!(!csp.contains("/iot"), "origins only, no path: {csp}");
    assert_eq!(page.header("cache-control"), "no-store", "pages hold data: never kept");

    let wasm = format!("/pkg/iot-dashboard.{HASH}.wasm");
    let packed = get(&router, &wasm, &[("accept-encoding", "br")]).await;
    assert_eq!(packed.status, StatusCode::OK);
    assert_eq!(packed.body, "brotli bytes", "the precompressed copy");
    assert_eq!(packed.header("content-encoding"), "br");
    assert!(packed.header("vary").to_ascii_lowercase().contains("accept-encoding"), "{:?}", packed.headers);
    assert_eq!(packed.header("cache-control"), "public, max-age=31536000, immutable");
    assert_eq!(
        packed.header("access-control-allow-origin"),
        "*",
        "a CDN pulling from here can serve it cross-origin"
    );
    let plain = get(&router, &format!("/theme.{HASH}.js"), &[]).await;
    assert_eq!(
        (plain.status, plain.header("cache-control")),
        (StatusCode::OK, "public, max-age=31536000, immutable")
    );

    let sw = get(&router, "/sw.js", &[]).await;
    assert_eq!(sw.status, StatusCode::OK);
    assert_eq!(sw.header("cache-control"), "no-cache", "browsers look for a new worker every time");
    assert!(sw.header("content-type").starts_with("text/javascript"));
    assert!(sw.body.contains(&format!(r#"url:"{CDN}/pkg/iot-dashboard.{HASH}.wasm""#)), "{}", sw.body);
    assert!(sw.body.contains(r#"url:"icons/icon-192.png""#) && !sw.body.contains("__IOT_ASSETS_URL__"));

    for other in ["/manifest.webmanifest", "/icons/icon-192.png"] {
        let a = get(&router, other, &[]).await;
        assert_eq!((a.status, a.header("cache-control")), (StatusCode::OK, "public, max-age=300"), "{other}");
    }
    // A file of another build (an old page after a deploy): not found, and not kept.
    let gone = get(&router, "/pkg/iot-dashboard.ffffffffffffffff.js", &[]).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(!gone.header("cache-control").contains("immutable"), "{:?}", gone.headers);
    assert_eq!(gone.header("access-control-allow-origin"), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_the_hashed_files_come_from_this_server() {
    let site = built_site();
    let (server, _data) = start(site.path(), "").await;
    let router = server.router();
    let page = get(&router, "/", &[]).await;
    assert!(page.body.contains(&format!(r#"src="/theme.{HASH}.js""#)), "{}", page.body);
    assert!(page.body.contains(&format!(r#"href="/pkg/iot-dashboard.{HASH}.css""#)));
    assert!(page.body.contains(&format!(r#"("", "pkg", "iot-dashboard.{HASH}", "iot-dashboard.{HASH}""#)));
    let csp = page.header("content-security-policy");
    assert!(csp.contains("script-src 'self' 'nonce-") && csp.contains("connect-src 'self';"), "{csp}");
    let sw = get(&router, "/sw.js", &[]).await;
    assert!(sw.body.contains(&format!(r#"url:"/pkg/iot-dashboard.{HASH}.wasm""#)), "{}", sw.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_built_without_hashes_is_served_by_its_names_and_kept_by_nobody() {
    // `cargo leptos watch` builds no manifest: a developer's rebuild must show at once.
    let site = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(site.path().join("pkg")).unwrap();
    std::fs::write(site.path().join("pkg/iot-dashboard.js"), "js").unwrap();
    let (server, _data) = start(site.path(), "").await;
    let router = server.router();
    let page = get(&router, "/", &[]).await;
    assert!(page.body.contains(r#"href="/pkg/iot-dashboard.css""#), "{}", page.body);
    let js = get(&router, "/pkg/iot-dashboard.js", &[]).await;
    assert_eq!((js.status, js.header("cache-control")), (StatusCode::OK, "no-cache"));
    assert_eq!(get(&router, "/sw.js", &[]).await.status, StatusCode::NOT_FOUND, "no worker in such a build");
}

#[test]
fn bad_assets_urls_are_refused_at_start_with_the_setting_named() {
    let load = |url: &str, extra: Option<(&str, &str)>| {
        let url = url.to_owned();
        let extra = extra.map(|(k, v)| (k.to_owned(), v.to_owned()));
        Config::from_parts(None, move |k| match k {
            "IOT_WEB_ASSETS_URL" => Some(url.clone()),
            k if extra.as_ref().is_some_and(|(e, _)| e == k) => extra.as_ref().map(|(_, v)| v.clone()),
            _ => None,
        })
    };
    for good in [
        "https://cdn.example.com",
        "https://cdn.example.com/iot/",
        "http://127.0.0.1:8080",
        "https://[::1]:8443/a",
    ] {
        assert_eq!(load(good, None).unwrap().web.assets_url, good);
    }
    for (bad, why) in [
        ("cdn.example.com", "not an absolute URL"),
        ("ftp://cdn.example.com", "http:// or https:// only"),
        ("https://cdn.example.com/?v=1", "query"),
        ("https://cdn.example.com/#top", "fragment"),
        ("https://user@cdn.example.com", "user name"),
        ("https://cdn.example.com/a b", "character ' '"),
        ("https://cdn.example.com/\"><script>", "character '\"'"),
        ("https:///path", "no host"),
    ] {
        let e = load(bad, None).unwrap_err().to_string();
        assert!(e.contains("web.assets_url (IOT_WEB_ASSETS_URL)") && e.contains(why), "{bad}: {e}");
    }
    let e = load("http://cdn.example.com", Some(("IOT_SECURE_COOKIES", "true"))).unwrap_err().to_string();
    assert!(e.contains("served over HTTPS"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_naming_a_missing_file_stops_the_start() {
    let site = built_site();
    std::fs::remove_file(site.path().join(format!("theme.{HASH}.js"))).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.path = data.path().join("t.redb");
    config.mqtt.listen = "127.0.0.1:0".parse().unwrap();
    config.web.site_root = site.path().to_owned();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e = Server::start(config, http).await.err().expect("refused").to_string();
    assert!(e.contains(&format!("/theme.{HASH}.js is missing")) && e.contains("scripts/site.sh"), "{e}");
}
