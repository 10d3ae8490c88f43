//! Counts each request as an open stream of its connection until its response is done, so
//! that a connection can tell "idle" (no call in progress, whatever pings flow) and be
//! closed after `--idle-timeout` (see `connections`).

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

use crate::connections::{Connection, OpenStream};

/// Counts open streams per connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenStreamsLayer;

impl<S> Layer<S> for OpenStreamsLayer {
    type Service = OpenStreams<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OpenStreams { inner }
    }
}

/// See [`OpenStreamsLayer`].
#[derive(Debug, Clone)]
pub struct OpenStreams<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for OpenStreams<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let Some(open) = Connection::of(request.extensions()).map(|c| c.activity.stream_opened())
        else {
            return Box::pin(self.inner.call(request));
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| tonic::body::Body::new(Counted { body, _open: open })))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its stream counted as open until it is dropped.
    struct Counted {
        #[pin]
        body: tonic::body::Body,
        _open: OpenStream,
    }
}

impl Body for Counted {
    type Data = <tonic::body::Body as Body>::Data;
    type Error = <tonic::body::Body as Body>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
