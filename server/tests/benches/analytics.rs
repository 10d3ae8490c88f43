//! Throughput of the analytics path against its budget (the exactly-once worker: ≥ 0.6 × raw
//! consume), on the embedded broker or, with `STREAMGATE_BENCH_BROKERS=HOST:PORT`, on a real
//! one:
//!
//! - windowing core: decode + count of in-memory values (no Kafka);
//! - raw consume: one librdkafka consumer in a group reading the records (the baseline),
//!   from its first record to its last; its group join apart;
//! - worker: the exactly-once worker counting the same records, from its first record to the
//!   commit of the transaction after its last (steady state); its group join and restore
//!   apart.
//!
//! Run: `cargo bench -p streamgate-server --bench analytics` (add `-- RECORDS`; the default is
//! 100 000 on the embedded broker, which keeps ~5 MiB per partition, and 1 000 000 on a real
//! one; `STREAMGATE_BENCH_STATS_TICK=100ms` sets the worker's tick, 1 s by default;
//! `STREAMGATE_BENCH_ROUNDS=N` runs raw consume and the worker N times, alternating, each
//! round with groups and an output topic of its own, and ends with the median ratio).
//! Numbers depend on the machine; nothing here asserts them.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use streamgate::page_event::PageEvent;
use streamgate::topic::TopicName;
use streamgate_server::Kafka;
use streamgate_server::settings::WindowSpec;
use streamgate_server::testing::{PartitionWindows, Worker, WorkerSettings};
use tokio_util::sync::CancellationToken;

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
    let brokers = std::env::var("STREAMGATE_BENCH_BROKERS").ok();
    let records: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        // The embedded broker keeps ~5 MiB per partition: 100 000 records of ~80 bytes fit.
        .unwrap_or(if brokers.is_some() {
            1_000_000
        } else {
            100_000
        });
    // Fresh names per run, so that runs on a real broker do not read each other's records.
    let run = chrono::Utc::now().timestamp_millis();
    let input = format!("bench-in-{run}");
    let input = input.as_str();
    // Record i is stamped base + i ms: all of them in the past, none ahead of the worker's
    // clock (it dead-letters those).
    let base = chrono::Utc::now().timestamp_millis() - records as i64 - 60_000;

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

    // librdkafka options for every client of the run, both sides alike (as the server's -X).
    let options: Vec<(String, String)> = std::env::var("STREAMGATE_BENCH_X")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let kafka = match &brokers {
        Some(brokers) => Kafka::external(brokers.clone(), options),
        None => Kafka::embedded(options).expect("embedded broker"),
    };
    kafka
        .ensure_topics(&[input], 3, 1, Duration::from_secs(10))
        .await
        .expect("input topic");
    let producer: FutureProducer = kafka
        .client_config()
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    futures::stream::iter(values.iter().enumerate())
        .for_each_concurrent(10_000, |(i, v)| {
            let producer = &producer;
            async move {
                producer
                    .send(
                        FutureRecord::to(input)
                            .key(PAGES[i % PAGES.len()])
                            .payload(v.as_slice())
                            .timestamp(base + i as i64),
                        Duration::from_secs(60),
                    )
                    .await
                    .expect("produced");
            }
        })
        .await;

    let tick = std::env::var("STREAMGATE_BENCH_STATS_TICK")
        .ok()
        .and_then(|t| humantime::parse_duration(&t).ok())
        .unwrap_or(Duration::from_secs(1));
    let rounds: usize = std::env::var("STREAMGATE_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mut ratios = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        if rounds > 1 {
            println!("round {round} of {rounds}");
        }
        let name = format!("{run}-{round}");
        let raw = raw_consume(&kafka, input, records, &name);
        let output = format!("bench-out-{name}");
        kafka
            .ensure_topics(&[output.as_str()], 3, 1, Duration::from_secs(10))
            .await
            .expect("output topic");
        let steady = worker_run(&kafka, input, &output, records, tick, spec, &name).await;
        let ratio = raw.as_secs_f64() / steady.as_secs_f64();
        println!("ratio worker/raw    : {ratio:.2} (budget 0.6)");
        ratios.push(ratio);
    }
    if rounds > 1 {
        ratios.sort_by(f64::total_cmp);
        // The lower of the two middle ones for an even count.
        println!(
            "median ratio        : {:.2} over {rounds} rounds (lowest {:.2}, highest {:.2}; budget 0.6)",
            ratios[(rounds - 1) / 2],
            ratios[0],
            ratios[rounds - 1]
        );
    }
}

/// Baseline: one consumer in a group of its own reading every record of `input`; returns
/// the time from its first record to its last.
fn raw_consume(kafka: &Kafka, input: &str, records: usize, name: &str) -> Duration {
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", format!("bench-raw-{name}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        // As the worker's consumer: fetch again soon after the prefetch queue was full.
        .set("fetch.queue.backoff.ms", "10")
        .create()
        .expect("consumer");
    consumer.subscribe(&[input]).expect("subscribe");
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
        "raw consume         : {records} records in {raw:.2?} from the first = {:>10.0} records/s ({bytes} bytes); group join {:.2?}",
        rate(records, raw),
        raw_total - raw
    );
    raw
}

/// The exactly-once worker counting every record of `input` into `output`, in groups of its
/// own; returns the time from its first record to the commit after its last.
async fn worker_run(
    kafka: &Kafka,
    input: &str,
    output: &str,
    records: usize,
    tick: Duration,
    spec: WindowSpec,
    name: &str,
) -> Duration {
    // The worker commits at every tick and as soon as it has read a backlog to its end, so
    // the measured span ends with the commit right after the last record.
    let shutdown = CancellationToken::new();
    let start = Instant::now();
    let worker = Worker::spawn(
        kafka.client_settings(),
        WorkerSettings {
            input: TopicName::new(input.to_owned()).expect("topic"),
            output: TopicName::new(output.to_owned()).expect("topic"),
            dead_letters: TopicName::new(format!("error.{input}.bench-analytics")).expect("topic"),
            group: format!("bench-analytics-{name}"),
            transactional_id: format!("bench-analytics-{name}"),
            spec,
            min_duration_ms: 100,
            tick,
            timeout: Duration::from_secs(30),
            max_event_skew: Duration::from_secs(30),
            max_page_name_bytes: 256,
            max_pages: 10_000,
            first_restart_backoff: Duration::from_secs(1),
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
            + counters.future.load(Ordering::Relaxed)
    };
    // The group join and the restore come first; steady state runs from the first record to
    // the commit of the transaction that follows the last. That commit may land between two
    // looks at the counters, so the loop notes when the transaction count last moved.
    let transactions = || counters.transactions.load(Ordering::Relaxed);
    let mut transactions_at_first = 0;
    let (mut first, mut all_counted) = (None, None);
    let (mut seen_transactions, mut last_commit) = (transactions(), Instant::now());
    loop {
        let now = Instant::now();
        if transactions() != seen_transactions {
            (seen_transactions, last_commit) = (transactions(), now);
            if all_counted.is_some() {
                break;
            }
        }
        if first.is_none() && done() > 0 {
            first = Some(now);
            transactions_at_first = transactions();
        }
        if all_counted.is_none() && done() as usize >= records {
            all_counted = Some(now);
        }
        // Nothing changes after the last commit: it came before the count was seen.
        if all_counted.is_some_and(|t| now - t > Duration::from_secs(3)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let steady = first.map_or(Duration::ZERO, |f| last_commit - f);
    let counting = match (first, all_counted) {
        (Some(first), Some(all)) => all - first,
        _ => steady,
    };
    let total = last_commit - start;
    println!(
        "analytics worker    : {records} records in {steady:.2?} from the first to the last commit = {:>10.0} records/s ({counting:.2?} to count them, then the commit; {} transactions, --stats-tick {tick:?}); group join and restore {:.2?}",
        rate(records, steady),
        seen_transactions - transactions_at_first,
        total - steady
    );
    shutdown.cancel();
    let _ = tokio::task::spawn_blocking(move || worker.join()).await;
    steady
}

fn rate(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}
