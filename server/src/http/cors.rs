//! CORS for browsers on other origins: grpc-web needs its request headers allowed and the
//! `grpc-status` / `grpc-message` trailers exposed, or errors are invisible to the page.
//! Only the origins `--cors-origins` lists are allowed.

use std::time::Duration;

use http::{HeaderName, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The CORS layer for `origins`. An empty list allows no other origin: the dashboard is
/// same-origin and needs none, and reflecting any origin would let every web page a user
/// opens drive the server (a token in the page's storage, or an open server on localhost).
pub fn cors(origins: &[String]) -> CorsLayer {
    let allow_origin = AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()));
    let header = HeaderName::from_static;
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::POST, Method::GET, Method::OPTIONS])
        .allow_headers([
            header("content-type"),
            header("x-grpc-web"),
            header("x-user-agent"),
            header("grpc-timeout"),
            header("authorization"),
            header("connect-protocol-version"),
            header("connect-timeout-ms"),
        ])
        .expose_headers([
            header("grpc-status"),
            header("grpc-message"),
            header("grpc-status-details-bin"),
        ])
        .max_age(Duration::from_secs(24 * 3600))
}
