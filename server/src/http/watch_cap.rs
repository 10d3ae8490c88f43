//! `grpc.health.v1.Health/Watch` is open to everyone (probes carry no token), and each
//! watch is a stream the server keeps: without a cap, 40 000 of them over a few connections
//! grew the server by hundreds of MiB. This layer caps open watches in total and per
//! connection; one over either is RESOURCE_EXHAUSTED at once. Health `Check` is not capped.
//!
//! A watch never ends on its own, so at shutdown this layer ends each one with UNAVAILABLE
//! (as the server's own streams end): otherwise an open probe would hold the drain until
//! `--shutdown-timeout`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::Status;
use tower::{Layer, Service};

/// The capped method.
const WATCH: &str = "/grpc.health.v1.Health/Watch";

/// Open watches allowed at once.
#[derive(Debug, Clone, Copy)]
pub struct WatchCaps {
    /// On the whole server.
    pub total: usize,
    /// On one connection.
    pub per_connection: usize,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_connection: HashMap<Option<SocketAddr>, usize>,
}

/// Caps open health watches.
#[derive(Debug, Clone)]
pub struct WatchCapLayer {
    caps: WatchCaps,
    open: Arc<Mutex<Open>>,
    shutdown: CancellationToken,
}

impl WatchCapLayer {
    /// A layer with `caps`; watches end when `shutdown` is cancelled.
    pub fn new(caps: WatchCaps, shutdown: CancellationToken) -> Self {
        Self {
            caps,
            open: Arc::default(),
            shutdown,
        }
    }

    /// Counts a watch on `connection` in, or says which cap it is over.
    fn admit(&self, connection: Option<SocketAddr>) -> Result<Watching, Status> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.caps.total {
            return Err(Status::resource_exhausted(format!(
                "{} health watches are open on this server, the limit: use Check, or close a watch",
                open.total
            )));
        }
        let on_connection = open.by_connection.entry(connection).or_default();
        if *on_connection >= self.caps.per_connection {
            return Err(Status::resource_exhausted(format!(
                "{} health watches are open on this connection, the limit",
                on_connection
            )));
        }
        *on_connection += 1;
        open.total += 1;
        Ok(Watching {
            open: self.open.clone(),
            connection,
        })
    }
}

/// One open watch's place; dropping it (with the response body) frees the place.
struct Watching {
    open: Arc<Mutex<Open>>,
    connection: Option<SocketAddr>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_connection.get_mut(&self.connection) {
            *count -= 1;
            if *count == 0 {
                open.by_connection.remove(&self.connection);
            }
        }
    }
}

/// The TCP peer of a request, plain or TLS: it names the connection.
fn peer(extensions: &http::Extensions) -> Option<SocketAddr> {
    crate::connections::Connection::of(extensions)?.remote_addr
}

impl<S> Layer<S> for WatchCapLayer {
    type Service = WatchCapService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WatchCapService {
            layer: self.clone(),
            inner,
        }
    }
}

/// See [`WatchCapLayer`].
#[derive(Debug, Clone)]
pub struct WatchCapService<S> {
    layer: WatchCapLayer,
    inner: S,
}

impl<S, B> Service<Request<B>> for WatchCapService<S>
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
        if request.uri().path() != WATCH {
            return Box::pin(self.inner.call(request));
        }
        match self.layer.admit(peer(request.extensions())) {
            Err(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
            Ok(watching) => {
                let response = self.inner.call(request);
                let shutdown = Box::pin(self.layer.shutdown.clone().cancelled_owned());
                Box::pin(async move {
                    let response = response.await?;
                    Ok(response.map(|body| {
                        tonic::body::Body::new(Held {
                            body,
                            watching,
                            shutdown,
                            ended: false,
                        })
                    }))
                })
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that holds its watch's place until it is dropped, and ends with
    /// UNAVAILABLE at shutdown.
    struct Held {
        #[pin]
        body: tonic::body::Body,
        watching: Watching,
        shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
        ended: bool,
    }
}

impl Body for Held {
    type Data = <tonic::body::Body as Body>::Data;
    type Error = <tonic::body::Body as Body>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if *this.ended {
            return Poll::Ready(None);
        }
        if this.shutdown.as_mut().poll(cx).is_ready() {
            *this.ended = true;
            let status = Status::unavailable("the server is shutting down");
            let mut trailers = http::HeaderMap::new();
            if status.add_header(&mut trailers).is_ok() {
                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
            }
            return Poll::Ready(None);
        }
        this.body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_watches_in_total_and_per_connection_and_frees_them() {
        let caps = WatchCaps {
            total: 3,
            per_connection: 2,
        };
        let layer = WatchCapLayer::new(caps, CancellationToken::new());
        let (a, b) = (
            Some("127.0.0.1:1000".parse().expect("an address")),
            Some("127.0.0.1:1001".parse().expect("an address")),
        );
        let first = layer.admit(a).expect("first");
        let _second = layer.admit(a).expect("second");
        let refused = layer.admit(a).err().expect("a third on one connection");
        assert!(refused.message().contains("this connection"), "{refused:?}");
        let _third = layer.admit(b).expect("another connection");
        let refused = layer.admit(b).err().expect("server full");
        assert!(refused.message().contains("this server"), "{refused:?}");
        drop(first);
        layer.admit(a).expect("a place came back");
    }
}
