//! Everything about the Kafka side: which cluster we use (an external one or the embedded
//! broker), the client settings every producer and consumer shares, the shared producer,
//! consumer helpers, metadata (`admin`), the offset-by-timestamp search
//! ([`TimestampSearch`]), the one path that creates topics ([`TopicCreator`]) and the consumer
//! lag every group consumer reports ([`lag`]).

mod admin;
pub mod consumer;
pub mod dead_letter;
mod embedded;
pub mod lag;
pub mod manage;
pub(crate) mod producer;
mod timestamp_search;
mod topics;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;

use self::lag::{LagReporter, LagTable};

pub use admin::Admin;
pub use embedded::EmbeddedBroker;
pub use manage::Manager;
pub use producer::{Delivered, Producer, ProducerSettings};
pub use timestamp_search::{Isolation, TimestampSearch};
pub use topics::TopicCreator;

/// Everything needed to configure a Kafka client of this server: cheap to clone, `Send`, so
/// a request handler can build its own consumer.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    bootstrap: String,
    options: Vec<(String, String)>,
    lag: Arc<LagTable>,
}

impl ClientSettings {
    /// A reporter of consumer lag for a new consumer of `group`; its consumer's
    /// configuration also needs [`lag::enable`].
    pub fn lag_reporter(&self, group: &str) -> LagReporter {
        self.lag.reporter(group)
    }

    /// The bootstrap servers.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// A client configuration: shared settings, then the role's own (`role`), then the
    /// operator's `-X` options, which therefore always win — as with kcat's `-X`.
    pub fn config(&self, role: impl FnOnce(&mut ClientConfig)) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("client.id", "streamgate")
            // Fail fast on a wrong address instead of librdkafka's silent retrying.
            .set("socket.connection.setup.timeout.ms", "10000")
            .set("topic.metadata.refresh.interval.ms", "30000");
        role(&mut config);
        for (key, value) in &self.options {
            config.set(key, value);
        }
        config
    }
}

/// The Kafka cluster this server talks to.
pub struct Kafka {
    bootstrap: String,
    options: Vec<(String, String)>,
    embedded: Option<EmbeddedBroker>,
    lag: Arc<LagTable>,
}

/// Errors while setting up or administering the cluster.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    /// The embedded broker could not be started.
    #[error("could not start the embedded broker: {0}")]
    Embedded(String),
    /// The cluster did not answer in time.
    #[error("Kafka at {bootstrap} did not answer within {timeout:?}: {detail}")]
    Unreachable {
        /// The bootstrap servers.
        bootstrap: String,
        /// How long we waited.
        timeout: Duration,
        /// librdkafka's word on it.
        detail: String,
    },
    /// The cluster refused a request.
    #[error("Kafka refused to {action}: {detail}")]
    Refused {
        /// What we asked for.
        action: String,
        /// The broker's error.
        detail: String,
    },
}

impl Kafka {
    /// Starts the embedded, in-memory broker (librdkafka's mock cluster) on a loopback port.
    /// `options` (`-X key=value`) apply to the server's clients of it, as with a cluster.
    pub fn embedded(options: Vec<(String, String)>) -> Result<Self, KafkaSetupError> {
        let broker = EmbeddedBroker::start(1)?;
        Ok(Self {
            bootstrap: broker.bootstrap_servers().to_owned(),
            options,
            embedded: Some(broker),
            lag: Arc::default(),
        })
    }

    /// Uses an external cluster. `options` are extra librdkafka properties (`-X key=value`)
    /// applied to every client, e.g. security settings.
    pub fn external(bootstrap: impl Into<String>, options: Vec<(String, String)>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            options,
            embedded: None,
            lag: Arc::default(),
        }
    }

    /// The bootstrap address, as a Kafka client (kcat -b) wants it.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// The embedded broker, if this is one.
    pub fn embedded_broker(&self) -> Option<&EmbeddedBroker> {
        self.embedded.as_ref()
    }

    /// How this server's Kafka clients are configured.
    pub fn client_settings(&self) -> ClientSettings {
        ClientSettings {
            bootstrap: self.bootstrap.clone(),
            options: self.options.clone(),
            lag: self.lag.clone(),
        }
    }

    /// The lag the group consumers of this process last reported.
    pub fn lag(&self) -> &Arc<LagTable> {
        &self.lag
    }

    /// The configuration of a client with no role settings of its own.
    pub fn client_config(&self) -> ClientConfig {
        self.client_settings().config(|_| {})
    }

    /// Creates every topic in `names` that does not exist yet, with `partitions` partitions
    /// (through [`TopicCreator`], the one path that creates topics).
    pub async fn ensure_topics(
        &self,
        names: &[&str],
        partitions: i32,
        replication_factor: i32,
        timeout: Duration,
    ) -> Result<(), KafkaSetupError> {
        TopicCreator::new(self)?
            .create_missing(names, partitions, replication_factor, timeout)
            .await
    }
}
