//! The front end's own files as pages link them: by the content-hashed names the build gave
//! them (`tools/hash-assets.mjs` writes the names, the server reads them at start), under the
//! base URL they are served from (`web.assets_url`: empty for this server, or a CDN).

use std::collections::HashMap;
use std::sync::Arc;

/// Where a page finds its scripts, stylesheets and WASM (a context while the shell renders;
/// without one, the built names on this server).
#[derive(Clone, Debug, Default)]
pub struct Assets(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    /// `https://cdn.example.com[/path]` without a trailing slash, or empty: this server.
    base: String,
    /// A file's built name (`/theme.js`) to its hashed one (`/theme.0123456789abcdef.js`).
    names: HashMap<String, String>,
}

impl Assets {
    /// `base` as validated by the server's configuration (http(s), no query or fragment).
    pub fn new(base: &str, names: HashMap<String, String>) -> Assets {
        Assets(Arc::new(Inner { base: base.trim_end_matches('/').to_owned(), names }))
    }

    /// The URL of the file built as `path` (`/pkg/iot-dashboard.css`).
    pub fn url(&self, path: &str) -> String {
        let name = self.0.names.get(path).map_or(path, String::as_str);
        format!("{}{name}", self.0.base)
    }

    /// The base URL, empty for this server.
    pub fn base(&self) -> &str {
        &self.0.base
    }

    /// The origin (`scheme://host[:port]`) the files come from when it is not this server's,
    /// for the page's Content-Security-Policy.
    pub fn origin(&self) -> Option<&str> {
        let base = &self.0.base;
        let scheme_end = base.find("://")? + 3;
        let end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
        Some(&base[..end])
    }

    /// Whether `path` is a hashed name, whose content never changes.
    pub fn is_hashed(&self, path: &str) -> bool {
        self.0.names.values().any(|n| n == path)
    }

    /// Whether the build's names were read (false: a development build, nothing hashed).
    pub fn hashed_build(&self) -> bool {
        !self.0.names.is_empty()
    }

    /// The name Leptos's hydration script loads `<name>.js` and `<name>.wasm` by, in `pkg`:
    /// `output` (the built name) with its hash.
    pub fn output_name(&self, pkg: &str, output: &str) -> String {
        let built = format!("/{pkg}/{output}.js");
        self.0
            .names
            .get(&built)
            .and_then(|n| n.strip_prefix(&format!("/{pkg}/"))?.strip_suffix(".js").map(str::to_owned))
            .unwrap_or_else(|| output.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built() -> Assets {
        let names = [
            ("/theme.js", "/theme.0123456789abcdef.js"),
            ("/pkg/iot-dashboard.js", "/pkg/iot-dashboard.fedcba9876543210.js"),
        ];
        Assets::new(
            "https://cdn.example.com:8443/iot/",
            names.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        )
    }

    #[test]
    fn hashed_names_under_the_base() {
        let a = built();
        assert_eq!(a.url("/theme.js"), "https://cdn.example.com:8443/iot/theme.0123456789abcdef.js");
        assert_eq!(a.url("/favicon.svg"), "https://cdn.example.com:8443/iot/favicon.svg", "not hashed");
        assert_eq!(a.origin(), Some("https://cdn.example.com:8443"));
        assert_eq!(a.output_name("pkg", "iot-dashboard"), "iot-dashboard.fedcba9876543210");
        assert!(a.is_hashed("/theme.0123456789abcdef.js"));
        assert!(!a.is_hashed("/theme.js"));
    }

    #[test]
    fn without_a_build_or_a_base_the_names_are_as_built_on_this_server() {
        let a = Assets::default();
        assert_eq!(a.url("/theme.js"), "/theme.js");
        assert_eq!(a.origin(), None);
        assert_eq!(a.output_name("pkg", "iot-dashboard"), "iot-dashboard");
        assert!(!a.hashed_build());
        assert_eq!(
            Assets::new("https://cdn.example.com", HashMap::new()).origin(),
            Some("https://cdn.example.com")
        );
    }
}
