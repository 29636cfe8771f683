//! `GET /api/export.csv`: a device's readings (one metric, or all) over a time range as CSV,
//! streamed page by page from storage, so a year of readings never sits in memory; or, with a
//! fleet query `q` instead of `device`, the readings of every device it matches (a group:
//! `q=group:greenhouse`), device by device, at most [`MAX_EXPORT_DEVICES`].
//!
//! Columns: `time_utc` (RFC 3339, UTC), `time_local` (the same instant in the caller's time
//! zone `tz`, each row at that zone's offset at its time, so rows either side of a DST change
//! differ; or, for older links, at one fixed `offset` in minutes east of UTC), `device`,
//! `metric`, `value`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;
use telemetry::zone::Zone;
use telemetry::{Millis, TelemetrySource, valid_name};
use tokio::sync::mpsc;

use crate::clock::now_ms;
use crate::state::AppState;

/// Readings read per storage page.
const PAGE: usize = 5_000;

pub use telemetry::fleet::MAX_EXPORT_DEVICES;

#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    /// One device; or `q`.
    pub device: Option<String>,
    /// A fleet query: every device it matches.
    pub q: Option<String>,
    /// One metric; every metric of the device when absent.
    pub metric: Option<String>,
    /// Milliseconds since the epoch; default: 24 h before `to`.
    pub from: Option<Millis>,
    /// Default: now.
    pub to: Option<Millis>,
    /// A time zone (IANA name) for `time_local`, each row at its offset then.
    pub tz: Option<String>,
    /// Minutes east of UTC for every row's `time_local`, when there is no `tz`; default 0.
    pub offset: Option<i32>,
}

/// Whose clock `time_local` reads.
enum Local {
    Zone(Zone),
    Fixed(FixedOffset),
}

impl Local {
    /// The offset at `t`.
    fn at(&self, t: Millis) -> FixedOffset {
        match self {
            Local::Fixed(offset) => *offset,
            Local::Zone(zone) => FixedOffset::east_opt(zone.offset_secs(t))
                .unwrap_or(FixedOffset::east_opt(0).expect("0 is an offset")),
        }
    }
}

fn bad(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message.to_owned())
        .into_response()
}

/// One CSV row.
pub fn row(out: &mut String, t: Millis, zone: &FixedOffset, device: &str, metric: &str, v: f64) {
    use std::fmt::Write;
    let utc = DateTime::<Utc>::from_timestamp_millis(t).unwrap_or_default();
    let _ = writeln!(
        out,
        "{},{},{device},{metric},{v}",
        utc.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        utc.with_timezone(zone).format("%Y-%m-%dT%H:%M:%S%.3f%:z"),
    );
}

pub async fn export_csv(State(state): State<AppState>, Query(q): Query<ExportQuery>) -> Response {
    if q.device.as_deref().is_some_and(|d| valid_name(d).is_err())
        || q.metric.as_deref().is_some_and(|m| valid_name(m).is_err())
    {
        return bad("device and metric must be valid names");
    }
    let to = q.to.unwrap_or_else(now_ms);
    let from = q.from.unwrap_or(to.saturating_sub(86_400_000));
    if from > to {
        return bad("from must not be after to");
    }
    let local = match (&q.tz, q.offset) {
        (Some(name), _) => match Zone::named(name) {
            Ok(zone) => Local::Zone(zone),
            Err(e) => return bad(&e.to_string()),
        },
        (None, offset) => match FixedOffset::east_opt(offset.unwrap_or(0).clamp(-18 * 60, 18 * 60) * 60) {
            Some(offset) => Local::Fixed(offset),
            None => return bad("offset out of range"),
        },
    };
    let work = match (q.device.clone(), q.q.clone()) {
        (Some(device), None) => {
            let s = state.store.clone();
            let id = device.clone();
            match tokio::task::spawn_blocking(move || s.device(&id)).await {
                Ok(Ok(current)) => match current.value {
                    Some(d) => vec![d],
                    None => return (StatusCode::NOT_FOUND, "no such device").into_response(),
                },
                _ => return (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response(),
            }
        }
        (None, Some(text)) => match matching(&state, text).await {
            Ok(devices) => devices,
            Err(refusal) => return refusal,
        },
        _ => return bad("give a device, or a fleet query q"),
    };
    // (device, its metrics): the one asked for, or every metric it has.
    let work: Vec<(String, Vec<String>)> = work
        .into_iter()
        .map(|d| {
            let metrics = match &q.metric {
                Some(m) => vec![m.clone()],
                None => d.metrics.into_iter().map(|m| m.name).collect(),
            };
            (d.id, metrics)
        })
        .collect();
    let store: Arc<dyn TelemetrySource> = state.store.clone();

    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut chunk = String::from("time_utc,time_local,device,metric,value\n");
        for (device, metric) in work.iter().flat_map(|(d, ms)| ms.iter().map(move |m| (d, m))) {
            let mut after = None;
            loop {
                let page = match store.points(device, metric, from, to, after, PAGE) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                        return;
                    }
                };
                for (t, v) in &page {
                    row(&mut chunk, *t, &local.at(*t), device, metric, *v);
                }
                if tx.blocking_send(Ok(Bytes::from(std::mem::take(&mut chunk)))).is_err() {
                    return; // The client went away.
                }
                match page.last() {
                    Some((t, _)) if page.len() == PAGE => after = Some(*t),
                    _ => break,
                }
            }
        }
    });
    // Fused: the compression layer polls the body once more after its end, which `unfold`
    // alone answers with a panic.
    let rows = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let body = Body::from_stream(futures::StreamExt::fuse(rows));
    let name =
        format!("{}-{}.csv", q.device.as_deref().unwrap_or("fleet"), q.metric.as_deref().unwrap_or("all"));
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}

/// The devices a fleet query matches now (its groups put in), or the answer refusing it: a
/// query that does not read is a 400 saying where, more than [`MAX_EXPORT_DEVICES`] a 400.
async fn matching(state: &AppState, text: String) -> Result<Vec<telemetry::DeviceSummary>, Response> {
    let store = state.store.clone();
    // None: storage failed.
    let found = tokio::task::spawn_blocking(move || {
        let query = match crate::scope::resolve(&*store, &text, false).ok()? {
            Ok(query) => query,
            Err(e) => return Some(Err(e)),
        };
        let now = now_ms();
        let all = store.devices().ok()?.value;
        Some(Ok(all.into_iter().filter(|d| query.matches(d, now)).collect::<Vec<_>>()))
    })
    .await;
    match found {
        Ok(Some(Ok(devices))) if devices.len() > MAX_EXPORT_DEVICES => Err(bad(&format!(
            "the query matches {} devices; an export holds at most {MAX_EXPORT_DEVICES}",
            devices.len()
        ))),
        Ok(Some(Ok(devices))) => Ok(devices),
        Ok(Some(Err(e))) => Err(bad(&e.to_string())),
        _ => Err((StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_give_utc_and_the_callers_local_time() {
        let mut out = String::new();
        let cet = FixedOffset::east_opt(3600).unwrap();
        row(&mut out, 1_766_146_880_250, &cet, "d1", "temperature", 21.5);
        assert_eq!(out, "2025-12-19T12:21:20.250Z,2025-12-19T13:21:20.250+01:00,d1,temperature,21.5\n");
    }

    #[test]
    fn a_zone_gives_each_row_its_own_offset() {
        let berlin = Local::Zone(Zone::named("Europe/Berlin").unwrap());
        // 2026-03-29 00:59 and 01:00 UTC: the last minute of winter time, the first of summer.
        let (before, after) = (1_774_745_940_000, 1_774_746_000_000);
        let mut out = String::new();
        for t in [before, after] {
            row(&mut out, t, &berlin.at(t), "d1", "t", 1.0);
        }
        assert_eq!(
            out,
            "2026-03-29T00:59:00.000Z,2026-03-29T01:59:00.000+01:00,d1,t,1\n\
             2026-03-29T01:00:00.000Z,2026-03-29T03:00:00.000+02:00,d1,t,1\n"
        );
    }
}
