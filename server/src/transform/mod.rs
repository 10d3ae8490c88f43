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

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use streamgate::page_event::PageEvent;
use streamgate::topic::TopicName;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::kafka::lag::LagContext;
use crate::kafka::{ClientSettings, Kafka, Producer};
use crate::logs::LogThrottle;
use crate::supervisor::{Restarts, supervise};

mod output;
mod stage;

use self::stage::Stage;

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
                    None => match crate::kafka::consumer::make_until_ready(
                        "transform",
                        || consumer(&client, &stage.settings),
                        MAX_BACKOFF,
                        &stage.shutdown,
                    )
                    .await
                    {
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

    #[cfg(feature = "test-hooks")]
    /// How many times the stage was restarted after a panic.
    pub fn restarts(&self) -> u64 {
        self.restarts.count()
    }

    /// The counter behind [`restarts`](Self::restarts).
    pub fn restart_counter(&self) -> Arc<Restarts> {
        self.restarts.clone()
    }

    /// Makes the stage panic at the next record it reads, as a bug would (feature
    /// `test-hooks`). The record is not done: the next run reads it again.
    #[cfg(feature = "test-hooks")]
    pub fn inject_panic(&self) {
        self.panic.store(true, std::sync::atomic::Ordering::Release);
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
) -> Result<StreamConsumer<LagContext>, KafkaError> {
    let consumer: StreamConsumer<LagContext> = client
        .config(|c| {
            c.set("group.id", &settings.group)
                // New group: transform what R2 already holds, as a stream processor would.
                .set("auto.offset.reset", "earliest")
                .set("enable.auto.commit", "true")
                .set("auto.commit.interval.ms", "1000")
                // Offsets are stored by the stage once the output is acknowledged.
                .set("enable.auto.offset.store", "false")
                .set("session.timeout.ms", "10000")
                .set("heartbeat.interval.ms", "2000");
            crate::kafka::consumer::prefetch(c, 4096);
            crate::kafka::lag::enable(c);
        })
        .create_with_context(LagContext(client.lag_reporter(&settings.group)))?;
    consumer.subscribe(&[settings.input.as_str()])?;
    Ok(consumer)
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
