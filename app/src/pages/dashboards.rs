//! The list of dashboards, and creating a new one.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use telemetry::dashboard::{Dashboard, Layouts, TimeRange};

use crate::api::{create_dashboard, list_dashboards};
use crate::logic::format;

#[component]
pub fn DashboardsPage() -> impl IntoView {
    let list = Resource::new(|| (), |_| list_dashboards());
    let name = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let create = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        let title = name.get_untracked().trim().to_owned();
        if title.is_empty() {
            error.set(Some("Give the dashboard a name.".into()));
            return;
        }
        let dashboard = Dashboard {
            // The server makes the id.
            id: "new".into(),
            name: title,
            widgets: vec![],
            layouts: Layouts::default(),
            range: TimeRange::default(),
            updated: 0,
        };
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match create_dashboard(dashboard).await {
                Ok(saved) => navigate(&format!("/d/{}?edit=1", saved.id), Default::default()),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <section class="dashboards">
            <h1>"Dashboards"</h1>
            <Transition fallback=|| view! { <p class="loading">"Loading dashboards…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(list) if list.is_empty() => view! {
                            <div class="empty"><p>"No dashboards yet: create one below."</p></div>
                        }
                            .into_any(),
                        Ok(list) => view! {
                            <ul class="dashboard-list">
                                {list
                                    .into_iter()
                                    .map(|d| {
                                        view! {
                                            <li data-dashboard=d.id.clone()>
                                                <a href=format!("/d/{}", d.id)>{d.name}</a>
                                                <span class="muted">
                                                    {format!("{} widget{}", d.widgets, if d.widgets == 1 { "" } else { "s" })}
                                                    " · saved "
                                                    {format::date_time(d.updated, false)}
                                                </span>
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                        }
                            .into_any(),
                        Err(e) => view! { <p class="error" role="alert">"Cannot load dashboards: " {e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
            <form class="create-dashboard" on:submit=create>
                <label>
                    "New dashboard "
                    <input type="text" name="name" maxlength="100" placeholder="Greenhouse" prop:value=move || name.get() on:input=move |e| name.set(event_target_value(&e))/>
                </label>
                <button type="submit" class="button primary">"Create"</button>
                {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            </form>
        </section>
    }
}
