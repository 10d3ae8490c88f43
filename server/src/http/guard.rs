//! The first thing every request meets, before CORS, the dashboard or any gRPC service:
//!
//! - **Host** (DNS rebinding). A web page whose name an attacker re-points at 127.0.0.1
//!   reaches a loopback server with its own name in `Host`. On a plaintext port only IP
//!   literals, `localhost` (and `*.localhost`) and the `--allowed-hosts` names are served;
//!   others get 403. A TLS port needs no such check: the browser verifies the certificate
//!   against the name it used, which a rebound name does not match.
//! - **Origin** (cross-site requests). A request a browser sends from another site carries
//!   its `Origin`; unless that is this server itself or one of `--cors-origins`, it is
//!   refused with 403, whatever its content type, so ambient credentials (a client
//!   certificate the browser presents on its own) cannot be used by another page.
//! - **Content type**. Only gRPC and grpc-web bodies reach the services: a CORS-simple
//!   `text/plain` POST (which a browser sends cross-site without asking) gets 415.

use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use http::header::{CONTENT_TYPE, HOST, ORIGIN};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use tower::{Layer, Service};

use crate::logs::LogThrottle;

/// Content types that reach the services: gRPC (`application/grpc`, `+proto`), grpc-web
/// (`application/grpc-web`, `+proto`, `-text`) and Connect (`application/json`,
/// `application/proto`, `application/connect+json`, `application/connect+proto`). None is
/// CORS-simple: a browser asks before it sends one cross-site.
const SERVED_CONTENT_TYPES: &[&str] = &[
    "application/grpc",
    "application/json",
    "application/proto",
    "application/connect+",
];

/// Which requests the guard lets through.
#[derive(Debug, Default)]
pub struct GuardRules {
    /// Host names served besides IP literals and localhost (`--allowed-hosts`; a leading
    /// dot also allows every subdomain); `None`: any host (a TLS port, or `*`).
    pub allowed_hosts: Option<Vec<String>>,
    /// Origins other than this server's own (`--cors-origins`).
    pub cors_origins: Vec<String>,
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `Host` (or `:authority`) names a host that is not served.
    #[error(
        "host {0:?} is not served here (a DNS-rebinding guard): use the server's IP address or localhost, or allow the name with --allowed-hosts"
    )]
    Host(String),
    /// No `Host` and no `:authority`.
    #[error("the request names no host (Host or :authority)")]
    NoHost,
    /// `Origin` is another site.
    #[error("origin {0:?} may not call this server: allow it with --cors-origins")]
    Origin(String),
    /// A body the services do not read.
    #[error(
        "content type {0:?} is not served: send gRPC (application/grpc), grpc-web or Connect (application/json, application/proto)"
    )]
    ContentType(String),
}

impl GuardRules {
    /// Whether `request` may go on.
    pub fn check<B>(&self, request: &Request<B>) -> Result<(), Refusal> {
        let host = host(request.uri(), request.headers());
        if let Some(allowed) = &self.allowed_hosts {
            let host = host.as_deref().ok_or(Refusal::NoHost)?;
            if !host_is_served(host, allowed) {
                return Err(Refusal::Host(host.to_owned()));
            }
        }
        if let Some(origin) = request.headers().get(ORIGIN) {
            let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
            if !self.origin_is_allowed(&origin, host.as_deref()) {
                return Err(Refusal::Origin(origin));
            }
        }
        if !matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        ) {
            let content_type = request
                .headers()
                .get(CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase())
                .unwrap_or_default();
            if !SERVED_CONTENT_TYPES
                .iter()
                .any(|served| content_type.starts_with(served))
            {
                return Err(Refusal::ContentType(content_type));
            }
        }
        Ok(())
    }

    /// This server's own origin (same host and port as the request), or a listed one.
    fn origin_is_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        if self
            .cors_origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
        {
            return true;
        }
        let authority = origin.parse::<Uri>().ok().and_then(|uri| {
            let authority = uri.authority()?;
            Some(authority.as_str().to_ascii_lowercase())
        });
        authority.is_some_and(|authority| Some(authority.as_str()) == host)
    }
}

/// The request's host and port, lower case: `:authority` (HTTP/2), else `Host`.
fn host(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let text = match uri.authority() {
        Some(authority) => authority.as_str().to_owned(),
        None => String::from_utf8_lossy(headers.get(HOST)?.as_bytes()).into_owned(),
    };
    Some(text.to_ascii_lowercase())
}

/// Whether `host` (with its port, if any) names this machine or an allowed name.
fn host_is_served(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        // An IPv6 literal: [::1]:8080.
        Some(rest) => {
            return rest
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<IpAddr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    let name = name.trim_end_matches('.');
    if name.parse::<IpAddr>().is_ok() || name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    allowed
        .iter()
        .any(|pattern| match pattern.strip_prefix('.') {
            Some(domain) => name == domain || name.ends_with(pattern.as_str()),
            None => name == pattern,
        })
}

/// Puts [`GuardRules`] in front of a service.
#[derive(Debug, Clone)]
pub struct GuardLayer {
    rules: Arc<GuardRules>,
    refusals: Arc<std::sync::Mutex<LogThrottle>>,
}

impl GuardLayer {
    /// A guard with `rules`.
    pub fn new(rules: GuardRules) -> Self {
        Self {
            rules: Arc::new(rules),
            refusals: Arc::new(std::sync::Mutex::new(LogThrottle::new(
                std::time::Duration::from_secs(1),
            ))),
        }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService {
            layer: self.clone(),
            inner,
        }
    }
}

/// See [`GuardLayer`].
#[derive(Debug, Clone)]
pub struct GuardService<S> {
    layer: GuardLayer,
    inner: S,
}

impl<S, B> Service<Request<B>> for GuardService<S>
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
        match self.layer.rules.check(&request) {
            Ok(()) => Either::Right(self.inner.call(request)),
            Err(refusal) => {
                self.log(&refusal);
                Either::Left(ready(Ok(refused(&refusal))))
            }
        }
    }
}

impl<S> GuardService<S> {
    /// One line a second at most; values are shown escaped (`{:?}`), so a control or
    /// bidirectional character in a header cannot rewrite the log.
    fn log(&self, refusal: &Refusal) {
        let hit = self
            .layer
            .refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hit();
        if let Some(refusals) = hit {
            tracing::warn!(refusals, reason = %refusal, "refused a request before any service");
        }
    }
}

/// 403 (or 415 for a content type), with the reason as text and as a gRPC status, so
/// both a browser and a gRPC client can show why.
fn refused(refusal: &Refusal) -> Response<tonic::body::Body> {
    let (status, grpc) = match refusal {
        Refusal::ContentType(_) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            tonic::Code::InvalidArgument,
        ),
        _ => (StatusCode::FORBIDDEN, tonic::Code::PermissionDenied),
    };
    let message = refusal.to_string();
    let mut response = Response::new(tonic::body::Body::new(format!("{message}\n")));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert("grpc-status", (grpc as i32).into());
    // The message is ASCII but for what a client sent (escaped, yet possibly non-ASCII):
    // such a message is left to the body.
    if let Ok(value) = http::HeaderValue::from_str(&message) {
        headers.insert("grpc-message", value);
    }
    response
}

#[cfg(test)]
mod tests;
