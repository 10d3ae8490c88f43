//! Which requests are Connect's, and the gRPC request each becomes: the same path, the
//! caller's headers (authorization, metadata, origin), `Connect-Timeout-Ms` as
//! `grpc-timeout`, the body in gRPC frames.

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::header::{self, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Version};
use tonic::Code;

use super::codec::Codec;
use super::error::ConnectError;

/// What kind of Connect call a request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `POST` with `application/json` or `application/proto`: one message each way.
    Unary(Codec),
    /// `GET` with the message in the query (side-effect-free methods only).
    UnaryGet { codec: Codec, message: Bytes },
    /// `application/connect+json` or `+proto`: enveloped messages, the status at the end.
    Stream(Codec),
}

/// The Connect kind of `request`: `None` if it is not a Connect request (gRPC, grpc-web,
/// anything else goes on untouched); an error if it is one this server cannot take.
pub fn classify<B>(request: &Request<B>) -> Option<Result<Kind, ConnectError>> {
    let kind = match *request.method() {
        Method::GET => get(request.uri().query()?)?,
        Method::POST => post(content_type(request.headers())?.as_str())?,
        _ => return None,
    };
    Some(kind.and_then(|kind| {
        check_headers(request.headers())?;
        Ok(kind)
    }))
}

/// The media type of the request, lowercase, without parameters.
fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next().unwrap_or(value).trim();
    Some(media.to_ascii_lowercase())
}

fn post(media: &str) -> Option<Result<Kind, ConnectError>> {
    if let Some(name) = media.strip_prefix("application/connect+") {
        return Some(Codec::named(name).map(Kind::Stream).ok_or_else(|| {
            unsupported(format!(
                "the codec {name:?} (Connect streams take json or proto)"
            ))
        }));
    }
    match media {
        "application/json" => Some(Ok(Kind::Unary(Codec::Json))),
        "application/proto" => Some(Ok(Kind::Unary(Codec::Proto))),
        _ => None,
    }
}

/// A Connect GET: `?connect=v1&encoding=json&message=…` (`base64=1` when the message is
/// base64url-encoded, as binary messages must be).
fn get(query: &str) -> Option<Result<Kind, ConnectError>> {
    let mut encoding = None;
    let mut message = None;
    let mut base64 = false;
    let mut compression = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "encoding" => encoding = Some(value.into_owned()),
            "message" => message = Some(value.into_owned()),
            "base64" => base64 = value == "1",
            "compression" => compression = Some(value.into_owned()),
            _ => {}
        }
    }
    // Not Connect without both (a dashboard path with a query, say).
    let (encoding, message) = (encoding?, message?);
    Some((|| {
        if compression.as_deref().is_some_and(|c| c != "identity") {
            return Err(ConnectError::new(
                Code::Unimplemented,
                "compressed messages are not supported: send them uncompressed",
            ));
        }
        let codec = Codec::named(&encoding)
            .ok_or_else(|| unsupported(format!("the encoding {encoding:?}")))?;
        let message = match base64 {
            false => Bytes::from(message),
            true => URL_SAFE_NO_PAD
                .decode(message.trim_end_matches('='))
                .or_else(|_| URL_SAFE.decode(&message))
                .map_err(|e| {
                    ConnectError::new(
                        Code::InvalidArgument,
                        format!("message: not base64url: {e}"),
                    )
                })?
                .into(),
        };
        Ok(Kind::UnaryGet { codec, message })
    })())
}

fn unsupported(what: String) -> ConnectError {
    ConnectError::new(
        Code::Unimplemented,
        format!("{what} is not served: use json or proto"),
    )
    .with_http_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
}

/// The Connect headers a request may carry, checked: the protocol version, and no
/// compression (none is offered).
fn check_headers(headers: &HeaderMap) -> Result<(), ConnectError> {
    if let Some(version) = headers.get("connect-protocol-version")
        && version != "1"
    {
        return Err(ConnectError::new(
            Code::InvalidArgument,
            "connect-protocol-version must be 1",
        ));
    }
    for name in [
        header::CONTENT_ENCODING.as_str(),
        "connect-content-encoding",
    ] {
        if headers.get(name).is_some_and(|v| v != "identity") {
            return Err(ConnectError::new(
                Code::Unimplemented,
                format!("{name}: compressed messages are not supported: send them uncompressed"),
            ));
        }
    }
    Ok(())
}

/// `Connect-Timeout-Ms` as a `grpc-timeout` value: at most 8 digits, so long timeouts go in
/// seconds, and anything beyond is as good as none.
pub fn grpc_timeout(headers: &HeaderMap) -> Result<Option<HeaderValue>, ConnectError> {
    let Some(value) = headers.get("connect-timeout-ms") else {
        return Ok(None);
    };
    let invalid = || {
        ConnectError::new(
            Code::InvalidArgument,
            "connect-timeout-ms must be a positive integer of at most 10 digits",
        )
    };
    let text = value.to_str().map_err(|_| invalid())?;
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let millis: u64 = text.parse().map_err(|_| invalid())?;
    let timeout = if millis < 100_000_000 {
        format!("{millis}m")
    } else {
        format!("{}S", (millis / 1000).min(99_999_999))
    };
    HeaderValue::from_str(&timeout)
        .map(Some)
        .map_err(|_| invalid())
}

/// The gRPC request a Connect request becomes: its path (without the query) and headers,
/// minus Connect's own, over HTTP/2 as gRPC is.
pub fn grpc_request<B>(
    original: http::request::Parts,
    timeout: Option<HeaderValue>,
    body: B,
) -> Request<B> {
    let mut request = Request::new(body);
    *request.method_mut() = Method::POST;
    *request.version_mut() = Version::HTTP_2;
    let mut uri = original.uri.into_parts();
    uri.path_and_query = uri.path_and_query.and_then(|pq| pq.path().parse().ok());
    *request.uri_mut() = http::Uri::from_parts(uri).unwrap_or_default();
    let headers = request.headers_mut();
    for (name, value) in &original.headers {
        let connect_own = name.as_str().starts_with("connect-")
            || matches!(
                name.as_str(),
                "content-type" | "content-length" | "content-encoding" | "accept-encoding"
            );
        if !connect_own {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    if let Some(timeout) = timeout {
        headers.insert("grpc-timeout", timeout);
    }
    *request.extensions_mut() = original.extensions;
    // Connect's, unless the SSE layer made this request.
    crate::http::Protocol::Connect.tag(&mut request);
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("request")
    }

    fn kind(method: Method, uri: &str, headers: &[(&str, &str)]) -> Option<Result<Kind, Code>> {
        classify(&request(method, uri, headers)).map(|k| k.map_err(|e| e.code()))
    }

    #[test]
    fn tells_connect_from_grpc_grpc_web_and_pages() {
        let path = "/streamgate.v1.EventGateway/Publish";
        let json = [("content-type", "application/json; charset=utf-8")];
        assert_eq!(
            kind(Method::POST, path, &json),
            Some(Ok(Kind::Unary(Codec::Json)))
        );
        let stream = [("content-type", "application/connect+proto")];
        assert_eq!(
            kind(Method::POST, path, &stream),
            Some(Ok(Kind::Stream(Codec::Proto)))
        );
        for other in [
            "application/grpc",
            "application/grpc-web+proto",
            "text/plain",
        ] {
            assert_eq!(kind(Method::POST, path, &[("content-type", other)]), None);
        }
        assert_eq!(kind(Method::GET, "/", &[]), None);
        assert_eq!(kind(Method::GET, "/metrics?x=1", &[]), None);
        let cbor = [("content-type", "application/connect+cbor")];
        assert_eq!(
            kind(Method::POST, path, &cbor),
            Some(Err(Code::Unimplemented))
        );
        let v2 = [
            ("content-type", "application/json"),
            ("connect-protocol-version", "2"),
        ];
        assert_eq!(
            kind(Method::POST, path, &v2),
            Some(Err(Code::InvalidArgument))
        );
        let gzip = [
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ];
        assert_eq!(
            kind(Method::POST, path, &gzip),
            Some(Err(Code::Unimplemented))
        );
    }

    #[test]
    fn reads_a_get_s_message_from_the_query() {
        let list = "/streamgate.v1.EventGateway/ListTopics";
        let plain = format!("{list}?connect=v1&encoding=json&message=%7B%7D");
        assert_eq!(
            kind(Method::GET, &plain, &[]),
            Some(Ok(Kind::UnaryGet {
                codec: Codec::Json,
                message: Bytes::from_static(b"{}")
            }))
        );
        let binary = format!("{list}?encoding=proto&base64=1&message=CgJSMQ");
        assert_eq!(
            kind(Method::GET, &binary, &[]),
            Some(Ok(Kind::UnaryGet {
                codec: Codec::Proto,
                message: Bytes::from_static(b"\n\x02R1")
            }))
        );
        let bad = format!("{list}?encoding=proto&base64=1&message=***");
        assert_eq!(
            kind(Method::GET, &bad, &[]),
            Some(Err(Code::InvalidArgument))
        );
        let gzip = format!("{list}?encoding=json&message=x&compression=gzip");
        assert_eq!(
            kind(Method::GET, &gzip, &[]),
            Some(Err(Code::Unimplemented))
        );
    }

    #[test]
    fn a_connect_timeout_becomes_a_grpc_timeout_of_at_most_eight_digits() {
        let timeout = |ms: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("connect-timeout-ms", ms.parse().expect("ascii"));
            grpc_timeout(&headers).map_err(|e| e.code())
        };
        assert_eq!(timeout("1500"), Ok(Some(HeaderValue::from_static("1500m"))));
        assert_eq!(
            timeout("9999999999"),
            Ok(Some(HeaderValue::from_static("9999999S")))
        );
        for bad in ["", "-1", "12345678901", "1.5", "ten"] {
            assert_eq!(timeout(bad), Err(Code::InvalidArgument), "{bad:?}");
        }
        assert_eq!(
            grpc_timeout(&HeaderMap::new()).map_err(|e| e.code()),
            Ok(None)
        );
    }

    #[test]
    fn the_grpc_request_keeps_the_caller_s_headers_and_drops_connect_s() {
        let original = request(
            Method::GET,
            "/streamgate.v1.EventGateway/ListTopics?encoding=json&message=%7B%7D",
            &[
                ("authorization", "Bearer t"),
                ("content-type", "application/json"),
                ("connect-protocol-version", "1"),
                ("x-trace", "abc"),
            ],
        );
        let (parts, ()) = original.into_parts();
        let grpc = grpc_request(parts, Some(HeaderValue::from_static("5m")), ());
        assert_eq!(grpc.method(), Method::POST);
        assert_eq!(grpc.version(), Version::HTTP_2);
        assert_eq!(grpc.uri(), "/streamgate.v1.EventGateway/ListTopics");
        let headers = grpc.headers();
        assert_eq!(headers["authorization"], "Bearer t");
        assert_eq!(headers["x-trace"], "abc");
        assert_eq!(headers["content-type"], "application/grpc");
        assert_eq!(headers["grpc-timeout"], "5m");
        assert!(!headers.contains_key("connect-protocol-version"));
    }
}
