//! `streamgate topics create|delete|describe|alter-config`: a topic as kafka-topics
//! --describe shows it — a header line, a partition table, and the configs as
//! kafka-configs --describe --all lists them.

use std::io::Write;

use streamgate::proto::{
    AlterTopicConfigsRequest, ConfigChange, ConfigSource, CreateTopicRequest, DeleteTopicRequest,
    DescribeTopicRequest, TopicDescription, config_change::Operation,
};

use super::Admin;
use super::args::TopicsCommand;
use crate::Failure;
use crate::proto_json;
use crate::table::{Align, Table};

/// Runs `streamgate topics SUBCOMMAND`.
pub async fn run(mut admin: Admin, action: TopicsCommand, json: bool) -> Result<(), Failure> {
    match action {
        TopicsCommand::Create(args) => {
            let request = CreateTopicRequest {
                topic: args.topic,
                partitions: args.partitions.unwrap_or(0),
                replication_factor: args.replication_factor.unwrap_or(0),
                configs: args.configs.into_iter().collect(),
                validate_only: args.validate_only,
            };
            let created = admin.create_topic(request).await?.into_inner();
            let out = &mut std::io::stdout().lock();
            if json {
                return proto_json::write(out, &created, "CreateTopicResponse");
            }
            let topic = answered(created.topic)?;
            write_topic(out, &topic).map_err(Failure::io)?;
            if args.validate_only {
                writeln!(
                    out,
                    "\nvalidate only: the broker would create topic {}; nothing was created",
                    topic.name
                )
                .map_err(Failure::io)?;
            }
            Ok(())
        }
        TopicsCommand::Delete(args) => {
            let request = DeleteTopicRequest {
                topic: args.topic.clone(),
            };
            let deleted = admin.delete_topic(request).await?.into_inner();
            let out = &mut std::io::stdout().lock();
            if json {
                return proto_json::write(out, &deleted, "DeleteTopicResponse");
            }
            writeln!(out, "deleted topic {}", args.topic).map_err(Failure::io)
        }
        TopicsCommand::Describe(args) => {
            let request = DescribeTopicRequest { topic: args.topic };
            let described = admin.describe_topic(request).await?.into_inner();
            let out = &mut std::io::stdout().lock();
            if json {
                return proto_json::write(out, &described, "DescribeTopicResponse");
            }
            write_topic(out, &answered(described.topic)?).map_err(Failure::io)
        }
        TopicsCommand::AlterConfig(args) => {
            let set = args.set.into_iter().map(|(name, value)| ConfigChange {
                name,
                operation: Some(Operation::Set(value)),
            });
            let delete = args.delete.into_iter().map(|name| ConfigChange {
                name,
                operation: Some(Operation::Delete(true)),
            });
            let request = AlterTopicConfigsRequest {
                topic: args.topic,
                changes: set.chain(delete).collect(),
                validate_only: args.validate_only,
            };
            let altered = admin.alter_topic_configs(request).await?.into_inner();
            let out = &mut std::io::stdout().lock();
            if json {
                return proto_json::write(out, &altered, "AlterTopicConfigsResponse");
            }
            write_topic(out, &answered(altered.topic)?).map_err(Failure::io)?;
            if args.validate_only {
                writeln!(
                    out,
                    "\nvalidate only: the broker would accept the changes; nothing changed"
                )
                .map_err(Failure::io)?;
            }
            Ok(())
        }
    }
}

/// The topic of an answer (the server always sends one).
fn answered(topic: Option<TopicDescription>) -> Result<TopicDescription, Failure> {
    topic.ok_or_else(|| Failure::refused("the server answered without the topic"))
}

/// `Topic: orders  Partitions: 6  Records: 20`, the partitions, then the configs (or why the
/// broker could not list them).
fn write_topic(out: &mut impl Write, topic: &TopicDescription) -> std::io::Result<()> {
    writeln!(
        out,
        "Topic: {}  Partitions: {}  Records: {}{}",
        topic.name,
        topic.partitions.len(),
        topic.records,
        if topic.internal {
            "  Internal: yes"
        } else {
            ""
        }
    )?;
    writeln!(out)?;
    let mut partitions = Table::new(&[
        ("PARTITION", Align::Right),
        ("LEADER", Align::Right),
        ("REPLICAS", Align::Left),
        ("ISR", Align::Left),
        ("LOW", Align::Right),
        ("HIGH", Align::Right),
    ]);
    for p in &topic.partitions {
        partitions.row([
            p.partition.to_string(),
            if p.leader < 0 {
                "-".to_owned()
            } else {
                p.leader.to_string()
            },
            brokers(&p.replicas),
            brokers(&p.in_sync_replicas),
            p.low_watermark.to_string(),
            p.high_watermark.to_string(),
        ]);
    }
    partitions.write(out)?;
    writeln!(out)?;
    write_schema(out, topic.schema.as_ref())?;
    if !topic.configs_unavailable.is_empty() {
        return writeln!(out, "Configs unavailable: {}", topic.configs_unavailable);
    }
    let mut configs = Table::new(&[
        ("NAME", Align::Left),
        ("VALUE", Align::Left),
        ("SOURCE", Align::Left),
        ("DEFAULT", Align::Left),
    ]);
    for c in &topic.configs {
        let value = match (&c.value, c.sensitive) {
            (Some(value), _) => value.clone(),
            (None, true) => "(sensitive)".to_owned(),
            (None, false) => "-".to_owned(),
        };
        configs.row([
            c.name.clone(),
            value,
            source_name(c.source),
            if c.is_default { "yes" } else { "no" }.to_owned(),
        ]);
    }
    configs.write(out)
}

/// `Schema: Protobuf shop.v1.Order (orders, from /etc/schemas.toml)` and its definition, or
/// `Schema: none` for an untyped topic.
fn write_schema(
    out: &mut impl Write,
    schema: Option<&streamgate::proto::TopicSchema>,
) -> std::io::Result<()> {
    let Some(schema) = schema else {
        writeln!(out, "Schema: none (values are not checked)")?;
        return writeln!(out);
    };
    let format = match schema.format.as_str() {
        "protobuf" => "Protobuf",
        "json_schema" => "JSON Schema",
        other => other,
    };
    let message = if schema.message.is_empty() {
        String::new()
    } else {
        format!(" {}", schema.message)
    };
    writeln!(
        out,
        "Schema: {format}{message} (declared for {}, {})",
        schema.pattern, schema.source
    )?;
    for line in schema.definition.lines() {
        writeln!(out, "  {line}")?;
    }
    writeln!(out)
}

/// Broker ids, comma-separated as kafka-topics prints them (`-` for none).
fn brokers(ids: &[i32]) -> String {
    if ids.is_empty() {
        return "-".to_owned();
    }
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// `TOPIC`, `STATIC_BROKER`, `DEFAULT`, …; `-` when the broker did not say.
fn source_name(source: i32) -> String {
    match ConfigSource::try_from(source) {
        Ok(ConfigSource::Unspecified) | Err(_) => "-".to_owned(),
        Ok(known) => known
            .as_str_name()
            .trim_start_matches("CONFIG_SOURCE_")
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use streamgate::proto::{PartitionDescription, TopicConfig};

    use super::*;

    fn text(topic: &TopicDescription) -> String {
        let mut out = Vec::new();
        write_topic(&mut out, topic).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn a_topic_reads_as_kafka_topics_describe() {
        let topic = TopicDescription {
            name: "orders".into(),
            partitions: vec![PartitionDescription {
                partition: 0,
                leader: 1,
                replicas: vec![1, 2, 3],
                in_sync_replicas: vec![1, 3],
                low_watermark: 4,
                high_watermark: 20,
            }],
            records: 16,
            configs: vec![
                TopicConfig {
                    name: "retention.ms".into(),
                    value: Some("3600000".into()),
                    source: ConfigSource::Topic as i32,
                    ..Default::default()
                },
                TopicConfig {
                    name: "sasl.secret".into(),
                    sensitive: true,
                    is_default: true,
                    source: ConfigSource::StaticBroker as i32,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            text(&topic),
            "Topic: orders  Partitions: 1  Records: 16\n\
             \n\
             PARTITION  LEADER  REPLICAS  ISR  LOW  HIGH\n\
             \x20       0       1  1,2,3     1,3    4    20\n\
             \n\
             Schema: none (values are not checked)\n\
             \n\
             NAME          VALUE        SOURCE         DEFAULT\n\
             retention.ms  3600000      TOPIC          no\n\
             sasl.secret   (sensitive)  STATIC_BROKER  yes\n"
        );
    }

    #[test]
    fn a_typed_topic_shows_its_schema() {
        let topic = TopicDescription {
            name: "orders".into(),
            schema: Some(streamgate::proto::TopicSchema {
                format: "protobuf".into(),
                pattern: "orders".into(),
                source: "/etc/streamgate/schemas.toml".into(),
                message: "shop.v1.Order".into(),
                definition: "message Order {\n  string id = 1;\n}".into(),
            }),
            ..Default::default()
        };
        let text = text(&topic);
        assert!(
            text.contains(
                "Schema: Protobuf shop.v1.Order (declared for orders, /etc/streamgate/schemas.toml)\n  message Order {\n    string id = 1;\n  }\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn configs_the_broker_cannot_list_say_why() {
        let topic = TopicDescription {
            name: "t".into(),
            configs_unavailable: "the broker has no DescribeConfigs".into(),
            ..Default::default()
        };
        let text = text(&topic);
        assert!(
            text.ends_with("\nConfigs unavailable: the broker has no DescribeConfigs\n"),
            "{text}"
        );
    }
}
