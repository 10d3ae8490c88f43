//! The metadata and admin client: list topics, look up the partitions and watermarks of
//! one, and create missing topics on an external cluster (for [`super::TopicCreator`], the one
//! path that creates topics). librdkafka's calls here block, so each runs on tokio's
//! blocking pool and is bounded by a timeout.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::{ClientSettings, KafkaSetupError};

/// A topic and its partitions, with their offsets when asked for.
#[derive(Debug, Clone)]
pub struct TopicDescription {
    /// Topic name.
    pub name: String,
    /// Partitions, sorted by id.
    pub partitions: Vec<PartitionOffsets>,
}

/// One partition: its leader and, when fetched, its low and high watermarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// Partition id.
    pub partition: i32,
    /// Leader broker id, -1 if none.
    pub leader: i32,
    /// Oldest stored offset (0 when not fetched).
    pub low: i64,
    /// Offset of the next record (0 when not fetched).
    pub high: i64,
}

/// A metadata and admin client, shared by every request handler.
#[derive(Clone)]
pub struct Admin {
    pub(super) client: Arc<AdminClient<DefaultClientContext>>,
    bootstrap: String,
}

impl Admin {
    /// Creates the client. It connects lazily: nothing here waits for the broker.
    pub fn connect(settings: &ClientSettings) -> Result<Self, KafkaError> {
        let client = settings
            .config(|c| {
                // The admin client is a producer handle inside librdkafka; without this a
                // metadata lookup of a missing topic could create it on brokers that allow
                // auto-creation.
                c.set("allow.auto.create.topics", "false");
            })
            .create()?;
        Ok(Self {
            client: Arc::new(client),
            bootstrap: settings.bootstrap().to_owned(),
        })
    }

    /// The partitions of `topic`, `Ok(None)` if the topic does not exist.
    pub async fn describe(
        &self,
        topic: &str,
        with_offsets: bool,
        timeout: Duration,
    ) -> Result<Option<TopicDescription>, KafkaSetupError> {
        let admin = self.clone();
        let topic = topic.to_owned();
        self.blocking(timeout, move || {
            let mut found = admin.fetch(Some(&topic), with_offsets, timeout)?;
            Ok(found.pop().filter(|t| !t.partitions.is_empty()))
        })
        .await
    }

    /// Every topic of the cluster, sorted by name, with offsets.
    pub async fn list(
        &self,
        include_internal: bool,
        timeout: Duration,
    ) -> Result<Vec<TopicDescription>, KafkaSetupError> {
        let admin = self.clone();
        self.blocking(timeout, move || {
            let mut topics = admin.fetch(None, true, timeout)?;
            if !include_internal {
                topics.retain(|t| !t.name.starts_with("__"));
            }
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(topics)
        })
        .await
    }

    /// The low and high watermarks of one partition.
    pub async fn watermarks(
        &self,
        topic: &str,
        partition: i32,
        timeout: Duration,
    ) -> Result<(i64, i64), KafkaSetupError> {
        let admin = self.clone();
        let topic = topic.to_owned();
        self.blocking(timeout, move || {
            admin
                .client
                .inner()
                .fetch_watermarks(&topic, partition, timeout)
                .map_err(|e| admin.unreachable(timeout, e))
        })
        .await
    }

    fn fetch(
        &self,
        topic: Option<&str>,
        with_offsets: bool,
        timeout: Duration,
    ) -> Result<Vec<TopicDescription>, KafkaSetupError> {
        let metadata = self
            .client
            .inner()
            .fetch_metadata(topic, timeout)
            .map_err(|e| self.unreachable(timeout, e))?;
        let mut topics = Vec::with_capacity(metadata.topics().len());
        for t in metadata.topics() {
            if t.error().is_some() {
                // Unknown topic (or one being deleted): reported as absent.
                continue;
            }
            let mut partitions = Vec::with_capacity(t.partitions().len());
            for p in t.partitions() {
                let (low, high) = if with_offsets {
                    self.client
                        .inner()
                        .fetch_watermarks(t.name(), p.id(), timeout)
                        .map_err(|e| self.unreachable(timeout, e))?
                } else {
                    (0, 0)
                };
                partitions.push(PartitionOffsets {
                    partition: p.id(),
                    leader: p.leader(),
                    low,
                    high,
                });
            }
            partitions.sort_by_key(|p| p.partition);
            topics.push(TopicDescription {
                name: t.name().to_owned(),
                partitions,
            });
        }
        Ok(topics)
    }

    /// Creates the topics in `names` that are missing (external clusters; the embedded
    /// broker has no CreateTopics).
    pub(super) async fn create_missing(
        &self,
        names: &[&str],
        partitions: i32,
        replication_factor: i32,
        timeout: Duration,
    ) -> Result<(), KafkaSetupError> {
        let new_topics: Vec<NewTopic<'_>> = names
            .iter()
            .map(|name| {
                NewTopic::new(
                    name,
                    partitions,
                    TopicReplication::Fixed(replication_factor),
                )
            })
            .collect();
        let options = AdminOptions::new()
            .operation_timeout(Some(timeout))
            .request_timeout(Some(timeout));
        let results =
            tokio::time::timeout(timeout, self.client.create_topics(&new_topics, &options))
                .await
                .map_err(|_| KafkaSetupError::Unreachable {
                    bootstrap: self.bootstrap.clone(),
                    timeout,
                    detail: "no answer to CreateTopics".into(),
                })?
                .map_err(|e| self.unreachable(timeout, e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(KafkaSetupError::Refused {
                        action: format!("create topic {name}"),
                        detail: code.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    fn unreachable(&self, timeout: Duration, error: KafkaError) -> KafkaSetupError {
        KafkaSetupError::Unreachable {
            bootstrap: self.bootstrap.clone(),
            timeout,
            detail: error.to_string(),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        timeout: Duration,
        work: impl FnOnce() -> Result<T, KafkaSetupError> + Send + 'static,
    ) -> Result<T, KafkaSetupError> {
        // The inner calls carry the timeout too; this outer one also covers calls that chain
        // several requests (one watermark lookup per partition).
        match tokio::time::timeout(timeout, tokio::task::spawn_blocking(work)).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(KafkaSetupError::Refused {
                action: "answer a metadata request".into(),
                detail: join.to_string(),
            }),
            Err(_) => Err(KafkaSetupError::Unreachable {
                bootstrap: self.bootstrap.clone(),
                timeout,
                detail: "metadata request timed out".into(),
            }),
        }
    }
}
