//! The alarm API, JSON in and out, for scripts and outside tools (the dashboard's pages use
//! server functions over the same [`AlarmDesk`]). Reading needs a session (or Basic
//! credentials) once sign-in is required; changing needs an admin — the sign-in guard sees to
//! both. Refusals answer 400/404/409/422 with `{"error": …}`, storage trouble 503.
//!
//! - `GET /api/alarms?status=&severity=&device=&rule=&limit=`; `GET /api/alarms/{id}` (with its
//!   log); `POST /api/alarms/{id}/{ack|clear|unshelve}`, `…/shelve {"hours": 1|8|24}`,
//!   `…/comment {"text": …}`; `POST /api/alarms/actions {"ids": [...], "action": "ack"}`.
//! - `GET|POST /api/alarm_rules`, `GET|PUT|DELETE /api/alarm_rules/{id}`.
//! - `POST /api/alarm_rules/backtest?window_secs=` with a rule (saved or not) → what it would
//!   have done over the last `window_secs` (default a day, at most a week) of stored readings:
//!   `{"from", "to", "devices", "readings", "opened", "notifications", "episodes": [{"device",
//!   "severity", "fired_at", "cleared_at", "value"}], "limited"}`, the newest 200 episodes
//!   listed; `limited` says what was left out when the work was bounded (1,000 devices, 5
//!   million readings). Two run at once; a third is refused with 409.
//! - `GET|POST /api/notification_channels`, `DELETE /api/notification_channels/{id}`,
//!   `POST /api/notification_channels/{id}/test`.
//! - `GET /api/notifications/deliveries?limit=`, `POST …/deliveries/{id}/resend`.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use telemetry::Access;
use telemetry::alarm::{AlarmAction, AlarmDesk, AlarmError, AlarmQuery, Rule};
use telemetry::notify::NewChannel;

use super::refusal::Refusal;
use crate::state::AppState;

/// The routes, to merge into the application.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/alarms", get(list))
        .route("/api/alarms/actions", post(bulk))
        .route("/api/alarms/{id}", get(one))
        .route("/api/alarms/{id}/{action}", post(act))
        .route("/api/alarm_rules", get(rules).post(create_rule))
        .route("/api/alarm_rules/backtest", post(backtest))
        .route("/api/alarm_rules/{id}", get(rule).put(update_rule).delete(delete_rule))
        .route("/api/notification_channels", get(channels).post(create_channel))
        .route("/api/notification_channels/{id}", axum::routing::delete(delete_channel))
        .route("/api/notification_channels/{id}/test", post(test_channel))
        .route("/api/notifications/deliveries", get(deliveries))
        .route("/api/notifications/deliveries/{id}/resend", post(resend))
}

impl From<AlarmError> for Refusal {
    fn from(e: AlarmError) -> Refusal {
        let status = match &e {
            AlarmError::NotFound => StatusCode::NOT_FOUND,
            AlarmError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AlarmError::Conflict(_) => StatusCode::CONFLICT,
            AlarmError::Storage => StatusCode::SERVICE_UNAVAILABLE,
        };
        Refusal(status, e.to_string())
    }
}

fn bad_request(why: impl Into<String>) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, why.into())
}

type Answer = Result<Response, Refusal>;

/// Runs a desk call off the async runtime (it may wait for the writer).
async fn desk<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(Arc<dyn AlarmDesk>) -> Result<T, AlarmError> + Send + 'static,
) -> Result<T, Refusal> {
    let desk = state.desk.clone();
    tokio::task::spawn_blocking(move || f(desk))
        .await
        .map_err(|_| Refusal(StatusCode::SERVICE_UNAVAILABLE, "alarm request failed".into()))?
        .map_err(Refusal::from)
}

fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, Refusal> {
    json.map(|Json(v)| v).map_err(|e| bad_request(e.body_text()))
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Refusal> {
    query.map(|Query(v)| v).map_err(|e| bad_request(e.body_text()))
}

/// Who acts: the signed-in user, or "open" while the dashboard is open.
fn who(access: Option<Extension<Access>>) -> String {
    access.and_then(|Extension(a)| a.user).map_or_else(|| "open".to_owned(), |u| u.name)
}

fn ok<T: serde::Serialize>(status: StatusCode, value: T) -> Answer {
    Ok((status, Json(value)).into_response())
}

async fn list(State(state): State<AppState>, q: Result<Query<AlarmQuery>, QueryRejection>) -> Answer {
    let q = query(q)?;
    ok(StatusCode::OK, desk(&state, move |d| d.alarms(&q)).await?)
}

async fn one(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    ok(StatusCode::OK, desk(&state, move |d| d.alarm(&id)).await?)
}

#[derive(Deserialize)]
struct Hours {
    hours: u32,
}

#[derive(Deserialize)]
struct Text {
    text: String,
}

async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    access: Option<Extension<Access>>,
    payload: axum::body::Bytes,
) -> Answer {
    // ack, clear and unshelve take no body; shelve and comment a JSON object.
    let payload: serde_json::Value = match payload.as_ref() {
        b"" => serde_json::Value::Null,
        bytes => serde_json::from_slice(bytes).map_err(|e| bad_request(format!("not JSON: {e}")))?,
    };
    let action = match action.as_str() {
        "ack" => AlarmAction::Ack,
        "clear" => AlarmAction::Clear,
        "unshelve" => AlarmAction::Unshelve,
        "shelve" => serde_json::from_value::<Hours>(payload)
            .map(|h| AlarmAction::Shelve { hours: h.hours })
            .map_err(|_| bad_request("shelve takes {\"hours\": 1, 8 or 24}"))?,
        "comment" => serde_json::from_value::<Text>(payload)
            .map(|t| AlarmAction::Comment { text: t.text })
            .map_err(|_| bad_request("comment takes {\"text\": …}"))?,
        _ => {
            return Err(Refusal(
                StatusCode::NOT_FOUND,
                "actions: ack, clear, shelve, unshelve, comment".into(),
            ));
        }
    };
    let by = who(access);
    ok(StatusCode::OK, desk(&state, move |d| d.act(&id, action, &by)).await?)
}

/// Most alarms one bulk action takes.
const MAX_BULK: usize = 500;

#[derive(Deserialize)]
struct Bulk {
    ids: Vec<String>,
    #[serde(flatten)]
    action: AlarmAction,
}

/// One action on many alarms: each is done or refused on its own (a mixed selection works).
async fn bulk(
    State(state): State<AppState>,
    access: Option<Extension<Access>>,
    json: Result<Json<Bulk>, JsonRejection>,
) -> Answer {
    let bulk = body(json)?;
    if bulk.ids.len() > MAX_BULK {
        return Err(Refusal(StatusCode::PAYLOAD_TOO_LARGE, format!("at most {MAX_BULK} alarms at once")));
    }
    let by = who(access);
    let outcome = desk(&state, move |d| {
        let mut done = Vec::new();
        let mut refused = Vec::new();
        for id in bulk.ids {
            match d.act(&id, bulk.action.clone(), &by) {
                Ok(_) => done.push(id),
                Err(AlarmError::Storage) => return Err(AlarmError::Storage),
                Err(e) => refused.push(json!({"id": id, "error": e.to_string()})),
            }
        }
        Ok(json!({ "done": done, "refused": refused }))
    })
    .await?;
    ok(StatusCode::OK, outcome)
}

async fn rules(State(state): State<AppState>) -> Answer {
    ok(StatusCode::OK, desk(&state, |d| d.rules()).await?)
}

async fn rule(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    let rules = desk(&state, move |d| d.rules()).await?;
    let rule = rules.into_iter().find(|r| r.id == id).ok_or(Refusal::from(AlarmError::NotFound))?;
    ok(StatusCode::OK, rule)
}

async fn create_rule(State(state): State<AppState>, json: Result<Json<Rule>, JsonRejection>) -> Answer {
    let mut rule = body(json)?;
    rule.id = String::new();
    ok(StatusCode::CREATED, desk(&state, move |d| d.save_rule(rule)).await?)
}

async fn update_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
    json: Result<Json<Rule>, JsonRejection>,
) -> Answer {
    let mut rule = body(json)?;
    rule.id = id;
    ok(StatusCode::OK, desk(&state, move |d| d.save_rule(rule)).await?)
}

async fn delete_rule(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    desk(&state, move |d| d.delete_rule(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct Window {
    window_secs: Option<u64>,
}

async fn backtest(
    State(state): State<AppState>,
    q: Result<Query<Window>, QueryRejection>,
    json: Result<Json<Rule>, JsonRejection>,
) -> Answer {
    let window = query(q)?.window_secs.unwrap_or(86_400);
    let rule = body(json)?;
    ok(StatusCode::OK, desk(&state, move |d| d.backtest(&rule, window)).await?)
}

async fn channels(State(state): State<AppState>) -> Answer {
    ok(StatusCode::OK, desk(&state, |d| d.channels()).await?)
}

async fn create_channel(
    State(state): State<AppState>,
    json: Result<Json<NewChannel>, JsonRejection>,
) -> Answer {
    let channel = body(json)?;
    let (info, secret) = desk(&state, move |d| d.create_channel(channel)).await?;
    let mut answer = serde_json::to_value(info).expect("channels serialise");
    if let (Some(secret), Some(object)) = (secret, answer.as_object_mut()) {
        object.insert("secret".into(), secret.into());
    }
    ok(StatusCode::CREATED, answer)
}

async fn delete_channel(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    desk(&state, move |d| d.delete_channel(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn test_channel(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    desk(&state, move |d| d.test_channel(&id)).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn deliveries(State(state): State<AppState>, q: Result<Query<Limit>, QueryRejection>) -> Answer {
    let limit = query(q)?.limit.unwrap_or(100);
    ok(StatusCode::OK, desk(&state, move |d| d.deliveries(limit)).await?)
}

async fn resend(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    desk(&state, move |d| d.resend(&id)).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
