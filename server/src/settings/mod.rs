//! The server's settings: typed values — topic names, the window shape, durations, limits,
//! the loaded TLS and authentication files — resolved once from the flags ([`Config`](crate::config::Config)) by
//! [`Settings::resolve`] (`resolve.rs`) and validated there, so that a bad flag stops the
//! server at start-up with a message that names it, and nothing downstream parses or
//! re-checks a flag. The server is built from these; tests build them directly.
//!
//! The types of its fields that other modules own (the window shape, the authenticator and
//! its sources, the TLS files, the supplier's settings) are re-exported here, so that a
//! program building settings — the test kit, say — finds every piece in one place.
//!
//! Nothing here is stored twice: what follows from other settings (the stages' dead-letter
//! topics, the transform's default input, what only admins may touch) is derived by a
//! method, so that changing one setting cannot leave another stale.

mod resolve;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use streamgate::topic::TopicName;

pub use crate::analytics::WindowSpec;
use crate::auth::Reserved;
pub use crate::auth::{Authenticator, JwtExpected, SessionLimits, Sources as AuthSources};
pub use crate::connections::Caps as ConnectionCaps;
pub use crate::http::WatchCaps as HealthWatchCaps;
use crate::kafka::dead_letter;
pub use crate::quota::QuotaSettings;
use crate::supplier;
pub use crate::supplier::Settings as SupplierSettings;
pub use crate::tls::{TlsFiles, TlsSettings};

/// A flag whose value the server cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct InvalidSetting {
    /// The flag (or flags) at fault, as the user typed them.
    pub flag: &'static str,
    /// What is wrong and what is allowed.
    pub message: String,
}

pub(crate) fn invalid<T>(
    flag: &'static str,
    message: impl Into<String>,
) -> Result<T, InvalidSetting> {
    Err(InvalidSetting {
        flag,
        message: message.into(),
    })
}

/// Everything the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to serve.
    pub listen: SocketAddr,
    /// The Kafka cluster: an external one, or the embedded broker.
    pub kafka: KafkaSettings,
    /// TLS on the port, when its certificate and key are given.
    pub tls: Option<TlsSettings>,
    /// The server's own topics and how to create them.
    pub topics: Topics,
    /// Call and drain budgets.
    pub timeouts: Timeouts,
    /// Request and stream limits.
    pub limits: Limits,
    /// HTTP/2 and browser settings of the one port.
    pub http: HttpSettings,
    /// The supplier stage.
    pub supplier: SupplierStage,
    /// The transform stage.
    pub transform: TransformStage,
    /// Whether the log consumer prints the log topic (R1).
    pub log_consumer: bool,
    /// The analytics worker and the stats hub.
    pub analytics: Analytics,
    /// How long the producer waits to fill a batch.
    pub linger: Duration,
    /// `fetch.wait.max.ms` of stream consumers, when set (`--subscribe-fetch-wait`).
    pub subscribe_fetch_wait: Option<Duration>,
    /// The second address serving /metrics, if any (`--metrics-listen`).
    pub metrics_listen: Option<SocketAddr>,
    /// Distinct values of a client-chosen metric label (`--metrics-max-label-values`).
    pub metrics_max_label_values: usize,
    /// Turns credentials into principals; open when no source is configured.
    pub authenticator: Arc<Authenticator>,
    /// Whether Publish may create a missing topic (`--auto-create-topics`).
    pub auto_create_topics: bool,
    /// How many EventSource sessions there may be, and for how long.
    pub event_sessions: SessionLimits,
    /// The per-topic schemas (`--schemas` and the built-in ones), re-read on SIGHUP.
    pub schemas: Arc<crate::schema::Live>,
}

/// Which Kafka cluster, and how every client talks to it.
#[derive(Debug, Clone, Default)]
pub struct KafkaSettings {
    /// Bootstrap servers; `None` starts the embedded broker.
    pub brokers: Option<String>,
    /// librdkafka properties for every client (`-X KEY=VALUE`), applied last.
    pub options: Vec<(String, String)>,
    /// The embedded broker may run although authentication is on
    /// (`--insecure-embedded-broker`).
    pub insecure_embedded: bool,
}

/// The server's topics (the seed's R1, R3 and R4; R2 is the supplier's topic), created when
/// missing.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Published PageEvents, printed by the log consumer (R1).
    pub log: TopicName,
    /// The transform's input, when moved off the supplier's topic (R2).
    pub transform_input: Option<TopicName>,
    /// The transform's output (R3).
    pub transform_output: TopicName,
    /// Windowed counts (R4).
    pub stats: TopicName,
    /// Partitions of the topics the server creates.
    pub partitions: i32,
    /// Replication factor of the topics the server creates.
    pub replication_factor: i32,
}

/// Time budgets.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Deadline of a call whose client sets none; bound on every Kafka call.
    pub request: Duration,
    /// The longest a shutdown may take.
    pub shutdown: Duration,
}

/// Limits on requests and streams.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest record accepted by Publish, in bytes.
    pub max_message_bytes: usize,
    /// Subscribe streams served at once.
    pub max_subscriptions: usize,
    /// Records buffered per subscription.
    pub subscribe_buffer: usize,
    /// Headers per published record.
    pub max_headers: usize,
    /// How far ahead of the server's clock a published timestamp may be.
    pub max_timestamp_ahead: Duration,
    /// PublishStreams served at once.
    pub max_publish_streams: usize,
    /// WatchPageStats streams served at once.
    pub max_watchers: usize,
    /// Topics one Subscribe may name.
    pub max_subscribe_topics: usize,
    /// Bytes buffered per subscription.
    pub subscribe_buffer_bytes: usize,
    /// Longest page name the transform and the analytics accept, in bytes.
    pub max_page_name_bytes: usize,
    /// Largest `max_outstanding_records` of a Consume stream.
    pub consume_max_outstanding: usize,
    /// Bytes of unacknowledged records per Consume stream.
    pub consume_max_outstanding_bytes: usize,
    /// Each principal's default share of the stream slots.
    pub principal_max_subscriptions: usize,
    /// Each principal's default share of the PublishStream slots.
    pub principal_max_publish_streams: usize,
    /// Each principal's default share of the watcher slots.
    pub principal_max_watchers: usize,
    /// Slots of each kind only admins may take.
    pub admin_reserved_slots: usize,
    /// Each principal's default rate quotas.
    pub quotas: QuotaSettings,
    /// Dead-letter topics created for Consume streams, at most.
    pub max_dead_letter_topics: usize,
    /// Size and cost of a stream's filter, and the largest value it looks into.
    pub filter: crate::filter::Limits,
    /// The largest value decoded, and the largest JSON it may decode to.
    pub decode: crate::schema::DecodeLimits,
}

/// The one port's transport settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Other browser origins allowed by CORS; empty: same origin only.
    pub cors_origins: Vec<String>,
    /// Host names a plaintext port answers to besides IP literals and localhost; `None`:
    /// any (`--allowed-hosts '*'`).
    pub allowed_hosts: Option<Vec<String>>,
    /// HTTP/2 keepalive ping interval.
    pub keepalive: Duration,
    /// How long a keepalive ping may go unanswered.
    pub keepalive_timeout: Duration,
    /// HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// Health watches open at once, in total and per connection.
    pub health_watches: HealthWatchCaps,
    /// Connection caps and the first-bytes timeout of each port.
    pub connections: ConnectionCaps,
}

/// The supplier as it starts.
#[derive(Debug, Clone)]
pub struct SupplierStage {
    /// What it generates, and where to: its topic is R2, the input of the transform and of
    /// the analytics.
    pub settings: supplier::Settings,
    /// Whether it runs from the start.
    pub running: bool,
    /// The highest rate ControlSupplier accepts.
    pub max_rate: f64,
}

/// The transform stage.
#[derive(Debug, Clone)]
pub struct TransformStage {
    /// Whether this server runs it.
    pub run: bool,
    /// Its consumer group (reserved to admins whether or not it runs here).
    pub group: String,
}

/// Windowed counts: the worker (when it runs here) and the hub (always).
#[derive(Debug, Clone)]
pub struct Analytics {
    /// Whether this server runs a worker.
    pub worker: bool,
    /// The workers' consumer group.
    pub group: String,
    /// This worker's transactional id; derived from the group, host and port when absent.
    pub transactional_id: Option<String>,
    /// The window shape.
    pub spec: WindowSpec,
    /// Events count only with a duration above this (ms).
    pub min_duration_ms: i64,
    /// How often counts are written and watchers get a message.
    pub tick: Duration,
    /// History the hub keeps; pages not seen within it are forgotten.
    pub retention: Duration,
    /// How far ahead of the worker's clock an event may be and still count.
    pub max_event_skew: Duration,
    /// Pages counted per window before "(other)".
    pub max_pages: usize,
}

impl Settings {
    /// The embedded broker's port takes any local process without authentication: with
    /// authentication on, that side door needs `--insecure-embedded-broker`.
    pub fn check_embedded_broker(&self, embedded: bool) -> Result<(), InvalidSetting> {
        if !embedded || !self.authenticator.is_required() || self.kafka.insecure_embedded {
            return Ok(());
        }
        invalid(
            "--brokers",
            "authentication is on, but the embedded broker (no --brokers) lets any local process \
             read and write every topic through its port without a token: give --brokers of a \
             cluster with its own security, or pass --insecure-embedded-broker if every user of \
             this machine is trusted",
        )
    }

    /// Replaces the schemas with the built-in ones for the topics as now set, plus those
    /// `file` declares (what `--schemas` does), failing with the file's error.
    pub fn use_schemas(&mut self, file: Option<std::path::PathBuf>) -> Result<(), String> {
        let own = crate::schema::ServerTopics {
            r2: self.supplier_topic().to_string(),
            r3: self.topics.transform_output.to_string(),
            r4: self.topics.stats.to_string(),
        };
        let live = crate::schema::Live::load(file, own).map_err(|e| e.to_string())?;
        self.schemas = Arc::new(live);
        Ok(())
    }

    /// The supplier's topic (R2): the transform's and the analytics' input.
    pub fn supplier_topic(&self) -> &TopicName {
        &self.supplier.settings.topic
    }

    /// The transform's input: R2 unless `--transform-input` moved it.
    pub fn transform_input(&self) -> &TopicName {
        self.topics
            .transform_input
            .as_ref()
            .unwrap_or_else(|| self.supplier_topic())
    }

    /// The transform's dead letters: `error.<transform input>.<transform group>`.
    pub fn transform_dead_letters(&self) -> Result<TopicName, InvalidSetting> {
        dead_letters(
            "--transform-group",
            self.transform_input(),
            &self.transform.group,
        )
    }

    /// The analytics worker's dead letters: `error.<R2>.<analytics group>`.
    pub fn analytics_dead_letters(&self) -> Result<TopicName, InvalidSetting> {
        dead_letters(
            "--analytics-group",
            self.supplier_topic(),
            &self.analytics.group,
        )
    }

    /// The data topics the server owns (R1–R4 and the transform's input), each once, in
    /// flag order.
    pub fn data_topics(&self) -> Vec<&TopicName> {
        let mut topics: Vec<&TopicName> = Vec::with_capacity(5);
        for topic in [
            &self.topics.log,
            self.supplier_topic(),
            &self.topics.transform_output,
            &self.topics.stats,
            self.transform_input(),
        ] {
            if !topics.contains(&topic) {
                topics.push(topic);
            }
        }
        topics
    }

    /// The topics the server creates when missing: its data topics, then the dead-letter
    /// topics of the stages that run here.
    pub fn topics_to_create(&self) -> Result<Vec<TopicName>, InvalidSetting> {
        let mut topics: Vec<TopicName> = self.data_topics().into_iter().cloned().collect();
        if self.transform.run {
            topics.push(self.transform_dead_letters()?);
        }
        if self.analytics.worker {
            topics.push(self.analytics_dead_letters()?);
        }
        Ok(topics)
    }

    /// What only admins may touch: the stats topic (a forged record there is a forged
    /// count), the server's own groups, wherever their stages run, and (to manage through
    /// the admin API) the topics it creates.
    pub fn reserved(&self) -> Reserved {
        Reserved {
            stats_topic: self.topics.stats.to_string(),
            server_topics: self
                .topics_to_create()
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect(),
            server_groups: vec![self.analytics.group.clone(), self.transform.group.clone()],
        }
    }
}

fn dead_letters(
    flag: &'static str,
    input: &TopicName,
    group: &str,
) -> Result<TopicName, InvalidSetting> {
    dead_letter::topic(input, group).or_else(|e| {
        invalid(
            flag,
            format!("must be usable in the dead-letter topic error.{input}.<group>: {e}"),
        )
    })
}

#[cfg(test)]
mod tests;
