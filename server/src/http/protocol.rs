//! Which protocol a call came in by. The Connect and SSE layers turn their requests into
//! gRPC calls, and grpc-web turns its own into gRPC below them, so by the time a call is
//! measured it looks like gRPC: the protocol rides along as a request extension, set where
//! the request was still itself, and the call metrics label by it.

use http::Request;
use http::header::CONTENT_TYPE;

/// The protocol of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Grpc,
    GrpcWeb,
    Connect,
    Sse,
}

impl Protocol {
    /// Every protocol, in the order of [`Protocol::index`].
    pub const ALL: [Protocol; 4] = [Self::Grpc, Self::GrpcWeb, Self::Connect, Self::Sse];

    /// The value of the metrics' `protocol` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::GrpcWeb => "grpc_web",
            Self::Connect => "connect",
            Self::Sse => "sse",
        }
    }

    /// A small index, for tables by protocol.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The protocol `request` came in by: what a layer above said, else gRPC or grpc-web by
    /// its content type.
    pub fn of<B>(request: &Request<B>) -> Self {
        if let Some(protocol) = request.extensions().get::<Protocol>() {
            return *protocol;
        }
        let grpc_web = request
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc-web"));
        if grpc_web { Self::GrpcWeb } else { Self::Grpc }
    }

    /// Marks `request` as having come in by `self`, unless a layer above already did.
    pub fn tag<B>(self, request: &mut Request<B>) {
        if request.extensions().get::<Protocol>().is_none() {
            request.extensions_mut().insert(self);
        }
    }
}

/// Whether a request is on an SSE route: the one place an EventSource session cookie may
/// stand in for a credential.
pub fn is_event_stream(extensions: &http::Extensions) -> bool {
    extensions.get::<Protocol>() == Some(&Protocol::Sse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_grpc_web_by_its_content_type_and_keeps_a_tag() {
        let request = |content_type: &str| {
            Request::builder()
                .header(CONTENT_TYPE, content_type)
                .body(())
                .expect("request")
        };
        assert_eq!(Protocol::of(&request("application/grpc")), Protocol::Grpc);
        assert_eq!(
            Protocol::of(&request("application/grpc-web+proto")),
            Protocol::GrpcWeb
        );
        let mut tagged = request("application/grpc");
        Protocol::Connect.tag(&mut tagged);
        Protocol::Sse.tag(&mut tagged);
        assert_eq!(
            Protocol::of(&tagged),
            Protocol::Connect,
            "the first tag stays"
        );
        for (i, p) in Protocol::ALL.iter().enumerate() {
            assert_eq!(p.index(), i);
        }
    }
}
