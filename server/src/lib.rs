//! streamgate-server: the EventGateway gRPC service in front of Kafka.
//!
//! Layout, one module per concern:
//! - [`config`]: flags and environment variables.
//! - [`server`]: `run` — one listener for gRPC, grpc-web, reflection and health; shutdown.
//! - [`gateway`]: the RPC handlers (publish, subscribe, topics, supplier control).
//! - [`supplier`]: the PageEvent supplier task (the seed's `pageEventSupplier`).
//! - [`kafka`]: the cluster (external or embedded), the shared producer, topic admin.
//! - [`error`]: request errors and their gRPC status codes.
//! - [`deadline`], [`timestamps`], [`shutdown`], [`oversize`]: small shared pieces.

pub mod config;
pub mod deadline;
pub mod error;
pub mod gateway;
pub mod kafka;
pub mod oversize;
pub mod server;
pub mod shutdown;
pub mod supplier;
pub mod timestamps;

pub use config::Config;
pub use kafka::Kafka;
pub use server::{ServeError, banner, run};
