//! The command line, declared with clap derive; every flag's doc comment is its `--help`.
//! The connection flags (`--server`, `--token`, the TLS flags) are the `streamgate` CLI's
//! own ([`Connection`]).

use clap::{Args, Parser};
use streamgate_cli::Connection;
use streamgate_cli::failure::EXIT_CODES;
use streamgate_cli::parse;

/// streamgate-bench: load generator for a streamgate server — throughput and latency of
/// publish, subscribe and publish-to-subscribe over gRPC, Connect or Server-Sent Events
/// (--protocol), optionally side by side with the same workload straight on Kafka (--direct),
/// over another protocol (--compare-protocol), or, for subscribe, with another filter
/// (--filter, --compare-filter).
#[derive(Debug, Parser)]
#[command(name = "streamgate-bench", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Where the server is and how to reach it: --server, --token and the TLS flags.
    #[command(flatten)]
    pub connection: Connection,

    /// The workload and how to run it.
    #[command(flatten)]
    pub bench: BenchArgs,
}

/// What `streamgate-bench` measures.
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

/// How the workload talks to the server. All of them go over the same HTTP/2 connection
/// (the one --server, --token and the TLS flags open), so that a comparison measures the
/// protocol alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// gRPC, protobuf: every workload.
    Grpc,
    /// Connect with binary protobuf (application/proto; application/connect+proto for
    /// Subscribe): publish and subscribe.
    ConnectProto,
    /// Connect with canonical proto3 JSON (application/json; application/connect+json for
    /// Subscribe): publish and subscribe.
    ConnectJson,
    /// Server-Sent Events, GET /v1/topics/{topic}/records (each record one event in
    /// canonical JSON): subscribe.
    Sse,
}

/// What the records a subscribe run preloads hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Values {
    /// --size bytes of printable filler, no key.
    Raw,
    /// The seed's PageEvents as JSON, keyed by page: `{"name":"P1","user":"U1",
    /// "date":"2026-12-08T00:00:00.000+00:00","duration":N}`, name P1|P2, user U1|U2,
    /// duration uniform in 0..=9000 (the same records on every run), with a `content-type:
    /// application/json` header, spread over the partitions in turn; --size does not apply.
    PageEvents,
}

/// The workload and its flags.
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
    /// Size of each record value, in bytes (e2e: at least 16, it carries a send timestamp;
    /// not for subscribe's --values page-events).
    #[arg(short = 's', long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=16 * 1024 * 1024))]
    pub size: u64,
    /// Topic to use; a missing one is created through the server (its AdminService; the
    /// caller needs `topics:manage:<topic>`).
    #[arg(short = 't', long, default_value = "bench")]
    pub topic: String,
    /// Partitions of the topic when the bench creates it.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// e2e: records per second to publish at.
    #[arg(long, default_value = "10000/s", value_parser = parse::rate)]
    pub rate: f64,
    /// Time excluded at the start of the measurement (the figures are for what follows).
    #[arg(long, default_value = "1s", value_parser = parse::duration)]
    pub warmup: std::time::Duration,
    /// The protocol the workload speaks: grpc (every workload), connect-proto and
    /// connect-json (publish, subscribe), sse (subscribe). The topic check and a subscribe
    /// run's preload always use gRPC; they are not measured.
    #[arg(long, value_enum, default_value_t = Protocol::Grpc)]
    pub protocol: Protocol,
    /// Run each round over --protocol, then over this protocol right after, and print both
    /// figures and their ratio (--protocol / this one), as --direct does with Kafka; e.g.
    /// `--protocol connect-json --compare-protocol grpc`.
    #[arg(long, value_enum, value_name = "PROTOCOL", conflicts_with = "direct")]
    pub compare_protocol: Option<Protocol>,
    /// subscribe: a CEL filter the server evaluates on every record (SubscribeRequest.filter),
    /// e.g. 'value.duration > 100'; only the records it matches are sent. Throughput is then
    /// records *read* (scanned) per second, and the report adds the records and bytes
    /// received. The run reads a topic the bench preloads itself (it must be empty): the
    /// preload ends each partition with an end marker, a record keyed
    /// `streamgate-bench-end` that the filter is widened to let through, and the stream ends
    /// when every partition's marker has come. Over every --protocol.
    #[arg(long, value_name = "CEL")]
    pub filter: Option<String>,
    /// subscribe: run each round with --filter, then with this filter right after ('' for
    /// none), and print both figures and their ratios (records read/s, bytes received), as
    /// --compare-protocol does; e.g. `--filter 'value.duration > 100' --compare-filter ''`.
    #[arg(
        long,
        value_name = "CEL",
        conflicts_with_all = ["direct", "compare_protocol"]
    )]
    pub compare_filter: Option<String>,
    /// subscribe: what the preloaded records hold: raw (--size bytes of filler) or
    /// page-events (PageEvent JSON a filter can look into, `value.duration`). Default:
    /// page-events with --filter or --compare-filter, raw otherwise.
    #[arg(long, value_enum, value_name = "KIND")]
    pub values: Option<Values>,
    /// Kafka bootstrap address: run the same workload straight on Kafka with librdkafka
    /// right after the gateway run, and print both figures and their ratio.
    #[arg(long, value_name = "HOST:PORT")]
    pub direct: Option<String>,
    /// Runs of each side, alternating (gateway, direct, gateway, ...; with
    /// --compare-protocol, --protocol then the compared one; with --compare-filter, --filter
    /// then the compared filter): the report is the round with
    /// the median ratio (the median throughput without a second side), and lists every
    /// round. On a busy machine a single pair is as noisy as the figure it measures.
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
