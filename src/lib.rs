//! The streamgate API crate, shared by the server, the CLI and any Rust client.
//!
//! - [`auth`]: the bearer-token interceptor for clients of a server with authentication.
//! - [`proto`]: the generated protobuf messages and the tonic client and server of
//!   `streamgate.v1.EventGateway` (from `proto/streamgate/v1/*.proto`).
//! - [`record_batch`]: `RecordBatch` by hand, so that a server can send records already
//!   encoded (re-exported as `proto::RecordBatch`).
//! - [`page_event`]: the PageEvent JSON wire format of the seed application, both ways.
//! - [`topic`]: Kafka's topic-name rules, checked before anything reaches a broker.
//! - [`time`]: checked conversions between epoch milliseconds and protobuf time types.

pub mod auth;
pub mod page_event;
pub mod record_batch;
pub mod time;
pub mod topic;

/// Generated protobuf types and gRPC stubs of package `streamgate.v1`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("streamgate.v1");

    pub use crate::record_batch::RecordBatch;

    /// The encoded `FileDescriptorSet` of every streamgate proto file, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/streamgate_descriptor.bin"));
}
