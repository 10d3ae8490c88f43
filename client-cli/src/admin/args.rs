//! The command line of `streamgate topics create|delete|describe|alter-config` and
//! `streamgate groups ...`, declared with clap derive; every flag's doc comment is its
//! `--help`.

use clap::{ArgGroup, Args, Subcommand};

use crate::parse;

/// `streamgate topics ...`: one topic managed (kafka-topics, kafka-configs).
#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create a topic, then print it as describe does (CreateTopic).
    Create(CreateTopicArgs),
    /// Delete a topic and its records (DeleteTopic).
    Delete(TopicArg),
    /// Print a topic's partitions (leader, replicas, in-sync replicas, offsets) and configs
    /// (DescribeTopic).
    Describe(TopicArg),
    /// Set or delete some of a topic's configs, leaving the others as they are, then print
    /// the topic as describe does (AlterTopicConfigs).
    AlterConfig(AlterConfigArgs),
}

/// A command about one topic.
#[derive(Debug, Args)]
pub struct TopicArg {
    /// The topic.
    pub topic: String,
}

/// `streamgate topics create`.
#[derive(Debug, Args)]
pub struct CreateTopicArgs {
    /// The topic: 1 to 249 characters of [a-zA-Z0-9._-].
    pub topic: String,
    /// Partitions (default: the server's --partitions).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: Option<i32>,
    /// Replicas of each partition (default: the broker's).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    pub replication_factor: Option<i32>,
    /// A topic config, e.g. retention.ms=86400000 (repeatable); the broker validates it.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse::header)]
    pub configs: Vec<(String, String)>,
    /// Only check that the broker would create it; nothing is created.
    #[arg(long)]
    pub validate_only: bool,
}

/// `streamgate topics alter-config`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("changes").required(true).multiple(true).args(["set", "delete"])))]
pub struct AlterConfigArgs {
    /// The topic.
    pub topic: String,
    /// Set a config, e.g. retention.ms=3600000 (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse::header)]
    pub set: Vec<(String, String)>,
    /// Delete a config from the topic, so that it takes its default again (repeatable).
    #[arg(long, value_name = "KEY")]
    pub delete: Vec<String>,
    /// Only check that the broker would accept the changes; nothing changes.
    #[arg(long)]
    pub validate_only: bool,
}

/// `streamgate groups`.
#[derive(Debug, Args)]
pub struct GroupsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: GroupsCommand,
    /// Print the server's answer as canonical proto3 JSON, on one line.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `streamgate groups ...`: consumer groups (kafka-consumer-groups).
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List the consumer groups you may see, with their state and protocol type (ListGroups).
    List,
    /// Print where a group is in each partition (committed offset, end, lag) and its members,
    /// as kafka-consumer-groups --describe does (DescribeGroup).
    Describe(GroupArg),
    /// Move a group's committed offsets in every partition of the topics named: prints the
    /// plan, and commits it only with --execute (ResetGroupOffsets). The group must have no
    /// active members.
    Reset(ResetArgs),
    /// Delete a group and its committed offsets; it must have no active members
    /// (DeleteGroup).
    Delete(GroupArg),
}

/// A command about one group.
#[derive(Debug, Args)]
pub struct GroupArg {
    /// The consumer group.
    pub group: String,
}

/// `streamgate groups reset`.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("target")
        .required(true)
        .args(["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"])
))]
pub struct ResetArgs {
    /// The consumer group.
    pub group: String,
    /// A topic whose partitions move, all of them (repeatable).
    #[arg(long = "topic", value_name = "TOPIC", required = true)]
    pub topics: Vec<String>,
    /// To each partition's oldest offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// To each partition's end: only records published from now on are read.
    #[arg(long)]
    pub to_latest: bool,
    /// To this offset in every partition (clamped into the offsets it holds).
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// To the first offset at or after this time, e.g. 2026-01-01T00:00:00Z (RFC 3339); the
    /// end of a partition with nothing as recent.
    #[arg(long, value_name = "TIME", value_parser = parse::timestamp)]
    pub to_datetime: Option<prost_types::Timestamp>,
    /// Shift each committed offset by N, e.g. -10 to read the last 10 records again
    /// (clamped into the offsets the partition holds).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// Commit the plan. Without it, a dry run: the plan is printed and nothing moves.
    #[arg(long)]
    pub execute: bool,
}
