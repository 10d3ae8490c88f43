//! tonic answers a request message it cannot decode (invalid UTF-8 in a string, nesting
//! past prost's recursion limit) with INTERNAL, and one over the decoding limit with
//! OUT_OF_RANGE. Both are the client's doing: the first is INVALID_ARGUMENT, and the gRPC
//! spec (and grpc-go, grpc-java) says RESOURCE_EXHAUSTED for the second, which is also what
//! our own size check answers. An error-rate alert on INTERNAL must not fire because a
//! client sent garbage.
//!
//! [`as_client_errors`] rewrites a unary call's trailers-only answer; the gateway maps the
//! same errors when they surface from a request stream (`gateway::error::request_error`).

use http::{HeaderValue, Response};

/// tonic's codes for the two cases, and the codes the client should see.
const INTERNAL: &str = "13";
const OUT_OF_RANGE: &str = "11";
const INVALID_ARGUMENT: HeaderValue = HeaderValue::from_static("3");
const RESOURCE_EXHAUSTED: HeaderValue = HeaderValue::from_static("8");

/// The start of prost's decode error message.
pub const DECODE_ERROR: &str = "failed to decode Protobuf message";
/// Part of tonic's over-long message error.
pub const LENGTH_ERROR: &str = "message length too large";

/// Rewrites a trailers-only INTERNAL decode error or OUT_OF_RANGE length error.
pub fn as_client_errors<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        // tonic percent-encodes the message (spaces become %20).
        .map(|m| m.replace("%20", " "))
        .unwrap_or_default();
    let code = headers.get("grpc-status").and_then(|s| s.to_str().ok());
    let rewritten = match code {
        Some(INTERNAL) if message.starts_with(DECODE_ERROR) => Some(INVALID_ARGUMENT),
        Some(OUT_OF_RANGE) if message.contains(LENGTH_ERROR) => Some(RESOURCE_EXHAUSTED),
        _ => None,
    };
    if let Some(code) = rewritten {
        headers.insert("grpc-status", code);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: &'static str, message: &'static str) -> Response<()> {
        let mut response = Response::new(());
        response
            .headers_mut()
            .insert("grpc-status", HeaderValue::from_static(status));
        response
            .headers_mut()
            .insert("grpc-message", HeaderValue::from_static(message));
        response
    }

    #[test]
    fn rewrites_only_the_length_and_decode_errors() {
        let fixed = as_client_errors(response(
            "11",
            "Error, decoded message length too large: found 9 bytes",
        ));
        assert_eq!(fixed.headers()["grpc-status"], "8");
        let other = as_client_errors(response("11", "offset out of range"));
        assert_eq!(other.headers()["grpc-status"], "11");
        let encoded = as_client_errors(response(
            "11",
            "Error,%20decoded%20message%20length%20too%20large",
        ));
        assert_eq!(encoded.headers()["grpc-status"], "8");
        let garbage = as_client_errors(response(
            "13",
            "failed%20to%20decode%20Protobuf%20message:%20invalid%20string%20value",
        ));
        assert_eq!(garbage.headers()["grpc-status"], "3");
        let ours = as_client_errors(response("13", "the analytics worker crashed"));
        assert_eq!(ours.headers()["grpc-status"], "13");
        let ok = as_client_errors(response("0", ""));
        assert_eq!(ok.headers()["grpc-status"], "0");
    }
}
