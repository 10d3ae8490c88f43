//! The command line, declared with clap derive; every flag's doc comment is its `--help`.

use crate::Connection;
pub use crate::admin::args::{GroupsArgs, TopicsCommand};
use crate::failure::EXIT_CODES;
use crate::parse;
use clap::{Args, CommandFactory, Parser, Subcommand};

/// streamgate: publish to and read from Kafka through a streamgate server.
#[derive(Debug, Parser)]
#[command(name = "streamgate", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Where the server is and how to reach it: --server, --token and the TLS flags.
    #[command(flatten)]
    pub connection: Connection,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The process's command line, or exit with clap's usage error (exit code 2) for what
    /// clap's declarations cannot refuse by themselves.
    pub fn parse_checked() -> Self {
        let cli = Self::parse();
        if let Command::Topics(topics) = &cli.command
            && topics.internal
            && topics.action.is_some()
        {
            Self::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--internal is a flag of the list (streamgate topics --internal), not of its subcommands",
                )
                .exit();
        }
        cli
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish a PageEvent, a raw value, or one record per line of standard input.
    Publish(PublishArgs),
    /// Read records from one or more topics as they arrive.
    Subscribe(SubscribeArgs),
    /// Read records in a consumer group and acknowledge each one only once it is printed (or
    /// --exec CMD succeeded on it): nothing is lost when the command stops (Consume).
    Consume(ConsumeArgs),
    /// List the cluster's topics with their partitions and record counts; or create,
    /// describe, re-configure or delete one (`topics create|describe|alter-config|delete`).
    Topics(TopicsArgs),
    /// List, describe (lag per partition), reset or delete consumer groups.
    Groups(GroupsArgs),
    /// Show, start, stop or re-configure the server's PageEvent supplier.
    Supplier(SupplierArgs),
    /// Watch live per-page visit counts (WatchPageStats), refreshed each tick.
    Stats(StatsArgs),
    /// Ask the server's grpc.health.v1 service whether it serves: exit 0 when SERVING, 1
    /// otherwise, 3 when it cannot be reached (for probes and container health checks).
    Health(HealthArgs),
}

/// `streamgate stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Length of the rolling count, e.g. 5s or 1m (default: the server's window).
    #[arg(long, value_parser = parse::duration)]
    pub window: Option<std::time::Duration>,
    /// Only closed windows, each once, with their final counts.
    #[arg(long = "final")]
    pub final_only: bool,
    /// One JSON object per message instead of the live table.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many messages.
    #[arg(short = 'c', long)]
    pub count: Option<u64>,
}

/// `streamgate supplier`.
#[derive(Debug, Args)]
pub struct SupplierArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: SupplierCommand,
    /// Print the status as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `streamgate supplier ...`.
#[derive(Debug, Subcommand)]
pub enum SupplierCommand {
    /// Print the supplier's status.
    Status,
    /// Start supplying.
    Start,
    /// Stop supplying.
    Stop,
    /// Change settings while it runs.
    Set(SupplierSetArgs),
}

/// `streamgate supplier set`.
#[derive(Debug, Args)]
pub struct SupplierSetArgs {
    /// Time between two events, e.g. 100ms or 2s.
    #[arg(long, conflicts_with = "rate", value_parser = parse::duration)]
    pub interval: Option<std::time::Duration>,
    /// Events per second, e.g. 500 or 500/s.
    #[arg(long, value_parser = parse::rate)]
    pub rate: Option<f64>,
    /// Page names, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub pages: Option<Vec<String>>,
    /// User names, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub users: Option<Vec<String>>,
    /// Duration range in milliseconds, MIN..MAX.
    #[arg(long, value_parser = parse::duration_range)]
    pub duration: Option<(i64, i64)>,
    /// Target topic.
    #[arg(long)]
    pub topic: Option<String>,
}

/// `streamgate publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Topic to publish to.
    pub topic: String,
    /// Publish a PageEvent for this page (keyed by it unless --key is given).
    #[arg(long, conflicts_with = "value")]
    pub name: Option<String>,
    /// PageEvent user (default: U1 or U2 at random).
    #[arg(long, requires = "name")]
    pub user: Option<String>,
    /// PageEvent duration in milliseconds (default: random in 0..9000).
    #[arg(long, requires = "name")]
    pub duration: Option<i64>,
    /// Publish this text as the raw value.
    #[arg(long)]
    pub value: Option<String>,
    /// The value (--value, or each input line) is JSON for the server to encode in the
    /// topic's format: Protobuf binary on a Protobuf topic, checked JSON on a JSON Schema one.
    #[arg(long, conflicts_with = "name")]
    pub value_json: bool,
    /// Record key.
    #[arg(short = 'k', long)]
    pub key: Option<String>,
    /// Record header KEY=VALUE (repeatable).
    #[arg(short = 'H', long = "header", value_parser = parse::header)]
    pub headers: Vec<(String, String)>,
    /// Explicit partition.
    #[arg(short = 'p', long)]
    pub partition: Option<i32>,
    /// With standard input: split each line at the first DELIM into key and value.
    #[arg(short = 'K', long = "key-delimiter")]
    pub key_delimiter: Option<String>,
    /// Print each acknowledgement as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `streamgate subscribe`.
#[derive(Debug, Args)]
pub struct SubscribeArgs {
    /// Topics to read.
    #[arg(required = true)]
    pub topics: Vec<String>,
    /// Consumer group: share partitions with its other members, resume from its commits.
    #[arg(short = 'g', long)]
    pub group: Option<String>,
    /// Where to start: earliest, latest, an offset (5), records before the end (-5), or a
    /// time (@2026-01-01T00:00:00Z or @EPOCH_MILLIS). Default: latest, or the group's commits.
    #[arg(short = 'o', long = "from", allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Stop after this many records.
    #[arg(short = 'c', long)]
    pub count: Option<u64>,
    /// Stop once every partition is read up to where it ended when the stream started.
    #[arg(short = 'e', long)]
    pub exit_at_end: bool,
    /// Print one JSON object per record.
    #[arg(long)]
    pub json: bool,
    /// Only records for which this CEL expression is true, evaluated by the server, e.g.
    /// 'value.amount > 1000 && headers.region == "eu"' (variables: topic, partition, offset,
    /// timestamp, key, headers, value). In a group, skipped records count as handled.
    #[arg(long, value_name = "CEL")]
    pub filter: Option<String>,
    /// Print each value decoded by its topic's schema, as JSON (Protobuf topics included).
    #[arg(long)]
    pub decode: bool,
}

/// `streamgate consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topics to read.
    #[arg(required = true)]
    pub topics: Vec<String>,
    /// Consumer group (required): partitions are shared with its other members, reading
    /// resumes after the records it acknowledged.
    #[arg(short = 'g', long)]
    pub group: String,
    /// Where to start, as for subscribe: earliest, latest, an offset, -N, or @TIME. Default:
    /// the group's commits (latest for partitions without one).
    #[arg(short = 'o', long = "from", allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Handle this many records, then stop (the rest stays unacknowledged for the group).
    #[arg(short = 'c', long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Print one JSON object per record (with its delivery_attempt).
    #[arg(long)]
    pub json: bool,
    /// Only records for which this CEL expression is true, evaluated by the server, e.g.
    /// 'value.amount > 1000 && headers.region == "eu"' (variables: topic, partition, offset,
    /// timestamp, key, headers, value). In a group, skipped records count as handled.
    #[arg(long, value_name = "CEL")]
    pub filter: Option<String>,
    /// Print each value decoded by its topic's schema, as JSON (Protobuf topics included).
    #[arg(long)]
    pub decode: bool,
    /// Run this shell command once per record with the value on its standard input (and
    /// STREAMGATE_TOPIC, _PARTITION, _OFFSET, _KEY, _DELIVERY_ATTEMPT in its environment):
    /// exit status 0 acknowledges the record, anything else nacks it for redelivery.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// With --exec: wait this long before a nacked record is delivered again.
    #[arg(long, default_value = "1s", value_parser = parse::duration)]
    pub nack_delay: std::time::Duration,
    /// Most records delivered and not yet acknowledged (server default 1000).
    #[arg(long)]
    pub max_outstanding: Option<u32>,
    /// How long a record may stay unacknowledged before the server delivers it again.
    #[arg(long, value_parser = parse::duration)]
    pub ack_deadline: Option<std::time::Duration>,
    /// Deliveries of a record before it goes to the dead-letter topic error.TOPIC.GROUP.
    /// Default: unlimited.
    #[arg(long)]
    pub max_delivery_attempts: Option<u32>,
}

/// `streamgate topics`.
#[derive(Debug, Args)]
pub struct TopicsArgs {
    /// Without one: list the topics.
    #[command(subcommand)]
    pub action: Option<TopicsCommand>,
    /// Include Kafka's internal topics in the list.
    #[arg(long)]
    pub internal: bool,
    /// Print JSON: the list one object per topic; a subcommand's answer as canonical proto3
    /// JSON, on one line.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `streamgate health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The service to ask about, e.g. streamgate.v1.EventGateway (SERVING once the server's
    /// topics exist); by default the server as a whole.
    #[arg(long, default_value = "")]
    pub service: String,

    /// How long to wait for the answer (a probe must not hang).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}
