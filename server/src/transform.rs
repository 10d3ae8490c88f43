//! The transform function (the seed's `pageEventFunction`): reads PageEvents from R2 in its
//! own consumer group and writes each to R3 with the name replaced by `"Page:" + <number of
//! characters in the name>` and the user by `"User=>1"`; date and duration are unchanged.
//!
//! At-least-once. Outputs go through the shared producer, up to `MAX_IN_FLIGHT` awaiting
//! their acknowledgement, and come back in input order (`FuturesOrdered`): an input offset is
//! stored for the next commit only once its output, and every output before it, was
//! acknowledged. A crash therefore repeats some outputs and never loses one.
//!
//! No record stops the stage. A record it cannot process goes to its dead-letter topic
//! (`error.<input>.<group>`, see [`dead_letter`](crate::kafka::dead_letter)) through the
//! same producer and in the same order, and its offset is stored once the dead letter is
//! acknowledged: a record that is not a PageEvent, a page name longer than
//! `max_page_name_bytes`, and an output the broker refuses — at once for an error that no
//! retry can cure (a record too large, say), after `MAX_ATTEMPTS` attempts for other
//! refusals. Errors that say the cluster is unwell (timeouts, brokers down, no leader) are
//! retried until the output lands: an outage pauses the stage, it does not empty R2 into
//! the dead letters. A dead
//! letter itself is retried until it lands (or the server stops); one the broker refuses for
//! good is sent again without the record's value, and if even that is refused the record is
//! logged, counted as lost, and passed over.
//!
//! The stage never dies for good: it runs under [`supervise`], so a panic is caught, logged,
//! counted, and a fresh run with a fresh consumer resumes from the group's committed offsets.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use streamgate::page_event::{self, PageEvent};
use streamgate::topic::TopicName;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::kafka::dead_letter::DeadLetter;
use crate::kafka::producer::SendError;
use crate::kafka::{ClientSettings, Kafka, Producer};
use crate::logs::LogThrottle;
use crate::logs::preview;
use crate::supervisor::{Restarts, supervise};

/// Outputs awaiting acknowledgement, at most: the stage's memory bound.
const MAX_IN_FLIGHT: usize = 1024;
/// Problems are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(5);
/// How long a shutdown waits for outputs in flight before leaving them to the next run.
const DRAIN: Duration = Duration::from_secs(5);
/// The first wait between two attempts at one record; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts at one output.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Attempts at an output before its record goes to the dead-letter topic.
const MAX_ATTEMPTS: u32 = 5;

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
    /// Longest page name transformed, in bytes; a longer one is dead-lettered.
    pub max_page_name_bytes: usize,
    /// Where records the stage cannot process go (`error.<input>.<group>`).
    pub dead_letters: TopicName,
}

/// What the stage has done since it started (over every run).
#[derive(Debug, Default)]
pub struct TransformCounters {
    /// Outputs acknowledged.
    pub transformed: AtomicU64,
    /// Input records written to the dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Failed attempts at an output or a dead letter (each was retried or dead-lettered).
    pub send_errors: AtomicU64,
    /// Records that neither their output nor their dead letter could be written for (the
    /// broker refused both for good): logged and passed over.
    pub lost: AtomicU64,
}

/// The running stage.
pub struct Transform {
    counters: Arc<TransformCounters>,
    restarts: Arc<Restarts>,
    // Set only through the test hook; the stage reads it in every build.
    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    panic: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Transform {
    /// Subscribes to the input and starts the stage under supervision, its task tracked by
    /// `tasks`; it stops when `shutdown` is cancelled. Each run after a panic gets a fresh
    /// consumer.
    pub fn spawn(
        kafka: &Kafka,
        producer: Producer,
        settings: TransformSettings,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Self, KafkaError> {
        let client = kafka.client_settings();
        // The first run's consumer, made here so that a configuration error stops the start.
        let mut first = Some(consumer(&client, &settings)?);
        let counters = Arc::new(TransformCounters::default());
        let panic = Arc::new(AtomicBool::new(false));
        let send_errors = Arc::new(Mutex::new(LogThrottle::new(LOG_EVERY)));
        let (shared, flag, token) = (counters.clone(), panic.clone(), shutdown.clone());
        let (task, restarts) = supervise(tasks, &shutdown, "transform", move || {
            let made = first.take();
            let client = client.clone();
            let stage = Stage {
                producer: producer.clone(),
                settings: settings.clone(),
                counters: shared.clone(),
                send_errors: send_errors.clone(),
                skips: LogThrottle::new(LOG_EVERY),
                shutdown: token.clone(),
                panic: flag.clone(),
            };
            async move {
                let consumer = match made {
                    Some(consumer) => consumer,
                    None => match fresh_consumer(&client, &stage.settings, &stage.shutdown).await {
                        Some(consumer) => consumer,
                        None => return,
                    },
                };
                stage.run(Arc::new(consumer)).await;
            }
        });
        Ok(Self {
            counters,
            restarts,
            panic,
            task,
        })
    }

    /// The stage's counters.
    pub fn counters(&self) -> Arc<TransformCounters> {
        self.counters.clone()
    }

    /// How many times the stage was restarted after a panic.
    pub fn restarts(&self) -> u64 {
        self.restarts.count()
    }

    /// Makes the stage panic at the next record it reads, as a bug would (feature
    /// `test-hooks`). The record is not done: the next run reads it again.
    #[cfg(feature = "test-hooks")]
    pub fn inject_panic(&self) {
        self.panic.store(true, Ordering::Release);
    }

    /// Waits until the stage has drained and left its group (call after cancelling).
    pub async fn stopped(self) {
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "transform task failed");
        }
    }
}

/// The stage's consumer, subscribed to its input.
fn consumer(
    client: &ClientSettings,
    settings: &TransformSettings,
) -> Result<StreamConsumer, KafkaError> {
    let consumer: StreamConsumer = client
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
    Ok(consumer)
}

/// A consumer for a restarted run, retried until it can be made; `None` on shutdown.
async fn fresh_consumer(
    client: &ClientSettings,
    settings: &TransformSettings,
    shutdown: &CancellationToken,
) -> Option<StreamConsumer> {
    loop {
        match consumer(client, settings) {
            Ok(consumer) => return Some(consumer),
            Err(e) => {
                tracing::error!(error = %e, "transform: cannot create its consumer; retrying")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(MAX_BACKOFF) => {}
        }
    }
}

/// Whether a failed send would fail again however often it is retried.
fn is_permanent(error: &SendError) -> bool {
    use RDKafkaErrorCode::*;
    match error {
        SendError::Timeout(_) => false,
        SendError::Kafka(e) => matches!(
            e.rdkafka_error_code(),
            Some(
                MessageSizeTooLarge
                    | InvalidMessageSize
                    | InvalidMessage
                    | InvalidRecord
                    | InvalidTopic
                    | InvalidRequiredAcks
                    | TopicAuthorizationFailed
                    | ClusterAuthorizationFailed
                    | UnsupportedForMessageFormat
                    | PolicyViolation
            )
        ),
    }
}

/// Whether a failed send says the cluster is unwell rather than the record bad: an outage
/// is waited out (the partition pauses), never a reason to dead-letter.
fn is_transient(error: &SendError) -> bool {
    use RDKafkaErrorCode::*;
    match error {
        SendError::Timeout(_) => true,
        SendError::Kafka(e) => matches!(
            e.rdkafka_error_code(),
            Some(
                MessageTimedOut
                    | QueueFull
                    | BrokerTransportFailure
                    | AllBrokersDown
                    | NetworkException
                    | LeaderNotAvailable
                    | NotLeaderForPartition
                    | RequestTimedOut
                    | NotEnoughReplicas
                    | NotEnoughReplicasAfterAppend
                    | UnknownTopicOrPartition
                    | OperationTimedOut
                    | NotCoordinator
                    | CoordinatorNotAvailable
            )
        ),
    }
}

/// How one input record ended.
enum Outcome {
    Written,
    DeadLettered,
    /// Neither output nor dead letter could be written; passed over.
    Lost,
    /// The server stopped before the output was acknowledged: the record is not done.
    Abandoned,
}

struct Done {
    partition: i32,
    offset: i64,
    outcome: Outcome,
}

/// One run of the stage; everything but the consumer is shared with the other runs.
struct Stage {
    producer: Producer,
    settings: TransformSettings,
    counters: Arc<TransformCounters>,
    send_errors: Arc<Mutex<LogThrottle>>,
    skips: LogThrottle,
    shutdown: CancellationToken,
    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    panic: Arc<AtomicBool>,
}

/// What a record's future needs of the stage.
#[derive(Clone)]
struct Sender {
    producer: Producer,
    send_timeout: Duration,
    dead_letters: TopicName,
    counters: Arc<TransformCounters>,
    errors: Arc<Mutex<LogThrottle>>,
    shutdown: CancellationToken,
}

impl Stage {
    async fn run(mut self, consumer: Arc<StreamConsumer>) {
        tracing::info!(input = %self.settings.input, output = %self.settings.output, group = %self.settings.group, dead_letters = %self.settings.dead_letters, "transform started");
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
            dead_lettered = self.counters.dead_lettered.load(Ordering::Relaxed),
            send_errors = self.counters.send_errors.load(Ordering::Relaxed),
            lost = self.counters.lost.load(Ordering::Relaxed),
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

    fn sender(&self) -> Sender {
        Sender {
            producer: self.producer.clone(),
            send_timeout: self.settings.send_timeout,
            dead_letters: self.settings.dead_letters.clone(),
            counters: self.counters.clone(),
            errors: self.send_errors.clone(),
            shutdown: self.shutdown.clone(),
        }
    }

    /// Starts the output (or the dead letter) of one input record; the future ends when it
    /// is done.
    fn process(&mut self, message: &BorrowedMessage<'_>) -> BoxFuture<'static, Done> {
        #[cfg(feature = "test-hooks")]
        if self.panic.swap(false, Ordering::AcqRel) {
            panic!("transform: panic injected by a test");
        }
        let (partition, offset) = (message.partition(), message.offset());
        let payload = message.payload().unwrap_or_default();
        let sender = self.sender();
        let refused = match PageEvent::decode(payload) {
            Err(e) => Err(format!("not a PageEvent: {e}")),
            Ok(event) if event.name.len() > self.settings.max_page_name_bytes => Err(format!(
                "the page name has {} bytes, more than the limit of {} (--max-page-name-bytes)",
                event.name.len(),
                self.settings.max_page_name_bytes
            )),
            Ok(event) => Ok(transform(&event)),
        };
        let output = match refused {
            Ok(output) => output,
            Err(reason) => {
                if let Some(times) = self.skips.hit() {
                    tracing::warn!(partition, offset, times, reason, value = ?preview(payload), "transform: sending records it cannot process to the dead-letter topic");
                }
                let original = message.detach();
                return Box::pin(async move { sender.dead_letter(original, reason).await });
            }
        };
        let value = output.to_json();
        let key = output.name.into_owned();
        // Kafka Streams' rule: the output keeps the input's timestamp (event time).
        let timestamp = message.timestamp().to_millis();
        let original = message.detach();
        let topic = self.settings.output.clone();
        Box::pin(async move {
            let mut backoff = FIRST_BACKOFF;
            let mut attempts = 0;
            let error = loop {
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
                let attempt = sender.send(record).await;
                attempts += 1;
                let error = match attempt {
                    Ok(()) => {
                        sender.counters.transformed.fetch_add(1, Ordering::Relaxed);
                        return Done {
                            partition,
                            offset,
                            outcome: Outcome::Written,
                        };
                    }
                    Err(e) => e,
                };
                // A bad record goes to the dead letters; an outage is waited out.
                if is_permanent(&error) || (attempts >= MAX_ATTEMPTS && !is_transient(&error)) {
                    break error;
                }
                sender.log(
                    partition,
                    offset,
                    &error,
                    "transform: output not acknowledged; retrying",
                );
                if !sender.pause(&mut backoff).await {
                    return Done {
                        partition,
                        offset,
                        outcome: Outcome::Abandoned,
                    };
                }
            };
            let reason =
                format!("the output to {topic} was refused after {attempts} attempt(s): {error}");
            sender.dead_letter(original, reason).await
        })
    }
}

impl Sender {
    /// One attempt at a record, counted if it fails.
    async fn send(&self, record: FutureRecord<'_, [u8], [u8]>) -> Result<(), SendError> {
        let sent = self
            .producer
            .send(record, Instant::now() + self.send_timeout)
            .await;
        if sent.is_err() {
            self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
        }
        sent.map(|_| ())
    }

    fn log(&self, partition: i32, offset: i64, error: &SendError, what: &str) {
        let log = self.errors.lock().map(|mut t| t.hit()).unwrap_or(None);
        if let Some(times) = log {
            tracing::warn!(partition, offset, times, error = %error, "{what}");
        }
    }

    /// Waits `backoff` (then doubles it); false if the server stops meanwhile.
    async fn pause(&self, backoff: &mut Duration) -> bool {
        let wait = *backoff;
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = tokio::time::sleep(wait) => true,
        }
    }

    /// Writes `original` to the dead-letter topic, retrying until it is acknowledged; a
    /// dead letter refused for good is sent once more without the record's value.
    async fn dead_letter(self, original: OwnedMessage, reason: String) -> Done {
        let (partition, offset) = (original.partition(), original.offset());
        let mut backoff = FIRST_BACKOFF;
        let mut without_value = false;
        let mut reason = reason;
        loop {
            let letter = DeadLetter::of(&original, &reason);
            let mut record =
                FutureRecord::<[u8], [u8]>::to(self.dead_letters.as_str()).headers(letter.headers);
            if let Some(key) = letter.key {
                record = record.key(key);
            }
            if let (Some(value), false) = (letter.value, without_value) {
                record = record.payload(value);
            }
            if let Some(ts) = letter.timestamp_ms {
                record = record.timestamp(ts);
            }
            let error = match self.send(record).await {
                Ok(()) => {
                    self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    return Done {
                        partition,
                        offset,
                        outcome: Outcome::DeadLettered,
                    };
                }
                Err(e) => e,
            };
            if is_permanent(&error) {
                if without_value {
                    self.counters.lost.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(partition, offset, error = %error, reason, "transform: the dead-letter topic refused the record, even without its value; passing it over");
                    return Done {
                        partition,
                        offset,
                        outcome: Outcome::Lost,
                    };
                }
                without_value = true;
                reason = format!("{reason} (the record's value is left out: {error})");
                continue;
            }
            self.log(
                partition,
                offset,
                &error,
                "transform: dead letter not acknowledged; retrying",
            );
            if !self.pause(&mut backoff).await {
                return Done {
                    partition,
                    offset,
                    outcome: Outcome::Abandoned,
                };
            }
        }
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
