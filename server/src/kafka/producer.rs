//! The one shared producer: idempotent, acks=all, batching through `linger.ms`. Every
//! publish path (Publish, PublishStream, later the supplier and transform) sends through it,
//! so librdkafka batches records from all callers together.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use tokio::time::Instant;

use super::Kafka;

/// Producer tuning.
#[derive(Debug, Clone)]
pub struct ProducerSettings {
    /// Largest record (key + value + headers) accepted, in bytes.
    pub max_message_bytes: usize,
    /// How long librdkafka waits to fill a batch.
    pub linger: Duration,
    /// Upper bound of librdkafka's send queue, in KiB: the producer's memory bound.
    pub queue_kbytes: usize,
    /// Whether producing to a missing topic asks the broker to create it.
    pub auto_create_topics: bool,
}

/// Where the broker stored a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The broker's LogAppendTime, epoch milliseconds, when the topic uses broker time;
    /// `None` means the record keeps the CreateTime it was sent with.
    pub log_append_time_ms: Option<i64>,
}

/// Why a record was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// librdkafka or the broker refused or failed the record.
    #[error("{0}")]
    Kafka(#[from] KafkaError),
    /// No acknowledgement before the deadline; the record may still be written later.
    #[error("no acknowledgement from the broker within {0:?}")]
    Timeout(Duration),
}

/// A record librdkafka did not take.
#[derive(Debug)]
pub struct Refused {
    /// Why: `QueueFull` when its queue has no room, for now.
    pub error: KafkaError,
    /// The record's headers, which moved into it.
    pub headers: Option<OwnedHeaders>,
}

/// A cheap-to-clone handle on the shared producer.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
}

impl Producer {
    /// Creates the producer; it connects lazily.
    pub fn create(kafka: &Kafka, settings: &ProducerSettings) -> Result<Self, KafkaError> {
        // Room for Kafka's per-batch and per-record framing on top of our own record limit.
        let wire_limit = settings.max_message_bytes + 64 * 1024;
        let inner = kafka
            .client_settings()
            .config(|c| {
                c.set("enable.idempotence", "true")
                    .set("acks", "all")
                    .set("linger.ms", settings.linger.as_millis().to_string())
                    .set("message.max.bytes", wire_limit.to_string())
                    .set(
                        "queue.buffering.max.kbytes",
                        settings.queue_kbytes.to_string(),
                    )
                    // An unacknowledged record fails after this long instead of retrying
                    // forever.
                    .set("message.timeout.ms", "60000")
                    // A typo in a topic name must be NOT_FOUND, not a new topic.
                    .set(
                        "allow.auto.create.topics",
                        settings.auto_create_topics.to_string(),
                    );
            })
            .create()?;
        Ok(Self { inner })
    }

    /// Sends one record and waits for the broker's acknowledgement, until `deadline`.
    /// A full local queue is backpressure: we wait for room, within the same deadline.
    pub async fn send(
        &self,
        record: FutureRecord<'_, [u8], [u8]>,
        deadline: Instant,
    ) -> Result<Delivered, SendError> {
        let budget = deadline.saturating_duration_since(Instant::now());
        let sending = self.inner.send(record, Timeout::After(budget));
        match tokio::time::timeout_at(deadline, sending).await {
            Ok(result) => delivered(Ok(result)),
            Err(_) => Err(SendError::Timeout(budget)),
        }
    }

    /// Hands one record to librdkafka without waiting: the future resolves with the broker's
    /// answer (see [`delivered`]). A refusal (a full queue: try again) gives the headers back.
    pub fn enqueue(&self, record: FutureRecord<'_, [u8], [u8]>) -> Result<DeliveryFuture, Refused> {
        self.inner
            .send_result(record)
            .map_err(|(error, record)| Refused {
                error,
                headers: record.headers,
            })
    }

    /// Waits (blocking) until every queued record is acknowledged or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.inner.flush(Timeout::After(timeout))
    }

    /// Records queued in librdkafka and not yet acknowledged.
    pub fn in_flight(&self) -> i32 {
        self.inner.in_flight_count()
    }
}

/// What a record's [`DeliveryFuture`] resolved to.
pub fn delivered(
    result: Result<OwnedDeliveryResult, futures::channel::oneshot::Canceled>,
) -> Result<Delivered, SendError> {
    match result {
        Ok(Ok(delivery)) => Ok(Delivered {
            partition: delivery.partition,
            offset: delivery.offset,
            log_append_time_ms: match delivery.timestamp {
                rdkafka::Timestamp::LogAppendTime(ms) => Some(ms),
                _ => None,
            },
        }),
        Ok(Err((error, _message))) => Err(SendError::Kafka(error)),
        // The producer dropped the record's report: it is shutting down.
        Err(_) => Err(SendError::Kafka(KafkaError::Canceled)),
    }
}
