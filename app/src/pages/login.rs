//! Sign in, and create the first admin. Plain forms posted to the server, which answers with a
//! redirect: they work before (and without) the WASM.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// `/login?next=/where&error=invalid`
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.with(|q| q.get("next").unwrap_or_else(|| "/".into()));
    let error = move || {
        query.with(|q| q.get("error")).map(|e| match e.as_str() {
            "invalid" => "Wrong user name or password.",
            _ => "Could not sign in.",
        })
    };
    view! {
        <section class="auth-page">
            <h1>"Sign in"</h1>
            {move || error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <form class="auth-form" method="post" action="/auth/login">
                <input type="hidden" name="next" value=next/>
                <label class="field">"User name"
                    <input type="text" name="name" autocomplete="username" required autofocus/>
                </label>
                <label class="field">"Password"
                    <input type="password" name="password" autocomplete="current-password" required/>
                </label>
                <button class="button primary" type="submit">"Sign in"</button>
            </form>
        </section>
    }
}

/// `/setup?token=…`: the first admin, while no user exists. The token is the one the server
/// printed at start (its setup link holds it): without it nobody who can merely reach the
/// dashboard can claim it.
#[component]
pub fn SetupPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.with(|q| q.get("token")).filter(|t| !t.is_empty());
    let error = move || {
        query.with(|q| q.get("error")).map(|e| match e.as_str() {
            "token" => "That is not the setup token: use the setup link the server printed when it \
                        started (make run shows it), or the token in it."
                .to_owned(),
            "name" => "User names are 1 to 64 of A-Z a-z 0-9 _ . -".to_owned(),
            "password" => {
                format!("Passwords need at least {} characters.", telemetry::auth::MIN_PASSWORD_LEN)
            }
            "done" => "Setup is done: sign in instead.".to_owned(),
            _ => "Could not create the user; try again.".to_owned(),
        })
    };
    view! {
        <section class="auth-page">
            <h1>"Create the first admin"</h1>
            <p class="hint">
                "Until you do, anyone who can reach this dashboard can change it. "
                "Afterwards everyone signs in; admins change things, viewers look."
            </p>
            {move || error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <form class="auth-form" method="post" action="/auth/setup">
                {move || match token() {
                    Some(t) => view! { <input type="hidden" name="token" value=t/> }.into_any(),
                    None => view! {
                        <label class="field">"Setup token"
                            <input type="text" name="token" required autocomplete="off" spellcheck="false"/>
                            <span class="hint">"Printed by the server when it started, in its setup link."</span>
                        </label>
                    }.into_any(),
                }}
                <label class="field">"User name"
                    <input type="text" name="name" autocomplete="username" required pattern="[A-Za-z0-9_.\\-]{1,64}"/>
                </label>
                <label class="field">"Password"
                    <input type="password" name="password" autocomplete="new-password" required minlength=telemetry::auth::MIN_PASSWORD_LEN/>
                </label>
                <button class="button primary" type="submit">"Create admin and sign in"</button>
            </form>
        </section>
    }
}
