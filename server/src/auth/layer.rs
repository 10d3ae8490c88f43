//! The tower layer that authenticates every request before it reaches a gRPC service.
//! It sits below grpc-web's translation, so browser calls are checked exactly like native
//! gRPC ones, and a refusal is a normal gRPC status in either protocol. On the SSE routes a
//! request without an `authorization` header may authenticate with an EventSource session
//! cookie instead ([`Sessions`]); anywhere else the cookie is ignored, so it can only ever
//! read.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use tonic::Status;
use tower::{Layer, Service};

use super::{Authenticator, RefusalLog, Sessions};

/// Services anyone may call: health, for probes and load balancers.
const OPEN_PREFIXES: &[&str] = &["/grpc.health.v1.Health/"];

/// Authenticates requests with an [`Authenticator`].
#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<Authenticator>,
    refusals: Arc<RefusalLog>,
    subject: fn(&http::Extensions) -> Option<String>,
    sessions: Option<SessionRoutes>,
}

/// The sessions, and which requests may use them.
#[derive(Clone)]
struct SessionRoutes {
    sessions: Arc<Sessions>,
    /// Whether a request is on an SSE route (the HTTP layer above tags it).
    is_event_stream: fn(&http::Extensions) -> bool,
}

impl AuthLayer {
    /// A layer over `auth`; `subject` reads a verified client certificate's subject from a
    /// request's extensions (the TLS acceptor puts the certificates there).
    pub fn new(
        auth: Arc<Authenticator>,
        refusals: Arc<RefusalLog>,
        subject: fn(&http::Extensions) -> Option<String>,
    ) -> Self {
        Self {
            auth,
            refusals,
            subject,
            sessions: None,
        }
    }

    /// The same layer, accepting `sessions`' cookies on the requests `is_event_stream` says
    /// are SSE.
    pub fn with_sessions(
        mut self,
        sessions: Arc<Sessions>,
        is_event_stream: fn(&http::Extensions) -> bool,
    ) -> Self {
        self.sessions = Some(SessionRoutes {
            sessions,
            is_event_stream,
        });
        self
    }

    /// The principal of an SSE request's session cookie: `None` when the request is not
    /// one, sends a token, or has no cookie; `Some(None)` for an unknown or expired cookie.
    fn session<B>(&self, request: &http::Request<B>) -> Option<Option<super::Principal>> {
        let routes = self.sessions.as_ref()?;
        let headers = request.headers();
        let eligible = self.auth.is_required()
            && (routes.is_event_stream)(request.extensions())
            && !headers.contains_key(http::header::AUTHORIZATION)
            && Sessions::has_cookie(headers);
        eligible.then(|| routes.sessions.principal(headers))
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around the router.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, B> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        if OPEN_PREFIXES.iter().any(|prefix| path.starts_with(prefix)) {
            return Either::Left(self.inner.call(request));
        }
        let session = self.layer.session(&request);
        if let Some(Some(principal)) = session {
            request.extensions_mut().insert(principal);
            return Either::Left(self.inner.call(request));
        }
        let subject = (self.layer.subject)(request.extensions());
        let authenticated = self
            .layer
            .auth
            .authenticate(request.headers(), subject.as_deref())
            .map_err(|mut refused| {
                if session.is_some() {
                    refused.0 = format!(
                        "the session cookie is unknown or has expired (open a new one with OpenEventSession), and {}",
                        refused.0
                    );
                }
                refused
            });
        match authenticated {
            Ok(principal) => {
                request.extensions_mut().insert(principal);
                Either::Left(self.inner.call(request))
            }
            Err(refused) => {
                let method: String = path.chars().take(200).collect();
                self.layer.refusals.record(|refusals| {
                    tracing::warn!(refusals, method, reason = ?refused.0, "refused a call: not authenticated");
                });
                Either::Right(ready(Ok(Status::unauthenticated(refused.0).into_http())))
            }
        }
    }
}
