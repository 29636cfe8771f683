//! Lucide icons (https://lucide.dev) drawn inline, so they show without JavaScript: the ones
//! the app uses, from lucide-static 1.87.0. Written by `tools/icons.mjs` (which finds every
//! `Lucide::Name` in app/src); do not edit, run `node tools/icons.mjs` after using a new icon.
//!
//! An icon is decoration (`aria-hidden`): the button or link around it carries the name, in
//! its text or its `aria-label`.
//!
//! ISC License
//!
//! Copyright (c) 2026 Lucide Icons and Contributors
//!
//! Permission to use, copy, modify, and/or distribute this software for any
//! purpose with or without fee is hereby granted, provided that the above
//! copyright notice and this permission notice appear in all copies.
//!
//! THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
//! WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
//! MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
//! ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
//! WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
//! ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
//! OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
//!
//! arrow-down, arrow-left, arrow-up, chevron-down, chevron-up, download, log-out, moon, x: from
//! Feather (https://feathericons.com), also under its licence:
//!
//! The MIT License (MIT) (for the icons listed above)
//!
//! Copyright (c) 2013-present Cole Bemis
//!
//! Permission is hereby granted, free of charge, to any person obtaining a copy
//! of this software and associated documentation files (the "Software"), to deal
//! in the Software without restriction, including without limitation the rights
//! to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
//! copies of the Software, and to permit persons to whom the Software is
//! furnished to do so, subject to the following conditions:
//!
//! The above copyright notice and this permission notice shall be included in all
//! copies or substantial portions of the Software.
//!
//! THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
//! IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
//! FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
//! AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
//! LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
//! OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
//! SOFTWARE.

use leptos::prelude::*;

/// The Lucide icons in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lucide {
    ArrowDown,
    ArrowLeft,
    ArrowUp,
    Bell,
    ChevronDown,
    ChevronUp,
    Download,
    LockOpen,
    LogOut,
    Moon,
    Settings,
    Sun,
    Users,
    X,
}

impl Lucide {
    /// The icon's SVG elements, inside a 24 × 24 view box.
    pub const fn body(self) -> &'static str {
        match self {
            Lucide::ArrowDown => r#"<path d="M12 5v14"/><path d="m19 12-7 7-7-7"/>"#,
            Lucide::ArrowLeft => r#"<path d="m12 19-7-7 7-7"/><path d="M19 12H5"/>"#,
            Lucide::ArrowUp => r#"<path d="m5 12 7-7 7 7"/><path d="M12 19V5"/>"#,
            Lucide::Bell => {
                r#"<path d="M10.268 21a2 2 0 0 0 3.464 0"/><path d="M3.262 15.326A1 1 0 0 0 4 17h16a1 1 0 0 0 .74-1.673C19.41 13.956 18 12.499 18 8A6 6 0 0 0 6 8c0 4.499-1.411 5.956-2.738 7.326"/>"#
            }
            Lucide::ChevronDown => r#"<path d="m6 9 6 6 6-6"/>"#,
            Lucide::ChevronUp => r#"<path d="m18 15-6-6-6 6"/>"#,
            Lucide::Download => {
                r#"<path d="M12 15V3"/><path d="M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4"/><path d="m7 10 5 5 5-5"/>"#
            }
            Lucide::LockOpen => {
                r#"<rect width="18" height="11" x="3" y="11" rx="2" ry="2"/><path d="M7 11V7a5 5 0 0 1 9.9-1"/>"#
            }
            Lucide::LogOut => {
                r#"<path d="m16 17 5-5-5-5"/><path d="M21 12H9"/><path d="M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4"/>"#
            }
            Lucide::Moon => {
                r#"<path d="M20.985 12.486a9 9 0 1 1-9.473-9.472c.405-.022.617.46.402.803a6 6 0 0 0 8.268 8.268c.344-.215.825-.004.803.401"/>"#
            }
            Lucide::Settings => {
                r#"<path d="M9.671 4.136a2.34 2.34 0 0 1 4.659 0 2.34 2.34 0 0 0 3.319 1.915 2.34 2.34 0 0 1 2.33 4.033 2.34 2.34 0 0 0 0 3.831 2.34 2.34 0 0 1-2.33 4.033 2.34 2.34 0 0 0-3.319 1.915 2.34 2.34 0 0 1-4.659 0 2.34 2.34 0 0 0-3.32-1.915 2.34 2.34 0 0 1-2.33-4.033 2.34 2.34 0 0 0 0-3.831A2.34 2.34 0 0 1 6.35 6.051a2.34 2.34 0 0 0 3.319-1.915"/><circle cx="12" cy="12" r="3"/>"#
            }
            Lucide::Sun => {
                r#"<circle cx="12" cy="12" r="4"/><path d="M12 2v2"/><path d="M12 20v2"/><path d="m4.93 4.93 1.41 1.41"/><path d="m17.66 17.66 1.41 1.41"/><path d="M2 12h2"/><path d="M20 12h2"/><path d="m6.34 17.66-1.41 1.41"/><path d="m19.07 4.93-1.41 1.41"/>"#
            }
            Lucide::Users => {
                r#"<path d="M16 21v-2a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4v2"/><path d="M16 3.128a4 4 0 0 1 0 7.744"/><path d="M22 21v-2a4 4 0 0 0-3-3.87"/><circle cx="9" cy="7" r="4"/>"#
            }
            Lucide::X => r#"<path d="M18 6 6 18"/><path d="m6 6 12 12"/>"#,
        }
    }

    /// The SVG's classes: `icon` and Lucide's name (`icon lucide-arrow-up`).
    pub const fn class(self) -> &'static str {
        match self {
            Lucide::ArrowDown => "icon lucide-arrow-down",
            Lucide::ArrowLeft => "icon lucide-arrow-left",
            Lucide::ArrowUp => "icon lucide-arrow-up",
            Lucide::Bell => "icon lucide-bell",
            Lucide::ChevronDown => "icon lucide-chevron-down",
            Lucide::ChevronUp => "icon lucide-chevron-up",
            Lucide::Download => "icon lucide-download",
            Lucide::LockOpen => "icon lucide-lock-open",
            Lucide::LogOut => "icon lucide-log-out",
            Lucide::Moon => "icon lucide-moon",
            Lucide::Settings => "icon lucide-settings",
            Lucide::Sun => "icon lucide-sun",
            Lucide::Users => "icon lucide-users",
            Lucide::X => "icon lucide-x",
        }
    }
}

/// An icon, drawn by the stylesheet's `.icon` (Lucide's stroke in the text colour, sized to
/// the text).
#[component]
pub fn Icon(icon: Lucide) -> impl IntoView {
    view! {
        <svg
            class=icon.class()
            width="20"
            height="20"
            viewBox="0 0 24 24"
            aria-hidden="true"
            inner_html=icon.body()
        ></svg>
    }
}
