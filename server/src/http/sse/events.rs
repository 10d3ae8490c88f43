//! The `text/event-stream` body of an SSE route: each message of the gRPC stream behind it
//! becomes one event (its `id:` and `data:`), a comment keeps an idle stream open through
//! proxies, and the status the stream ends with becomes a last `event: error` if it is one.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use tokio::time::{Instant, Sleep};
use tonic::body::Body;
use tonic::{Code, Status};

use crate::http::connect::{ConnectError, Splitter, final_status};

/// How long a stream may go without sending anything before a comment line is sent.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// What a browser waits before it reconnects (the `retry:` field).
pub const RETRY_MILLIS: u64 = 2000;

/// One event of the stream: its `id:` and the JSON of its `data:`.
pub struct Event {
    pub id: String,
    pub data: String,
}

/// Turns one message of the gRPC stream (protobuf bytes) into its events (none, one, or
/// one per record of a batch).
pub type ToEvent = Box<dyn FnMut(Bytes) -> Result<Vec<Event>, Status> + Send>;

/// The SSE body over a gRPC response body.
pub struct EventStream {
    grpc: Body,
    splitter: Splitter,
    to_event: ToEvent,
    heartbeat: Pin<Box<Sleep>>,
    started: bool,
    /// A last event, once the gRPC side ended.
    last: Option<Bytes>,
    done: bool,
}

impl EventStream {
    pub fn new(grpc: Body, message_bytes: usize, to_event: ToEvent) -> Self {
        Self {
            grpc,
            splitter: Splitter::new(message_bytes),
            to_event,
            heartbeat: Box::pin(tokio::time::sleep(HEARTBEAT)),
            started: false,
            last: None,
            done: false,
        }
    }

    fn emit(&mut self, text: String) -> Frame<Bytes> {
        self.heartbeat.as_mut().reset(Instant::now() + HEARTBEAT);
        let text = match std::mem::replace(&mut self.started, true) {
            false => format!("retry: {RETRY_MILLIS}\n{text}"),
            true => text,
        };
        Frame::data(Bytes::from(text))
    }

    fn end(&mut self, status: &Status) {
        if status.code() != Code::Ok {
            self.last = Some(error_event(status));
        } else {
            self.done = true;
        }
    }
}

impl http_body::Body for EventStream {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        loop {
            if let Some(last) = this.last.take() {
                this.done = true;
                return Poll::Ready(Some(Ok(Frame::data(last))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.splitter.next() {
                Ok(Some(envelope)) => match (this.to_event)(envelope.message) {
                    Ok(events) if events.is_empty() => continue,
                    Ok(events) => {
                        let text: String = events
                            .iter()
                            .map(|e| format!("id: {}\ndata: {}\n\n", e.id, e.data))
                            .collect();
                        return Poll::Ready(Some(Ok(this.emit(text))));
                    }
                    Err(status) => {
                        this.end(&status);
                        continue;
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    this.end(&Status::internal(format!("a message: {e}")));
                    continue;
                }
            }
            match Pin::new(&mut this.grpc).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => this.splitter.push(&data),
                    Err(frame) => {
                        this.end(&final_status(&frame.into_trailers().unwrap_or_default()));
                    }
                },
                Poll::Ready(Some(Err(status))) => this.end(&status),
                Poll::Ready(None) => this.done = true,
                Poll::Pending => {
                    ready!(this.heartbeat.as_mut().poll(cx));
                    let comment = this.emit(": keep-alive\n\n".to_owned());
                    return Poll::Ready(Some(Ok(comment)));
                }
            }
        }
    }
}

/// The event a stream ends with when its status is an error: `event: error`, the error as
/// Connect's JSON. A browser's `EventSource` then reconnects after `retry`.
fn error_event(status: &Status) -> Bytes {
    let error = ConnectError::from_status(status).to_json();
    Bytes::from(format!(
        "retry: {RETRY_MILLIS}\nevent: error\ndata: {error}\n\n"
    ))
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;
    use crate::http::connect::encode;

    fn grpc_body(frames: &[&[u8]], status: &str) -> Body {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", status.parse().expect("ascii"));
        let data: Vec<Result<Frame<Bytes>, Status>> = frames
            .iter()
            .map(|m| Ok(Frame::data(encode(0, m))))
            .chain([Ok(Frame::trailers(trailers))])
            .collect();
        Body::new(http_body_util::StreamBody::new(futures::stream::iter(data)))
    }

    fn echo() -> ToEvent {
        let mut n = 0;
        Box::new(move |message| {
            n += 1;
            let data = String::from_utf8_lossy(&message).into_owned();
            Ok((!data.is_empty())
                .then(|| Event {
                    id: n.to_string(),
                    data,
                })
                .into_iter()
                .collect())
        })
    }

    async fn text(stream: EventStream) -> String {
        let bytes = stream.collect().await.expect("a body").to_bytes();
        String::from_utf8(bytes.to_vec()).expect("UTF-8")
    }

    #[tokio::test]
    async fn each_message_is_an_event_with_its_id_and_retry_comes_first() {
        let stream = EventStream::new(grpc_body(&[b"{\"a\":1}", b"", b"{}"], "0"), 1024, echo());
        assert_eq!(
            text(stream).await,
            "retry: 2000\nid: 1\ndata: {\"a\":1}\n\nid: 3\ndata: {}\n\n"
        );
    }

    #[tokio::test]
    async fn a_failed_stream_ends_with_an_error_event() {
        let stream = EventStream::new(grpc_body(&[b"{}"], "7"), 1024, echo());
        assert_eq!(
            text(stream).await,
            "retry: 2000\nid: 1\ndata: {}\n\nretry: 2000\nevent: error\ndata: {\"code\":\"permission_denied\"}\n\n"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_sends_a_comment_every_heartbeat() {
        let (_tx, rx) = futures::channel::mpsc::channel::<Result<Frame<Bytes>, Status>>(1);
        let mut stream =
            EventStream::new(Body::new(http_body_util::StreamBody::new(rx)), 1024, echo());
        let first = stream.frame().await.expect("a frame").expect("no error");
        assert_eq!(
            first.into_data().expect("data"),
            "retry: 2000\n: keep-alive\n\n"
        );
        let second = stream.frame().await.expect("a frame").expect("no error");
        assert_eq!(second.into_data().expect("data"), ": keep-alive\n\n");
    }
}
