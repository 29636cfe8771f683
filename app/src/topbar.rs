//! The bar at the top of every page (brand, main links, install, theme, alarm and live badges, account),
//! and the banners under it.

mod account_menu;
mod alarm_badge;
mod live_badge;
mod offline_banner;
mod theme_toggle;

use leptos::prelude::*;

use self::account_menu::AccountMenu;
use self::live_badge::LiveBadge;
use self::offline_banner::OfflineBanner;
use self::theme_toggle::ThemeToggle;
use crate::widgets::icon::{Icon, Lucide};

#[component]
pub fn TopBar() -> impl IntoView {
    view! {
        <header class="topbar">
            <a class="brand" href="/">"IoT Dashboard"</a>
            <nav class="main-nav" aria-label="Main">
                <a href="/">"Devices"</a>
                <a href="/fleet">"Fleet"</a>
                <a href="/dashboards">"Dashboards"</a>
                <a href="/alarms">"Alarms"</a>
            </nav>
            <div class="topbar-actions">
                // Shown by pwa.js when the browser offers installation.
                <button id="install-app" class="button" type="button" title="Install app" hidden>
                    <Icon icon=Lucide::Download/>
                    <span class="label">"Install app"</span>
                </button>
                <ThemeToggle/>
                <alarm_badge::AlarmBadge/>
                <LiveBadge/>
                <AccountMenu/>
            </div>
        </header>
        // Shown by pwa.js when a new version is waiting.
        <div id="update-banner" class="banner update" role="status" hidden>
            "Update available — "
            <button id="update-reload" class="button" type="button">"reload"</button>
        </div>
        <OfflineBanner/>
    }
}
