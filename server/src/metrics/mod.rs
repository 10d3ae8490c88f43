//! Prometheus metrics, served at `/metrics` on the server's port (and on `--metrics-listen`
//! when given), in the OpenMetrics text format or Prometheus's 0.0.4 text format, as the
//! scraper asks; encoded by `prometheus-client`, the Prometheus project's Rust library.
//!
//! - [`grpc`]: go-grpc-prometheus's `grpc_server_*` families, measured by a tower layer;
//! - [`records`]: records published and delivered, by topic;
//! - [`stages`]: the `streamgate_*` families read from the stages' counters, the open
//!   streams and the consumer lag at each scrape;
//! - [`process`]: `process_*` (CPU, memory, file descriptors) from `/proc`;
//! - [`labels`]: the bound on label values clients choose (topics, groups);
//! - [`endpoint`]: the HTTP side: authentication, formats, the optional second port.

mod endpoint;
mod grpc;
mod labels;
mod process;
mod records;
mod stages;

use std::sync::Arc;

use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

pub use self::endpoint::{MetricsEndpoint, MetricsEndpointLayer};
use self::grpc::GrpcMetrics;
pub use self::grpc::GrpcMetricsLayer;
pub use self::records::RecordMetrics;
use self::stages::ServerCollector;
use crate::admission::Admission;
use crate::kafka::lag::LagTable;
use crate::stages::StageCounters;

/// The encoded descriptors of every service the port serves: the methods that get labels.
const SERVED: [&[u8]; 4] = [
    streamgate::proto::FILE_DESCRIPTOR_SET,
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
];

/// What the metrics read from.
pub struct Sources {
    /// The record counters the handlers update.
    pub records: RecordMetrics,
    /// The stages' counters.
    pub stages: StageCounters,
    /// The stream slots in use.
    pub admission: Arc<Admission>,
    /// The consumer lag reports.
    pub lag: Arc<LagTable>,
    /// Connections refused or timed out, on every port.
    pub connections: Arc<crate::connections::Counters>,
    /// What the principals' quotas refused and slowed.
    pub quotas: Arc<crate::quota::Quotas>,
    /// Distinct values each client-chosen label (group, topic) may take.
    pub max_label_values: usize,
}

/// The server's metrics registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    grpc: Arc<GrpcMetrics>,
}

/// How a scrape wants the metrics written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (`application/openmetrics-text`).
    OpenMetrics,
    /// Prometheus text 0.0.4 (`text/plain`), for older scrapers and `promtool`.
    Prometheus,
}

impl Metrics {
    /// Registers every family.
    pub fn new(sources: Sources) -> Arc<Self> {
        let mut registry = Registry::default();
        registry.register(
            "streamgate_build",
            "The version of this streamgate-server",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        let grpc = GrpcMetrics::register(&mut registry, &SERVED);
        sources.records.register(&mut registry);
        registry.register_collector(Box::new(ServerCollector {
            stages: sources.stages,
            admission: sources.admission,
            records: sources.records,
            lag: sources.lag,
            connections: sources.connections,
            quotas: sources.quotas,
            max_label_values: sources.max_label_values,
        }));
        registry.register_collector(Box::new(process::ProcessCollector));
        Arc::new(Self { registry, grpc })
    }

    /// The layer that measures gRPC calls.
    pub fn grpc_layer(&self) -> GrpcMetricsLayer {
        GrpcMetricsLayer(self.grpc.clone())
    }

    /// Every family, as text in `format`.
    pub fn render(&self, format: Format) -> String {
        let mut out = String::new();
        let encoded = match format {
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.registry)
            }
            Format::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            }
        };
        // Writing into a String does not fail; a collector that did would leave a partial
        // page, which a scraper reports as an error.
        if let Err(e) = encoded {
            tracing::warn!(error = %e, "encoding the metrics failed");
        }
        out
    }
}
