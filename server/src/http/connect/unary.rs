//! A Connect unary call: the whole request body (bounded), one gRPC call, the one message
//! back in the caller's codec, or the error as Connect's JSON with its HTTP status.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use prost_reflect::MethodDescriptor;
use tonic::Code;
use tonic::body::Body;
use tower::{Service, ServiceExt};

use super::codec::{self, Codec};
use super::envelope::{self, Splitter};
use super::error::{ConnectError, final_status, metadata};
use super::request;

/// Bounds on what one unary call may carry.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The request body, in the caller's codec.
    pub request_bytes: usize,
    /// The gRPC side's answer.
    pub response_bytes: usize,
}

/// Answers a unary call: `message` is the request's, already read when it came in the query.
pub async fn call<S>(
    inner: S,
    request: Request<Body>,
    method: MethodDescriptor,
    codec: Codec,
    query_message: Option<Bytes>,
    bounds: Bounds,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    let (parts, body) = request.into_parts();
    let prepared = async {
        let timeout = request::grpc_timeout(&parts.headers)?;
        let message = match query_message {
            Some(message) => message,
            None => read(body, bounds.request_bytes).await?,
        };
        let message = codec::to_proto(codec, &method.input(), message)?;
        Ok::<_, ConnectError>((timeout, envelope::encode(0, &message)))
    };
    let (timeout, frame) = match prepared.await {
        Ok(prepared) => prepared,
        Err(e) => return Ok(e.into_response()),
    };
    let grpc = request::grpc_request(parts, timeout, Body::new(Full::new(frame)));
    let response = inner.oneshot(grpc).await?;
    Ok(answer(response, &method, codec, bounds.response_bytes)
        .await
        .unwrap_or_else(ConnectError::into_response))
}

/// The request body, at most `limit` bytes of it.
async fn read(body: Body, limit: usize) -> Result<Bytes, ConnectError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ConnectError::new(
            Code::ResourceExhausted,
            format!(
                "the request body is over the limit of {limit} bytes (--max-message-bytes, with room for JSON)"
            ),
        )),
        Err(e) => Err(ConnectError::new(
            Code::Cancelled,
            format!("reading the request body: {e}"),
        )),
    }
}

/// The gRPC answer as Connect's: the message, or the status as an error.
async fn answer(
    response: Response<Body>,
    method: &MethodDescriptor,
    codec: Codec,
    limit: usize,
) -> Result<Response<Body>, ConnectError> {
    let (parts, body) = response.into_parts();
    // A call refused before its handler ran is "trailers-only": the status in the headers.
    if let Some(status) = tonic::Status::from_header_map(&parts.headers) {
        return Err(ConnectError::from_status(&status));
    }
    let collected = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| ConnectError::new(Code::Internal, format!("reading the answer: {e}")))?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let status = final_status(&trailers);
    if status.code() != Code::Ok {
        return Err(ConnectError::from_status(&status));
    }
    let mut splitter = Splitter::new(limit);
    splitter.push(&collected.to_bytes());
    let message = match splitter.next() {
        Ok(Some(envelope)) if !splitter.holds_a_part() => envelope.message,
        _ => {
            return Err(ConnectError::new(
                Code::Internal,
                "the answer was not one message",
            ));
        }
    };
    let body = codec::from_proto(codec, &method.output(), message)?;
    let mut answer = Response::new(Body::new(Full::new(body)));
    *answer.status_mut() = StatusCode::OK;
    let headers = answer.headers_mut();
    headers.extend(metadata(&parts.headers));
    for (name, value) in &metadata(&trailers) {
        if let Ok(name) = HeaderName::try_from(format!("trailer-{name}")) {
            headers.append(name, value.clone());
        }
    }
    headers.insert(header::CONTENT_TYPE, content_type(codec));
    Ok(answer)
}

fn content_type(codec: Codec) -> HeaderValue {
    match codec {
        Codec::Proto => HeaderValue::from_static("application/proto"),
        Codec::Json => HeaderValue::from_static("application/json"),
    }
}
