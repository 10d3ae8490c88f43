//! Connect's errors as the gRPC statuses they stand for, so that a failed Connect call is
//! counted, or stops the run, exactly as the same failure over gRPC would
//! ([`failed`](crate::gateway::failed)).

use http::StatusCode;
use serde_json::Value;
use tonic::{Code, Status};

/// The status of a unary call's non-200 answer: its body's Connect error
/// (`{"code":"unavailable","message":…}`), else, for a body that is not Connect's (a proxy's
/// error page), the code the specification gives the HTTP status.
pub fn status(http: StatusCode, body: &[u8]) -> Status {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|error| from_json(&error))
        .unwrap_or_else(|| {
            Status::new(
                code_of_http(http),
                format!("HTTP {http} without a Connect error in its body"),
            )
        })
}

/// The status of a Connect error object, `{"code":…,"message":…}`; `None` when it is not
/// one.
pub fn from_json(error: &Value) -> Option<Status> {
    let code = code_named(error.get("code")?.as_str()?)?;
    let message = error.get("message").and_then(Value::as_str);
    Some(Status::new(code, message.unwrap_or_default()))
}

/// The gRPC code of a Connect code name (the same codes, in snake case; `canceled` with
/// one l).
fn code_named(name: &str) -> Option<Code> {
    Some(match name {
        "canceled" => Code::Cancelled,
        "unknown" => Code::Unknown,
        "invalid_argument" => Code::InvalidArgument,
        "deadline_exceeded" => Code::DeadlineExceeded,
        "not_found" => Code::NotFound,
        "already_exists" => Code::AlreadyExists,
        "permission_denied" => Code::PermissionDenied,
        "resource_exhausted" => Code::ResourceExhausted,
        "failed_precondition" => Code::FailedPrecondition,
        "aborted" => Code::Aborted,
        "out_of_range" => Code::OutOfRange,
        "unimplemented" => Code::Unimplemented,
        "internal" => Code::Internal,
        "unavailable" => Code::Unavailable,
        "data_loss" => Code::DataLoss,
        "unauthenticated" => Code::Unauthenticated,
        _ => return None,
    })
}

/// The Connect specification's code for an HTTP status that came without a Connect error.
fn code_of_http(status: StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_error_body_is_its_code_and_message() {
        let body = br#"{"code":"permission_denied","message":"no publish:bench","details":[]}"#;
        let status = status(StatusCode::FORBIDDEN, body);
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(status.message(), "no publish:bench");
        // The body's code wins over the HTTP status's (409 is also already_exists).
        let aborted = super::status(StatusCode::CONFLICT, br#"{"code":"aborted"}"#);
        assert_eq!((aborted.code(), aborted.message()), (Code::Aborted, ""));
        let canceled = super::status(StatusCode::REQUEST_TIMEOUT, br#"{"code":"canceled"}"#);
        assert_eq!(canceled.code(), Code::Cancelled);
    }

    #[test]
    fn a_body_that_is_not_connect_s_falls_back_on_the_http_status() {
        let cases = [
            (StatusCode::BAD_GATEWAY, Code::Unavailable),
            (StatusCode::TOO_MANY_REQUESTS, Code::Unavailable),
            (StatusCode::NOT_FOUND, Code::Unimplemented),
            (StatusCode::UNAUTHORIZED, Code::Unauthenticated),
            (StatusCode::IM_A_TEAPOT, Code::Unknown),
        ];
        for (http, code) in cases {
            assert_eq!(status(http, b"<html>proxy</html>").code(), code, "{http}");
        }
        let unknown_code = status(StatusCode::SERVICE_UNAVAILABLE, br#"{"code":"teapot"}"#);
        assert_eq!(unknown_code.code(), Code::Unavailable);
    }
}
