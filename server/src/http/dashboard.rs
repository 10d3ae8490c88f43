//! The dashboard: the bundle built from `web/` (committed in `web/dist/`) is compiled into the
//! binary and served at `/` on the gRPC port, so the page and its grpc-web calls share one
//! origin and nothing is fetched from anywhere else.
//!
//! It is a tower layer in front of grpc-web (which refuses any other HTTP/1.1 request):
//! a GET for one of the dashboard's paths is answered here, everything else goes on.

use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::{Either, Ready, ready};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use tower::{Layer, Service};

const INDEX: &[u8] = include_bytes!("../../../web/dist/index.html");
const APP_JS: &[u8] = include_bytes!("../../../web/dist/app.js");
const APP_CSS: &[u8] = include_bytes!("../../../web/dist/app.css");

/// The file at `path`, with its content type.
fn file(path: &str) -> Option<(&'static str, &'static [u8])> {
    match path {
        "/" | "/index.html" => Some(("text/html; charset=utf-8", INDEX)),
        "/app.js" => Some(("text/javascript; charset=utf-8", APP_JS)),
        "/app.css" => Some(("text/css; charset=utf-8", APP_CSS)),
        _ => None,
    }
}

/// Serves the dashboard's files in front of the wrapped service.
#[derive(Debug, Clone, Copy, Default)]
pub struct DashboardLayer;

impl<S> Layer<S> for DashboardLayer {
    type Service = Dashboard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Dashboard { inner }
    }
}

/// See [`DashboardLayer`].
#[derive(Debug, Clone)]
pub struct Dashboard<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Dashboard<S>
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
        let wanted = matches!(*request.method(), Method::GET | Method::HEAD)
            .then(|| file(request.uri().path()))
            .flatten();
        match wanted {
            Some((content_type, body)) => Either::Left(ready(Ok(response(content_type, body)))),
            None => Either::Right(self.inner.call(request)),
        }
    }
}

fn response(content_type: &'static str, body: &'static [u8]) -> Response<tonic::body::Body> {
    let mut response = Response::new(tonic::body::Body::new(Full::new(Bytes::from_static(body))));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    // Small files from the binary itself: always revalidate, so a new server version never
    // runs an old page.
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_dashboard_files_only() {
        assert!(file("/").is_some_and(|(t, b)| t.starts_with("text/html") && !b.is_empty()));
        assert!(file("/app.js").is_some());
        assert!(file("/streamgate.v1.EventGateway/Publish").is_none());
    }
}
