//! The same workloads straight on Kafka with librdkafka, for the gateway/direct ratio: the
//! producer as the gateway's (acks=all, idempotent, 5 ms linger) with as many records in
//! flight as the gateway run had, and a consumer assigned every partition without a group
//! that does not parse what it reads.

use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::ClientConfig;
use rdkafka::config::FromClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use crate::Failure;
use crate::args::BenchWorkload;
use crate::e2e::{DRAIN, Stamp, due};
use crate::plan::{Plan, STREAM_WINDOW};
use crate::stats::Tally;

/// How long metadata look-ups and topic creation may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// A reader that got nothing for this long has read all there is.
const IDLE: Duration = Duration::from_secs(10);

/// The Kafka side of `--direct`: the bootstrap address and the `-X` properties.
pub struct Direct {
    /// `--direct HOST:PORT`.
    pub bootstrap: String,
    /// `-X KEY=VALUE`, applied last to every client of the direct side.
    pub options: Vec<(String, String)>,
}

impl Direct {
    /// A client's configuration: the bootstrap address, the role's own settings, then the
    /// user's `-X` over them.
    fn client(&self, role: impl FnOnce(&mut ClientConfig)) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        role(&mut config);
        for (key, value) in &self.options {
            config.set(key, value);
        }
        config
    }
}

fn kafka_failure(what: &str, error: &KafkaError) -> Failure {
    Failure::unreachable(format!("--direct: {what}: {error}"))
}

/// Asks the cluster for `topic`'s metadata (connecting, and learning its leaders).
fn fetch_metadata(producer: &FutureProducer, topic: &str, what: &str) -> Result<(), Failure> {
    tokio::task::block_in_place(|| {
        producer
            .client()
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
    })
    .map(drop)
    .map_err(|e| kafka_failure(what, &e))
}

/// Runs `plan`'s workload on Kafka (`kafka`), counting into `tally`.
pub async fn run(kafka: &Direct, plan: &Plan, tally: &Tally) -> Result<(), Failure> {
    match plan.workload {
        BenchWorkload::Publish => produce(kafka, plan, plan.concurrency, tally).await,
        BenchWorkload::PublishStream => {
            let in_flight = plan.concurrency.saturating_mul(STREAM_WINDOW);
            produce(kafka, plan, in_flight, tally).await
        }
        BenchWorkload::Subscribe => consume(kafka, plan, tally).await,
        BenchWorkload::E2e => end_to_end(kafka, plan, tally).await,
    }
}

fn producer(kafka: &Direct, topic: &str) -> Result<FutureProducer, Failure> {
    let producer: FutureProducer = kafka
        .client(|c| {
            c.set("acks", "all")
                .set("enable.idempotence", "true")
                .set("linger.ms", "5");
        })
        .create()
        .map_err(|e| kafka_failure("producer", &e))?;
    // Connect and learn the topic's leaders before the clock starts.
    fetch_metadata(&producer, topic, "metadata")?;
    Ok(producer)
}

fn error_name(error: &KafkaError) -> String {
    error
        .rdkafka_error_code()
        .map_or_else(|| "KAFKA".to_owned(), |code| format!("KAFKA_{code:?}"))
}

/// One record sent now, its delivery counted with its latency.
async fn send_one(producer: &FutureProducer, topic: &str, value: &[u8], tally: &Tally) {
    let sent = Instant::now();
    let record: FutureRecord<'_, (), [u8]> = FutureRecord::to(topic).payload(value);
    match producer.send(record, Timeout::Never).await {
        Ok(_) => tally.done(Some(sent.elapsed())),
        Err((error, _)) => tally.error(&error_name(&error)),
    }
}

async fn produce(
    kafka: &Direct,
    plan: &Plan,
    in_flight: u64,
    tally: &Tally,
) -> Result<(), Failure> {
    let producer = producer(kafka, &plan.topic)?;
    tally.restart();
    let value = plan.value();
    let in_flight = usize::try_from(in_flight).unwrap_or(usize::MAX);
    futures::stream::iter(0..plan.records)
        .map(|_| send_one(&producer, &plan.topic, &value, tally))
        .buffer_unordered(in_flight)
        .collect::<()>()
        .await;
    Ok(())
}

/// A consumer of every partition of `topic`, each from the offset `start` picks.
fn consumer<C: Consumer + FromClientConfig>(
    kafka: &Direct,
    topic: &str,
    start: impl Fn(&C, i32) -> Result<Offset, KafkaError>,
) -> Result<C, Failure> {
    let consumer: C = kafka
        .client(|c| {
            // librdkafka wants a group id even for assigned partitions; nothing is committed.
            c.set("group.id", "streamgate-bench")
                .set("enable.auto.commit", "false")
                // Fetch again soon after the prefetch queue had no room, as the server's
                // consumers do, instead of librdkafka's 1 s: the direct side must be the
                // fastest reader.
                .set("fetch.queue.backoff.ms", "10");
        })
        .create()
        .map_err(|e| kafka_failure("consumer", &e))?;
    let assignment = tokio::task::block_in_place(|| {
        let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
        let mut assignment = TopicPartitionList::new();
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let offset = start(&consumer, partition.id())?;
            assignment.add_partition_offset(topic, partition.id(), offset)?;
        }
        Ok::<_, KafkaError>(assignment)
    })
    .map_err(|e| kafka_failure("metadata", &e))?;
    consumer
        .assign(&assignment)
        .map_err(|e| kafka_failure("assign", &e))?;
    Ok(consumer)
}

/// Reads `plan.records` records from the beginning; the clock starts at the first record.
async fn consume(kafka: &Direct, plan: &Plan, tally: &Tally) -> Result<(), Failure> {
    let consumer: BaseConsumer = consumer(kafka, &plan.topic, |_, _| Ok(Offset::Beginning))?;
    // A thread polling librdkafka's queue in a loop: the fastest way a client of librdkafka
    // reads, so the limit the gateway is measured against.
    tokio::task::block_in_place(|| read_all(&consumer, plan.records, tally));
    Ok(())
}

/// Polls `consumer` until `records` records were read or nothing came for [`IDLE`]; counts
/// them into `tally` a thousand at a time (its lock is not free).
fn read_all(consumer: &BaseConsumer, records: u64, tally: &Tally) {
    const REPORT_EVERY: u64 = 1000;
    let (mut read, mut unreported) = (0, 0);
    let mut last_record = Instant::now();
    while read < records {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => {
                if read == 0 {
                    tally.restart();
                }
                read += 1;
                unreported += 1;
                last_record = Instant::now();
                if unreported == REPORT_EVERY {
                    tally.done_many(std::mem::take(&mut unreported));
                }
            }
            Some(Err(error)) => tally.error(&error_name(&error)),
            None if last_record.elapsed() >= IDLE => break,
            None => tally.done_many(std::mem::take(&mut unreported)),
        }
    }
    tally.done_many(unreported);
}

/// e2e: a consumer at the end of every partition, then records produced at `plan.rate`.
async fn end_to_end(kafka: &Direct, plan: &Plan, tally: &Tally) -> Result<(), Failure> {
    let topic = plan.topic.as_str();
    let consumer: StreamConsumer = consumer(kafka, topic, |c: &StreamConsumer, partition| {
        let (_, high) = c.fetch_watermarks(topic, partition, METADATA_TIMEOUT)?;
        Ok(Offset::Offset(high))
    })?;
    let producer = producer(kafka, topic)?;
    let stamp = Stamp::new();
    let receive = async {
        while tally.records() + tally.errors() < plan.records {
            let Ok(Ok(message)) = tokio::time::timeout(DRAIN, consumer.recv()).await else {
                break;
            };
            if let Some(latency) = stamp.latency(message.payload().unwrap_or_default()) {
                tally.received(latency);
            }
        }
    };
    let start = Instant::now();
    let send = futures::stream::iter(0..plan.records)
        .then(|sent| tokio::time::sleep_until(due(start, sent, plan.rate).into()))
        .map(|()| async {
            let value = stamp.value(plan.size);
            let record: FutureRecord<'_, (), [u8]> = FutureRecord::to(topic).payload(&value);
            if let Err((error, _)) = producer.send(record, Timeout::Never).await {
                tally.error(&error_name(&error));
            }
        })
        .buffer_unordered(usize::try_from(STREAM_WINDOW).unwrap_or(1024))
        .collect::<()>();
    tokio::join!(receive, send);
    let missing = plan
        .records
        .saturating_sub(tally.records() + tally.errors());
    for _ in 0..missing {
        tally.error("NOT_RECEIVED");
    }
    Ok(())
}
