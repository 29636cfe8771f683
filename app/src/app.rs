//! The HTML shell (with its Content-Security-Policy), the app: live state as a context, the
//! top bar and the routes.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::pages::account::AccountPage;
use crate::pages::admin::AdminPage;
use crate::pages::alarms::{AlarmPage, AlarmsPage, RulesPage};
use crate::pages::dashboard::DashboardPage;
use crate::pages::dashboards::DashboardsPage;
use crate::pages::device::DevicePage;
use crate::pages::fleet::FleetPage;
use crate::pages::home::HomePage;
use crate::pages::login::{LoginPage, SetupPage};
use crate::state::live::Live;
use crate::topbar::TopBar;
pub use assets::Assets;

pub mod assets;

/// The Content-Security-Policy of a page: scripts only from this site (and `assets`, the origin
/// of `web.assets_url` when set) or inline with this response's nonce, WASM allowed to compile
/// (and fetched from there: `connect-src`), nothing framed, forms posting only here. Inline
/// `style` attributes are allowed (the grid places widgets with them).
pub fn content_security_policy(nonce: &str, assets: Option<&str>) -> String {
    let cdn = assets.map(|origin| format!(" {origin}")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'{cdn} 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'{cdn} 'unsafe-inline'; img-src 'self' data:; connect-src 'self'{cdn}; \
         worker-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'self'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// The document around the app, rendered on the server. Pages stream in order, so the HTML
/// carries every value even for a browser without JavaScript.
/// Scripts, stylesheets and the WASM come by their hashed names from [`Assets`] (a context the
/// server provides), icons and the web app manifest from this server.
pub fn shell(mut options: LeptosOptions) -> impl IntoView {
    let assets = use_context::<Assets>().unwrap_or_default();
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(response)) =
        (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
        && let Ok(value) = http::HeaderValue::from_str(&content_security_policy(&nonce, assets.origin()))
    {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
    let css = assets.url(&format!("/{}/{}.css", options.site_pkg_dir, options.output_name));
    options.output_name = assets.output_name(&options.site_pkg_dir, &options.output_name).into();
    let root = assets.base().to_owned();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <meta name="theme-color" content="#0f766e"/>
                <script src=assets.url("/theme.js")></script>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <link rel="manifest" href="/manifest.webmanifest"/>
                <link rel="apple-touch-icon" href="/icons/apple-touch-icon.png"/>
                <link rel="stylesheet" id="leptos" href=css/>
                <script src=assets.url("/pwa.js") defer></script>
                <link rel="stylesheet" href=assets.url("/vendor/uPlot.min.css")/>
                <script src=assets.url("/vendor/uPlot.iife.min.js") defer></script>
                <script src=assets.url("/charts.js") defer></script>
                <AutoReload options=options.clone()/>
                <HydrationScripts options root/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let live = Live::new();
    provide_context(live);
    // Effects run only in the browser, after hydration.
    // Live data starts on the first frame after hydration: the server's HTML must be hydrated
    // with exactly the data it was rendered from, before anything newer arrives.
    Effect::new(move |started: Option<()>| {
        if started.is_none() {
            // The sign-in pages have nothing live to show (and no session to show it with).
            #[cfg(feature = "hydrate")]
            if !matches!(window().location().pathname().as_deref(), Ok("/login" | "/setup")) {
                let owner = Owner::current().unwrap_or_default();
                request_animation_frame(move || owner.with(|| crate::browser::start(live)));
            }
        }
    });

    view! {
        <Title text="IoT Dashboard"/>
        <Router>
            <TopBar/>
            <main>
                <Routes fallback=|| view! { <div class="empty"><h2>"Page not found"</h2><p><a href="/">"Back to all devices"</a></p></div> }>
                    <Route path=path!("") view=HomePage ssr=SsrMode::InOrder/>
                    <Route path=path!("device/:id") view=DevicePage ssr=SsrMode::InOrder/>
                    <Route path=path!("fleet") view=FleetPage ssr=SsrMode::InOrder/>
                    <Route path=path!("dashboards") view=DashboardsPage ssr=SsrMode::InOrder/>
                    <Route path=path!("d/:id") view=DashboardPage ssr=SsrMode::InOrder/>
                    <Route path=path!("alarms") view=AlarmsPage ssr=SsrMode::InOrder/>
                    <Route path=path!("alarms/rules") view=RulesPage ssr=SsrMode::InOrder/>
                    <Route path=path!("alarms/:id") view=AlarmPage ssr=SsrMode::InOrder/>
                    <Route path=path!("admin") view=AdminPage ssr=SsrMode::InOrder/>
                    <Route path=path!("account") view=AccountPage ssr=SsrMode::InOrder/>
                    <Route path=path!("login") view=LoginPage/>
                    <Route path=path!("setup") view=SetupPage/>
                </Routes>
            </main>
        </Router>
    }
}
