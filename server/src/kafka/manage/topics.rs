//! Topics: create, delete, describe (partitions with replicas, in-sync replicas and
//! watermarks; configs), alter configs.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;

use super::configs::{self, ConfigInfo, ConfigSource};
use super::{AdminError, Manager};

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopicSpec {
    /// Its name, already checked against Kafka's rules.
    pub name: String,
    /// Partitions, at least 1.
    pub partitions: i32,
    /// Replicas; `None`: the broker's default.
    pub replication_factor: Option<i32>,
    /// Topic configs.
    pub configs: Vec<(String, String)>,
    /// Only check it.
    pub validate_only: bool,
}

/// A topic as described.
#[derive(Debug, Clone)]
pub struct TopicInfo {
    /// Its name.
    pub name: String,
    /// Its partitions, by id.
    pub partitions: Vec<PartitionInfo>,
    /// Its configs sorted by name, or why the broker could not list them.
    pub configs: Result<Vec<ConfigInfo>, String>,
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Its id.
    pub partition: i32,
    /// Its leader, -1 if none.
    pub leader: i32,
    /// Its replicas.
    pub replicas: Vec<i32>,
    /// Its in-sync replicas.
    pub isr: Vec<i32>,
    /// Oldest offset.
    pub low: i64,
    /// Next offset.
    pub high: i64,
}

impl Manager {
    /// Creates a topic; `AlreadyExists` if it exists.
    pub async fn create_topic(
        &self,
        spec: NewTopicSpec,
        timeout: Duration,
    ) -> Result<(), AdminError> {
        configs::check_all(
            spec.configs
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_str()))),
        )?;
        if self.partitions(&spec.name, timeout).await?.is_some() {
            return Err(AdminError::AlreadyExists(format!(
                "topic {:?} already exists",
                spec.name
            )));
        }
        match &self.embedded {
            Some(broker) => {
                if !spec.configs.is_empty() {
                    self.lacks("DescribeConfigs or AlterConfigs", "keep topic configs")?;
                }
                if spec.replication_factor.is_some_and(|r| r != 1) {
                    return Err(AdminError::Invalid(
                        "the embedded broker keeps one replica of each partition: replication_factor must be 1 (or left out)".into(),
                    ));
                }
                if !spec.validate_only {
                    broker.create_topic(&spec.name, spec.partitions).await?;
                }
                Ok(())
            }
            None => self.create_on_cluster(&spec, timeout).await,
        }
    }

    async fn create_on_cluster(
        &self,
        spec: &NewTopicSpec,
        timeout: Duration,
    ) -> Result<(), AdminError> {
        let replication = TopicReplication::Fixed(spec.replication_factor.unwrap_or(-1));
        let mut topic = NewTopic::new(&spec.name, spec.partitions, replication);
        for (name, value) in &spec.configs {
            topic = topic.set(name, value);
        }
        let options = options(timeout).validate_only(spec.validate_only);
        let results =
            tokio::time::timeout(timeout, self.admin.client.create_topics([&topic], &options))
                .await
                .map_err(|_| self.unreachable(timeout, &no_answer("CreateTopics")))?
                .map_err(|e| self.failed("CreateTopics", timeout, &e))?;
        match results.into_iter().next() {
            Some(Ok(_)) | None => Ok(()),
            Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Err(AdminError::AlreadyExists(
                format!("topic {:?} already exists", spec.name),
            )),
            Some(Err((
                _,
                code @ (RDKafkaErrorCode::InvalidPartitions
                | RDKafkaErrorCode::InvalidReplicationFactor
                | RDKafkaErrorCode::InvalidReplicaAssignment
                | RDKafkaErrorCode::InvalidConfig
                | RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::PolicyViolation),
            ))) => Err(AdminError::Invalid(format!(
                "the broker refused topic {:?}: {code}",
                spec.name
            ))),
            Some(Err((_, code))) => Err(self.refused(&format!("create topic {}", spec.name), code)),
        }
    }

    /// Deletes a topic; `NotFound` if it does not exist.
    pub async fn delete_topic(&self, name: &str, timeout: Duration) -> Result<(), AdminError> {
        self.lacks("DeleteTopics", "delete topics")?;
        let results = tokio::time::timeout(
            timeout,
            self.admin.client.delete_topics(&[name], &options(timeout)),
        )
        .await
        .map_err(|_| self.unreachable(timeout, &no_answer("DeleteTopics")))?
        .map_err(|e| self.failed("DeleteTopics", timeout, &e))?;
        match results.into_iter().next() {
            Some(Ok(_)) | None => Ok(()),
            Some(Err((_, RDKafkaErrorCode::UnknownTopicOrPartition))) => Err(not_found(name)),
            Some(Err((_, code))) => Err(self.refused(&format!("delete topic {name}"), code)),
        }
    }

    /// A topic's partitions and configs; `NotFound` if it does not exist.
    pub async fn describe_topic(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<TopicInfo, AdminError> {
        let partitions = self
            .partitions(name, timeout)
            .await?
            .ok_or_else(|| not_found(name))?;
        let partitions = self.with_watermarks(name, partitions, timeout).await?;
        let configs = match self.embedded {
            Some(_) => Err(
                "the embedded broker has no DescribeConfigs: it keeps no topic configs".to_owned(),
            ),
            None => match self.configs(name, timeout).await? {
                Ok(configs) if configs.is_empty() => {
                    Err("the broker listed no configs for this topic".to_owned())
                }
                listed => listed,
            },
        };
        Ok(TopicInfo {
            name: name.to_owned(),
            partitions,
            configs,
        })
    }

    /// Sets (`Some`) or deletes (`None`) configs of a topic, leaving the others as they are.
    /// Kafka's AlterConfigs replaces a topic's whole set, so the topic's own configs are read
    /// first and sent again with the changes: a change made by someone else between the two
    /// requests is lost (IncrementalAlterConfigs would not lose it; librdkafka's Rust binding
    /// does not offer it).
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        changes: &[(String, Option<String>)],
        validate_only: bool,
        timeout: Duration,
    ) -> Result<(), AdminError> {
        configs::check_all(changes.iter().map(|(k, v)| (k.as_str(), v.as_deref())))?;
        self.partitions(name, timeout)
            .await?
            .ok_or_else(|| not_found(name))?;
        self.lacks("AlterConfigs", "change topic configs")?;
        // Without the topic's own configs, AlterConfigs would drop those not named here.
        let current = match self.configs(name, timeout).await? {
            Ok(configs) => configs,
            Err(why) => {
                return Err(AdminError::Unimplemented(format!(
                    "a config change needs the topic's current configs, which the broker does not give: {why}"
                )));
            }
        };
        let mut own: BTreeMap<String, String> = current
            .into_iter()
            .filter(|c| c.source == ConfigSource::Topic)
            .filter_map(|c| c.value.map(|v| (c.name, v)))
            .collect();
        for (key, value) in changes {
            match value {
                Some(value) => own.insert(key.clone(), value.clone()),
                None => own.remove(key),
            };
        }
        let mut alter = AlterConfig::new(ResourceSpecifier::Topic(name));
        for (key, value) in &own {
            alter = alter.set(key, value);
        }
        let options = options(timeout).validate_only(validate_only);
        let results =
            tokio::time::timeout(timeout, self.admin.client.alter_configs([&alter], &options))
                .await
                .map_err(|_| self.unreachable(timeout, &no_answer("AlterConfigs")))?
                .map_err(|e| self.failed("AlterConfigs", timeout, &e))?;
        match results.into_iter().next() {
            Some(Ok(_)) | None => Ok(()),
            Some(Err((
                _,
                code @ (RDKafkaErrorCode::InvalidConfig | RDKafkaErrorCode::PolicyViolation),
            ))) => Err(AdminError::Invalid(format!(
                "the broker refused the configs of {name:?}: {code}"
            ))),
            Some(Err((_, RDKafkaErrorCode::UnknownTopicOrPartition))) => Err(not_found(name)),
            Some(Err((_, code))) => {
                Err(self.refused(&format!("alter the configs of {name}"), code))
            }
        }
    }

    /// The topic's partitions from the metadata, `None` if it does not exist.
    pub(super) async fn partitions(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<Vec<PartitionInfo>>, AdminError> {
        let (manager, name) = (self.clone(), name.to_owned());
        self.blocking(timeout, move || {
            let metadata = manager
                .admin
                .client
                .inner()
                .fetch_metadata(Some(&name), timeout)
                .map_err(|e| manager.unreachable(timeout, &e))?;
            let Some(topic) = metadata.topics().iter().find(|t| t.name() == name) else {
                return Ok(None);
            };
            if topic.error().is_some() || topic.partitions().is_empty() {
                return Ok(None);
            }
            let mut partitions: Vec<PartitionInfo> = topic
                .partitions()
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.id(),
                    leader: p.leader(),
                    replicas: p.replicas().to_vec(),
                    isr: p.isr().to_vec(),
                    low: 0,
                    high: 0,
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            Ok(Some(partitions))
        })
        .await
    }

    async fn with_watermarks(
        &self,
        name: &str,
        mut partitions: Vec<PartitionInfo>,
        timeout: Duration,
    ) -> Result<Vec<PartitionInfo>, AdminError> {
        let (manager, name) = (self.clone(), name.to_owned());
        self.blocking(timeout, move || {
            for p in &mut partitions {
                (p.low, p.high) = manager
                    .admin
                    .client
                    .inner()
                    .fetch_watermarks(&name, p.partition, timeout)
                    .map_err(|e| manager.unreachable(timeout, &e))?;
            }
            Ok(partitions)
        })
        .await
    }

    /// The topic's configs, sorted; `Ok(Err(why))` when the broker lists none.
    async fn configs(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Result<Vec<ConfigInfo>, String>, AdminError> {
        let resource = ResourceSpecifier::Topic(name);
        let results = tokio::time::timeout(
            timeout,
            self.admin
                .client
                .describe_configs([&resource], &options(timeout)),
        )
        .await
        .map_err(|_| self.unreachable(timeout, &no_answer("DescribeConfigs")))?
        .map_err(|e| self.failed("DescribeConfigs", timeout, &e));
        let results = match results {
            Ok(results) => results,
            Err(AdminError::Unimplemented(why)) => return Ok(Err(why)),
            Err(e) => return Err(e),
        };
        match results.into_iter().next() {
            Some(Ok(resource)) => {
                let mut configs: Vec<ConfigInfo> =
                    resource.entries.iter().map(ConfigInfo::from).collect();
                configs.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(Ok(configs))
            }
            Some(Err(code)) => Ok(Err(format!(
                "the broker did not describe its configs: {code}"
            ))),
            None => Ok(Err("the broker did not answer for this topic".to_owned())),
        }
    }
}

fn options(timeout: Duration) -> AdminOptions {
    AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout))
}

fn not_found(name: &str) -> AdminError {
    AdminError::NotFound(format!("topic {name:?} does not exist"))
}

fn no_answer(api: &str) -> rdkafka::error::KafkaError {
    rdkafka::error::KafkaError::AdminOpCreation(format!("no answer to {api}"))
}
