//! The Kafka consumer behind one Subscribe stream: its configuration (with or without a
//! group), and the rebalance hook that tells the stream when a group assignment changed.

use std::sync::atomic::{AtomicBool, Ordering};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tokio::sync::Notify;

use super::start::Start;
use crate::gateway::State;
use crate::kafka;
use crate::kafka::lag::LagReporter;

/// The consumer of one subscription.
pub type SubscriptionConsumer = StreamConsumer<SubscriptionContext>;

/// The group id of a subscription without a group. librdkafka's consumer wants one even
/// when it only assigns partitions; this one is never joined and nothing is committed.
const PRIVATE_READER: &str = "streamgate-private-reader";

/// Creates the consumer of a subscription: a member of `group` when there is one (offsets
/// stored by the response stream, auto-committed), otherwise an assign-only reader.
pub fn create(
    state: &State,
    group: Option<&str>,
    start: Start,
    stop_at_end: bool,
) -> Result<SubscriptionConsumer, rdkafka::error::KafkaError> {
    let common = |config: &mut rdkafka::ClientConfig| {
        // The memory a slow client can pin in librdkafka's prefetch queue.
        kafka::consumer::prefetch(config, 4096);
        config.set(
            "fetch.wait.max.ms",
            state.fetch_wait.as_millis().max(1).to_string(),
        );
        config.set(
            "enable.partition.eof",
            if stop_at_end { "true" } else { "false" },
        );
    };
    let settings = &state.client_settings;
    let config = match group {
        Some(group) => settings.config(|config| {
            common(config);
            kafka::lag::enable(config);
            config
                .set("group.id", group)
                .set("enable.auto.commit", "true")
                .set("auto.commit.interval.ms", "1000")
                // Offsets are stored by the response stream once a record is handed over.
                .set("enable.auto.offset.store", "false")
                .set(
                    "auto.offset.reset",
                    if start == Start::Earliest {
                        "earliest"
                    } else {
                        "latest"
                    },
                )
                .set("session.timeout.ms", "6000")
                .set("heartbeat.interval.ms", "1000");
        }),
        None => kafka::consumer::assign_only(settings, PRIVATE_READER, common),
    };
    config.create_with_context(SubscriptionContext {
        changed: AtomicBool::new(false),
        wake: Notify::new(),
        lag: group.map(|group| settings.lag_reporter(group)),
    })
}

/// Flags assignment changes and, for a group, reports the group's lag; runs on librdkafka's
/// poll path, so it only sets a flag and keeps a report.
pub struct SubscriptionContext {
    changed: AtomicBool,
    wake: Notify,
    lag: Option<LagReporter>,
}

impl SubscriptionContext {
    /// Whether the assignment changed since the last call.
    pub fn take_changed(&self) -> bool {
        self.changed.swap(false, Ordering::AcqRel)
    }

    /// Resolves once the assignment may have changed.
    pub async fn changed(&self) {
        self.wake.notified().await;
    }
}

impl ClientContext for SubscriptionContext {
    fn error(&self, error: KafkaError, reason: &str) {
        // A stream that stops at the end asks for end-of-partition events; librdkafka also
        // hands those of a partition no longer assigned here, as "errors". They are not.
        if !kafka::consumer::is_partition_eof(&error) {
            tracing::error!(error = %error, reason, "subscription consumer error");
        }
    }

    fn stats_raw(&self, statistics: &[u8]) {
        if let Some(lag) = &self.lag {
            lag.report(statistics);
        }
    }
}

impl ConsumerContext for SubscriptionContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Error(e) = rebalance {
            tracing::warn!(error = %e, "subscription rebalance failed");
        }
        self.changed.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// Errors after which a subscription cannot go on.
pub fn is_fatal(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::Fatal
        )
    )
}
