//! The transform function (the seed's `pageEventFunction`): reads PageEvents from R2 in its
//! own consumer group and writes each to R3 with the name replaced by `"Page:" + <number of
//! characters in the name>` and the user by `"User=>1"`; date and duration are unchanged.
//!
//! At-least-once. Outputs go through the shared producer, up to `MAX_IN_FLIGHT` awaiting
//! their acknowledgement, and come back in input order (`FuturesOrdered`): an input offset is
//! stored for the next commit only once its output, and every output before it, was
//! acknowledged. A crash therefore repeats some outputs and never loses one. An output that
//! fails is retried with backoff until it is acknowledged or the server stops.
//!
//! A record that is not a PageEvent is skipped (its offset is still stored: bad data must not
//! block the partition), counted, and logged at most once per interval.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use streamgate::page_event::{self, PageEvent};
use streamgate::topic::TopicName;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::kafka::{Kafka, Producer};
use crate::logs::LogThrottle;
use crate::logs::preview;

/// Outputs awaiting acknowledgement, at most: the stage's memory bound.
const MAX_IN_FLIGHT: usize = 1024;
/// Problems are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(5);
/// How long a shutdown waits for outputs in flight before leaving them to the next run.
const DRAIN: Duration = Duration::from_secs(5);
/// The longest wait between two attempts at one output.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The user every transformed event gets.
pub const TRANSFORMED_USER: &str = "User=>1";

/// The seed's rule. The length counts Unicode characters; Java's `String.length()` counted
/// UTF-16 units, which differs only for characters outside the Basic Multilingual Plane
/// (an emoji counts 1 here, 2 in the seed).
pub fn transform(event: &PageEvent<'_>) -> PageEvent<'static> {
    PageEvent {
        name: format!("Page:{}", event.name.chars().count()).into(),
        user: TRANSFORMED_USER.into(),
        date_ms: event.date_ms,
        duration_ms: event.duration_ms,
    }
}

/// Where the transform reads and writes.
#[derive(Debug, Clone)]
pub struct TransformSettings {
    /// Input topic (R2).
    pub input: TopicName,
    /// Output topic (R3).
    pub output: TopicName,
    /// Consumer group; its committed offsets are the stage's progress.
    pub group: String,
    /// One attempt at an output waits this long for its acknowledgement.
    pub send_timeout: Duration,
}

/// What the stage has done since it started.
#[derive(Debug, Default)]
pub struct TransformCounters {
    /// Outputs acknowledged.
    pub transformed: AtomicU64,
    /// Input records skipped because they are not PageEvents.
    pub skipped: AtomicU64,
    /// Failed attempts at an output (each was retried).
    pub send_errors: AtomicU64,
}

/// The running stage.
pub struct Transform {
    counters: Arc<TransformCounters>,
    task: JoinHandle<()>,
}

impl Transform {
    /// Subscribes to the input and starts the stage; it stops when `shutdown` is cancelled.
    pub fn spawn(
        kafka: &Kafka,
        producer: Producer,
        settings: TransformSettings,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Self, KafkaError> {
        let consumer: StreamConsumer = kafka
            .client_settings()
            .config(|c| {
                c.set("group.id", &settings.group)
                    // New group: transform what R2 already holds, as a stream processor would.
                    .set("auto.offset.reset", "earliest")
                    .set("enable.auto.commit", "true")
                    .set("auto.commit.interval.ms", "1000")
                    // Offsets are stored by the stage once the output is acknowledged.
                    .set("enable.auto.offset.store", "false")
                    .set("session.timeout.ms", "10000")
                    .set("heartbeat.interval.ms", "2000")
                    .set("queued.max.messages.kbytes", "4096");
            })
            .create()?;
        consumer.subscribe(&[settings.input.as_str()])?;
        let counters = Arc::new(TransformCounters::default());
        let stage = Stage {
            producer,
            settings,
            counters: counters.clone(),
            send_errors: Arc::new(Mutex::new(LogThrottle::new(LOG_EVERY))),
            skips: LogThrottle::new(LOG_EVERY),
            shutdown: shutdown.clone(),
        };
        let task = tasks.spawn(stage.run(Arc::new(consumer)));
        Ok(Self { counters, task })
    }

    /// The stage's counters.
    pub fn counters(&self) -> Arc<TransformCounters> {
        self.counters.clone()
    }

    /// Waits until the stage has drained and left its group (call after cancelling).
    pub async fn stopped(self) {
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "transform task failed");
        }
    }
}

/// How one input record ended.
enum Outcome {
    Written,
    Skipped,
    /// The server stopped before the output was acknowledged: the record is not done.
    Abandoned,
}

struct Done {
    partition: i32,
    offset: i64,
    outcome: Outcome,
}

struct Stage {
    producer: Producer,
    settings: TransformSettings,
    counters: Arc<TransformCounters>,
    send_errors: Arc<Mutex<LogThrottle>>,
    skips: LogThrottle,
    shutdown: CancellationToken,
}

impl Stage {
    async fn run(mut self, consumer: Arc<StreamConsumer>) {
        tracing::info!(input = %self.settings.input, output = %self.settings.output, group = %self.settings.group, "transform started");
        let mut pending: FuturesOrdered<BoxFuture<'static, Done>> = FuturesOrdered::new();
        let mut receive_errors = LogThrottle::new(LOG_EVERY);
        let shutdown = self.shutdown.clone();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(done) = pending.next(), if !pending.is_empty() => {
                    self.finish(&consumer, &done);
                }
                message = consumer.recv(), if pending.len() < MAX_IN_FLIGHT => match message {
                    Ok(message) => pending.push_back(self.process(&message)),
                    Err(e) => {
                        if let Some(times) = receive_errors.hit() {
                            tracing::warn!(error = %e, times, "transform: consumer error; carrying on");
                        }
                    }
                },
            }
        }

        // Let outputs in flight land, so their inputs need not be transformed again.
        let deadline = Instant::now() + DRAIN;
        while let Ok(Some(done)) = tokio::time::timeout_at(deadline, pending.next()).await {
            if !self.finish(&consumer, &done) {
                break;
            }
        }
        // Commit what was stored and leave the group; both wait on the broker.
        let closing = tokio::task::spawn_blocking(move || {
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                // Nothing stored since the last commit is reported as an error too.
                tracing::debug!(error = %e, "transform: final commit");
            }
            drop(consumer);
        });
        if tokio::time::timeout(DRAIN, closing).await.is_err() {
            tracing::warn!(
                "transform: leaving the group took too long; the broker will time it out"
            );
        }
        tracing::info!(
            transformed = self.counters.transformed.load(Ordering::Relaxed),
            skipped = self.counters.skipped.load(Ordering::Relaxed),
            send_errors = self.counters.send_errors.load(Ordering::Relaxed),
            "transform stopped"
        );
    }

    /// Stores the offset of a finished record. Returns false for an abandoned one: nothing
    /// after it may be stored either.
    fn finish(&self, consumer: &StreamConsumer, done: &Done) -> bool {
        if matches!(done.outcome, Outcome::Abandoned) {
            return false;
        }
        // Fails only if the partition was revoked meanwhile; its new owner transforms the
        // record again, which at-least-once allows.
        let _ = consumer.store_offset(self.settings.input.as_str(), done.partition, done.offset);
        true
    }

    /// Starts the output of one input record; the future ends when it is done.
    fn process(&mut self, message: &BorrowedMessage<'_>) -> BoxFuture<'static, Done> {
        let (partition, offset) = (message.partition(), message.offset());
        let payload = message.payload().unwrap_or_default();
        let event = match PageEvent::decode(payload) {
            Ok(event) => event,
            Err(e) => {
                self.counters.skipped.fetch_add(1, Ordering::Relaxed);
                if let Some(skipped) = self.skips.hit() {
                    tracing::warn!(partition, offset, skipped, error = %e, value = ?preview(payload), "transform: skipping records that are not PageEvents");
                }
                return Box::pin(std::future::ready(Done {
                    partition,
                    offset,
                    outcome: Outcome::Skipped,
                }));
            }
        };
        let output = transform(&event);
        let value = output.to_json();
        let key = output.name.into_owned();
        // Kafka Streams' rule: the output keeps the input's timestamp (event time).
        let timestamp = message.timestamp().to_millis();
        let producer = self.producer.clone();
        let topic = self.settings.output.clone();
        let send_timeout = self.settings.send_timeout;
        let counters = self.counters.clone();
        let errors = self.send_errors.clone();
        let shutdown = self.shutdown.clone();
        Box::pin(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let mut record = FutureRecord::to(topic.as_str())
                    .key(key.as_bytes())
                    .payload(value.as_slice())
                    .headers(OwnedHeaders::new().insert(Header {
                        key: "content-type",
                        value: Some(page_event::CONTENT_TYPE),
                    }));
                if let Some(ts) = timestamp {
                    record = record.timestamp(ts);
                }
                let attempt = producer.send(record, Instant::now() + send_timeout).await;
                let error = match attempt {
                    Ok(_) => {
                        counters.transformed.fetch_add(1, Ordering::Relaxed);
                        return Done {
                            partition,
                            offset,
                            outcome: Outcome::Written,
                        };
                    }
                    Err(e) => e,
                };
                counters.send_errors.fetch_add(1, Ordering::Relaxed);
                let log = errors.lock().map(|mut t| t.hit()).unwrap_or(None);
                if let Some(times) = log {
                    tracing::warn!(partition, offset, times, error = %error, retry_in = ?backoff, "transform: output not acknowledged; retrying");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return Done { partition, offset, outcome: Outcome::Abandoned },
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_the_seed_rule_counting_characters() {
        let input = PageEvent {
            name: "P1".into(),
            user: "U2".into(),
            date_ms: 1_662_925_267_331,
            duration_ms: 96,
        };
        let output = transform(&input);
        assert_eq!(output.name, "Page:2");
        assert_eq!(output.user, "User=>1");
        assert_eq!(
            (output.date_ms, output.duration_ms),
            (1_662_925_267_331, 96)
        );
        for (name, expected) in [
            ("", "Page:0"),
            ("é", "Page:1"),
            ("ページ", "Page:3"),
            ("😀x", "Page:2"),
        ] {
            let event = PageEvent {
                name: name.into(),
                ..input.clone()
            };
            assert_eq!(transform(&event).name, expected, "{name:?}");
        }
    }
}
