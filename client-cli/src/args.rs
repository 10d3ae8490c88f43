//! The command line, declared with clap derive; every flag's doc comment is its `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use streamgate_cli::parse;

/// streamgate: publish to and read from Kafka through a streamgate server.
#[derive(Debug, Parser)]
#[command(name = "streamgate", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// The streamgate server to talk to.
    #[arg(
        long,
        global = true,
        env = "STREAMGATE_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,

    /// Bearer token for a server that requires one (sent as `authorization: Bearer ...`).
    /// Prefer the environment variable: a flag shows in process listings.
    #[arg(long, global = true, env = "STREAMGATE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// With an https:// --server: PEM CA certificate(s) to trust instead of the system's.
    #[arg(long, global = true, env = "STREAMGATE_TLS_CA")]
    pub tls_ca: Option<PathBuf>,

    /// PEM client certificate to present, for a server that requires one (mutual TLS).
    #[arg(long, global = true, env = "STREAMGATE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, global = true, env = "STREAMGATE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The TLS flags, for the connection.
    pub fn tls_options(&self) -> crate::connect::TlsOptions {
        crate::connect::TlsOptions {
            ca: self.tls_ca.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
        }
    }
}

const EXIT_CODES: &str = "Exit codes: 0 ok, 1 request refused by the server, 2 bad command line, \
3 server or Kafka unreachable, 130 interrupted.";

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
    /// List the cluster's topics with their partitions and record counts.
    Topics(TopicsArgs),
    /// Show, start, stop or re-configure the server's PageEvent supplier.
    Supplier(SupplierArgs),
    /// Watch live per-page visit counts (WatchPageStats), refreshed each tick.
    Stats(StatsArgs),
    /// Ask the server's grpc.health.v1 service whether it serves: exit 0 when SERVING, 1
    /// otherwise, 3 when it cannot be reached (for probes and container health checks).
    Health(HealthArgs),
    /// Load generator: throughput and latency of publish, subscribe and publish-to-subscribe,
    /// optionally side by side with the same workload straight on Kafka (--direct).
    Bench(BenchArgs),
}

/// What `streamgate bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchWorkload {
    /// Unary Publish calls, --concurrency in flight.
    Publish,
    /// Records over --concurrency PublishStreams, each keeping many in flight.
    PublishStream,
    /// Read --records records of the topic from the earliest offset through Subscribe.
    Subscribe,
    /// Publish-to-receive latency with a live subscriber, publishing at a steady --rate.
    E2e,
}

/// `streamgate bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The workload.
    #[arg(value_enum)]
    pub workload: BenchWorkload,
    /// Records to publish or read.
    #[arg(short = 'n', long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub records: u64,
    /// Calls (publish) or streams (publish-stream) in flight. Default: 64 for publish, 4 for
    /// publish-stream; subscribe and e2e use one stream.
    #[arg(short = 'c', long, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub concurrency: Option<u64>,
    /// Size of each record value, in bytes (e2e: at least 16, it carries a send timestamp).
    #[arg(short = 's', long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=16 * 1024 * 1024))]
    pub size: u64,
    /// Topic to use; it must exist unless --direct is given (then it is created).
    #[arg(short = 't', long, default_value = "bench")]
    pub topic: String,
    /// Partitions of the topic when the bench creates it (with --direct).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// e2e: records per second to publish at.
    #[arg(long, default_value = "10000/s", value_parser = parse::rate)]
    pub rate: f64,
    /// Time excluded at the start of the measurement (the figures are for what follows).
    #[arg(long, default_value = "1s", value_parser = parse::duration)]
    pub warmup: std::time::Duration,
    /// Kafka bootstrap address: run the same workload straight on Kafka with librdkafka
    /// right after the gateway run, and print both figures and their ratio.
    #[arg(long, value_name = "HOST:PORT")]
    pub direct: Option<String>,
    /// Runs of each side, alternating (gateway, direct, gateway, ...): the report is the
    /// round with the median ratio (the median throughput without --direct), and lists
    /// every round. On a busy machine a single pair is as noisy as the figure it measures.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// A librdkafka property for the direct side's clients, as kcat's -X (repeatable), e.g.
    /// `-X fetch.wait.max.ms=5` to compare latency with a server run with the same setting.
    #[arg(short = 'X', long = "direct-option", value_name = "KEY=VALUE", value_parser = parse::header, requires = "direct")]
    pub direct_options: Vec<(String, String)>,
    /// Process id of a local streamgate-server: report its CPU use and memory (from /proc).
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Print exactly one JSON object on standard output, and no progress.
    #[arg(long)]
    pub json: bool,
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
    /// Include Kafka's internal topics.
    #[arg(long)]
    pub internal: bool,
    /// Print JSON.
    #[arg(long)]
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
