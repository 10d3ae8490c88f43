//! The one mechanism behind the plain HTTP pages on the gRPC port (the dashboard's files,
//! `/metrics`): a tower layer in front of grpc-web (which refuses any other HTTP/1.1
//! request) that answers a GET or HEAD itself when its [`GetRoute`] knows the path, and
//! passes everything else on.

use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use http::{Method, Request, Response};
use tower::{Layer, Service};

/// What a [`GetRouteLayer`] serves.
pub trait GetRoute: Clone {
    /// The answer to a GET or HEAD `request`, or `None` to pass it on.
    fn answer<B>(&self, request: &Request<B>) -> Option<Response<tonic::body::Body>>;
}

/// Answers the GET and HEAD requests `R` knows in front of the wrapped service.
#[derive(Debug, Clone, Copy, Default)]
pub struct GetRouteLayer<R>(pub R);

impl<R: GetRoute, S> Layer<S> for GetRouteLayer<R> {
    type Service = GetRouteService<R, S>;

    fn layer(&self, inner: S) -> Self::Service {
        GetRouteService {
            route: self.0.clone(),
            inner,
        }
    }
}

/// See [`GetRouteLayer`].
#[derive(Debug, Clone)]
pub struct GetRouteService<R, S> {
    route: R,
    inner: S,
}

impl<R, S, B> Service<Request<B>> for GetRouteService<R, S>
where
    R: GetRoute,
    S: Service<Request<B>, Response = Response<tonic::body::Body>>,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Self::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let answer = matches!(*request.method(), Method::GET | Method::HEAD)
            .then(|| self.route.answer(&request))
            .flatten();
        match answer {
            Some(response) => Either::Left(ready(Ok(response))),
            None => Either::Right(self.inner.call(request)),
        }
    }
}
