//! Server functions answer every error with HTTP 500 and the error as JSON; this layer gives
//! each the status it means ([`app::api::ApiError::status`]): 400 for bad arguments (also
//! ones that do not parse), 403, 404, 409, and 503 when storage is unavailable. Only error
//! answers are read, and only up to [`MAX_ERROR_BODY`].

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

/// Longest server function error read to find its status.
const MAX_ERROR_BODY: usize = 64 * 1024;

pub async fn server_fn_status(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let res = next.run(req).await;
    if !api || res.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::from("server error"));
    };
    if let Ok(error) = serde_json::from_slice::<app::api::ApiError>(&bytes)
        && let Ok(status) = StatusCode::from_u16(error.status())
    {
        parts.status = status;
    }
    Response::from_parts(parts, Body::from(bytes))
}
