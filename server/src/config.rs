//! Server configuration: every setting is a flag with an `STREAMGATE_*` environment variable
//! and a safe loopback default, checked at start-up with a clear message.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use streamgate::topic;

/// streamgate-server: a gRPC and grpc-web front door to Apache Kafka.
///
/// Without --brokers it starts an embedded in-memory broker, so one command runs everything.
#[derive(Debug, Clone, Parser)]
#[command(name = "streamgate-server", version, about, long_about = None, args_override_self = true)]
pub struct Config {
    /// Address to serve gRPC, grpc-web and HTTP on (one port for all).
    #[arg(long, env = "STREAMGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT...]. Absent: start an embedded,
    /// in-memory broker (data is lost when the server stops).
    #[arg(long, env = "STREAMGATE_BROKERS")]
    pub brokers: Option<String>,

    /// Extra librdkafka property for every Kafka client, KEY=VALUE (repeatable), e.g.
    /// -X security.protocol=SASL_SSL. The environment variable separates several with `;`
    /// (librdkafka values such as `debug=broker,msg` contain commas).
    #[arg(short = 'X', long = "kafka-option", env = "STREAMGATE_KAFKA_OPTIONS", value_delimiter = ';', value_parser = parse_key_value)]
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

    /// How often windows are written to R4 and WatchPageStats sends a message.
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

    /// Subscribe streams served at once; more get RESOURCE_EXHAUSTED.
    #[arg(long, env = "STREAMGATE_MAX_SUBSCRIPTIONS", default_value_t = 128)]
    pub max_subscriptions: usize,

    /// Records buffered per subscription between Kafka and the client.
    #[arg(long, env = "STREAMGATE_SUBSCRIBE_BUFFER", default_value_t = 256)]
    pub subscribe_buffer: usize,

    /// How long the producer waits to fill a batch (librdkafka linger.ms).
    #[arg(long, env = "STREAMGATE_LINGER", default_value = "5ms", value_parser = humantime::parse_duration)]
    pub linger: Duration,

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

    /// Origins allowed to call from a browser (CORS), comma-separated. Absent: any origin.
    #[arg(long, env = "STREAMGATE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
}

impl Config {
    /// Checks what clap cannot: topic names, positive sizes.
    pub fn validate(&self) -> Result<(), String> {
        for (flag, name) in [
            ("--log-topic", &self.log_topic),
            ("--supplier-topic", &self.supplier_topic),
            ("--transform-topic", &self.transform_topic),
            ("--stats-topic", &self.stats_topic),
            ("--transform-input", self.transform_input()),
        ] {
            topic::validate(name).map_err(|e| format!("{flag}: {e}"))?;
        }
        if self.partitions < 1 {
            return Err(format!(
                "--partitions must be 1 or more, got {}",
                self.partitions
            ));
        }
        if self.replication_factor < 1 {
            return Err(format!(
                "--replication-factor must be 1 or more, got {}",
                self.replication_factor
            ));
        }
        if self.max_message_bytes == 0 || self.max_message_bytes > 512 * 1024 * 1024 {
            return Err("--max-message-bytes must be between 1 and 536870912".into());
        }
        if self.max_subscriptions == 0 || self.subscribe_buffer == 0 {
            return Err("--max-subscriptions and --subscribe-buffer must be 1 or more".into());
        }
        self.window_spec()?;
        if self.stats_tick.is_zero() || self.stats_tick > Duration::from_secs(60) {
            return Err("--stats-tick must be between 1ms and 60s".into());
        }
        if self.stats_retention < self.window {
            return Err("--stats-retention must be at least one --window".into());
        }
        if self.analytics_group.trim().is_empty() {
            return Err("--analytics-group must not be empty".into());
        }
        if self.transform_group.trim().is_empty() {
            return Err("--transform-group must not be empty".into());
        }
        if self.request_timeout.is_zero() {
            return Err("--request-timeout must be more than zero".into());
        }
        self.supplier_settings()?;
        Ok(())
    }

    /// The supplier's settings at start-up.
    pub fn supplier_settings(&self) -> Result<crate::supplier::Settings, String> {
        let rate_per_second = match (self.supplier_rate, self.supplier_interval) {
            (Some(rate), _) => rate,
            (None, Some(interval)) if !interval.is_zero() => 1.0 / interval.as_secs_f64(),
            (None, Some(_)) => return Err("--supplier-interval must be more than zero".into()),
            (None, None) => 1.0,
        };
        let settings = crate::supplier::Settings {
            rate_per_second,
            pages: self.supplier_pages.clone(),
            users: self.supplier_users.clone(),
            min_duration_ms: self.supplier_duration.0,
            max_duration_ms: self.supplier_duration.1,
            topic: topic::TopicName::new(self.supplier_topic.clone())
                .map_err(|e| format!("--supplier-topic: {e}"))?,
        };
        settings
            .validate(self.supplier_max_rate)
            .map_err(|e| format!("supplier: {e}"))?;
        Ok(settings)
    }

    /// The analytics window shape.
    pub fn window_spec(&self) -> Result<crate::analytics::WindowSpec, String> {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        crate::analytics::WindowSpec::new(
            ms(self.window),
            ms(self.window_advance.unwrap_or(self.window)),
            ms(self.grace),
        )
        .map_err(|e| format!("--window/--window-advance/--grace: {e}"))
    }

    /// The topic the transform function reads.
    pub fn transform_input(&self) -> &String {
        self.transform_input
            .as_ref()
            .unwrap_or(&self.supplier_topic)
    }

    /// The topics the server owns and creates when missing: R1-R4 by default, plus the
    /// transform's input when it is another topic.
    pub fn topics(&self) -> Vec<&str> {
        let mut topics = Vec::with_capacity(5);
        for topic in [
            &self.log_topic,
            &self.supplier_topic,
            &self.transform_topic,
            &self.stats_topic,
            self.transform_input(),
        ] {
            if !topics.contains(&topic.as_str()) {
                topics.push(topic.as_str());
            }
        }
        topics
    }
}

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
    fn defaults_are_loopback_and_seed_topics() {
        let config = parse(&[]);
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.topics(), ["R1", "R2", "R3", "R4"]);
        assert!(config.transform && config.log_consumer);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn stages_can_be_switched_off_and_moved() {
        let config = parse(&[
            "--transform",
            "false",
            "--log-consumer",
            "off",
            "--transform-input",
            "in",
        ]);
        assert!(!config.transform && !config.log_consumer);
        assert_eq!(config.topics(), ["R1", "R2", "R3", "R4", "in"]);
        assert!(
            parse(&["--transform-input", "bad name"])
                .validate()
                .is_err()
        );
    }

    #[test]
    fn rejects_bad_topic_and_sizes() {
        assert!(
            parse(&["--log-topic", "bad topic"])
                .validate()
                .expect_err("invalid")
                .contains("--log-topic")
        );
        assert!(parse(&["--partitions", "0"]).validate().is_err());
        assert!(parse(&["--max-message-bytes", "0"]).validate().is_err());
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
}
