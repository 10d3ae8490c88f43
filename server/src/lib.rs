//! streamgate-server: the EventGateway gRPC service in front of Kafka.
//!
//! Layout, one module per concern:
//! - [`config`]: flags and environment variables.
//! - [`server`]: `run` — one listener for gRPC, grpc-web, reflection and health; shutdown.
//! - [`gateway`]: the RPC handlers (publish, subscribe, topics, supplier control).
//! - [`supplier`]: the PageEvent supplier task (the seed's `pageEventSupplier`).
//! - [`analytics`]: windowed page counts: the worker (R2 -> R4, exactly once) and the
//!   stats hub behind WatchPageStats.
//! - [`web`]: the dashboard's files, compiled in and served at `/`.
//! - [`transform`]: the R2 -> R3 transform function (the seed's `pageEventFunction`).
//! - [`log_consumer`]: logs every record of R1 (the seed's `pageEventConsumer`).
//! - [`kafka`]: the cluster (external or embedded), the shared producer, topic admin.
//! - [`error`]: request errors and their gRPC status codes.
//! - [`deadline`], [`timestamps`], [`shutdown`], [`oversize`], [`throttle`], [`preview`]:
//!   small shared pieces.

pub mod analytics;
pub mod config;
pub mod error;
pub mod gateway;
pub mod http;
pub mod kafka;
pub mod log_consumer;
pub mod logs;
pub mod server;
pub mod signals;
pub mod supplier;
pub mod transform;

pub use config::Config;
pub use kafka::Kafka;
pub use server::{ServeError, banner, run};
