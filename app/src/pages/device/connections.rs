//! A device's connections to the embedded broker, newest first (its latest 100): when each
//! began, how long it lasted, why it ended, from where and over which MQTT version, refused
//! sign-ins among them; and how much of the last 24 h and 7 d it was connected. The server's
//! list, then what the live feed brings. With an external broker there is no log.

use leptos::prelude::*;
use telemetry::Millis;
use telemetry::connections::{self, Connection, MAX_LOGGED, WINDOWS};
use telemetry::source::DeviceLog;

use crate::api::ApiError;
use crate::logic::format;
use crate::state::live::Live;

/// When it began: to the second over the last 20 hours, with the date before that.
fn when(t: Millis, now: Millis, local: bool) -> String {
    let shown = if now - t < 20 * 3_600_000 { format::Shown::Second } else { format::Shown::DateMinute };
    format::datetime(t, local, shown)
}

/// How long it lasted, or has lasted so far.
fn lasted(c: &Connection, now: Millis) -> String {
    if c.refused() {
        return String::new();
    }
    let took = format::uptime(c.duration(now) as f64 / 1000.0);
    if c.ended_at.is_none() { format!("{took} so far") } else { took }
}

/// The availability figures: each window's share, and how much of it the log covers when
/// that is less than the window (the log keeps 100 connections).
fn availability(log: &[Connection], now: Millis) -> impl IntoView + use<> {
    let oldest = log.iter().map(|c| c.connected_at).min();
    WINDOWS
        .into_iter()
        .map(|(name, span)| {
            let from = now.saturating_sub(span);
            let share = connections::availability(log, from, now);
            let figure = share.map(format::percent).unwrap_or_else(|| "not logged".to_owned());
            let covered = oldest
                .filter(|o| *o > from && *o < now)
                .map(|o| format!(" (over the {} logged)", format::uptime((now - o) as f64 / 1000.0)));
            view! {
                <div data-window=name>
                    <dt>{format!("Connected, last {name}")}</dt>
                    <dd>
                        <span class="figure">{figure}</span>
                        <span class="muted">{covered}</span>
                    </dd>
                </div>
            }
        })
        .collect_view()
}

fn table(log: Vec<Connection>, now: Millis, local: bool) -> AnyView {
    if log.is_empty() {
        return view! {
            <p class="muted">"None logged yet: each connection to the built-in broker shows here once the device has sent something."</p>
        }
        .into_any();
    }
    view! {
        <dl class="availability">{availability(&log, now)}</dl>
        <div class="connection-scroll">
            <table class="connection-list">
                <thead>
                    <tr>
                        <th scope="col">"When"</th>
                        <th scope="col">"Lasted"</th>
                        <th scope="col">"Ended"</th>
                        <th scope="col">"Address"</th>
                        <th scope="col">"MQTT"</th>
                    </tr>
                </thead>
                <tbody>
                    {log
                        .into_iter()
                        .map(|c| {
                            let reason = match c.reason {
                                Some(r) => r.text(),
                                None => "connected now",
                            };
                            let kind = c.reason.map_or("open", |r| r.label());
                            view! {
                                <tr data-reason=kind class:refused=c.refused()>
                                    <td>
                                        <time datetime=format::iso(c.connected_at)>{when(c.connected_at, now, local)}</time>
                                    </td>
                                    <td>{lasted(&c, now)}</td>
                                    <td class="reason">{reason}</td>
                                    <td class="address">{c.address.clone().unwrap_or_default()}</td>
                                    <td>{c.protocol_name()}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
pub fn DeviceConnections(
    id: String,
    log: Resource<Result<DeviceLog, ApiError>>,
    now: Signal<Millis>,
    local: Signal<bool>,
) -> impl IntoView {
    let live = expect_context::<Live>();
    // Live news of this device's connections only, while the section is shown.
    live.watch_connections(Some(id.clone()));
    // Only a browser leaves a page (see pages/dashboard.rs: a server render's `Live` may be
    // gone first).
    #[cfg(feature = "hydrate")]
    on_cleanup(move || live.watch_connections(None));
    let device = StoredValue::new(id);
    view! {
        <section class="device-connections" aria-labelledby="device-connections-title">
            <h2 id="device-connections-title">"Connections"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading connections…"</p> }>
                {move || Suspend::new(async move {
                    match log.await {
                        Ok(log) if !log.connections_logged => view! {
                            <p class="muted">
                                "Not logged: devices connect to an external MQTT broker, which does not tell this server when they connect or why they leave."
                            </p>
                        }
                            .into_any(),
                        Ok(log) => {
                            let listed = StoredValue::new(log.connections);
                            // What the feed brought since the list was read replaces the
                            // same connection in it.
                            let shown = move || {
                                let mut all: Vec<Connection> = live.devices.with(|d| {
                                    d.get(&device.get_value()).map(|d| d.connections.clone()).unwrap_or_default()
                                });
                                listed.with_value(|l| {
                                    all.extend(l.iter().filter(|c| all.iter().all(|f| f.connected_at != c.connected_at)).cloned().collect::<Vec<_>>())
                                });
                                all.sort_by_key(|c| std::cmp::Reverse(c.connected_at));
                                all.truncate(MAX_LOGGED);
                                table(all, now.get(), local.get())
                            };
                            shown.into_any()
                        }
                        Err(e) => view! { <p class="error" role="alert">"Cannot load connections: " {e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_connection_lasts_so_far_and_a_refusal_not_at_all() {
        let open = Connection { connected_at: 0, ended_at: None, reason: None, address: None, protocol: 4 };
        assert_eq!(lasted(&open, 90_000), "1 min so far");
        let refused = Connection {
            ended_at: Some(0),
            reason: Some(telemetry::connections::Ended::AuthFailure),
            ..open.clone()
        };
        assert_eq!(lasted(&refused, 90_000), "");
        let ended =
            Connection { ended_at: Some(5_000), reason: Some(telemetry::connections::Ended::Clean), ..open };
        assert_eq!(lasted(&ended, 90_000), "5 s");
    }
}
