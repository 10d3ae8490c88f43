//! CreateTopic, DeleteTopic, DescribeTopic, AlterTopicConfigs.

use std::time::Duration;

use streamgate::proto::{
    self, AlterTopicConfigsRequest, AlterTopicConfigsResponse, CreateTopicRequest,
    CreateTopicResponse, DeleteTopicRequest, DeleteTopicResponse, DescribeTopicRequest,
    DescribeTopicResponse, TopicDescription, config_change,
};
use streamgate::topic::TopicName;
use tokio::time::Instant;
use tonic::{Request, Status};

use super::status;
use crate::gateway::error::GatewayError;
use crate::gateway::{State, deadline, principal_of};
use crate::kafka::manage::{ConfigSource, NewTopicSpec, PartitionInfo, TopicInfo};

/// Most partitions a topic may be created with.
const MAX_PARTITIONS: i32 = 10_000;

/// How often a new topic's metadata is looked for until it shows.
const VISIBLE_POLL: Duration = Duration::from_millis(100);

pub async fn create(
    state: &State,
    request: Request<CreateTopicRequest>,
) -> Result<CreateTopicResponse, Status> {
    let principal = principal_of(&request)?;
    let (deadline, budget) = deadline::of(request.metadata(), state.request_timeout);
    let request = request.into_inner();
    let name = topic_name(request.topic)?;
    state
        .access
        .manage_topic(&principal, "CreateTopic", &name)
        .map_err(GatewayError::from)?;
    let partitions = match request.partitions {
        0 => state.default_partitions,
        n if (1..=MAX_PARTITIONS).contains(&n) => n,
        n => {
            return Err(Status::invalid_argument(format!(
                "partitions must be 1 to {MAX_PARTITIONS} (0: the server's --partitions), not {n}"
            )));
        }
    };
    let replication_factor = match request.replication_factor {
        0 => None,
        n if (1..=i32::from(i16::MAX)).contains(&n) => Some(n),
        n => {
            return Err(Status::invalid_argument(format!(
                "replication_factor must be 1 or more (0: the broker's default), not {n}"
            )));
        }
    };
    let mut configs: Vec<(String, String)> = request.configs.into_iter().collect();
    configs.sort();
    let spec = NewTopicSpec {
        name: name.clone(),
        partitions,
        replication_factor,
        configs,
        validate_only: request.validate_only,
    };
    state
        .manager
        .create_topic(spec.clone(), budget)
        .await
        .map_err(status)?;
    if spec.validate_only {
        let mut topic = planned(&spec);
        topic.schema = schema_of(state, &topic.name);
        return Ok(CreateTopicResponse { topic: Some(topic) });
    }
    let topic = visible(state, &name, deadline).await?;
    Ok(CreateTopicResponse { topic: Some(topic) })
}

pub async fn delete(
    state: &State,
    request: Request<DeleteTopicRequest>,
) -> Result<DeleteTopicResponse, Status> {
    let principal = principal_of(&request)?;
    let (_, budget) = deadline::of(request.metadata(), state.request_timeout);
    let name = topic_name(request.into_inner().topic)?;
    state
        .access
        .manage_topic(&principal, "DeleteTopic", &name)
        .map_err(GatewayError::from)?;
    state
        .manager
        .delete_topic(&name, budget)
        .await
        .map_err(status)?;
    state.known_topics.forget(&name);
    Ok(DeleteTopicResponse {})
}

pub async fn describe(
    state: &State,
    request: Request<DescribeTopicRequest>,
) -> Result<DescribeTopicResponse, Status> {
    let principal = principal_of(&request)?;
    let (_, budget) = deadline::of(request.metadata(), state.request_timeout);
    let name = topic_name(request.into_inner().topic)?;
    state
        .access
        .describe_topic(&principal, &name)
        .map_err(GatewayError::from)?;
    let info = state
        .manager
        .describe_topic(&name, budget)
        .await
        .map_err(status)?;
    Ok(DescribeTopicResponse {
        topic: Some(described(state, info)),
    })
}

/// A topic as the broker describes it, with the schema in force for it.
fn described(state: &State, info: TopicInfo) -> TopicDescription {
    let mut topic = to_proto(info);
    topic.schema = schema_of(state, &topic.name);
    topic
}

/// The schema in force for `topic`, as the API shows it.
fn schema_of(state: &State, topic: &str) -> Option<proto::TopicSchema> {
    let schema = state.schemas.current().for_topic(topic)?;
    Some(proto::TopicSchema {
        format: match schema.format() {
            crate::schema::Format::Protobuf => "protobuf",
            crate::schema::Format::JsonSchema => "json_schema",
        }
        .to_owned(),
        pattern: schema.pattern().to_owned(),
        source: schema.source().to_owned(),
        message: schema.message_name().unwrap_or_default().to_owned(),
        definition: schema.definition(),
    })
}

pub async fn alter_configs(
    state: &State,
    request: Request<AlterTopicConfigsRequest>,
) -> Result<AlterTopicConfigsResponse, Status> {
    let principal = principal_of(&request)?;
    let (_, budget) = deadline::of(request.metadata(), state.request_timeout);
    let request = request.into_inner();
    let name = topic_name(request.topic)?;
    state
        .access
        .manage_topic(&principal, "AlterTopicConfigs", &name)
        .map_err(GatewayError::from)?;
    if request.changes.is_empty() {
        return Err(Status::invalid_argument(
            "changes is empty: name at least one config to set or delete",
        ));
    }
    let mut changes = Vec::with_capacity(request.changes.len());
    for change in request.changes {
        let value = match change.operation {
            Some(config_change::Operation::Set(value)) => Some(value),
            Some(config_change::Operation::Delete(true)) => None,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "the change of {:?} says neither set nor delete",
                    change.name.chars().take(100).collect::<String>()
                )));
            }
        };
        changes.push((change.name, value));
    }
    state
        .manager
        .alter_topic_configs(&name, &changes, request.validate_only, budget)
        .await
        .map_err(status)?;
    let info = state
        .manager
        .describe_topic(&name, budget)
        .await
        .map_err(status)?;
    Ok(AlterTopicConfigsResponse {
        topic: Some(described(state, info)),
    })
}

fn topic_name(name: String) -> Result<String, Status> {
    TopicName::new(name)
        .map(|t| t.as_str().to_owned())
        .map_err(|e| GatewayError::InvalidTopic(e).into())
}

/// The new topic as soon as the metadata shows it (a cluster's controller answers
/// CreateTopics before every broker knows of the topic).
async fn visible(state: &State, name: &str, deadline: Instant) -> Result<TopicDescription, Status> {
    loop {
        let budget = deadline.saturating_duration_since(Instant::now());
        match state.manager.describe_topic(name, budget).await {
            Ok(info) => return Ok(described(state, info)),
            Err(crate::kafka::manage::AdminError::NotFound(_))
                if Instant::now() + VISIBLE_POLL < deadline =>
            {
                tokio::time::sleep(VISIBLE_POLL).await;
            }
            Err(e) => return Err(status(e)),
        }
    }
}

/// What a validated-only create would make.
fn planned(spec: &NewTopicSpec) -> TopicDescription {
    TopicDescription {
        name: spec.name.clone(),
        partitions: (0..spec.partitions)
            .map(|partition| proto::PartitionDescription {
                partition,
                leader: -1,
                ..Default::default()
            })
            .collect(),
        configs: spec
            .configs
            .iter()
            .map(|(name, value)| proto::TopicConfig {
                name: name.clone(),
                value: Some(value.clone()),
                source: proto::ConfigSource::Topic.into(),
                ..Default::default()
            })
            .collect(),
        configs_unavailable: if spec.configs.is_empty() {
            "a validated create lists only the configs it would set: none".to_owned()
        } else {
            String::new()
        },
        ..Default::default()
    }
}

fn to_proto(info: TopicInfo) -> TopicDescription {
    let records = info
        .partitions
        .iter()
        .map(|p| (p.high - p.low).max(0))
        .sum();
    let (configs, configs_unavailable) = match info.configs {
        Ok(configs) => (configs, String::new()),
        Err(why) => (Vec::new(), why),
    };
    TopicDescription {
        schema: None, // Set by the caller, which knows the schemas.
        internal: info.name.starts_with("__"),
        name: info.name,
        partitions: info.partitions.into_iter().map(partition).collect(),
        records,
        configs: configs
            .into_iter()
            .map(|c| proto::TopicConfig {
                name: c.name,
                value: c.value,
                source: source(c.source).into(),
                is_default: c.is_default,
                read_only: c.read_only,
                sensitive: c.sensitive,
            })
            .collect(),
        configs_unavailable,
    }
}

fn partition(p: PartitionInfo) -> proto::PartitionDescription {
    proto::PartitionDescription {
        partition: p.partition,
        leader: p.leader,
        replicas: p.replicas,
        in_sync_replicas: p.isr,
        low_watermark: p.low,
        high_watermark: p.high,
    }
}

fn source(source: ConfigSource) -> proto::ConfigSource {
    match source {
        ConfigSource::Unknown => proto::ConfigSource::Unspecified,
        ConfigSource::Topic => proto::ConfigSource::Topic,
        ConfigSource::DynamicBroker => proto::ConfigSource::DynamicBroker,
        ConfigSource::DynamicDefaultBroker => proto::ConfigSource::DynamicDefaultBroker,
        ConfigSource::StaticBroker => proto::ConfigSource::StaticBroker,
        ConfigSource::Default => proto::ConfigSource::Default,
    }
}
