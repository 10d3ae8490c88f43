//! The server's flags: every setting is a flag with an `STREAMGATE_*` environment variable
//! and a safe loopback default. [`crate::settings`] resolves and checks them once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// streamgate-server: a gRPC and grpc-web front door to Apache Kafka.
///
/// Without --brokers it starts an embedded in-memory broker, so one command runs everything.
#[derive(Debug, Clone, Parser)]
#[command(name = "streamgate-server", version, about, long_about = None, args_override_self = true)]
pub struct Config {
    /// Address to serve gRPC, grpc-web and HTTP on (one port for all).
    #[arg(long, env = "STREAMGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// PEM certificate chain (leaf first) to serve TLS with, on the same port, for gRPC,
    /// grpc-web and the dashboard. Needs --tls-key. Re-read when the file changes or on SIGHUP.
    #[arg(long, env = "STREAMGATE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert (PKCS#8, RSA or EC).
    #[arg(long, env = "STREAMGATE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// PEM bundle of the CAs that sign client certificates: with it, every client must
    /// present a certificate signed by one of them (mutual TLS). Needs --tls-cert/--tls-key.
    #[arg(long, env = "STREAMGATE_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,

    /// How often the TLS files are checked for a change (SIGHUP reloads them at once).
    #[arg(long, env = "STREAMGATE_TLS_RELOAD_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub tls_reload_interval: Duration,

    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT...]. Absent: start an embedded,
    /// in-memory broker (data is lost when the server stops).
    #[arg(long, env = "STREAMGATE_BROKERS")]
    pub brokers: Option<String>,

    /// Extra librdkafka property for every Kafka client, KEY=VALUE (repeatable), e.g.
    /// -X security.protocol=SASL_SSL. The environment variable separates several with `;`
    /// (librdkafka values such as `debug=broker,msg` contain commas).
    // The variable is where secrets (sasl.password) belong, so --help never prints its value.
    #[arg(short = 'X', long = "kafka-option", env = "STREAMGATE_KAFKA_OPTIONS", hide_env_values = true, value_delimiter = ';', value_parser = parse_key_value)]
    pub kafka_options: Vec<(String, String)>,

    /// Partitions of the topics the server creates (R1-R4) when they are missing.
    #[arg(long, env = "STREAMGATE_PARTITIONS", default_value_t = 3)]
    pub partitions: i32,

    /// Replication factor of the topics the server creates.
    #[arg(long, env = "STREAMGATE_REPLICATION_FACTOR", default_value_t = 1)]
    pub replication_factor: i32,

    /// Topic of published PageEvents, printed by the log consumer (the seed's R1).
    #[arg(long, env = "STREAMGATE_LOG_TOPIC", default_value = "R1")]
    pub log_topic: String,

    /// Topic the supplier writes to and the transform and analytics read (the seed's R2).
    #[arg(long, env = "STREAMGATE_SUPPLIER_TOPIC", default_value = "R2")]
    pub supplier_topic: String,

    /// Topic the transform function writes to (the seed's R3).
    #[arg(long, env = "STREAMGATE_TRANSFORM_TOPIC", default_value = "R3")]
    pub transform_topic: String,

    /// Run the transform function (R2 -> R3): true or false.
    #[arg(long, env = "STREAMGATE_TRANSFORM", default_value = "true", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub transform: bool,

    /// Topic the transform function reads (default: the supplier's topic, R2).
    #[arg(long, env = "STREAMGATE_TRANSFORM_INPUT")]
    pub transform_input: Option<String>,

    /// Consumer group of the transform function; its commits are the stage's progress.
    #[arg(
        long,
        env = "STREAMGATE_TRANSFORM_GROUP",
        default_value = "streamgate-transform"
    )]
    pub transform_group: String,

    /// Run the analytics worker (R2 -> R4 windowed counts): true or false. WatchPageStats
    /// works either way, from what any server's worker wrote to R4.
    #[arg(long, env = "STREAMGATE_ANALYTICS", default_value = "true", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub analytics: bool,

    /// Consumer group of the analytics workers; servers in one group split R2's partitions.
    #[arg(
        long,
        env = "STREAMGATE_ANALYTICS_GROUP",
        default_value = "streamgate-analytics"
    )]
    pub analytics_group: String,

    /// Transactional id of this server's analytics worker (default: derived from the group,
    /// the host name and the listen port). Unique per running server.
    #[arg(long, env = "STREAMGATE_ANALYTICS_TRANSACTIONAL_ID")]
    pub analytics_transactional_id: Option<String>,

    /// Window length; windows are aligned to the epoch.
    #[arg(long, env = "STREAMGATE_WINDOW", default_value = "5s", value_parser = humantime::parse_duration)]
    pub window: Duration,

    /// Distance between window starts, for hopping windows (default: the window length,
    /// i.e. tumbling). The window length must be a multiple of it.
    #[arg(long, env = "STREAMGATE_WINDOW_ADVANCE", value_parser = humantime::parse_duration)]
    pub window_advance: Option<Duration>,

    /// How long after its end a window still takes late events.
    #[arg(long, env = "STREAMGATE_GRACE", default_value = "1s", value_parser = humantime::parse_duration)]
    pub grace: Duration,

    /// Count only events whose duration is above this many milliseconds (the seed's filter).
    #[arg(long, env = "STREAMGATE_MIN_DURATION", default_value_t = 100)]
    pub min_duration: i64,

    /// How often windows are written to R4 and WatchPageStats sends a message (the analytics
    /// worker also writes as soon as it has read a backlog to its end, once per tick at most).
    #[arg(long, env = "STREAMGATE_STATS_TICK", default_value = "1s", value_parser = humantime::parse_duration)]
    pub stats_tick: Duration,

    /// History the stats hub keeps; the longest rolling count a watcher can ask for.
    #[arg(long, env = "STREAMGATE_STATS_RETENTION", default_value = "15m", value_parser = humantime::parse_duration)]
    pub stats_retention: Duration,

    /// Run the log consumer, which logs every record of --log-topic: true or false.
    #[arg(long, env = "STREAMGATE_LOG_CONSUMER", default_value = "true", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub log_consumer: bool,

    /// Topic of windowed page counts written by the analytics worker (the seed's R4).
    #[arg(long, env = "STREAMGATE_STATS_TOPIC", default_value = "R4")]
    pub stats_topic: String,

    /// Largest record accepted by Publish, key + value + headers, in bytes.
    #[arg(long, env = "STREAMGATE_MAX_MESSAGE_BYTES", default_value_t = 1024 * 1024)]
    pub max_message_bytes: usize,

    /// Deadline of a call whose client sets none (e.g. 10s, 500ms).
    #[arg(long, env = "STREAMGATE_REQUEST_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Longest time a shutdown may take: open streams end, the producer flushes.
    #[arg(long, env = "STREAMGATE_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// Subscribe and Consume streams served at once (together); more get RESOURCE_EXHAUSTED.
    #[arg(long, env = "STREAMGATE_MAX_SUBSCRIPTIONS", default_value_t = 128)]
    pub max_subscriptions: usize,

    /// PublishStream calls served at once; more get RESOURCE_EXHAUSTED.
    #[arg(long, env = "STREAMGATE_MAX_PUBLISH_STREAMS", default_value_t = 128)]
    pub max_publish_streams: usize,

    /// WatchPageStats streams served at once; more get RESOURCE_EXHAUSTED.
    #[arg(long, env = "STREAMGATE_MAX_WATCHERS", default_value_t = 1024)]
    pub max_watchers: usize,

    /// Most headers in one published record (their bytes count in --max-message-bytes).
    #[arg(long, env = "STREAMGATE_MAX_HEADERS", default_value_t = 256)]
    pub max_headers: usize,

    /// How far ahead of the server's clock a published record's timestamp may be (Kafka 4's
    /// brokers refuse more than 1h: log.message.timestamp.after.max.ms).
    #[arg(long, env = "STREAMGATE_MAX_TIMESTAMP_AHEAD", default_value = "1h", value_parser = humantime::parse_duration)]
    pub max_timestamp_ahead: Duration,

    /// Topics one Subscribe may name.
    #[arg(long, env = "STREAMGATE_MAX_SUBSCRIBE_TOPICS", default_value_t = 100)]
    pub max_subscribe_topics: usize,

    /// Bytes buffered per subscription between Kafka and the client (the records waiting,
    /// as they hold memory), on top of the record count of --subscribe-buffer.
    #[arg(long, env = "STREAMGATE_SUBSCRIBE_BUFFER_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub subscribe_buffer_bytes: usize,

    /// Longest page name the transform and the analytics accept, in bytes; a longer one
    /// sends its record to the stage's dead-letter topic.
    #[arg(long, env = "STREAMGATE_MAX_PAGE_NAME_BYTES", default_value_t = 256)]
    pub max_page_name_bytes: usize,

    /// How far ahead of the worker's clock an event may be and still count; later ones go
    /// to the dead-letter topic and never move stream time.
    #[arg(long, env = "STREAMGATE_MAX_EVENT_SKEW", default_value = "30s", value_parser = humantime::parse_duration)]
    pub max_event_skew: Duration,

    /// Pages counted per window and R2 partition; events of further pages are counted
    /// under "(other)".
    #[arg(long, env = "STREAMGATE_MAX_PAGES", default_value_t = 10_000)]
    pub max_pages: usize,

    /// Records buffered per subscription between Kafka and the client.
    #[arg(long, env = "STREAMGATE_SUBSCRIBE_BUFFER", default_value_t = 4096)]
    pub subscribe_buffer: usize,

    /// Largest max_outstanding_records a Consume stream may ask for: records delivered and
    /// not yet acknowledged, which the server keeps in memory for redelivery.
    #[arg(
        long,
        env = "STREAMGATE_CONSUME_MAX_OUTSTANDING",
        default_value_t = 10_000
    )]
    pub consume_max_outstanding: usize,

    /// Bytes of unacknowledged records one Consume stream may hold (keys, values, headers);
    /// at this bound it stops fetching until acks arrive. A larger single record still goes
    /// alone.
    #[arg(long, env = "STREAMGATE_CONSUME_MAX_OUTSTANDING_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub consume_max_outstanding_bytes: usize,

    /// Dead-letter topics the server creates for Consume streams (`dlq.*`) in its life;
    /// past it, a stream whose dead-letter topic is missing is refused until an operator
    /// creates the topic.
    #[arg(long, env = "STREAMGATE_MAX_DEAD_LETTER_TOPICS", default_value_t = 100)]
    pub max_dead_letter_topics: usize,

    /// A second address serving only /metrics (and grpc.health.v1), e.g. for a scraper on
    /// another network; /metrics is always on --listen too. TLS and authentication as on
    /// --listen.
    #[arg(long, env = "STREAMGATE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Distinct values a client-chosen metric label (topic, consumer group) may take; later
    /// ones are counted under "(other)", so no client can grow the series without bound.
    #[arg(
        long,
        env = "STREAMGATE_METRICS_MAX_LABEL_VALUES",
        default_value_t = 100
    )]
    pub metrics_max_label_values: usize,

    /// How long the producer waits to fill a batch (librdkafka linger.ms). Each unary
    /// Publish waits this long at most, so calls/s with N in flight is about N / (linger +
    /// the broker's acknowledgement); busy streams fill batches sooner.
    #[arg(long, env = "STREAMGATE_LINGER", default_value = "1ms", value_parser = humantime::parse_duration)]
    pub linger: Duration,

    /// How long a Subscribe or Consume stream's fetch may wait at the broker for new records
    /// (librdkafka fetch.wait.max.ms). Kafka answers a waiting fetch as soon as records
    /// arrive, so this only sets how often an idle stream asks; brokers that hold the fetch
    /// to its end (the embedded broker, Tansu) add it to the latency of every record.
    /// Default: 5ms on the embedded broker, 500ms (librdkafka's) on a cluster.
    #[arg(long, env = "STREAMGATE_SUBSCRIBE_FETCH_WAIT", value_parser = humantime::parse_duration)]
    pub subscribe_fetch_wait: Option<Duration>,

    /// Supplier rate, events per second (default: one per second). Exclusive with
    /// --supplier-interval.
    #[arg(
        long,
        env = "STREAMGATE_SUPPLIER_RATE",
        conflicts_with = "supplier_interval"
    )]
    pub supplier_rate: Option<f64>,

    /// Supplier interval between two events, e.g. 1s or 100ms (the seed used 100ms).
    #[arg(long, env = "STREAMGATE_SUPPLIER_INTERVAL", value_parser = humantime::parse_duration)]
    pub supplier_interval: Option<Duration>,

    /// Page names the supplier picks from, uniformly.
    #[arg(
        long,
        env = "STREAMGATE_SUPPLIER_PAGES",
        value_delimiter = ',',
        default_value = "P1,P2"
    )]
    pub supplier_pages: Vec<String>,

    /// User names the supplier picks from, uniformly.
    #[arg(
        long,
        env = "STREAMGATE_SUPPLIER_USERS",
        value_delimiter = ',',
        default_value = "U1,U2"
    )]
    pub supplier_users: Vec<String>,

    /// Range of visit durations the supplier draws from, in milliseconds, MIN..MAX inclusive.
    #[arg(long, env = "STREAMGATE_SUPPLIER_DURATION", default_value = "0..9000", value_parser = streamgate::page_event::parse_duration_range)]
    pub supplier_duration: (i64, i64),

    /// Start with the supplier stopped (start it with ControlSupplier).
    #[arg(long, env = "STREAMGATE_SUPPLIER_STOPPED")]
    pub supplier_stopped: bool,

    /// Highest rate ControlSupplier accepts, events per second.
    #[arg(
        long,
        env = "STREAMGATE_SUPPLIER_MAX_RATE",
        default_value_t = 100_000.0
    )]
    pub supplier_max_rate: f64,

    /// Other origins allowed to call from a browser (CORS), comma-separated, e.g.
    /// https://ops.example.com. Absent: same origin only (the dashboard this server serves).
    #[arg(long, env = "STREAMGATE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Host names a plaintext port answers to besides IP addresses and localhost,
    /// comma-separated; `.example.com` also allows its subdomains, `*` any name. Requests
    /// naming another host get 403: a web page cannot reach a local server by re-pointing
    /// its own name at 127.0.0.1 (DNS rebinding). A TLS port answers any name.
    #[arg(long, env = "STREAMGATE_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// TOML file of principals: `[[principal]]` with `name`, `token_sha256` (hex SHA-256 of
    /// the bearer token) and `allow` (permissions). Turns authentication on.
    #[arg(long, env = "STREAMGATE_AUTH_FILE")]
    pub auth_file: Option<PathBuf>,

    /// Accept JWT bearer tokens signed with this key: an HS256 secret file, or an RSA or EC
    /// public key (PEM) for RS256/ES256. `sub` names the principal, `scope` its permissions.
    #[arg(long, env = "STREAMGATE_JWT_KEY")]
    pub jwt_key: Option<PathBuf>,

    /// With --jwt-key: the `iss` every token must carry.
    #[arg(long, env = "STREAMGATE_JWT_ISSUER", requires = "jwt_key")]
    pub jwt_issuer: Option<String>,

    /// With --jwt-key: the `aud` every token must carry.
    #[arg(long, env = "STREAMGATE_JWT_AUDIENCE", requires = "jwt_key")]
    pub jwt_audience: Option<String>,

    /// Serve a non-loopback --listen address without any authentication. Anyone who
    /// reaches the port can then do everything; the server refuses to start that way
    /// unless this flag says it is deliberate.
    #[arg(long, env = "STREAMGATE_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,

    /// Run the embedded broker (no --brokers) although authentication is on. Its loopback
    /// port takes any local process without a token, so the server refuses this
    /// combination unless this flag says the machine's other users are trusted (a trial).
    #[arg(long, env = "STREAMGATE_INSECURE_EMBEDDED_BROKER")]
    pub insecure_embedded_broker: bool,

    /// Let Publish create a missing topic (if the brokers allow auto-creation). Without it
    /// Publish to a missing topic is NOT_FOUND.
    #[arg(long, env = "STREAMGATE_AUTO_CREATE_TOPICS")]
    pub auto_create_topics: bool,

    /// Interval of HTTP/2 keepalive pings to each client, so that a half-open connection is
    /// noticed and its streams (and their subscription slots) are released.
    #[arg(long, env = "STREAMGATE_KEEPALIVE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub keepalive: Duration,

    /// How long a keepalive ping may go unanswered before the connection is closed.
    #[arg(long, env = "STREAMGATE_KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub keepalive_timeout: Duration,

    /// HTTP/2 streams (calls) one connection may have open at once.
    #[arg(long, env = "STREAMGATE_MAX_CONCURRENT_STREAMS", default_value_t = 256)]
    pub max_concurrent_streams: u32,

    /// Connections, per-principal shares of the stream slots, and rate quotas.
    #[command(flatten)]
    pub tenancy: TenancyFlags,

    /// Typed values: the schema file and the bounds on filters and decoding.
    #[command(flatten)]
    pub values: ValueFlags,
}

mod tenancy;
mod values;

pub use tenancy::TenancyFlags;
pub use values::ValueFlags;

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("streamgate-server").chain(args.iter().copied()))
            .expect("parses")
    }

    #[test]
    fn reads_kafka_options() {
        let config = parse(&[
            "-X",
            "security.protocol=SSL",
            "-X",
            "a=b=c",
            "-X",
            "debug=msg,eos",
        ]);
        assert_eq!(
            config.kafka_options,
            vec![
                ("security.protocol".into(), "SSL".into()),
                ("a".into(), "b=c".into()),
                ("debug".into(), "msg,eos".into())
            ]
        );
        assert!(Config::try_parse_from(["x", "-X", "novalue"]).is_err());
    }

    #[test]
    fn help_never_prints_the_kafka_options_variable() {
        // STREAMGATE_KAFKA_OPTIONS carries sasl.password; clap would show its value in --help.
        use clap::CommandFactory;
        let command = Config::command();
        let option = command
            .get_arguments()
            .find(|a| a.get_id() == "kafka_options")
            .expect("the -X argument");
        assert!(option.is_hide_env_values_set());
    }
}
