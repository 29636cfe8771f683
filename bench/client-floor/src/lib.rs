//! Two pages, a counter, one server function read through a resource: what any hydrated
//! Leptos app with routing carries before it shows anything of its own.

use leptos::prelude::*;
use leptos_meta::{Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

#[server]
pub async fn readings(n: u32) -> Result<Vec<(i64, f64)>, ServerFnError> {
    Ok((0..n).map(|i| (i64::from(i), f64::from(i))).collect())
}

#[component]
fn Home() -> impl IntoView {
    let count = RwSignal::new(0);
    let data = Resource::new(move || count.get(), readings);
    view! {
        <h1>"Readings"</h1>
        <button on:click=move |_| count.update(|c| *c += 1)>"More: " {count}</button>
        <Suspense fallback=|| "Loading…">
            {move || data.get().map(|r| match r {
                Ok(v) => view! {
                    <ul>{v.into_iter().map(|(t, x)| view! { <li>{t} ": " {x}</li> }).collect_view()}</ul>
                }.into_any(),
                Err(e) => view! { <p>{e.to_string()}</p> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn About() -> impl IntoView {
    view! { <p>"About"</p> }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="Floor"/>
        <Router>
            <nav><A href="/">"Home"</A> <A href="/about">"About"</A></nav>
            <main>
                <Routes fallback=|| "Not found">
                    <Route path=path!("") view=Home/>
                    <Route path=path!("about") view=About/>
                </Routes>
            </main>
        </Router>
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
