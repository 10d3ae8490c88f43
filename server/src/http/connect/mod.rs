//! The Connect protocol (connectrpc.com) on the gRPC port, so that `curl`, `fetch` and
//! any HTTP client can call the gateway without a gRPC stack:
//!
//! - unary calls: `POST /streamgate.v1.EventGateway/<Method>` with `application/json` or
//!   `application/proto`; `GET` with the message in the query for methods marked
//!   `NO_SIDE_EFFECTS` (ListTopics); errors as the specification's JSON and HTTP status;
//! - streams: `application/connect+json` or `+proto`, enveloped messages, the status in
//!   the end-of-stream message. Server streams (Subscribe, WatchPageStats) over HTTP/1.1 or
//!   HTTP/2; streams both ways (PublishStream, Consume) over HTTP/2 only, as the
//!   specification has it.
//!
//! A Connect request is rewritten into the gRPC request it stands for and handed to the
//! same stack as every gRPC call — grpc-web, metrics, authentication, admission, the
//! handlers — and the answer is rewritten back. There is no second copy of any handler, and
//! every limit, permission and deadline applies as it does to gRPC.

mod codec;
mod envelope;
mod error;
mod request;
mod stream;
mod unary;

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, Either};
use http::{Request, Response, StatusCode, Version};
use tonic::Code;
use tonic::body::Body;
use tower::{Layer, Service};

use super::Protocol;
pub use codec::Methods;
use codec::has_no_side_effects;
pub(super) use codec::{Codec, from_proto};
pub(super) use envelope::{Splitter, encode};
pub(super) use error::{ConnectError, final_status};
use request::Kind;
pub(super) use request::grpc_request;

/// JSON spends more bytes than protobuf on the same message (base64 for bytes, names for
/// tags): a JSON request may be this many times the protobuf limit.
const JSON_ALLOWANCE: usize = 3;

/// Serves Connect requests through the wrapped gRPC service; passes every other request on.
#[derive(Debug, Clone)]
pub struct ConnectLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    methods: Methods,
    /// The largest message a request may carry, in protobuf (`--max-message-bytes` and room
    /// for the rest of the request).
    message_bytes: usize,
}

impl ConnectLayer {
    pub fn new(methods: Methods, message_bytes: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                methods,
                message_bytes,
            }),
        }
    }
}

impl<S> Layer<S> for ConnectLayer {
    type Service = ConnectService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConnectService {
            shared: Arc::clone(&self.shared),
            inner,
        }
    }
}

/// See [`ConnectLayer`].
#[derive(Debug, Clone)]
pub struct ConnectService<S> {
    shared: Arc<Shared>,
    inner: S,
}

impl<S> Service<Request<Body>> for ConnectService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response<Body>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let Some(kind) = request::classify(&request) else {
            // gRPC or grpc-web: which one, while the content type still says so.
            let mut request = request;
            let protocol = Protocol::of(&request);
            protocol.tag(&mut request);
            return Either::Left(self.inner.call(request));
        };
        let inner = self.inner.clone();
        let shared = Arc::clone(&self.shared);
        Either::Right(Box::pin(async move {
            match kind {
                Ok(kind) => dispatch(inner, request, kind, &shared).await,
                Err(e) => Ok(e.into_response()),
            }
        }))
    }
}

/// Checks that the method takes this kind of call, and makes it.
async fn dispatch<S>(
    inner: S,
    request: Request<Body>,
    kind: Kind,
    shared: &Shared,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    let path = request.uri().path();
    let Some(method) = shared.methods.at(path) else {
        let error = ConnectError::new(
            Code::Unimplemented,
            format!(
                "no method {path:?}: Connect serves /streamgate.v1.EventGateway/<Method> and /streamgate.v1.AdminService/<Method>"
            ),
        );
        return Ok(error
            .with_http_status(StatusCode::NOT_FOUND)
            .into_response());
    };
    let name = method.name().to_owned();
    let streams = method.is_client_streaming() || method.is_server_streaming();
    let refused = |message: String, status: StatusCode| {
        Ok(ConnectError::new(Code::Unimplemented, message)
            .with_http_status(status)
            .into_response())
    };
    let unary_bounds = unary::Bounds {
        request_bytes: shared.message_bytes * JSON_ALLOWANCE,
        response_bytes: 64 << 20,
    };
    match kind {
        Kind::Unary(_) | Kind::UnaryGet { .. } if streams => refused(
            format!(
                "{name} is a stream: call it with application/connect+json or application/connect+proto"
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        Kind::UnaryGet { .. } if !has_no_side_effects(&method) => refused(
            format!("{name} has side effects: call it with POST"),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        Kind::Stream(_) if !streams => refused(
            format!("{name} is unary: call it with application/json or application/proto"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        Kind::Stream(_) if method.is_client_streaming() && request.version() < Version::HTTP_2 => {
            refused(
                format!(
                    "{name} streams both ways: over Connect it needs HTTP/2 (or call it with gRPC or grpc-web)"
                ),
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            )
        }
        Kind::Unary(codec) => unary::call(inner, request, method, codec, None, unary_bounds).await,
        Kind::UnaryGet { codec, message } => {
            unary::call(inner, request, method, codec, Some(message), unary_bounds).await
        }
        Kind::Stream(codec) => {
            let limit = shared.message_bytes * JSON_ALLOWANCE;
            stream::call(inner, request, method, codec, limit).await
        }
    }
}
