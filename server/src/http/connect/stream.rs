//! A Connect streaming call: Connect's envelopes become gRPC frames on the way in, gRPC's
//! frames become envelopes on the way out, and the status the gRPC side ends with (its
//! trailers) becomes Connect's end-of-stream message. Both directions convert one message
//! at a time, so a stream is as long-lived and as flow-controlled as its gRPC twin.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body::Frame;
use prost_reflect::{MessageDescriptor, MethodDescriptor};
use serde_json::{Map, Value, json};
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Service, ServiceExt};

use super::codec::{self, Codec};
use super::envelope::{self, COMPRESSED, END_STREAM, Splitter};
use super::error::{ConnectError, final_status, metadata};
use super::request;

/// Answers a streaming call; `message_bytes` bounds one message in either direction.
pub async fn call<S>(
    inner: S,
    request: Request<Body>,
    method: MethodDescriptor,
    codec: Codec,
    message_bytes: usize,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    let (parts, body) = request.into_parts();
    let timeout = match request::grpc_timeout(&parts.headers) {
        Ok(timeout) => timeout,
        Err(e) => return Ok(e.into_response()),
    };
    let body = ToGrpc {
        inner: body,
        splitter: Splitter::new(message_bytes),
        codec,
        input: method.input(),
        ended: false,
    };
    let grpc = request::grpc_request(parts, timeout, Body::new(body));
    let response = inner.oneshot(grpc).await?;
    let (parts, body) = response.into_parts();
    let mut to_connect = ToConnect {
        inner: body,
        splitter: Splitter::new(message_bytes.max(16 << 20)),
        codec,
        output: method.output(),
        done: false,
        end: None,
    };
    // Refused before the handler ran ("trailers-only"): the stream is just its end.
    if let Some(status) = Status::from_header_map(&parts.headers) {
        to_connect.end = Some(end_of_stream(&status, &parts.headers));
    }
    let mut answer = Response::new(Body::new(to_connect));
    *answer.status_mut() = StatusCode::OK;
    let headers = answer.headers_mut();
    headers.extend(metadata(&parts.headers));
    let content_type = match codec {
        Codec::Proto => "application/connect+proto",
        Codec::Json => "application/connect+json",
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(answer)
}

/// The request body: Connect envelopes in, gRPC frames out.
struct ToGrpc {
    inner: Body,
    splitter: Splitter,
    codec: Codec,
    input: MessageDescriptor,
    ended: bool,
}

impl http_body::Body for ToGrpc {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        loop {
            match this.splitter.next() {
                Ok(Some(envelope)) => return Poll::Ready(Some(this.convert(envelope))),
                Ok(None) => {}
                Err(e) => {
                    let status = Status::resource_exhausted(format!("a Connect message: {e}"));
                    return Poll::Ready(Some(Err(status)));
                }
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        this.splitter.push(&data);
                    }
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None if this.splitter.holds_a_part() => {
                    this.ended = true;
                    let status = Status::invalid_argument("the request ended inside a message");
                    return Poll::Ready(Some(Err(status)));
                }
                None => this.ended = true,
            }
        }
    }
}

impl ToGrpc {
    fn convert(&self, envelope: envelope::Envelope) -> Result<Frame<Bytes>, Status> {
        if envelope.flags & COMPRESSED != 0 {
            return Err(Status::unimplemented(
                "compressed messages are not supported: send them uncompressed",
            ));
        }
        if envelope.flags & END_STREAM != 0 {
            return Err(Status::invalid_argument(
                "a request stream has no end-of-stream message",
            ));
        }
        let message = codec::to_proto(self.codec, &self.input, envelope.message)
            .map_err(|e| Status::new(e.code(), e.message()))?;
        Ok(Frame::data(envelope::encode(0, &message)))
    }
}

/// The response body: gRPC frames in, Connect envelopes out, the status last.
struct ToConnect {
    inner: Body,
    splitter: Splitter,
    codec: Codec,
    output: MessageDescriptor,
    done: bool,
    /// The end-of-stream message, once the status is known.
    end: Option<Bytes>,
}

impl http_body::Body for ToConnect {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(end) = this.end.take() {
                this.done = true;
                return Poll::Ready(Some(Ok(Frame::data(end))));
            }
            match this.splitter.next() {
                Ok(Some(message)) => {
                    match codec::from_proto(this.codec, &this.output, message.message) {
                        Ok(message) => {
                            return Poll::Ready(Some(Ok(Frame::data(envelope::encode(
                                0, &message,
                            )))));
                        }
                        Err(e) => this.end_with(&Status::new(e.code(), e.message())),
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    this.end_with(&Status::internal(format!("an answer: {e}")));
                    continue;
                }
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.splitter.push(&data),
                    Err(frame) => {
                        let trailers = frame.into_trailers().unwrap_or_default();
                        this.end = Some(end_of_stream(&final_status(&trailers), &trailers));
                    }
                },
                Some(Err(status)) => this.end_with(&status),
                None => this.end_with(&Status::internal("the stream ended without a status")),
            }
        }
    }
}

impl ToConnect {
    fn end_with(&mut self, status: &Status) {
        self.end = Some(end_of_stream(status, &HeaderMap::new()));
    }
}

/// Connect's end-of-stream message (always JSON): the error, if the status is one, and the
/// trailers as metadata.
fn end_of_stream(status: &Status, trailers: &HeaderMap) -> Bytes {
    let mut end = json!({});
    if status.code() != Code::Ok {
        end["error"] = ConnectError::from_status(status).to_json();
    }
    let mut fields = Map::new();
    for (name, value) in &metadata(trailers) {
        let values = fields
            .entry(name.as_str())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let (Value::Array(values), Ok(value)) = (values, value.to_str()) {
            values.push(Value::from(value));
        }
    }
    if !fields.is_empty() {
        end["metadata"] = Value::Object(fields);
    }
    envelope::encode(END_STREAM, end.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_stream_carries_the_error_and_the_trailers() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("5"));
        trailers.insert("x-served-by", HeaderValue::from_static("a"));
        trailers.append("x-served-by", HeaderValue::from_static("b"));
        let status = Status::from_header_map(&trailers).expect("a status");
        let end = end_of_stream(&status, &trailers);
        assert_eq!(end[0], END_STREAM);
        let body: Value = serde_json::from_slice(&end[envelope::HEADER..]).expect("JSON");
        assert_eq!(
            body,
            json!({"error": {"code": "not_found"}, "metadata": {"x-served-by": ["a", "b"]}})
        );
        let ok = end_of_stream(&Status::ok(""), &HeaderMap::new());
        assert_eq!(&ok[envelope::HEADER..], b"{}");
    }
}
