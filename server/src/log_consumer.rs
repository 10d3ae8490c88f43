//! The log consumer (the seed's `pageEventConsumer`): logs one structured line per record
//! published to R1, for operators watching the server's output.
//!
//! Like the seed's anonymous consumer it starts at the end of the topic and keeps no group:
//! it assigns every partition itself (no rebalances, no committed offsets left behind) and
//! picks up partitions added later. Every field is logged with `?`, so that tracing quotes
//! and escapes it: a record's content can never forge or break a log line. A record that is
//! not a PageEvent is logged as a truncated, escaped preview of its bytes.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use streamgate::page_event::{self, PageEvent};
use streamgate::topic::TopicName;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::kafka::{Kafka, consumer};
use crate::logs::LogThrottle;
use crate::logs::preview;
use crate::supervisor::{Restarts, supervise};

/// How often the topic's partition count is checked again.
const RESCAN: Duration = Duration::from_secs(30);
/// How long to wait between attempts while the topic does not exist yet.
const RETRY: Duration = Duration::from_secs(2);
/// The target of the lines, for filtering (`RUST_LOG=streamgate::log_consumer=off`).
pub const TARGET: &str = "streamgate::log_consumer";

/// Starts the log consumer on `topic`, supervised (a panic restarts it with a fresh
/// consumer); it stops when `shutdown` is cancelled.
pub fn spawn(
    kafka: &Kafka,
    topic: TopicName,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<(JoinHandle<()>, Arc<Restarts>), KafkaError> {
    let config = consumer::assign_only(&kafka.client_settings(), "streamgate-log-consumer", |c| {
        consumer::prefetch(c, 1024);
    });
    // Created once here, so that a bad configuration fails the start-up.
    let mut first: Option<StreamConsumer> = Some(config.create()?);
    let token = shutdown.clone();
    let (handle, restarts) = supervise(tasks, &shutdown, "log consumer", move || {
        let consumer = first.take().map_or_else(|| config.create(), Ok);
        let (topic, shutdown) = (topic.clone(), token.clone());
        async move {
            match consumer {
                Ok(consumer) => run(Arc::new(consumer), topic, shutdown).await,
                Err(e) => {
                    tracing::error!(target: TARGET, error = %e, "log consumer: cannot create its consumer; stopping")
                }
            }
        }
    });
    Ok((handle, restarts))
}

async fn run(consumer: Arc<StreamConsumer>, topic: TopicName, shutdown: CancellationToken) {
    let mut assigned = 0;
    let mut problems = LogThrottle::new(Duration::from_secs(30));
    // Partitions that exist at start are read from their end; any added later from their
    // beginning, so nothing published to them is missed.
    let mut start = Offset::End;
    let mut rescan = tokio::time::interval(RESCAN);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = rescan.tick() => {
                match assign_new_partitions(&consumer, &topic, assigned, start).await {
                    Ok(count) if count > assigned => {
                        if assigned == 0 {
                            tracing::info!(target: TARGET, topic = %topic, partitions = count, "log consumer started");
                        }
                        assigned = count;
                        start = Offset::Beginning;
                    }
                    Ok(_) if assigned == 0 => rescan.reset_after(RETRY),
                    Ok(_) => {}
                    Err(e) => {
                        if let Some(times) = problems.hit() {
                            tracing::warn!(target: TARGET, topic = %topic, error = %e, times, "log consumer: topic not readable yet; retrying");
                        }
                        if assigned == 0 {
                            rescan.reset_after(RETRY);
                        }
                    }
                }
            }
            message = consumer.recv(), if assigned > 0 => match message {
                Ok(message) => log_record(&message),
                Err(e) => {
                    if let Some(times) = problems.hit() {
                        tracing::warn!(target: TARGET, topic = %topic, error = %e, times, "log consumer: consumer error; carrying on");
                    }
                }
            },
        }
    }
    consumer::close(consumer).await;
}

/// Assigns the partitions numbered `known..` that now exist. Returns the partition count.
async fn assign_new_partitions(
    consumer: &Arc<StreamConsumer>,
    topic: &TopicName,
    known: usize,
    start: Offset,
) -> Result<usize, KafkaError> {
    let (client, name) = (consumer.clone(), topic.clone());
    let count = tokio::task::spawn_blocking(move || -> Result<usize, KafkaError> {
        let metadata = client.fetch_metadata(Some(name.as_str()), Duration::from_secs(5))?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == name.as_str() && t.error().is_none())
            .map_or(0, |t| t.partitions().len()))
    })
    .await
    .map_err(|_| KafkaError::Canceled)??;
    if count > known {
        let mut list = TopicPartitionList::new();
        for partition in known..count {
            // Partition numbers come from the broker as i32, so they fit.
            let partition = i32::try_from(partition).unwrap_or(i32::MAX);
            list.add_partition_offset(topic.as_str(), partition, start)?;
        }
        consumer.incremental_assign(&list)?;
    }
    Ok(count)
}

fn log_record(message: &BorrowedMessage<'_>) {
    let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
    // `null` for no key, as kcat prints it; a key is quoted and escaped.
    let key = message
        .key()
        .map_or_else(|| "null".to_owned(), |k| format!("{:?}", preview(k)));
    let value = message.payload().unwrap_or_default();
    match PageEvent::decode(value) {
        Ok(event) => tracing::info!(
            target: TARGET,
            topic,
            partition,
            offset,
            key = %key,
            name = ?event.name,
            user = ?event.user,
            date = %page_event::format_date(event.date_ms),
            duration_ms = event.duration_ms,
            "PageEvent"
        ),
        Err(e) => tracing::info!(
            target: TARGET,
            topic,
            partition,
            offset,
            key = %key,
            bytes = value.len(),
            raw = ?preview(value),
            error = %e,
            "not a PageEvent"
        ),
    }
}
