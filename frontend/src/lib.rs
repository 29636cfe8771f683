//! The browser's entry point: hydrates the page the server rendered with the `app` crate's
//! components (see `app`'s documentation for what they are).

/// Called by the hydration script Leptos puts in every page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
