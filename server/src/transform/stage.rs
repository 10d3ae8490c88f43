//! One run of the transform: the consume loop, outputs kept in input order, and the
//! offsets stored once each record is done.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};

use crate::kafka::lag::LagContext;
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use streamgate::page_event::{self, PageEvent};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::kafka::Producer;
use crate::logs::LogThrottle;
use crate::logs::preview;

use super::output::{Sender, is_permanent, is_transient};
use super::{
    DRAIN, FIRST_BACKOFF, LOG_EVERY, MAX_ATTEMPTS, MAX_IN_FLIGHT, TransformCounters,
    TransformSettings, transform,
};

/// How one input record ended.
pub(super) enum Outcome {
    Written,
    DeadLettered,
    /// Neither output nor dead letter could be written; passed over.
    Lost,
    /// The server stopped before the output was acknowledged: the record is not done.
    Abandoned,
}

pub(super) struct Done {
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) outcome: Outcome,
}

/// One run of the stage; everything but the consumer is shared with the other runs.
pub(super) struct Stage {
    pub(super) producer: Producer,
    pub(super) settings: TransformSettings,
    pub(super) counters: Arc<TransformCounters>,
    pub(super) send_errors: Arc<Mutex<LogThrottle>>,
    pub(super) skips: LogThrottle,
    pub(super) shutdown: CancellationToken,
    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    pub(super) panic: Arc<AtomicBool>,
}

impl Stage {
    pub(super) async fn run(mut self, consumer: Arc<StreamConsumer<LagContext>>) {
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
    pub(super) fn finish(&self, consumer: &StreamConsumer<LagContext>, done: &Done) -> bool {
        if matches!(done.outcome, Outcome::Abandoned) {
            return false;
        }
        // Fails only if the partition was revoked meanwhile; its new owner transforms the
        // record again, which at-least-once allows.
        let _ = consumer.store_offset(self.settings.input.as_str(), done.partition, done.offset);
        true
    }

    pub(super) fn sender(&self) -> Sender {
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
    pub(super) fn process(&mut self, message: &BorrowedMessage<'_>) -> BoxFuture<'static, Done> {
        #[cfg(feature = "test-hooks")]
        if self.panic.swap(false, Ordering::AcqRel) {
            panic!("transform: panic injected by a test");
        }
        let (partition, offset) = (message.partition(), message.offset());
        let payload = message.payload().unwrap_or_default();
        let sender = self.sender();
        let refused = match PageEvent::decode(payload) {
            // The error says "not a PageEvent: …" itself.
            Err(e) => Err(e.to_string()),
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
