//! `/alarms/rules`: the alarm rules (what each watches, on which devices, where it notifies),
//! the editor (`?edit=<rule id>`, or a new rule) with its "what would it have done" backtest,
//! the notification channels, and the deliveries sent to them. Everyone signed in sees them;
//! the forms show for admins (and while the dashboard is open).

mod backtest;
mod channels;
mod deliveries;
mod editor;

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use telemetry::alarm::Rule;
use telemetry::notify::ChannelInfo;

use self::channels::Channels;
use self::deliveries::Deliveries;
use self::editor::RuleEditor;
use crate::api::{
    CreateChannel, DeleteChannel, DeleteRule, SaveRule, TestChannel, list_channels, list_rules, whoami,
};
use crate::logic::rule_form::{RuleForm, TEMPLATES, summary};
use crate::widgets::confirm_submit::ConfirmSubmit;
use crate::widgets::icon::{Icon, Lucide};

#[component]
pub fn RulesPage() -> impl IntoView {
    let params = use_query_map();
    let editing = Memo::new(move |_| params.with(|p| p.get("edit")).filter(|id| !id.is_empty()));
    let template = Memo::new(move |_| params.with(|p| p.get("template")));
    let access = Resource::new(|| (), |_| whoami());
    let save = ServerAction::<SaveRule>::new();
    let delete = ServerAction::<DeleteRule>::new();
    let create_channel = ServerAction::<CreateChannel>::new();
    let delete_channel = ServerAction::<DeleteChannel>::new();
    let test_channel = ServerAction::<TestChannel>::new();
    let rules = Resource::new(move || (save.version().get(), delete.version().get()), |_| list_rules());
    let channels = Resource::new(
        move || (create_channel.version().get(), delete_channel.version().get()),
        |_| list_channels(),
    );
    // A saved rule leaves the editor showing it; a new one empties it for the next.
    let saves = RwSignal::new(0u32);
    Effect::new(move |_| {
        if let Some(Ok(_)) = save.value().get() {
            saves.update(|n| *n += 1);
        }
    });
    view! {
        <section class="rules-page">
            <p class="back"><a href="/alarms"><Icon icon=Lucide::ArrowLeft/>"Alarms"</a></p>
            <h1>"Alarm rules and notifications"</h1>
            <Transition fallback=|| view! { <p class="loading">"Loading rules…"</p> }>
                {move || Suspend::new(async move {
                    let can_act = access.await.is_ok_and(|a| a.can_change());
                    let channel_list = channels.await.unwrap_or_default();
                    match rules.await {
                        Ok(rules) => {
                            let editor = {
                                let (rules, channel_list) = (rules.clone(), channel_list.clone());
                                move || {
                                    let _ = saves.get();
                                    let form = editing
                                        .get()
                                        .and_then(|id| rules.iter().find(|r| r.id == id))
                                        .map(RuleForm::from_rule)
                                        .or_else(|| template.get().and_then(|key| RuleForm::template(&key)))
                                        .unwrap_or_else(RuleForm::new_rule);
                                    view! {
                                        <Templates/>
                                        <RuleEditor form channels=channel_list.clone() save/>
                                    }
                                }
                            };
                            view! {
                                {(!can_act).then(|| view! { <p class="note">"Only admins change rules and channels."</p> })}
                                <RuleList rules channels=channel_list.clone() delete can_act/>
                                {can_act.then_some(editor)}
                            }
                            .into_any()
                        }
                        Err(e) => view! { <p class="error" role="alert">"Cannot load rules: " {e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let can_act = access.await.is_ok_and(|a| a.can_change());
                    match channels.await {
                        Ok(list) => view! {
                            <Channels list=list.clone() can_act create=create_channel delete=delete_channel test=test_channel/>
                            <Deliveries channels=list can_act test=test_channel/>
                        }
                        .into_any(),
                        Err(e) => view! { <p class="error" role="alert">"Cannot load channels: " {e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// Links that start the editor from a template (plain links: they work without JavaScript).
#[component]
fn Templates() -> impl IntoView {
    view! {
        <nav class="rule-templates" aria-label="Rule templates">
            "Start from a template: "
            {TEMPLATES
                .into_iter()
                .map(|(key, label)| {
                    view! { <a class="button" href=format!("/alarms/rules?template={key}#rule-editor") data-template=key>{label}</a> }
                })
                .collect_view()}
        </nav>
    }
}

#[component]
fn RuleList(
    rules: Vec<Rule>,
    channels: Vec<ChannelInfo>,
    delete: ServerAction<DeleteRule>,
    can_act: bool,
) -> impl IntoView {
    if rules.is_empty() {
        return view! { <p class="empty">"No rules yet: nothing raises alarms."</p> }.into_any();
    }
    let channel_name = move |id: &str| {
        channels.iter().find(|c| c.id == id).map_or_else(|| id.to_owned(), |c| c.name.clone())
    };
    let rows = rules
        .into_iter()
        .map(|rule| {
            let devices =
                if rule.devices.is_empty() { "every device".to_owned() } else { rule.devices.join(", ") };
            let notifies = if rule.channels.is_empty() {
                "in the app only".to_owned()
            } else {
                rule.channels.iter().map(|c| channel_name(c)).collect::<Vec<_>>().join(", ")
            };
            let edit = format!("/alarms/rules?edit={}#rule-editor", rule.id);
            let alarms = format!("/alarms?status=all&rule={}", rule.id);
            let id = rule.id.clone();
            view! {
                <tr data-rule=rule.id.clone() data-enabled=rule.enabled.to_string()>
                    <td class="rule-name">
                        <a href=alarms>{rule.name.clone()}</a>
                        {(!rule.enabled).then(|| view! { <span class="muted">" (off)"</span> })}
                    </td>
                    <td class="rule-what">{summary(&rule)}</td>
                    <td class="rule-devices">{devices}</td>
                    <td class="rule-channels">{notifies}</td>
                    {can_act.then(|| view! {
                        <td class="row-actions">
                            <a class="button" href=edit>"Edit"</a>
                            <ActionForm action=delete attr:class="inline-form delete-rule">
                                <input type="hidden" name="id" value=id/>
                                <ConfirmSubmit confirm="Yes, delete" button="Delete"/>
                            </ActionForm>
                        </td>
                    })}
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="alarm-table-wrap">
            <table class="admin-table rule-list">
                <thead>
                    <tr>
                        <th>"Rule"</th><th>"Watches"</th><th>"Devices"</th><th>"Notifies"</th>
                        {can_act.then(|| view! { <th>"Change"</th> })}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        {move || delete.value().get().and_then(Result::err).map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
    }
    .into_any()
}
