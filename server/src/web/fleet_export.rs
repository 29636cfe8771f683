//! `GET /api/fleet.csv?q=&sort=`: the fleet view's list as CSV: every device the query matches
//! (not only a page), in the view's order, one row each: `id`, `name`, `status`,
//! `last_seen_utc`, `firmware`, `rssi`, `battery`, `uptime_s`, `up_24h` (the share of the last
//! 24 hours connected, in percent to a tenth, rounded down; empty without a connection log),
//! `tags`, `open_alarms`. A query's
//! mistake is a 400 saying where. Text from outside (names, firmware) is quoted, and a cell
//! that a spreadsheet would run as a formula is prefixed with `'`.

use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use telemetry::fleet::{self, BatteryLevel, Sort, sort_devices_by};
use telemetry::tags::tags_text;
use telemetry::{DeviceSummary, Millis};

use crate::clock::now_ms;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct FleetCsvQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub sort: String,
}

/// One cell: quoted when it holds a comma, a quote or a line break; a leading `=`, `+`, `-`
/// or `@` (a formula to a spreadsheet) is prefixed with `'`.
fn cell(out: &mut String, text: &str) {
    let formula = text.starts_with(['=', '+', '-', '@']) && text.parse::<f64>().is_err();
    let text = if formula { format!("'{text}") } else { text.to_owned() };
    if text.contains([',', '"', '\n', '\r']) {
        let _ = write!(out, "\"{}\"", text.replace('"', "\"\""));
    } else {
        out.push_str(&text);
    }
}

/// The rows, header first; `up` answers a device's share of the last 24 hours connected.
pub fn csv(
    devices: &[DeviceSummary],
    now: Millis,
    alarms: impl Fn(&str) -> u32,
    up: impl Fn(&str) -> Option<f64>,
) -> String {
    let mut out =
        String::from("id,name,status,last_seen_utc,firmware,rssi,battery,uptime_s,up_24h,tags,open_alarms\n");
    for d in devices {
        let battery = fleet::battery_level(d).map(|b| match b {
            BatteryLevel::Percent(p) => format!("{p}%"),
            BatteryLevel::Volts(v) => format!("{v}V"),
        });
        let cells = [
            d.id.clone(),
            d.name.clone().unwrap_or_default(),
            d.health(now).label().to_owned(),
            telemetry::timestamp::format_utc(d.last_seen),
            fleet::firmware(d).map(|f| f.into_owned()).unwrap_or_default(),
            d.metric("rssi").map(|m| m.value.to_string()).unwrap_or_default(),
            battery.unwrap_or_default(),
            fleet::uptime_s(d).map(|u| u.to_string()).unwrap_or_default(),
            up(&d.id).map(|share| format!("{}%", (share * 1000.0).floor() / 10.0)).unwrap_or_default(),
            tags_text(&d.tags),
            alarms(&d.id).to_string(),
        ];
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            cell(&mut out, c);
        }
        out.push('\n');
    }
    out
}

pub async fn fleet_csv(State(state): State<AppState>, Query(p): Query<FleetCsvQuery>) -> Response {
    let store = state.store.clone();
    let refusals = state.ingest.refusals().clone();
    let text = p.q.clone();
    let found = tokio::task::spawn_blocking(move || {
        let query = match crate::scope::resolve(&*store, &text, false).ok()? {
            Ok(query) => query,
            Err(e) => return Some(Err(e)),
        };
        let mut all = store.devices().ok()?.value;
        if refusals.watching() {
            all.iter_mut().for_each(|d| d.refused = refusals.of(&d.id));
        }
        let now = now_ms();
        Some(Ok(all.into_iter().filter(|d| query.matches(d, now)).collect::<Vec<_>>()))
    })
    .await;
    let mut devices = match found {
        Ok(Some(Ok(devices))) => devices,
        Ok(Some(Err(e))) => {
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                e.to_string(),
            )
                .into_response();
        }
        _ => return (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response(),
    };
    let desk = state.desk.clone();
    let Ok(Ok(counts)) = tokio::task::spawn_blocking(move || desk.open_counts()).await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response();
    };
    let now = now_ms();
    // Every exported device's share of the last 24 hours connected: one read of their logs.
    let store = state.store.clone();
    let ids: Vec<String> = devices.iter().map(|d| d.id.clone()).collect();
    let day = telemetry::connections::WINDOWS[0].1;
    let read = tokio::task::spawn_blocking(move || {
        let shares = store.availability(&ids, now.saturating_sub(day), now)?;
        Ok::<_, telemetry::SourceError>(
            ids.into_iter().zip(shares).collect::<std::collections::HashMap<_, _>>(),
        )
    });
    let Ok(Ok(shares)) = read.await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response();
    };
    let of = |id: &str| counts.get(id).copied().unwrap_or(0);
    let up = |id: &str| shares.get(id).copied().flatten();
    sort_devices_by(&mut devices, Sort::parse(&p.sort), now, of, up);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"fleet.csv\""),
        ],
        csv(&devices, now, of, up),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_from_outside_are_quoted_and_never_formulas() {
        let mut d =
            DeviceSummary { id: "d1".into(), last_seen: 0, message_count: 1, ..DeviceSummary::default() };
        d.name = Some("=HYPERLINK(\"x\"), \"kitchen\"\nnext".into());
        d.tags = telemetry::tags::parse_tags("site=greenhouse floor=2").unwrap();
        let text = csv(std::slice::from_ref(&d), 0, |_| 2, |_| None);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("id,name,status,last_seen_utc,firmware,rssi,battery,uptime_s,up_24h,tags,open_alarms")
        );
        assert!(text.contains("d1,\"'=HYPERLINK(\"\"x\"\"), \"\"kitchen\"\"\nnext\",online,"), "{text}");
        assert!(text.ends_with(",,,,,floor=2 site=greenhouse,2\n"), "no log: an empty up_24h; {text}");
        let up = csv(&[d], 0, |_| 2, |_| Some(0.97777));
        assert!(up.ends_with(",,,,97.7%,floor=2 site=greenhouse,2\n"), "rounded down to a tenth: {up}");
        let mut out = String::new();
        cell(&mut out, "-80");
        assert_eq!(out, "-80", "a negative number is a number");
    }
}
