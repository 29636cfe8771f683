//! The error every server function answers with, typed across the wire.

use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// Errors a page can show. Each answers with its own HTTP status ([`ApiError::status`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    /// 503: try again.
    #[error("storage is unavailable; try again shortly")]
    Storage,
    /// 400: the arguments are wrong.
    #[error("{0}")]
    BadRequest(String),
    /// 404: what the arguments name does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 409: it conflicts with what is stored (an id taken, a limit reached).
    #[error("{0}")]
    Conflict(String),
    /// 403: signed in, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 413: what was sent is too large.
    #[error("{0}")]
    TooLarge(String),
    /// 422: what was sent is understood but not valid.
    #[error("{0}")]
    Unprocessable(String),
    /// 412: changed meanwhile by someone else (the version sent is no longer current).
    #[error("{0}")]
    Stale(String),
    /// 429: a limit on unfinished work is reached.
    #[error("{0}")]
    TooMany(String),
    /// The request never got an answer (in the browser); on the server, arguments that could
    /// not be read (400).
    #[error("server unreachable: {0}")]
    Transport(String),
}

impl ApiError {
    /// The HTTP status the server answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Storage => 503,
            ApiError::BadRequest(_) | ApiError::Transport(_) => 400,
            ApiError::NotFound(_) => 404,
            ApiError::Conflict(_) => 409,
            ApiError::Forbidden(_) => 403,
            ApiError::TooLarge(_) => 413,
            ApiError::Unprocessable(_) => 422,
            ApiError::TooMany(_) => 429,
            ApiError::Stale(_) => 412,
        }
    }
}

/// An alarm desk's refusal: what was sent is wrong (400), names nothing (404), conflicts with
/// what is stored (409), or storage is unavailable (503). Every message is safe to show.
impl From<telemetry::alarm::AlarmError> for ApiError {
    fn from(e: telemetry::alarm::AlarmError) -> ApiError {
        use telemetry::alarm::AlarmError;
        match e {
            AlarmError::NotFound => ApiError::NotFound(e.to_string()),
            AlarmError::Invalid(why) => ApiError::BadRequest(why),
            AlarmError::Conflict(why) => ApiError::Conflict(why),
            AlarmError::Storage => ApiError::Storage,
        }
    }
}

/// A command refusal keeps its status: 404, 409, 413, 422, 429 or 503.
impl From<telemetry::command_desk::CommandDeskError> for ApiError {
    fn from(e: telemetry::command_desk::CommandDeskError) -> ApiError {
        use telemetry::command_desk::CommandDeskError;
        match e {
            CommandDeskError::NotFound(why) => ApiError::NotFound(why),
            CommandDeskError::Invalid(why) => ApiError::Unprocessable(why),
            CommandDeskError::TooLarge(why) => ApiError::TooLarge(why),
            CommandDeskError::TooMany(why) => ApiError::TooMany(why),
            CommandDeskError::Conflict(why) => ApiError::Conflict(why),
            CommandDeskError::Stale(why) => ApiError::Stale(why),
            CommandDeskError::Storage => ApiError::Storage,
        }
    }
}

impl FromServerFnError for ApiError {
    type Encoder = super::codec::JsonTextEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        ApiError::Transport(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use leptos::server_fn::{Decodes, Encodes};

    use super::*;
    use crate::api::codec::JsonTextEncoding;

    #[test]
    fn errors_cross_the_wire_as_they_were() {
        let error = ApiError::BadRequest("no".into());
        let bytes = <JsonTextEncoding as Encodes<_>>::encode(&error).unwrap();
        let back: ApiError = JsonTextEncoding::decode(bytes).unwrap();
        assert_eq!((back.status(), back), (400, error));
    }

    #[test]
    fn command_refusals_keep_their_status() {
        use telemetry::command_desk::CommandDeskError as E;
        let status = |e: E| ApiError::from(e).status();
        assert_eq!(status(E::NotFound("no such command".into())), 404);
        assert_eq!(status(E::Conflict("already finished".into())), 409);
        assert_eq!(status(E::TooLarge("params are 2000 bytes".into())), 413);
        assert_eq!(status(E::Invalid("bad method".into())), 422);
        assert_eq!(status(E::TooMany("100 unfinished".into())), 429);
        assert_eq!(status(E::Stale("at version 5 now".into())), 412);
        assert_eq!(status(E::Storage), 503);
        assert_eq!(ApiError::from(E::Invalid("bad method".into())).to_string(), "bad method");
    }

    #[test]
    fn alarm_refusals_keep_their_meaning() {
        use telemetry::alarm::AlarmError;
        let status = |e: AlarmError| ApiError::from(e).status();
        assert_eq!(status(AlarmError::NotFound), 404);
        assert_eq!(status(AlarmError::Invalid("backtests are not available yet".into())), 400);
        assert_eq!(status(AlarmError::Conflict("already acknowledged".into())), 409);
        assert_eq!(status(AlarmError::Storage), 503);
        assert_eq!(
            ApiError::from(AlarmError::Invalid("levels: 1 to 4".into())).to_string(),
            "levels: 1 to 4"
        );
    }
}
