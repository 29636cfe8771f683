//! Panics of page renders on the server, nearly all from renders that went on after their
//! request had gone.
//!
//! When a browser leaves a page before its server render has finished (a click elsewhere, a
//! closed tab, a reload), the render's reactive owner goes with the response, but Leptos 0.8's
//! `<Suspense>` may run its children once more in a task of its own, which then panics on
//! whatever they read: a disposed signal ("… but it has already been disposed"), a context
//! ("expected context of type … to be present"), the router ("You cannot call `use_navigate`
//! outside a <Router>"); upstream, leptos-rs/leptos issues 4829 and 4698. Nothing is lost:
//! nobody reads that response, and the panic ends only that task. But the default panic hook
//! writes each with its location (and a backtrace when `RUST_BACKTRACE` is set: about 130
//! lines), so a client aborting page loads in a loop could fill the log.
//!
//! [`install`] sends every panic raised in the app's code or Leptos's (page renders, and the
//! app's server functions) through the log limit instead (a line a minute, with how many were
//! left out) and counts them all in `iot_render_panics_total`; every other panic goes to the
//! default hook as before.

use std::panic::PanicHookInfo;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tracing::warn;

use crate::log_limit::LogLimit;

/// Where a render's panic is raised: the app's source (its paths are relative to the
/// workspace), or Leptos's crates (their paths hold the crate's name and version).
const APP_CODE: &str = "app/src/";
const LEPTOS_CODE: [&str; 7] = [
    "/leptos-",
    "/leptos_axum-",
    "/leptos_integration_utils-",
    "/leptos_router-",
    "/leptos_server-",
    "/reactive_graph-",
    "/tachys-",
];

/// Characters of a panic's message that are logged.
const MESSAGE_CHARS: usize = 300;

/// Render panics since start (`iot_render_panics_total`).
pub static COUNT: AtomicU64 = AtomicU64::new(0);
static LOG: LazyLock<LogLimit> = LazyLock::new(LogLimit::default);

/// Puts the hook in place for the whole process (the server binary does, at start).
pub fn install() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !render_panic(info) {
            default(info);
        }
    }));
}

/// Counts and logs (within the limit) a panic raised in rendering code; false for any other.
fn render_panic(info: &PanicHookInfo<'_>) -> bool {
    let Some(location) = info.location() else { return false };
    let file = location.file();
    if !file.starts_with(APP_CODE) && !LEPTOS_CODE.iter().any(|code| file.contains(code)) {
        return false;
    }
    COUNT.fetch_add(1, Ordering::Relaxed);
    if let Some(left_out) = LOG.check("render panic", "", Instant::now()) {
        // Leptos's messages name the app's source lines; any other might hold text from
        // outside, so it is cut and escaped like every other logged string.
        let message: String = info.payload_as_str().unwrap_or("").chars().take(MESSAGE_CHARS).collect();
        warn!(
            left_out,
            "a page render panicked (most often one that went on after its browser had left) at {location}: {message:?}"
        );
    }
    true
}
