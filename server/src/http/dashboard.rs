//! The dashboard: the bundle built from `web/` (committed in `web/dist/`) is compiled into the
//! binary and served at `/` on the gRPC port, so the page and its grpc-web calls share one
//! origin and nothing is fetched from anywhere else.
//!
//! A GET for one of the dashboard's paths is answered in front of grpc-web (see
//! [`super::get_route`]), everything else goes on.

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;

use super::get_route::{GetRoute, GetRouteLayer};

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
pub type DashboardLayer = GetRouteLayer<Dashboard>;

/// The dashboard's files, as a [`GetRoute`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Dashboard;

impl GetRoute for Dashboard {
    fn answer<B>(&self, request: &Request<B>) -> Option<Response<tonic::body::Body>> {
        let (content_type, body) = file(request.uri().path())?;
        Some(response(content_type, body))
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
