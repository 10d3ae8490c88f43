//! Sending one record's output (or its dead letter) and deciding, from the broker's error,
//! whether to retry, to wait an outage out, or to dead-letter the record.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::Message;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use streamgate::topic::TopicName;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::kafka::Producer;
use crate::kafka::dead_letter::DeadLetter;
use crate::kafka::producer::SendError;
use crate::logs::LogThrottle;

use super::stage::{Done, Outcome};
use super::{FIRST_BACKOFF, MAX_BACKOFF, TransformCounters};

/// Whether a failed send would fail again however often it is retried.
pub(super) fn is_permanent(error: &SendError) -> bool {
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
pub(super) fn is_transient(error: &SendError) -> bool {
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

/// What a record's future needs of the stage.
#[derive(Clone)]
pub(super) struct Sender {
    pub(super) producer: Producer,
    pub(super) send_timeout: Duration,
    pub(super) dead_letters: TopicName,
    pub(super) counters: Arc<TransformCounters>,
    pub(super) errors: Arc<Mutex<LogThrottle>>,
    pub(super) shutdown: CancellationToken,
}

impl Sender {
    /// One attempt at a record, counted if it fails.
    pub(super) async fn send(&self, record: FutureRecord<'_, [u8], [u8]>) -> Result<(), SendError> {
        let sent = self
            .producer
            .send(record, Instant::now() + self.send_timeout)
            .await;
        if sent.is_err() {
            self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
        }
        sent.map(|_| ())
    }

    pub(super) fn log(&self, partition: i32, offset: i64, error: &SendError, what: &str) {
        let log = self.errors.lock().map(|mut t| t.hit()).unwrap_or(None);
        if let Some(times) = log {
            tracing::warn!(partition, offset, times, error = %error, "{what}");
        }
    }

    /// Waits `backoff` (then doubles it); false if the server stops meanwhile.
    pub(super) async fn pause(&self, backoff: &mut Duration) -> bool {
        let wait = *backoff;
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = tokio::time::sleep(wait) => true,
        }
    }

    /// Writes `original` to the dead-letter topic, retrying until it is acknowledged; a
    /// dead letter refused for good is sent once more without the record's value.
    pub(super) async fn dead_letter(self, original: OwnedMessage, reason: String) -> Done {
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
