//! streamgate-server: the EventGateway gRPC service in front of Kafka.
//!
//! Layout, one module per concern (`docs/architecture.md` has the whole picture):
//! - [`config`]: the flags and their environment variables; [`settings`]: the typed
//!   settings resolved and validated once from them.
//! - [`server`]: `run`, the composition root — settings, Kafka, stages, router, serve,
//!   drain — and [`drain`], the bounded shutdown; [`signals`]: SIGINT/SIGTERM.
//! - [`stages`]: starts and stops the background stages: the [`supplier`] (the seed's
//!   `pageEventSupplier`), the [`transform`] (R2 -> R3), the [`log_consumer`] (R1), and the
//!   [`analytics`] worker (R2 -> R4, exactly once) and stats hub (WatchPageStats).
//! - [`auth`]: who may call (tokens, JWTs, client certificates) and what they may do;
//!   [`gateway`]: the RPC handlers; [`error`]: request errors and their gRPC codes.
//! - [`tls`]: TLS and mutual TLS on the one port, certificates reloaded while serving, and
//!   [`tls::client_subject`] for authentication.
//! - [`http`]: what sits in front of gRPC on the same port: the dashboard, CORS, the
//!   length-error mapping.
//! - [`kafka`]: the cluster (external or embedded), client settings, the shared producer,
//!   consumer helpers, metadata, and the one path that creates topics.
//! - [`supervisor`]: panics caught, counted, and long-lived tasks restarted.
//! - [`banner`](mod@banner): the start-up banner; [`logs`]: throttled logs and safe previews of
//!   untrusted bytes.

pub mod analytics;
pub mod auth;
pub mod banner;
pub mod config;
pub mod drain;
pub mod error;
pub mod gateway;
pub mod http;
pub mod kafka;
pub mod log_consumer;
pub mod logs;
pub mod metrics;
pub mod server;
pub mod settings;
pub mod signals;
pub mod stages;
pub mod supervisor;
pub mod supplier;
pub mod tls;
pub mod transform;

pub use banner::banner;
pub use config::Config;
pub use kafka::Kafka;
pub use server::{ServeError, run};
pub use settings::Settings;
