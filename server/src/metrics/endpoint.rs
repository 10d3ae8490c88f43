//! `GET /metrics`: a tower layer in front of grpc-web (like the dashboard's), on the
//! server's port and on `--metrics-listen`. When authentication is on, a scrape needs a
//! principal with the `metrics` permission — a bearer token (Prometheus's `authorization`
//! setting) or a client certificate — and is refused with 401 or 403 otherwise.
//!
//! The format follows the scraper's `Accept` header: OpenMetrics when it asks for it (as
//! Prometheus does), Prometheus text 0.0.4 otherwise (`curl`, `promtool`).

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::{Either, Ready, ready};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use tower::{Layer, Service};

use super::{Format, Metrics};
use crate::auth::Authenticator;
use crate::gateway::State;

/// The path scrapers ask for.
pub const PATH: &str = "/metrics";

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Answers `GET /metrics` in front of the wrapped service.
#[derive(Clone)]
pub struct MetricsEndpointLayer {
    metrics: Arc<Metrics>,
    state: Arc<State>,
    auth: Arc<Authenticator>,
}

impl MetricsEndpointLayer {
    /// The endpoint for `metrics`, authenticating with `auth` and checking `state.access`.
    pub fn new(metrics: Arc<Metrics>, state: Arc<State>, auth: Arc<Authenticator>) -> Self {
        Self {
            metrics,
            state,
            auth,
        }
    }

    fn respond<B>(&self, request: &Request<B>) -> Response<tonic::body::Body> {
        let subject = crate::tls::client_subject(request.extensions());
        let principal = match self
            .auth
            .authenticate(request.headers(), subject.as_deref())
        {
            Ok(principal) => principal,
            Err(refused) => {
                let mut response = text(StatusCode::UNAUTHORIZED, refused.0);
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"streamgate\""),
                );
                return response;
            }
        };
        if let Err(refused) = self.state.access.metrics(&principal) {
            return text(StatusCode::FORBIDDEN, refused.to_string());
        }
        let openmetrics = request
            .headers()
            .get(header::ACCEPT)
            .and_then(|accept| accept.to_str().ok())
            .is_some_and(|accept| accept.contains("application/openmetrics-text"));
        let format = match openmetrics {
            true => Format::OpenMetrics,
            false => Format::Prometheus,
        };
        let content_type = match format {
            Format::OpenMetrics => OPENMETRICS,
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        };
        let mut response = text(StatusCode::OK, self.metrics.render(format));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}

fn text(status: StatusCode, body: String) -> Response<tonic::body::Body> {
    let mut response = Response::new(tonic::body::Body::new(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl<S> Layer<S> for MetricsEndpointLayer {
    type Service = MetricsEndpoint<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsEndpoint {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`MetricsEndpointLayer`].
#[derive(Clone)]
pub struct MetricsEndpoint<S> {
    inner: S,
    layer: MetricsEndpointLayer,
}

impl<S, B> Service<Request<B>> for MetricsEndpoint<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>>,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Self::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let wanted =
            matches!(*request.method(), Method::GET | Method::HEAD) && request.uri().path() == PATH;
        if wanted {
            Either::Left(ready(Ok(self.layer.respond(&request))))
        } else {
            Either::Right(self.inner.call(request))
        }
    }
}
