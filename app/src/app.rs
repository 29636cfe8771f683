//! The HTML shell, the router and the top bar with the live-connection badge.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::live::{Connection, Live};
use crate::pages::device::DevicePage;
use crate::pages::home::HomePage;

/// The document around the app, rendered on the server. Pages stream in order, so the HTML
/// carries every value even for a browser without JavaScript.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
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
    Effect::new(move |started: Option<()>| {
        if started.is_none() {
            #[cfg(feature = "hydrate")]
            crate::live::start(live);
        }
    });

    view! {
        <Stylesheet id="leptos" href="/pkg/iot-dashboard.css"/>
        <Title text="IoT Dashboard"/>
        <Router>
            <header class="topbar">
                <a class="brand" href="/">"IoT Dashboard"</a>
                <LiveBadge/>
            </header>
            <main>
                <Routes fallback=|| view! { <div class="empty"><h2>"Page not found"</h2><p><a href="/">"Back to all devices"</a></p></div> }>
                    <Route path=path!("") view=HomePage ssr=SsrMode::InOrder/>
                    <Route path=path!("device/:id") view=DevicePage ssr=SsrMode::InOrder/>
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn LiveBadge() -> impl IntoView {
    let live = expect_context::<Live>();
    let state = move || match (live.hydrated(), live.connection.get()) {
        (false, _) => ("static", "Server view"),
        (true, Connection::Connecting) => ("connecting", "Connecting…"),
        (true, Connection::Open) => ("live", "Live"),
        (true, Connection::Reconnecting) => ("reconnecting", "Reconnecting…"),
    };
    view! {
        <span class="live-badge" data-state=move || state().0 role="status">
            {move || state().1}
        </span>
    }
}
