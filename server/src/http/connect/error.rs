//! Connect's errors: the status the gRPC side ended with, written as the Connect
//! specification's JSON (`{"code":"invalid_argument","message":…,"details":[…]}`), with its
//! HTTP status for unary calls and inside the end-of-stream message for streams.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use prost::Message as _;
use serde_json::{Value, json};
use tonic::Code;

/// A Connect error: a code, a message, the status's details, and trailers to send along.
/// Boxed: it is the error of every step of a call, and most steps succeed.
#[derive(Debug, Clone)]
pub struct ConnectError(Box<Inner>);

#[derive(Debug, Clone)]
struct Inner {
    code: Code,
    message: String,
    details: Vec<prost_types::Any>,
    metadata: HeaderMap,
    /// An HTTP status other than the code's own, where the specification asks for one
    /// (415 for a content type a method does not take, 404 for no such method).
    http: Option<StatusCode>,
}

/// `google.rpc.Status`, as gRPC carries it in `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

impl ConnectError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            code,
            message: message.into(),
            details: Vec::new(),
            metadata: HeaderMap::new(),
            http: None,
        }))
    }

    /// The same error answered with `status` instead of the code's own.
    pub fn with_http_status(mut self, status: StatusCode) -> Self {
        self.0.http = Some(status);
        self
    }

    /// The error of a gRPC `status`, its details and metadata kept.
    pub fn from_status(status: &tonic::Status) -> Self {
        let details = RpcStatus::decode(status.details())
            .map(|s| s.details)
            .unwrap_or_default();
        Self(Box::new(Inner {
            code: status.code(),
            message: status.message().to_owned(),
            details,
            metadata: metadata(status.metadata().as_ref()),
            http: None,
        }))
    }

    pub fn code(&self) -> Code {
        self.0.code
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The specification's JSON for the error.
    pub fn to_json(&self) -> Value {
        let Inner {
            code,
            message,
            details,
            ..
        } = &*self.0;
        let mut error = json!({ "code": code_name(*code) });
        if !message.is_empty() {
            error["message"] = Value::from(message.as_str());
        }
        if !details.is_empty() {
            let details: Vec<Value> = details
                .iter()
                .map(|any| {
                    let kind = any.type_url.rsplit('/').next().unwrap_or(&any.type_url);
                    json!({ "type": kind, "value": STANDARD_NO_PAD.encode(&any.value) })
                })
                .collect();
            error["details"] = Value::from(details);
        }
        error
    }

    /// A unary call's answer: the HTTP status of the code, the JSON body, the metadata as
    /// headers.
    pub fn into_response(self) -> Response<tonic::body::Body> {
        let status = self.0.http.unwrap_or_else(|| http_status(self.0.code));
        let body = Bytes::from(self.to_json().to_string());
        let mut response = Response::new(tonic::body::Body::new(Full::new(body)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.extend(self.0.metadata);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// The status a gRPC response ended with, from its trailers; a response that ended without
/// one is an internal error (the server's, not the caller's).
pub fn final_status(trailers: &HeaderMap) -> tonic::Status {
    tonic::Status::from_header_map(trailers)
        .unwrap_or_else(|| tonic::Status::internal("the call ended without a status"))
}

/// The headers of `map` that are the call's own metadata, not gRPC's or HTTP's framing.
pub fn metadata(map: &HeaderMap) -> HeaderMap {
    map.iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            !name.starts_with("grpc-") && !matches!(name, "content-type" | "content-length" | "te")
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// The specification's name of `code`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The HTTP status the specification gives `code` for a unary call.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grpc_status_becomes_the_specification_s_json_and_http_status() {
        let mut status = tonic::Status::with_details(
            Code::ResourceExhausted,
            "over its quota: retry in 20ms",
            RpcStatus {
                code: Code::ResourceExhausted as i32,
                message: String::new(),
                details: vec![prost_types::Any {
                    type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                    value: vec![0xfb],
                }],
            }
            .encode_to_vec()
            .into(),
        );
        status
            .metadata_mut()
            .insert("retry-after-ms", "20".parse().expect("ascii"));
        let error = ConnectError::from_status(&status);
        assert_eq!(
            error.to_json(),
            json!({
                "code": "resource_exhausted",
                "message": "over its quota: retry in 20ms",
                "details": [{"type": "google.rpc.RetryInfo", "value": "+w"}]
            })
        );
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after-ms"], "20");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert!(!response.headers().contains_key("grpc-status-details-bin"));
    }

    #[test]
    fn every_code_has_a_name_and_a_client_or_server_status() {
        for n in 1..=16 {
            let code = Code::from_i32(n);
            assert!(
                code_name(code)
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
            );
            let status = http_status(code);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code:?}"
            );
        }
    }
}
