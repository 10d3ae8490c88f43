//! The client side of authentication: an interceptor that sends `authorization: Bearer
//! <token>` on every call, as the server's `--auth-file` and `--jwt-key` expect.
//!
//! ```
//! use streamgate::auth::BearerToken;
//! use streamgate::proto::event_gateway_client::EventGatewayClient;
//!
//! # fn wrap(channel: tonic::transport::Channel) -> Result<(), streamgate::auth::InvalidToken> {
//! let client = EventGatewayClient::with_interceptor(channel, BearerToken::new("s3cret")?);
//! # let _ = client; Ok(()) }
//! ```

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// A token that cannot travel as gRPC metadata (not visible ASCII).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token must be printable ASCII without spaces")]
pub struct InvalidToken;

/// Adds the bearer token to each request; without a token it adds nothing.
#[derive(Debug, Clone, Default)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl BearerToken {
    /// An interceptor sending `token`.
    pub fn new(token: &str) -> Result<Self, InvalidToken> {
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidToken);
        }
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| InvalidToken)?;
        Ok(Self(Some(value)))
    }

    /// An interceptor sending `token` if there is one.
    pub fn optional(token: Option<&str>) -> Result<Self, InvalidToken> {
        token.map_or(Ok(Self(None)), Self::new)
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}
