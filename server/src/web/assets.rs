//! The front end's files for browsers and CDNs: the hashed names the build gave the scripts,
//! stylesheets and WASM (`asset-manifest.json` in the site folder, written by
//! `tools/hash-assets.mjs`, read once at start), how long each static file may be kept, and
//! the service worker, which precaches the hashed files from `web.assets_url`.
//!
//! Caching: a hashed file never changes, so `public, max-age=31536000, immutable` (and
//! `Access-Control-Allow-Origin: *`, so a CDN pulling from this server can hand it to pages
//! on the dashboard's origin); `sw.js` is `no-cache` (browsers look for a new version of it);
//! other static files (icons, the web app manifest) `max-age=300`; all of them
//! `Vary: accept-encoding` (they come precompressed). Pages keep the guard's
//! `no-store` (they hold the user's data). A build without a manifest (`cargo leptos watch`)
//! has nothing hashed: every static file is then `no-cache`.

use std::collections::HashMap;
use std::path::Path;

use app::Assets;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use leptos::prelude::LeptosOptions;

use super::guard::is_asset;

/// The manifest's name in the site folder.
pub const MANIFEST: &str = "asset-manifest.json";
/// What `tools/build-sw.mjs` puts before the hashed files' URLs in `sw.js`.
pub const SW_PLACEHOLDER: &str = "__IOT_ASSETS_URL__";
/// Largest manifest read (it names about ten files).
const MAX_MANIFEST_BYTES: u64 = 64 * 1024;
const MAX_ENTRIES: usize = 256;

pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
pub const SHORT: &str = "public, max-age=300";

#[derive(Debug, thiserror::Error)]
pub enum AssetsError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not what tools/hash-assets.mjs writes ({why}); rebuild the site with scripts/site.sh")]
    Invalid { path: String, why: String },
}

/// The build's hashed names under `base` (`web.assets_url`, already validated). No manifest in
/// `site_root`: a development build, served by its own names (and said so in the log).
pub fn load(site_root: &Path, base: &str) -> Result<Assets, AssetsError> {
    let path = site_root.join(MANIFEST);
    let shown = path.display().to_string();
    let invalid = |why: String| AssetsError::Invalid { path: shown.clone(), why };
    let text = match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(path = %shown, "no asset manifest: file names as built, nothing cached long");
            return Ok(Assets::new(base, HashMap::new()));
        }
        Err(source) => return Err(AssetsError::Read { path: shown, source }),
        Ok(meta) if meta.len() > MAX_MANIFEST_BYTES => {
            return Err(invalid(format!("over {MAX_MANIFEST_BYTES} bytes")));
        }
        Ok(_) => std::fs::read_to_string(&path)
            .map_err(|source| AssetsError::Read { path: shown.clone(), source })?,
    };
    let names: HashMap<String, String> =
        serde_json::from_str(&text).map_err(|e| invalid(format!("not a JSON object of names: {e}")))?;
    if names.len() > MAX_ENTRIES {
        return Err(invalid(format!("over {MAX_ENTRIES} names")));
    }
    for (built, hashed) in &names {
        if !(file_path(built) && file_path(hashed)) {
            return Err(invalid(format!("{built:?} -> {hashed:?} is not a pair of /paths")));
        }
        if !site_root.join(&hashed[1..]).is_file() {
            return Err(invalid(format!("{hashed} is missing")));
        }
    }
    tracing::info!(files = names.len(), base = %if base.is_empty() { "this server" } else { base }, "hashed assets");
    Ok(Assets::new(base, names))
}

/// A path of a file in the site: `/`, then letters, digits, `._-` and `/`, no `..`.
fn file_path(p: &str) -> bool {
    p.len() <= 256
        && p.starts_with('/')
        && !p.contains("..")
        && !p.contains("//")
        && p[1..].bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
}

/// The Cache-Control of a successful static file answer.
pub fn cache_control(assets: &Assets, path: &str) -> &'static str {
    if path == "/sw.js" || !assets.hashed_build() {
        "no-cache"
    } else if assets.is_hashed(path) {
        IMMUTABLE
    } else {
        SHORT
    }
}

/// Sets how long static files may be kept (errors are left alone: a missing hashed file
/// must not be cached for a year).
pub async fn cache_headers(State(assets): State<Assets>, req: Request, next: Next) -> Response {
    let asset = is_asset(req.method(), req.uri().path());
    let path = req.uri().path().to_owned();
    let mut res = next.run(req).await;
    let ok = matches!(res.status(), StatusCode::OK | StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED);
    if asset && ok {
        let control = cache_control(&assets, &path);
        let headers = res.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(control));
        if control == IMMUTABLE {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        }
        vary_on_encoding(headers);
    }
    res
}

/// Static files come brotli, gzip or plain by the request's Accept-Encoding: a cache must keep
/// them apart. (ServeDir says so, but the CORS layer's own `Vary` replaces its one.)
fn vary_on_encoding(headers: &mut axum::http::HeaderMap) {
    let vary: Vec<&str> = headers.get_all(header::VARY).iter().filter_map(|v| v.to_str().ok()).collect();
    if vary.iter().flat_map(|v| v.split(',')).any(|v| v.trim().eq_ignore_ascii_case("accept-encoding")) {
        return;
    }
    let joined = vary.iter().copied().chain(["accept-encoding"]).collect::<Vec<_>>().join(", ");
    if let Ok(value) = HeaderValue::from_str(&joined) {
        headers.insert(header::VARY, value);
    }
}

/// `GET /sw.js`: the service worker the build wrote, with the hashed files' URLs under
/// `web.assets_url`. Read on each request (browsers ask for it on navigations and hourly), so
/// a rebuilt site is seen without a restart, as every other static file is.
pub async fn service_worker(
    State(options): State<LeptosOptions>,
    axum::Extension(assets): axum::Extension<Assets>,
) -> Response {
    let path = Path::new(&*options.site_root).join("sw.js");
    match tokio::fs::read_to_string(&path).await {
        Ok(text) => (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            Body::from(text.replace(SW_PLACEHOLDER, assets.base())),
        )
            .into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "no service worker in this build\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(manifest: &str, files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST), manifest).unwrap();
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        dir
    }

    #[test]
    fn a_manifest_of_present_files_is_read() {
        let dir = site(r#"{"/theme.js": "/theme.0123456789abcdef.js"}"#, &["theme.0123456789abcdef.js"]);
        let assets = load(dir.path(), "https://cdn.example.com").unwrap();
        assert_eq!(assets.url("/theme.js"), "https://cdn.example.com/theme.0123456789abcdef.js");
        assert_eq!(cache_control(&assets, "/theme.0123456789abcdef.js"), IMMUTABLE);
        assert_eq!(cache_control(&assets, "/icons/icon-192.png"), SHORT);
        assert_eq!(cache_control(&assets, "/sw.js"), "no-cache");
    }

    #[test]
    fn no_manifest_is_a_development_build_and_nothing_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let assets = load(dir.path(), "").unwrap();
        assert_eq!(assets.url("/theme.js"), "/theme.js");
        assert_eq!(cache_control(&assets, "/pkg/iot-dashboard.wasm"), "no-cache");
    }

    #[test]
    fn a_broken_manifest_stops_the_start() {
        for (manifest, why) in [
            ("[1, 2]", "not a JSON object"),
            (r#"{"/theme.js": "/theme.0123456789abcdef.js"}"#, "is missing"),
            (r#"{"/theme.js": "../../etc/passwd"}"#, "pair of /paths"),
            (r#"{"/theme.js": "/a/../b.js"}"#, "pair of /paths"),
        ] {
            let dir = site(manifest, &[]);
            let e = load(dir.path(), "").unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("scripts/site.sh"), "{manifest}: {e}");
        }
    }
}
