//! Throughput of the analytics path against its budget (the exactly-once worker: ≥ 0.6 × raw
//! consume), on the embedded broker:
//!
//! - windowing core: decode + count of in-memory values (no Kafka);
//! - raw consume: one librdkafka consumer reading the records (the baseline);
//! - worker: the exactly-once worker counting the same records, transactions included,
//!   from its start (group join and restore included) until every record is counted.
//!
//! Run: `cargo bench -p streamgate-server --bench analytics` (add `-- RECORDS`).
//! Numbers depend on the machine; nothing here asserts them.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use streamgate::page_event::PageEvent;
use streamgate::topic::TopicName;
use streamgate_server::Kafka;
use streamgate_server::analytics::window::PartitionWindows;
use streamgate_server::analytics::{WindowSpec, Worker, WorkerSettings};
use tokio_util::sync::CancellationToken;

const INPUT: &str = "bench-in";
const OUTPUT: &str = "bench-out";
const PAGES: [&str; 8] = ["P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8"];

fn value(i: usize, base: i64) -> Vec<u8> {
    PageEvent {
        name: PAGES[i % PAGES.len()].into(),
        user: if i.is_multiple_of(2) { "U1" } else { "U2" }.into(),
        date_ms: base + i as i64,
        duration_ms: (i % 9000) as i64,
    }
    .to_json()
}

#[tokio::main]
async fn main() {
    let records: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        // The embedded broker keeps ~5 MiB per partition: 100 000 records of ~80 bytes fit.
        .unwrap_or(100_000);
    let base = chrono::Utc::now().timestamp_millis() - 60_000;

    // The core alone: decode with borrowed strings, count, no I/O.
    let values: Vec<Vec<u8>> = (0..records).map(|i| value(i, base)).collect();
    let spec = WindowSpec::tumbling(5_000, 1_000).expect("spec");
    let mut state = PartitionWindows::new(spec, 100, 0);
    let start = Instant::now();
    for (offset, v) in values.iter().enumerate() {
        let event = PageEvent::decode(v).expect("decodes");
        state.record(
            offset as i64,
            event.date_ms,
            &event.name,
            event.duration_ms,
            base,
        );
    }
    let core = start.elapsed();
    println!(
        "windowing core      : {records} records in {core:.2?} = {:>10.0} records/s",
        rate(records, core)
    );

    let kafka = Kafka::embedded(Vec::new()).expect("embedded broker");
    kafka
        .ensure_topics(&[INPUT, OUTPUT], 3, 1, Duration::from_secs(10))
        .await
        .expect("topics");
    let producer: FutureProducer = kafka
        .client_config()
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    let sends = futures::future::join_all(values.iter().enumerate().map(|(i, v)| {
        let producer = &producer;
        async move {
            producer
                .send(
                    FutureRecord::to(INPUT)
                        .key(PAGES[i % PAGES.len()])
                        .payload(v.as_slice())
                        .timestamp(base + i as i64),
                    Duration::from_secs(60),
                )
                .await
                .expect("produced");
        }
    }));
    sends.await;

    // Baseline: one consumer reading everything.
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", "bench-raw")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[INPUT]).expect("subscribe");
    let start = Instant::now();
    let (mut seen, mut bytes, mut first) = (0, 0, None);
    while seen < records {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            first.get_or_insert_with(Instant::now);
            seen += 1;
            bytes += m.payload().map_or(0, <[u8]>::len);
        }
    }
    let raw_total = start.elapsed();
    let raw = first.map_or(raw_total, |f| f.elapsed());
    drop(consumer);
    println!(
        "raw consume         : {records} records in {raw:.2?} after the first = {:>10.0} records/s ({bytes} bytes); {raw_total:.2?} with the group join",
        rate(records, raw)
    );

    let shutdown = CancellationToken::new();
    let start = Instant::now();
    let worker = Worker::spawn(
        kafka.client_settings(),
        WorkerSettings {
            input: TopicName::new(INPUT.to_owned()).expect("topic"),
            output: TopicName::new(OUTPUT.to_owned()).expect("topic"),
            dead_letters: TopicName::new(format!("error.{INPUT}.bench-analytics")).expect("topic"),
            group: "bench-analytics".into(),
            transactional_id: "bench-analytics-1".into(),
            spec,
            min_duration_ms: 100,
            tick: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            max_event_skew: Duration::from_secs(30),
            max_page_name_bytes: 256,
            max_pages: 10_000,
        },
        shutdown.clone(),
    )
    .expect("worker");
    let counters = worker.counters();
    let done = || {
        counters.counted.load(Ordering::Relaxed)
            + counters.filtered.load(Ordering::Relaxed)
            + counters.late.load(Ordering::Relaxed)
            + counters.malformed.load(Ordering::Relaxed)
    };
    // The group join and the restore come first; the rate counts from the first record.
    let mut first = None;
    while (done() as usize) < records {
        if first.is_none() && done() > 0 {
            first = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let total = start.elapsed();
    let counted = first.map_or(total, |f| f.elapsed());
    println!(
        "analytics worker    : {records} records in {counted:.2?} after the first (prefetched during the restore); {total:.2?} with group join, restore and transactions = {:>10.0} records/s, {:.2} x raw consume with its join (budget 0.6)",
        rate(records, total),
        raw_total.as_secs_f64() / total.as_secs_f64()
    );
    shutdown.cancel();
    let _ = tokio::task::spawn_blocking(move || worker.join()).await;
}

fn rate(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}
