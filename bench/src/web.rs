//! Plain HTTP requests — Connect calls and SSE streams — over the connection the gRPC calls
//! use. tonic's [`Channel`] is hyper's HTTP/2 client (prior knowledge on `http://`, ALPN on
//! `https://` with the `--tls-*` settings), so every protocol runs over the same client,
//! connection and flow-control windows, TLS included, and a comparison measures the
//! protocol rather than two HTTP stacks. The server's `/metrics` is read the same way
//! ([`server`](crate::server)).

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, header};
use http_body_util::BodyExt;
use tonic::Status;
use tonic::body::Body;
use tonic::transport::Channel;
use tower::{Service, ServiceExt};

use crate::Failure;

/// Where HTTP requests go, and the `authorization` header they carry.
#[derive(Clone)]
pub struct Web {
    channel: Channel,
    authorization: Option<HeaderValue>,
}

impl Web {
    /// Requests over `channel`, sending `token` (`--token`) as a bearer token, as the gRPC
    /// calls do.
    pub fn new(channel: Channel, token: Option<&str>) -> Result<Self, Failure> {
        let authorization = token
            .map(|token| HeaderValue::try_from(format!("Bearer {token}")))
            .transpose()
            .map_err(|_| Failure::usage("--token / STREAMGATE_TOKEN: not a valid header value"))?;
        Ok(Self {
            channel,
            authorization,
        })
    }

    /// A request for `path_and_query` (the channel adds the scheme and authority of
    /// `--server`), with the token.
    pub fn request(&self, method: Method, path_and_query: &str) -> http::request::Builder {
        let builder = Request::builder().method(method).uri(path_and_query);
        match &self.authorization {
            Some(value) => builder.header(header::AUTHORIZATION, value.clone()),
            None => builder,
        }
    }

    /// Sends `request`. A connection that fails gives the status a gRPC call would get
    /// (tonic's mapping), so it is counted or stops the run alike.
    pub async fn send(
        &mut self,
        request: http::Result<Request<Body>>,
    ) -> Result<Response<Body>, Status> {
        let request = request.map_err(|e| Status::internal(format!("a request: {e}")))?;
        let channel = self
            .channel
            .ready()
            .await
            .map_err(|e| Status::from_error(Box::new(e)))?;
        channel
            .call(request)
            .await
            .map_err(|e| Status::from_error(Box::new(e)))
    }
}

/// The whole of a (small) response body.
pub async fn whole(body: Body) -> Result<Bytes, Status> {
    Ok(body.collect().await?.to_bytes())
}

/// The next bytes of a streamed response body; `None` at its end (trailers are skipped:
/// neither Connect nor SSE sends any).
pub async fn next_data(body: &mut Body) -> Option<Result<Bytes, Status>> {
    loop {
        match body.frame().await? {
            Ok(frame) => match frame.into_data() {
                Ok(data) => return Some(Ok(data)),
                Err(_trailers) => {}
            },
            Err(status) => return Some(Err(status)),
        }
    }
}
