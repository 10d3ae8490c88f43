//! `GET /metrics`: answered in front of grpc-web (like the dashboard's files), on the
//! server's port and on `--metrics-listen`. When authentication is on, a scrape needs a
//! principal with the `metrics` permission — a bearer token (Prometheus's `authorization`
//! setting) or a client certificate — and is refused with 401 or 403 otherwise.
//!
//! The format follows the scraper's `Accept` header: OpenMetrics when it asks for it (as
//! Prometheus does), Prometheus text 0.0.4 otherwise (`curl`, `promtool`).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;

use super::{Format, Metrics};
use crate::auth::{Access, Authenticator};
use crate::http::{GetRoute, GetRouteLayer};

/// The path scrapers ask for.
pub const PATH: &str = "/metrics";

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Answers `GET /metrics` in front of the wrapped service.
pub type MetricsEndpointLayer = GetRouteLayer<MetricsEndpoint>;

/// `/metrics`, as a [`GetRoute`].
#[derive(Clone)]
pub struct MetricsEndpoint {
    metrics: Arc<Metrics>,
    access: Arc<Access>,
    auth: Arc<Authenticator>,
}

impl MetricsEndpoint {
    /// The endpoint for `metrics`, authenticating with `auth` and checking with `access`.
    pub fn layer(
        metrics: Arc<Metrics>,
        access: Arc<Access>,
        auth: Arc<Authenticator>,
    ) -> MetricsEndpointLayer {
        GetRouteLayer(Self {
            metrics,
            access,
            auth,
        })
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
        if let Err(refused) = self.access.metrics(&principal) {
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

impl GetRoute for MetricsEndpoint {
    fn answer<B>(&self, request: &Request<B>) -> Option<Response<tonic::body::Body>> {
        (request.uri().path() == PATH).then(|| self.respond(request))
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
