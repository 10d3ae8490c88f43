//! tonic refuses a request larger than the decoding limit with OUT_OF_RANGE; the gRPC spec
//! and the other implementations (grpc-go, grpc-java) say RESOURCE_EXHAUSTED, which is also
//! what our own size check answers. This layer rewrites that one status so clients see one
//! code for "too large", whichever check caught it.

use http::{HeaderValue, Response};

/// The status tonic uses for an over-long message, and the one the spec wants.
const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: HeaderValue = HeaderValue::from_static("8");

/// Rewrites a trailers-only OUT_OF_RANGE "message length too large" response.
pub fn as_resource_exhausted<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    let too_large = headers
        .get("grpc-status")
        .is_some_and(|s| s == OUT_OF_RANGE)
        && headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            // tonic percent-encodes the message (spaces become %20).
            .is_some_and(|m| m.replace("%20", " ").contains("message length too large"));
    if too_large {
        headers.insert("grpc-status", RESOURCE_EXHAUSTED);
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
    fn rewrites_only_the_length_error() {
        let fixed = as_resource_exhausted(response(
            "11",
            "Error, decoded message length too large: found 9 bytes",
        ));
        assert_eq!(fixed.headers()["grpc-status"], "8");
        let other = as_resource_exhausted(response("11", "offset out of range"));
        assert_eq!(other.headers()["grpc-status"], "11");
        let encoded = as_resource_exhausted(response(
            "11",
            "Error,%20decoded%20message%20length%20too%20large",
        ));
        assert_eq!(encoded.headers()["grpc-status"], "8");
        let ok = as_resource_exhausted(response("0", ""));
        assert_eq!(ok.headers()["grpc-status"], "0");
    }
}
