//! streamgate-server: the EventGateway gRPC service in front of Kafka.
//!
//! The modules form layers; each imports only from the layers below it (the test command
//! checks that no import cycle appears). Bottom to top:
//! - utilities: [`logs`] (throttled logs, safe previews of untrusted bytes), [`supervisor`]
//!   (panics caught, counted, tasks restarted), [`signals`] (SIGINT/SIGTERM as a future),
//!   [`connections`] (connection caps, the first-bytes timeout, the descriptor limit);
//! - [`config`]: the flags and their environment variables;
//! - the outside world: [`kafka`] (the cluster, external or embedded; client settings, the
//!   shared producer, consumers, metadata, how topics are created), [`auth`] (who may call
//!   and what they may do), [`tls`] (TLS on the one port), [`http`] (the HTTP layers in front
//!   of gRPC: the host, origin and content-type guard, dashboard files, CORS, the
//!   decode-error mapping);
//! - the stages' own logic: [`analytics`] (the windowed-count worker and the stats hub),
//!   [`supplier`], [`transform`], [`log_consumer`];
//! - [`settings`]: the typed settings, resolved and validated once from the flags;
//! - [`stages`]: starts and stops the background stages;
//! - [`admission`]: the stream slots every long-lived stream takes; [`quota`]: each
//!   principal's rate quotas;
//! - [`metrics`]: Prometheus families and `/metrics`;
//! - [`gateway`]: the RPC handlers and the RPC error;
//! - [`server`]: the composition root — build from settings, serve, drain.
//!
//! The public surface is what the binary and the test kit need: [`Config`], [`settings`]
//! (the typed settings and the types of their fields), [`Kafka`], [`Server`] and
//! [`signals`]. The integration tests reach more through `testing` (the `test-hooks`
//! feature, never on in a release build); the fuzz targets through `fuzzing` (the `fuzz`
//! feature).

mod admission;
mod analytics;
mod auth;
mod config;
mod connections;
mod filter;
mod gateway;
mod http;
mod kafka;
mod log_consumer;
mod logs;
mod metrics;
mod quota;
mod schema;
mod server;
pub mod settings;
pub mod signals;
mod stages;
mod supervisor;
mod supplier;
mod tls;
mod transform;

pub use config::Config;
pub use kafka::Kafka;
pub use server::{ServeError, Server, banner, run};
pub use settings::{InvalidSetting, Settings};

/// What the integration tests and benchmarks (server/tests) reach beyond the public surface:
/// the stages and Kafka clients to drive on their own, and the R4 record format.
#[cfg(feature = "test-hooks")]
pub mod testing {
    pub use crate::analytics::record::StatsRecord;
    pub use crate::analytics::window::PartitionWindows;
    pub use crate::analytics::{Abandon, Worker, WorkerCounters, WorkerSettings};
    pub use crate::kafka::dead_letter::topic as dead_letter_topic;
    pub use crate::kafka::{ClientSettings, Producer, ProducerSettings};
    pub use crate::supervisor::panics;
    pub use crate::supplier::Supplier;
    pub use crate::transform::{Transform, TransformSettings};
}

/// The parsers the fuzz targets (`server/fuzz/`) drive.
#[cfg(feature = "fuzz")]
pub mod fuzzing {
    pub use crate::analytics::record::StatsRecord;
    pub use crate::auth::{Glob, Permission, parse_auth_file};
    pub use crate::filter::{
        Filter, FilterValue, Limits as FilterLimits, RecordView, value_from_json,
    };
    pub use crate::gateway::parse_grpc_timeout;
    pub use crate::schema::{Schemas, ServerTopics};
    pub use crate::supplier::Settings as SupplierSettings;
}
